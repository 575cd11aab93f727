"""End to end through the launcher: debug pipeline, determinism, honest MLflow status, tasks."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import numpy as np
import pytest
from conftest import ROOT, SHARED_DATA, run_cli
from hydra import compose, initialize_config_dir

from cryptotrade.config import CONF_DIR, register_configs
from cryptotrade.errors import ModelError
from cryptotrade.run import execute

register_configs()
METRICS = [
    "total_return",
    "cagr",
    "volatility",
    "sharpe",
    "sortino",
    "calmar",
    "max_drawdown",
    "max_drawdown_duration",
    "num_trades",
    "win_rate",
    "profit_factor",
    "expectancy",
    "avg_holding_bars",
    "exposure",
    "turnover",
    "fees_paid",
    "funding_paid",
    "liquidations",
    "gross_pnl",
]
REQUIRED = [
    *(f"test/{m}" for m in METRICS),
    *(f"baseline/{b}/total_return" for b in ("buy_hold", "flat", "random", "oracle")),
    "baseline/random/total_return/std",
    "test/return_vs_oracle",
    "test/excess_vs_buy_hold",
]


def _runs(uri: str, experiment: str = "cryptotrade"):
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    return client.search_runs([exp.experiment_id]) if exp else []


def _execute(tmp_path, *overrides: str) -> dict[str, float]:
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["debug=default", *overrides])
    return execute(cfg, output_dir=tmp_path / "out", choices={"agent": "ppo"})


@pytest.mark.slow
def test_debug_pipeline_end_to_end_logs_a_finished_run(mlflow_uri):
    proc = run_cli("debug=default")
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = _runs(mlflow_uri)
    assert run.info.status == "FINISHED"
    for key in REQUIRED:
        assert key in run.data.metrics, key
    assert any(k.startswith("train/") for k in run.data.metrics)
    assert any(k.startswith("test/regime/") for k in run.data.metrics)  # synthetic: labelled
    tags = run.data.tags
    assert tags["task"] == "pipeline"
    assert tags["git_commit"] != ""
    assert tags["overrides"] == "debug=default"
    assert len(tags["data_fingerprint"]) == 16
    assert len(tags["data_hash"]) == 16
    assert tags["class/agent"] == "stable_baselines3.PPO"
    assert not [k for k in run.data.params if k.rsplit(".", 1)[-1].startswith("_")], "Hydra keys"
    client = mlflow.MlflowClient(mlflow_uri)
    top = {f.path for f in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "model", "test", "data"} <= top
    test_files = {f.path for f in client.list_artifacts(run.info.run_id, "test")}
    assert {"test/report.html", "test/equity.csv", "test/trades.csv", "test/plots"} <= test_files
    plots = {f.path for f in client.list_artifacts(run.info.run_id, "test/plots")}
    assert "test/plots/equity.png" in plots and len(plots) == 5
    assert "== test: agent vs baselines ==" in proc.stdout and "oracle" in proc.stdout
    assert "MLflow run" in proc.stderr + proc.stdout
    # quiet: the terminal ends with the table and a verdict; no library notices, no bars, no
    # metric dump (every metric is in summary/metrics.json)
    assert proc.stdout.strip().splitlines()[-1].startswith("verdict: agent ")
    output = proc.stdout + proc.stderr
    for noise in ("Warning", "CloudPickle", "Downloading artifacts", "Creating initial MLflow"):
        assert noise not in output, noise
    assert "val/sortino_per_bar" not in output
    summary = client.download_artifacts(run.info.run_id, "summary/metrics.json")
    logged = json.loads(Path(summary).read_text())["metrics"]
    assert set(REQUIRED) <= set(logged) and logged["test/sharpe"] == run.data.metrics["test/sharpe"]
    # the policy is a logged (registrable) MLflow model that acts on observations
    (logged,) = client.search_logged_models(
        experiment_ids=[run.info.experiment_id],
        filter_string=f"source_run_id = '{run.info.run_id}'",
    )
    policy = mlflow.pyfunc.load_model(logged.model_uri)
    shape = policy.unwrap_python_model().model.observation_space.shape
    actions = policy.predict(np.zeros((4, *shape), dtype=np.float32))
    assert actions.shape == (4,) and set(actions.tolist()) <= {0, 1, 2}

    # evaluating it as another agent fails before any run, naming the fix
    proc = run_cli(
        "debug=default", "task=evaluate", "agent=dqn", f"model=runs:/{run.info.run_id}/model"
    )
    assert proc.returncode != 0
    assert "was trained by stable_baselines3.PPO but agent is stable_baselines3.DQN" in proc.stderr
    assert len(_runs(mlflow_uri)) == 1

    # task=evaluate needs nothing but the model URI: data, features and env come from the run
    proc = run_cli("task=evaluate", f"model=runs:/{run.info.run_id}/model")
    assert proc.returncode == 0, proc.stderr[-3000:]
    evaluated = next(r for r in _runs(mlflow_uri) if r.data.tags["task"] == "evaluate")
    assert evaluated.info.status == "FINISHED"
    for key in REQUIRED:
        if key.startswith(("test/", "baseline/buy_hold/", "baseline/oracle/")):
            assert evaluated.data.metrics[key] == pytest.approx(run.data.metrics[key]), key

    # an override that changes the observation is refused with the cause named
    proc = run_cli("task=evaluate", "env.window=7", f"model=runs:/{run.info.run_id}/model")
    assert proc.returncode != 0
    assert "expects observations of shape" in proc.stderr and "env.window=7" in proc.stderr


@pytest.mark.slow
def test_same_seed_same_metrics(tmp_path, mlflow_uri):
    first = _execute(tmp_path, "seed=3")
    second = _execute(tmp_path, "seed=3")
    assert first == second
    runs = _runs(mlflow_uri)
    assert len(runs) == 2 and all(r.info.status == "FINISHED" for r in runs)


def test_run_that_raises_ends_failed(tmp_path, mlflow_store):
    with pytest.raises(ModelError, match=r"model\.zip"):
        _execute(tmp_path, "task=evaluate", f"model={tmp_path / 'missing.zip'}")
    (run,) = _runs(mlflow_store)
    assert run.info.status == "FAILED"
    client = mlflow.MlflowClient(mlflow_store)
    assert "error" in {f.path for f in client.list_artifacts(run.info.run_id)}


@pytest.mark.slow
def test_sigterm_ends_the_run_killed(mlflow_uri):
    # create the store before the child process uses it
    mlflow.MlflowClient(mlflow_uri).search_experiments()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cryptotrade.run",
            "debug=default",
            "train.total_timesteps=10000000",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 240
        while time.time() < deadline:
            runs = _runs(mlflow_uri)
            if runs and any(k.startswith("train/") for k in runs[0].data.metrics):
                break
            time.sleep(1)
        else:
            pytest.fail("training never started")
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    finally:
        proc.kill()
    (run,) = _runs(mlflow_uri)
    assert run.info.status == "KILLED"
    assert proc.returncode != 0


@pytest.mark.slow
def test_task_data_prints_the_summary(mlflow_uri):
    proc = run_cli("debug=default", "task=data")
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = _runs(mlflow_uri)
    assert run.info.status == "FINISHED"
    assert run.data.metrics["data/train_rows"] > 0


@pytest.mark.slow
def test_multirun_makes_one_run_per_job(mlflow_uri):
    proc = run_cli("-m", "debug=default", "seed=0,1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = _runs(mlflow_uri)
    jobs = [r for r in runs if r.data.tags.get("sweep_role") != "parent"]
    assert sorted(r.data.params["seed"] for r in jobs) == ["0", "1"]
    assert len(runs) == len(jobs) + 1, "one parent run groups the sweep"
    assert all(r.info.status == "FINISHED" for r in runs)


@pytest.mark.slow
def test_task_check_passes_on_shipped_features_and_catches_a_planted_leak(mlflow_uri):
    proc = run_cli("debug=default", "task=check")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert ": OK" in proc.stdout
    leak = "+features.indicators.leak={kind: cryptotrade.data.leakage.lookahead_canary}"
    proc = run_cli("debug=default", "task=check", leak)
    assert proc.returncode != 0
    assert "LeakageError" in proc.stderr
    assert "leak: row <= " in proc.stderr  # names the offending column and where it failed
    statuses = sorted(r.info.status for r in _runs(mlflow_uri))
    assert statuses == ["FAILED", "FINISHED"]


@pytest.mark.slow
@pytest.mark.parametrize("vectorized", ["true", "false"])
def test_reward_components_reach_mlflow(tmp_path, mlflow_uri, vectorized):
    _execute(
        tmp_path,
        f"env.vectorized={vectorized}",
        "env.episode_length=64",
        "env.n_envs=2",
        "agent.n_steps=128",
        "agent.batch_size=64",
    )
    (run,) = _runs(mlflow_uri)
    logged = {k for k in run.data.metrics if k.startswith("train/episode_reward/")}
    assert {"train/episode_reward/pnl", "train/episode_reward/drawdown"} <= logged


@pytest.mark.slow
@pytest.mark.parametrize("option", ["file", "ticks"])
def test_debug_runs_any_data_option_on_its_last_bars(tmp_path, mlflow_uri, option):
    if not SHARED_DATA.exists():
        pytest.skip(f"{SHARED_DATA} (the real exchange data) is not beside the project")
    metrics = _execute(tmp_path, f"data={option}", "task=data")
    (run,) = _runs(mlflow_uri)
    assert run.info.status == "FINISHED"
    total = sum(metrics[f"data/{s}_rows"] for s in ("train", "val", "test"))
    assert 0 < total <= 4000  # debug keeps the last data.max_bars bars, minus the warm-up


@pytest.mark.slow
def test_dqn_pipeline_trains_and_backtests(tmp_path, mlflow_uri):
    metrics = _execute(tmp_path, "agent=dqn", "agent.learning_starts=64", "agent.buffer_size=1000")
    for key in REQUIRED:
        assert key in metrics
    (run,) = _runs(mlflow_uri)
    assert run.data.tags["class/agent"] == "stable_baselines3.DQN"
    assert "train/loss" in run.data.metrics


@pytest.mark.parametrize(("end", "cached"), [("2025-01-01", True), (None, False)])
def test_open_ended_download_never_reuses_a_cached_dataset(monkeypatch, end, cached):
    import cryptotrade.data.dataset as dataset_module
    from cryptotrade.components import build
    from cryptotrade.optimize import objective

    seen = {}

    class Seen(Exception):
        """Stops prepare_data once build_dataset has been called: nothing is downloaded."""

    def build_dataset(spec, features, **kw):
        seen.update(kw)
        raise Seen

    monkeypatch.setattr(dataset_module, "build_dataset", build_dataset)
    monkeypatch.setattr(objective.tracking, "active_run_id", lambda: None)
    end_override = f"data.source.end={end}" if end else "data.source.end=null"
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["data=binance", end_override])
    with pytest.raises(Seen):
        objective.prepare_data(build(cfg, agent=False))
    assert (seen["cache_dir"] is not None) is cached
