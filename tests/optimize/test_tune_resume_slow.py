"""Tune trials resume from their checkpoints: a trial whose worker is SIGKILLed after its first
checkpoint is retried from it, and an interrupted search continued with ``Tuner.restore`` resumes
its unfinished trials from theirs, each in the same MLflow child run.

Slow: Ray plus a few tiny PPO trainings and the winner's final run. The driver runs in this
process so that a Tune callback (driver side) can kill a trial's worker, or interrupt the
search, at a known point: right after a trial's first checkpoint is registered.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import mlflow
import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID
from ray import tune

from cryptotrade.config import CONF_DIR, register_configs
from cryptotrade.optimize.derive import ConfigDeriver
from cryptotrade.optimize.tune import CloseRuns, TuneSearch
from cryptotrade.optimize.tune_trial import RUN_ID, TAG_RESUMED

pytestmark = pytest.mark.slow
register_configs()
# PPO rollouts of 32 x 4 envs: validations (and checkpoints) at 512 and 1,024 env steps
TINY = (
    "debug=default", "optimizer=tune", "ray.num_cpus=2", "optimizer.scheduler=fifo",
    "agent.n_steps=32", "agent.batch_size=64", "agent.n_epochs=1", "train.checkpoint_freq=0",
    "train.total_timesteps=1024", "train.eval_freq=512",
    "evaluation.baselines=[buy_hold,flat,random]",
    "evaluation.plots=false", "evaluation.report=false", "tracking.log_model=false",
)  # fmt: skip


def compose_cfg(tmp_path: Path, *overrides: str):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose(
            "config",
            overrides=[
                *TINY,
                f"optimizer.storage_dir={tmp_path / 'tune'}",
                f"paths.output_dir={tmp_path / 'out'}",
                *overrides,
            ],
        )


class AfterFirstCheckpoint(tune.Callback):
    """Once per test (a marker file, as Tune restores its callbacks with the experiment): when
    a trial's first checkpoint is registered, SIGKILL its worker or interrupt the driver."""

    def __init__(self, marker: Path, action: str) -> None:
        self.marker = marker
        self.action = action

    def on_trial_save(self, iteration: int, trials: list, trial, **info) -> None:
        if self.marker.exists():
            return
        self.marker.write_text(trial.trial_id)
        if self.action == "kill":
            os.kill(int(trial.last_result["pid"]), signal.SIGKILL)
        else:  # Ctrl-C: Tune saves the experiment state and stops
            os.kill(os.getpid(), signal.SIGINT)


def _search(cfg, monkeypatch, callback: AfterFirstCheckpoint | None) -> TuneSearch:
    if callback is not None:
        monkeypatch.setattr(TuneSearch, "_callbacks", lambda self: [CloseRuns(), callback])
    search = instantiate(cfg.optimizer)
    assert isinstance(search, TuneSearch)
    return search


def _trial_reports(tmp_path: Path, trial_id: str) -> list[dict]:
    """Every result the trial reported, in order (Tune's ``result.json`` of the trial)."""
    import json

    (path,) = [p for p in (tmp_path / "tune").rglob("result.json") if trial_id in str(p)]
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_a_killed_trial_is_retried_from_its_checkpoint_in_the_same_run(
    tmp_path, mlflow_uri, monkeypatch
):
    cfg = compose_cfg(tmp_path, "optimizer.num_samples=1", "optimizer.max_failures=1")
    marker = tmp_path / "killed"
    search = _search(cfg, monkeypatch, AfterFirstCheckpoint(marker, "kill"))
    with mlflow.start_run() as parent:
        metrics = search.run(ConfigDeriver(cfg), tmp_path / "out")
    assert "search/best_fitness" in metrics and "test/sharpe" in metrics
    trial_id = marker.read_text()
    reports = _trial_reports(tmp_path, trial_id)
    # resumed at 512: had it restarted it would have reported 512 twice
    assert [r["timesteps"] for r in reports] == [512, 1024]
    assert [r["training_iteration"] for r in reports] == [1, 2]
    assert len({r["pid"] for r in reports}) == 2, "the second report came from a new worker"
    client = mlflow.MlflowClient(mlflow_uri)
    children = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{parent.info.run_id}'",
    )
    (child,) = children  # the retry logged into the same child run
    assert child.info.run_id == reports[0][RUN_ID] == reports[1][RUN_ID]
    assert child.info.status == "FINISHED"
    assert child.data.tags[TAG_RESUMED] == "512"
    history = client.get_metric_history(child.info.run_id, "val_curve/sharpe")
    assert sorted({m.step for m in history}) == [512, 1024]
    assert not any(k.startswith("test/") for k in child.data.metrics), "no test split"


def test_restore_of_an_interrupted_search_resumes_unfinished_trials(
    tmp_path, mlflow_uri, monkeypatch
):
    cfg = compose_cfg(tmp_path, "optimizer.num_samples=2", "optimizer.max_concurrent=2")
    marker = tmp_path / "interrupted"
    search = _search(cfg, monkeypatch, AfterFirstCheckpoint(marker, "interrupt"))
    interrupted = pytest.raises(KeyboardInterrupt, match=r"optimizer\.resume=true")
    with interrupted, mlflow.start_run(run_name="first"):
        search.run(ConfigDeriver(cfg), tmp_path / "out")
    trial_id = marker.read_text()
    assert [r["timesteps"] for r in _trial_reports(tmp_path, trial_id)] == [512]

    resumed = compose_cfg(tmp_path, "optimizer.num_samples=2", "optimizer.resume=true")
    with mlflow.start_run(run_name="second") as parent:
        metrics = _search(resumed, monkeypatch, None).run(ConfigDeriver(resumed), tmp_path / "out2")
    assert "search/best_fitness" in metrics
    reports = _trial_reports(tmp_path, trial_id)
    assert [r["timesteps"] for r in reports] == [512, 1024], "continued, not restarted"
    assert [r["training_iteration"] for r in reports] == [1, 2]
    client = mlflow.MlflowClient(mlflow_uri)
    child = client.get_run(reports[0][RUN_ID])
    assert reports[1][RUN_ID] == child.info.run_id, "the same child run"
    assert child.info.status == "FINISHED"
    assert child.data.tags[TAG_RESUMED] == "512"
    assert child.data.tags[MLFLOW_PARENT_RUN_ID] == parent.info.run_id, "under the new parent"
    finished = client.get_run(parent.info.run_id)
    assert finished.data.metrics["tune/trials"] == 2
