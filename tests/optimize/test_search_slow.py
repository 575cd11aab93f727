"""End to end through the launcher: a tiny GA on Ray workers, Tune with ASHA, and Ray workers
logging to a real ``mlflow server``. Slow: each trains several agents at debug budgets."""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
from conftest import ROOT, run_cli

pytestmark = pytest.mark.slow
# a search trains several agents: minutes on a quiet machine, far more on shared cores
CLI_TIMEOUT = 3600


def _children(uri: str, parent) -> list:
    client = mlflow.MlflowClient(uri)
    return client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
    )


def _parent(uri: str):
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name("cryptotrade")
    runs = client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    return parent


def _check_parent(uri: str, parent, kind: str) -> list:
    assert parent.info.status == "FINISHED"
    metrics = parent.data.metrics
    assert "search/best_fitness" in metrics
    report = Path(
        mlflow.artifacts.download_artifacts(
            run_id=parent.info.run_id, artifact_path="search/report.txt", tracking_uri=uri
        )
    ).read_text()  # from the run's own store (load_text would read the default one)
    assert "deflated Sharpe ratio" in report
    for key in ("test/sharpe", "test/total_return", "baseline/buy_hold/total_return"):
        assert key in metrics, key
    top = {a.path for a in mlflow.MlflowClient(uri).list_artifacts(parent.info.run_id)}
    assert {"best", "model", "test"} <= top
    best = {a.path for a in mlflow.MlflowClient(uri).list_artifacts(parent.info.run_id, "best")}
    assert {"best/best_config.yaml", "best/point.json"} <= best
    children = _children(uri, parent)
    # multiple-testing statistics of every search, explained in its report; PBO compares
    # candidates' validation curves: undefined (NaN) when fewer than two finished with one
    # (ASHA may stop all but the winner before their final selection)
    finished = sum(c.info.status == "FINISHED" for c in children)
    assert 0.0 <= metrics["search/deflated_sharpe"] <= 1.0 or finished < 2
    if finished >= 2:
        assert 0.0 <= metrics["search/pbo"] <= 1.0
    else:
        assert math.isnan(metrics["search/pbo"])
    for child in children:
        assert child.data.tags["search/kind"] == kind
        assert not any(k.startswith("test/") for k in child.data.metrics), "no test split"
        assert any(k.startswith("val/") for k in child.data.metrics) or (
            child.info.status != "FINISHED"
        )
    return children


def test_tiny_ga_on_ray_workers_then_the_winner_reruns_from_its_yaml(tmp_path, mlflow_uri):
    proc = run_cli(
        "debug=default", "optimizer=ga", "optimizer.population=4", "optimizer.generations=2",
        "ray.num_cpus=2", f"optimizer.checkpoint_dir={tmp_path / 'ckpt'}",
        f"optimizer.column_cache={tmp_path / 'columns'}", f"paths.output_dir={tmp_path / 'out'}",
        timeout=CLI_TIMEOUT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    parent = _parent(mlflow_uri)
    children = _check_parent(mlflow_uri, parent, "ga")
    assert 4 <= len(children) <= 8
    assert {c.data.tags["search/generation"] for c in children} <= {"0", "1"}
    assert all(c.info.status == "FINISHED" for c in children)
    metrics = mlflow.MlflowClient(mlflow_uri).get_metric_history(
        parent.info.run_id, "ga/fitness_max"
    )
    assert [m.step for m in metrics] == [0, 1]
    assert metrics[1].value >= metrics[0].value, "elitism keeps the best"
    assert max(c.data.metrics["search/fitness"] for c in children) == pytest.approx(
        parent.data.metrics["search/best_fitness"]
    )
    assert list((tmp_path / "columns").glob("*.parquet")), "indicator columns were cached"
    # every candidate logged its start-up (optimize.warm); each of the 2 Ray workers ran the
    # setup hook before its first candidate, and later candidates found it warm
    fresh = [c for c in children if c.data.tags["search/worker_fresh"] == "true"]
    warm = [c for c in children if c.data.tags["search/worker_fresh"] == "false"]
    assert 1 <= len(fresh) <= 2 and len(fresh) + len(warm) == len(children)
    assert all(c.data.metrics["time/worker_warmup_s"] > 0 for c in fresh)
    for child in children:
        metrics = child.data.metrics
        assert 0 <= metrics["time/dispatch_s"] <= metrics["time/startup_s"]
    # generous: seconds on an idle machine (experiments/benchmarks: search), minutes here only
    # if the shared cores are swamped; a cold worker (imports, kernels) would exceed it
    assert warm and max(c.data.metrics["time/startup_s"] for c in warm) < 120

    # the winner's YAML is ready to run and reproduces the parent's test metrics
    (best,) = (tmp_path / "out").rglob("best_config.yaml")
    proc = run_cli(
        "--config-dir", str(best.parent), "--config-name", "best_config", timeout=CLI_TIMEOUT
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    client = mlflow.MlflowClient(mlflow_uri)
    runs = client.search_runs([parent.info.experiment_id], order_by=["attributes.start_time DESC"])
    rerun = runs[0]
    assert rerun.info.run_id != parent.info.run_id
    assert rerun.data.metrics["test/sharpe"] == pytest.approx(parent.data.metrics["test/sharpe"])


def test_tune_three_trials_with_asha(tmp_path, mlflow_uri):
    proc = run_cli(
        "debug=default", "optimizer=tune", "optimizer.num_samples=3", "ray.num_cpus=2",
        f"optimizer.storage_dir={tmp_path / 'tune'}", f"paths.output_dir={tmp_path / 'out'}",
        timeout=CLI_TIMEOUT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    parent = _parent(mlflow_uri)
    # early_stopped marks exactly the trials ASHA stopped with training left: the KILLED ones
    for child in _children(mlflow_uri, parent):
        early = child.data.tags.get("search/early_stopped") == "true"
        assert early == (child.info.status == "KILLED"), (child.info.status, child.data.tags)
    children = _check_parent(mlflow_uri, parent, "tune")
    assert len(children) >= 3
    assert parent.data.metrics["tune/trials"] == 3
    assert all(c.info.status in ("FINISHED", "KILLED") for c in children)
    finished = [c for c in children if c.info.status == "FINISHED"]
    # a Tune child carries its fitness (its selected model's val/sharpe), like a GA child, and
    # trials with different hyperparameters are ranked on trained networks: different scores
    for child in finished:
        assert child.data.metrics["search/fitness"] == child.data.metrics["val/sharpe"]
    assert len({c.data.metrics["search/fitness"] for c in finished}) == len(finished)
    # every trial logged its start-up; the third trial ran in a reused actor (reuse_actors)
    assert all("time/setup_s" in c.data.metrics for c in children)
    assert "false" in {c.data.tags["search/worker_fresh"] for c in children}
    assert list((tmp_path / "tune").glob("tune-*/experiment_state*.json")), "restorable state"
    # the trial table and the Optuna study of the three trials (what optuna-dashboard opens)
    import json

    import optuna

    folder = Path(
        mlflow.MlflowClient(mlflow_uri).download_artifacts(
            parent.info.run_id, "tune", str(tmp_path)
        )
    )
    table = json.loads((folder / "trials.json").read_text())
    rows = [dict(zip(table["columns"], row, strict=True)) for row in table["data"]]
    assert len(rows) == 3
    assert {r["run_id"] for r in rows} <= {c.info.run_id for c in children}
    storage = f"sqlite:///{folder / 'optuna.db'}"
    (name,) = optuna.get_all_study_names(storage)
    assert len(optuna.load_study(study_name=name, storage=storage).trials) == 3
    assert (folder / "importance.png").exists() or (folder / "importance.txt").exists()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_ga_ray_workers_log_to_a_real_mlflow_server(tmp_path):
    port = _free_port()
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1",
            "--port", str(port), "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
            "--default-artifact-root", str(tmp_path / "artifacts"), "--workers", "1",
        ],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path,
    )  # fmt: skip
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                mlflow.MlflowClient(uri).search_experiments()
                break
            except Exception:
                assert time.monotonic() < deadline, "mlflow server did not start"
                time.sleep(2)
        env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
        proc = subprocess.run(
            [
                sys.executable, "-m", "cryptotrade.run", "debug=default", "optimizer=ga",
                "optimizer.population=2", "optimizer.generations=1", "ray.num_cpus=2",
                f"tracking.uri={uri}", f"optimizer.checkpoint_dir={tmp_path / 'ckpt'}",
                f"paths.output_dir={tmp_path / 'out'}",
            ],
            cwd=ROOT, capture_output=True, text=True, timeout=CLI_TIMEOUT, env=env,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-4000:]
        parent = _parent(uri)
        children = _check_parent(uri, parent, "ga")
        assert len(children) == 2
        assert all(c.info.status == "FINISHED" for c in children)
        assert all("val/sharpe" in c.data.metrics for c in children), "workers logged"
    finally:
        server.terminate()
        server.wait(timeout=30)
