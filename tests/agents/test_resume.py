"""Checkpoints and resume: a SIGKILLed run continues in the same MLflow run to its budget;
resuming is deterministic; ``task=train model=...`` continues a model."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import mlflow
import numpy as np
import pytest
from conftest import ROOT, run_cli
from hydra import compose, initialize_config_dir
from stable_baselines3 import A2C

from cryptotrade.agents.checkpoint import latest_checkpoint
from cryptotrade.agents.training import train
from cryptotrade.components import build
from cryptotrade.config import CONF_DIR, register_configs
from cryptotrade.optimize import objective

register_configs()


def compose_cfg(*overrides: str):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=["debug=default", *overrides])


def _params(model) -> list[np.ndarray]:
    return [p.detach().numpy().copy() for p in model.policy.parameters()]


def _test_sums(components, dataset, model, steps: int = 100) -> tuple[float, float]:
    """Action and reward sums of ``model`` (deterministic) over the first test steps."""
    env = components.env.make(dataset.test, components.reward, seed=0, evaluation=True)
    obs, _ = env.reset(seed=0)
    actions = rewards = 0.0
    for _ in range(steps):
        action, _ = model.predict(obs, deterministic=True)
        obs, reward, terminated, truncated, _ = env.step(action)
        actions, rewards = actions + float(np.sum(action)), rewards + float(reward)
        if terminated or truncated:
            obs, _ = env.reset()
    return actions, rewards


# DQN in the fast suite (~3 CPU-s at this size): its replay buffer, exploration and target
# updates all carry over; PPO (rollouts of 1,024 steps) is in the slow suite
SMALL_DQN = (
    "train.total_timesteps=1536",
    "train.checkpoint_freq=512",
    "agent.learning_starts=256",  # updates (and a target update) before and after the checkpoint
    "agent.batch_size=32",
    "agent.target_update_interval=256",
    "agent.exploration_fraction=0.5",  # epsilon still decaying at the checkpoint
)
RESUME_RUNS = {
    "dqn": ("agent=dqn", *SMALL_DQN),
    "ppo": ("agent=ppo", "train.total_timesteps=3072"),
}


@pytest.mark.parametrize("agent", ["dqn", pytest.param("ppo", marks=pytest.mark.slow)])
def test_a_resumed_run_equals_the_uninterrupted_run(tmp_path, agent):
    """The checkpoint holds the model, optimizer, replay buffer, RNGs (python, numpy, torch,
    the action space's) and the native VecEnv's state (accounts, episode positions, their
    generators): resumed from it, training continues the same episodes, so the final model
    is bit-identical and so are its actions and rewards on the test split."""
    cfg = compose_cfg(*RESUME_RUNS[agent], "train.select=last")
    total = cfg.train.total_timesteps
    components = build(cfg)
    dataset = objective.prepare_data(components)
    objective.seed_everything(cfg.seed, cfg.torch_threads)
    full = train(components, dataset, tmp_path / "full")
    checkpoint = latest_checkpoint(tmp_path / "full")
    assert checkpoint is not None and 0 < checkpoint.step < total
    assert (checkpoint.path / "replay_buffer.pkl").exists() == (agent == "dqn")
    objective.seed_everything(cfg.seed + 1, cfg.torch_threads)  # the checkpoint's RNGs win
    shutil.copytree(tmp_path / "full" / "checkpoints", tmp_path / "resumed" / "checkpoints")
    resumed = train(components, dataset, tmp_path / "resumed", resume=True)
    assert resumed.num_timesteps == full.num_timesteps >= total
    assert resumed.model._n_updates == full.model._n_updates
    for x, y in zip(_params(resumed.model), _params(full.model), strict=True):
        np.testing.assert_array_equal(x, y)
    assert _test_sums(components, dataset, resumed.model) == _test_sums(
        components, dataset, full.model
    )


def _runs(uri: str):
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name("cryptotrade")
    return client.search_runs([exp.experiment_id]) if exp else []


@pytest.mark.slow
def test_sigkilled_run_resumes_in_the_same_mlflow_run(tmp_path, mlflow_uri):
    mlflow.MlflowClient(mlflow_uri).search_experiments()  # create the store first
    total = 8192
    args = [
        "task=train",
        "debug=default",
        "agent=dqn",
        f"train.total_timesteps={total}",
        "train.checkpoint_freq=1024",
        "train.eval_freq=0",
        f"hydra.run.dir={tmp_path / 'first'}",
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "cryptotrade.run", *args],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=os.environ.copy(),
    )
    try:
        deadline = time.time() + 300
        while latest_checkpoint(tmp_path / "first") is None:
            assert proc.poll() is None, "training ended before its first checkpoint"
            assert time.time() < deadline, "no checkpoint written"
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        proc.kill()
    (run,) = _runs(mlflow_uri)
    assert run.info.status == "RUNNING"  # SIGKILL: nothing could mark it
    killed_at = latest_checkpoint(tmp_path / "first").step
    assert killed_at < total

    lr = compose_cfg("agent=dqn").agent.learning_rate  # the default, whatever conf/ sets it to
    assert lr != 0.001
    refused = run_cli(f"resume={run.info.run_id}", "agent.learning_rate=0.001")
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert refused.stderr.strip().splitlines()[-1:] == [
        f"Error: resume={run.info.run_id}: these settings cannot change on resume: "
        f"agent.learning_rate ({lr!r} -> 0.001); only torch_threads, train.checkpoint_freq, "
        "train.log_interval, train.progress_bar, train.tensorboard, train.total_timesteps can "
        "(start a new run to change the others)"
    ]
    total += 1024  # the budget may change: applied, logged and tagged
    done = run_cli(
        f"resume={run.info.run_id}",
        f"train.total_timesteps={total}",
        f"hydra.run.dir={tmp_path / 'second'}",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (after,) = _runs(mlflow_uri)  # the same run, no new one
    assert after.info.run_id == run.info.run_id and after.info.status == "FINISHED"
    assert "resuming run" in done.stdout + done.stderr
    assert f"train.total_timesteps changed from {total - 1024} to {total}" in done.stdout
    assert after.data.tags["resume/train.total_timesteps"] == f"{total - 1024} -> {total}"
    model_path = mlflow.artifacts.download_artifacts(
        f"runs:/{run.info.run_id}/model/model.zip", dst_path=str(tmp_path / "dl")
    )
    from stable_baselines3 import DQN

    assert total <= DQN.load(model_path).num_timesteps < total + 4 * 8
    steps = [
        m.step
        for m in mlflow.MlflowClient(mlflow_uri).get_metric_history(run.info.run_id, "val/sharpe")
    ]
    assert max(steps) >= total

    again = run_cli(f"resume={run.info.run_id}")
    assert again.returncode != 0 and "already FINISHED" in again.stderr


@pytest.mark.slow
def test_resume_of_an_unknown_run_fails_before_any_work(mlflow_uri):
    proc = run_cli("resume=0123456789abcdef")
    assert proc.returncode != 0
    assert "resume=0123456789abcdef: no such MLflow run" in proc.stderr


@pytest.mark.slow
def test_task_train_continues_a_given_model(tmp_path, mlflow_uri):
    from cryptotrade.run import execute

    first = execute(compose_cfg("agent=a2c", "task=train"), output_dir=tmp_path / "a")
    assert first["train/total_timesteps"] >= 2048
    # model.zip is the model selected on validation, which may be an earlier one than the last
    # (e.g. step 1,024 of 2,048): the continuation carries on from the given model's step count
    given = A2C.load(tmp_path / "a" / "model.zip", device="cpu").num_timesteps
    assert 0 < given <= first["train/total_timesteps"]
    cfg = compose_cfg("agent=a2c", "task=train", f"model={tmp_path / 'a' / 'model.zip'}")
    second = execute(cfg, output_dir=tmp_path / "b")
    assert second["train/total_timesteps"] >= given + 2048
