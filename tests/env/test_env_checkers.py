"""Gymnasium and SB3 env checkers, determinism, the factory and the agent compatibility check."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from conftest import run_episode
from env_testdata import random_walk
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3 import DQN, PPO, SAC
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from cryptotrade.env import (
    ACTION_MODES,
    ENV_ID,
    EnvFactory,
    EnvSettings,
    TradingEnv,
    WeightedReward,
    check_agent_compatible,
)

MODES = sorted(ACTION_MODES)
DATA = random_walk(300)


def settings(mode: str, **kw) -> EnvSettings:
    return EnvSettings(
        window=8,
        action_mode=mode,
        episode_length=50,
        leverage=2.0,
        include_cash=True,
        include_inventory=True,
        **kw,
    )


@pytest.mark.parametrize("mode", MODES)
def test_checkers_pass_without_warnings(mode: str) -> None:
    reward = WeightedReward(drawdown=0.1, sharpe=0.01, idle=0.001, trade=0.001, liquidation=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gym_check_env(TradingEnv(DATA, reward, settings(mode)), skip_render_check=True)
        sb3_check_env(TradingEnv(DATA, reward, settings(mode)), warn=True)


@pytest.mark.parametrize("mode", MODES)
def test_same_seed_same_rollout(mode: str) -> None:
    def rollout(seed: int) -> list[tuple]:
        env = TradingEnv(DATA, WeightedReward(drawdown=0.1), settings(mode))
        env.action_space.seed(seed)
        obs, _ = env.reset(seed=seed)
        out = [(obs.tobytes(),)]
        for _ in range(120):
            obs, r, term, trunc, info = env.step(env.action_space.sample())
            out.append((obs.tobytes(), r, term, trunc, info["equity"]))
            if term or trunc:
                obs, _ = env.reset()
                out.append((obs.tobytes(), env.start_index))
        return out

    assert rollout(3) == rollout(3)
    assert rollout(3) != rollout(4)


def test_observation_layout_attributes() -> None:
    env = TradingEnv(DATA, None, settings("discrete3"))
    obs, _ = env.reset(seed=0)
    assert env.window == 8 and env.num_features == 3 and env.account_size == 6
    assert obs.shape == (8 * 3 + 6,) and obs.dtype == np.float32
    t = env.current_index
    np.testing.assert_array_equal(obs[:24].reshape(8, 3), DATA.features[t - 7 : t + 1])


def test_gymnasium_registration() -> None:
    env = gym.make(ENV_ID, data=DATA, reward=WeightedReward(), settings=settings("discrete4"))
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)


def test_factory_make_and_evaluation_bounds() -> None:
    factory = EnvFactory(window=8, episode_length=50)
    env = factory.make(DATA, WeightedReward(), seed=1, evaluation=True)
    episode = run_episode(env, env.action_for_target(1.0), seed=1)
    info, steps = episode.info, episode.steps
    assert env.start_index == 7
    assert env.current_index == len(DATA) - 1 and steps == len(DATA) - 8
    assert len(env.trades) == 1 and env.trades[0]["exit_index"] == len(DATA) - 1
    assert info["episode/reward/pnl"] == pytest.approx(np.log(info["equity"] / env.initial_cash))


@pytest.mark.parametrize("vectorized", [False, True])
def test_factory_make_vec(vectorized: bool) -> None:
    venv = EnvFactory(window=8, episode_length=20, n_envs=3, vectorized=vectorized).make_vec(
        DATA, WeightedReward(), seed=0
    )
    obs = venv.reset()
    assert obs.shape == (3, 8 * 3 + 4)
    episodes = 0
    for _ in range(45):
        obs, _, dones, infos = venv.step(np.array([venv.action_space.sample()] * 3))
        for done, info in zip(dones, infos, strict=True):
            if done:
                episodes += 1
                assert info["episode"]["l"] == 20
                assert info["terminal_observation"].shape == (8 * 3 + 4,)
                assert "episode/reward/pnl" in info
    assert episodes == 6


def test_validation_messages_name_the_fix() -> None:
    with pytest.raises(ValueError, match=r"lower env\.window"):
        TradingEnv(DATA, None, EnvSettings(window=400))
    with pytest.raises(ValueError, match=r"env\.episode_length"):
        TradingEnv(DATA, None, EnvSettings(window=8, episode_length=1000))
    with pytest.raises(ValueError, match=r"set env\.action_mode"):
        EnvSettings(action_mode="discrete5")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="maintenance_margin"):
        EnvSettings(leverage=300.0, maintenance_margin=0.005)


@pytest.mark.parametrize(
    ("agent", "mode", "fits"),
    [(SAC, "discrete3", "continuous"), (DQN, "continuous", "discrete4")],
)
def test_agent_mismatch_names_the_action_mode(agent: type, mode: str, fits: str) -> None:
    with pytest.raises(ValueError, match=f"set env.action_mode to one of .*{fits}"):
        check_agent_compatible(agent, mode)


@pytest.mark.parametrize("mode", MODES)
def test_ppo_fits_every_mode(mode: str) -> None:
    check_agent_compatible(PPO, mode)


def test_env_and_market_import_no_heavy_modules() -> None:
    import subprocess
    import sys

    code = (
        "import sys, cryptotrade.env, cryptotrade.market; "
        "print(sorted(m for m in ('torch', 'stable_baselines3', 'mlflow', 'ray') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_gym_make_after_import_cryptotrade_builds_the_default_synthetic_market() -> None:
    # a fresh interpreter: `import cryptotrade` alone registers the id, and no data argument
    # means the default synthetic market (its training split with the minimal features)
    import subprocess
    import sys

    code = (
        "import gymnasium as gym, cryptotrade\n"
        "env = gym.make('cryptotrade/Trading-v0')\n"
        "obs, info = env.reset(seed=0)\n"
        "obs, r, term, trunc, info = env.step(env.action_space.sample())\n"
        "u = env.unwrapped\n"
        "print(u.data.name, u.num_features, len(u.data), obs.shape[0], round(info['equity']))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    name, n_features, bars, obs_size, equity = out.stdout.split()
    assert (name, n_features) == ("train", "4")
    assert int(bars) > 10_000 and int(obs_size) == 30 * 4 + 4
    assert 9_000 < int(equity) < 11_000


def test_the_default_market_reads_its_features_from_the_minimal_preset(monkeypatch) -> None:
    """One definition: gym.make's default market builds conf/features/minimal.yaml's feature
    set, exactly as ``features=minimal`` composes and instantiates it (no copy to drift)."""
    import inspect

    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    import cryptotrade.data as data_module
    from cryptotrade.config import CONF_DIR, register_configs
    from cryptotrade.data.features import FeatureSet
    from cryptotrade.env import default_market

    built = {}

    class Built(Exception):
        """Stops the default market once its feature set is known: nothing is computed."""

    def build_dataset(spec, features, **kw):
        built["features"] = features
        raise Built

    monkeypatch.setattr(data_module, "build_dataset", build_dataset)
    with pytest.raises(Built):
        default_market.default_market_data.__wrapped__()
    register_configs()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        node = compose("config", overrides=["features=minimal"]).features
    assert built["features"].describe() == instantiate(node).describe()
    composed = OmegaConf.to_container(node, resolve=True)
    defaults = inspect.signature(FeatureSet).parameters
    read = default_market.minimal_features()
    for key, value in composed.items():
        if key != "_target_":
            assert read.get(key, defaults[key].default) == value, key
