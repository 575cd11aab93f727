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


@pytest.mark.slow
def test_resume_from_a_checkpoint_is_deterministic_and_reaches_the_budget(tmp_path):
    """Two resumes from one checkpoint give identical models; the uninterrupted run differs
    only because the envs' episode state is not checkpointed (a resumed run starts new
    episodes), which the README documents."""
    cfg = compose_cfg("agent=dqn", "train.total_timesteps=3072", "train.select=last")
    components = build(cfg)
    dataset = objective.prepare_data(components)
    full = train(components, dataset, tmp_path / "full")
    checkpoint = latest_checkpoint(tmp_path / "full")
    assert checkpoint is not None and 0 < checkpoint.step < 3072
    assert (checkpoint.path / "replay_buffer.pkl").exists()
    resumed = []
    for name in ("a", "b"):
        shutil.copytree(tmp_path / "full" / "checkpoints", tmp_path / name / "checkpoints")
        resumed.append(train(components, dataset, tmp_path / name, resume=True))
    for result in resumed:
        assert 3072 <= result.num_timesteps < 3072 + 4 * 8  # DQN: train_freq 4 x 8 envs
    assert resumed[0].num_timesteps == full.num_timesteps
    for x, y in zip(_params(resumed[0].model), _params(resumed[1].model), strict=True):
        np.testing.assert_array_equal(x, y)
    # the replay buffer carried over: it holds the steps before the checkpoint as well
    assert resumed[0].model._n_updates == full.model._n_updates


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

    done = run_cli(f"resume={run.info.run_id}", f"hydra.run.dir={tmp_path / 'second'}")
    assert done.returncode == 0, done.stderr[-3000:]
    (after,) = _runs(mlflow_uri)  # the same run, no new one
    assert after.info.run_id == run.info.run_id and after.info.status == "FINISHED"
    assert "resuming run" in done.stdout + done.stderr
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
    cfg = compose_cfg("agent=a2c", "task=train", f"model={tmp_path / 'a' / 'model.zip'}")
    second = execute(cfg, output_dir=tmp_path / "b")
    assert second["train/total_timesteps"] >= first["train/total_timesteps"] + 2048
