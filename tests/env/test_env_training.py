"""Tiny-budget training: every action mode trains with a matching SB3 agent."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from env_testdata import random_walk
from stable_baselines3 import DQN, PPO, SAC

from cryptotrade.env import EnvFactory, WeightedReward, check_agent_compatible

DATA = random_walk(400, seed=3)
torch.set_num_threads(1)


@pytest.mark.parametrize(
    ("mode", "agent", "kwargs", "vectorized"),
    [
        ("discrete3", PPO, {"n_steps": 32, "batch_size": 32, "n_epochs": 1}, True),
        ("discrete4", PPO, {"n_steps": 32, "batch_size": 32, "n_epochs": 1}, False),
        ("buy_sell_hold", PPO, {"n_steps": 32, "batch_size": 32, "n_epochs": 1}, True),
        ("continuous", PPO, {"n_steps": 32, "batch_size": 32, "n_epochs": 1}, True),
        ("discrete3", DQN, {"learning_starts": 32, "buffer_size": 1000}, True),
        ("continuous", SAC, {"learning_starts": 32, "buffer_size": 1000, "batch_size": 32}, False),
    ],
)
def test_tiny_training_run(mode: str, agent: type, kwargs: dict, vectorized: bool) -> None:
    check_agent_compatible(agent, mode)
    factory = EnvFactory(
        window=8, action_mode=mode, episode_length=50, n_envs=2, vectorized=vectorized
    )
    venv = factory.make_vec(DATA, WeightedReward(drawdown=0.01), seed=0)
    model = agent(
        "MlpPolicy", venv, seed=0, device="cpu", policy_kwargs={"net_arch": [16]}, **kwargs
    )
    model.learn(total_timesteps=160)
    assert len(model.ep_info_buffer) >= 2  # episodes of 50 steps were reported like Monitor's
    env = factory.make(DATA, WeightedReward(), seed=0, evaluation=True)
    obs, _ = env.reset(seed=0)
    for _ in range(20):
        action, _ = model.predict(obs, deterministic=True)
        assert env.action_space.contains(action)
        obs, reward, _, _, info = env.step(action)
        assert np.isfinite(reward) and np.isfinite(info["equity"])
