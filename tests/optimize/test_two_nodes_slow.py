"""The cluster path end to end on this machine: a real two-node Ray cluster (a head started with
``ray start --head`` and a second node joined with ``ray start --address``, each with its own
temp dir, one CPU each) plus an MLflow tracking server on 127.0.0.1, a GA and a Tune search run
against them through the launcher (``ray.address=<head>:<port>``,
``tracking.uri=http://127.0.0.1:<port>``). Checks that candidates ran on both nodes (their
``search/ray_node`` tags name both raylets), that every run and artifact is on the server, and
that exactly what the test started is stopped (never ``ray stop``: it stops every Ray of the
machine; the processes of each temp dir and the server's process group are ended by pid).

Slow: two Ray nodes, a tracking server and six tiny trainings (two candidates and a winner per
search).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest
from optimize.test_ray_cluster_slow import RAY, _free_port, _ours, _psutil, _stop

from cryptotrade.optimize.trial import TAG_RAY_NODE

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
CLI_TIMEOUT = 3600  # minutes on a quiet machine, far more on shared cores
# PPO rollouts of 32 x 4 envs: two validations in 1,024 steps; no plots or HTML report
TINY = (
    "debug=default", "agent.n_steps=32", "agent.batch_size=64", "agent.n_epochs=1",
    "train.total_timesteps=1024", "train.eval_freq=512", "train.checkpoint_freq=0",
    "evaluation.baselines=[buy_hold,flat]", "evaluation.plots=false", "evaluation.report=false",
)  # fmt: skip


@dataclass(frozen=True)
class Cluster:
    """What the fixture started: the head's GCS address, the tracking server's URI and its
    artifact folder, each node's id, and the environment that holds the cluster's token."""

    address: str
    uri: str
    artifacts: Path
    node_ids: dict[str, str]
    env: dict[str, str]


def _node_id(temp_dir: str) -> str:
    """The node id of the raylet started with ``temp_dir`` (its ``--node_id`` argument)."""
    for proc in _ours(temp_dir):
        for arg in proc.cmdline():
            if proc.name() == "raylet" and arg.startswith("--node_id="):
                return str(arg.split("=", 1)[1])
    raise AssertionError(f"no raylet runs with {temp_dir}")


def _ray_start(args: list[str], env: dict[str, str]) -> None:
    proc = subprocess.run(
        [str(RAY), *args, "--disable-usage-stats"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, f"ray {' '.join(args)}:\n{proc.stderr[-3000:]}"


def _stop_server(server: subprocess.Popen) -> None:
    """End the tracking server's process group (the server and its workers, nothing else)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=30)


def _group(pgid: int) -> list:
    psutil = _psutil()
    found = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):  # ended meanwhile
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
    return found


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("cluster")
    head_dir = tempfile.mkdtemp(prefix="rayh", dir="/tmp")  # short: Ray's socket paths
    node_dir = tempfile.mkdtemp(prefix="rayn", dir="/tmp")
    token = tmp / "auth_token"
    token.write_text("ct" * 16)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "MLFLOW_"))}
    env |= {"RAY_AUTH_TOKEN_PATH": str(token), "PYTHONPATH": str(ROOT)}
    port, mlflow_port = _free_port(), _free_port()
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1",
            "--port", str(mlflow_port), "--backend-store-uri", f"sqlite:///{tmp / 'server.db'}",
            "--artifacts-destination", str(tmp / "artifacts"), "--workers", "1",
        ],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp, env=env,
        start_new_session=True,  # its own process group: stopped as one, nothing else
    )  # fmt: skip
    try:
        _ray_start(
            ["start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}",
             f"--temp-dir={head_dir}", "--num-cpus=1", "--include-dashboard=false"],
            env,
        )  # fmt: skip
        # a joining node needs the head's token and says so (RAY_AUTH_MODE is not detected)
        _ray_start(
            ["start", f"--address=127.0.0.1:{port}", "--node-ip-address=127.0.0.1",
             f"--temp-dir={node_dir}", "--num-cpus=1"],
            env | {"RAY_AUTH_MODE": "token"},
        )  # fmt: skip
        uri = f"http://127.0.0.1:{mlflow_port}"
        deadline = time.monotonic() + 180
        while True:
            try:
                mlflow.MlflowClient(uri).search_experiments()
                break
            except Exception:
                assert time.monotonic() < deadline, "mlflow server did not start"
                time.sleep(2)
        node_ids = {"head": _node_id(head_dir), "node": _node_id(node_dir)}
        yield Cluster(f"127.0.0.1:{port}", uri, tmp / "artifacts", node_ids, env)
    finally:
        _stop(node_dir)
        _stop(head_dir)
        _stop_server(server)
        time.sleep(1)
        left = [p.name() for d in (head_dir, node_dir) for p in _ours(d)]
        left += [p.name() for p in _group(server.pid)]
        shutil.rmtree(head_dir, ignore_errors=True)
        shutil.rmtree(node_dir, ignore_errors=True)
        assert not left, f"still running after the test: {left}"


def _run(cluster: Cluster, tmp_path: Path, *overrides: str) -> None:
    proc = subprocess.run(
        [
            sys.executable, "-m", "cryptotrade.run", *TINY, *overrides,
            f"ray.address={cluster.address}", f"tracking.uri={cluster.uri}",
            f"paths.root={tmp_path}", f"paths.output_dir={tmp_path / 'out'}",
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=CLI_TIMEOUT, env=cluster.env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]


def _check_search(cluster: Cluster, tmp_path: Path, kind: str) -> None:
    """The search's parent and children are on the server, with their artifacts, and the
    candidates ran on both nodes."""
    client = mlflow.MlflowClient(cluster.uri)
    experiment = client.get_experiment_by_name("cryptotrade")
    runs = client.search_runs([experiment.experiment_id], f"tags.`search/kind` = '{kind}'")
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert parent.info.status == "FINISHED" and len(children) == 2
    assert all(c.info.status == "FINISHED" for c in children), [c.info for c in children]
    assert {c.data.tags[TAG_RAY_NODE] for c in children} == set(cluster.node_ids.values()), (
        "one candidate on each node"
    )
    for run in (parent, *children):  # every artifact went through the server to its folder
        assert run.info.artifact_uri.startswith("mlflow-artifacts:/"), run.info.artifact_uri
        stored = list(cluster.artifacts.rglob(f"*{run.info.run_id}*"))
        assert stored, f"no artifacts of run {run.info.run_id} in the server's folder"
    top = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"best", "model", "config.yaml"} <= top
    for child in children:
        assert "val" in {a.path for a in client.list_artifacts(child.info.run_id)}
        assert "val/sharpe" in child.data.metrics and "search/fitness" in child.data.metrics
    assert not list(tmp_path.rglob("mlflow.db")) and not list(tmp_path.rglob("mlruns")), (
        "nothing was logged to a local store"
    )


def test_a_ga_runs_its_candidates_on_both_nodes_and_logs_to_the_server(cluster, tmp_path):
    _run(
        cluster, tmp_path, "optimizer=ga", "optimizer.population=2", "optimizer.generations=1",
        f"optimizer.checkpoint_dir={tmp_path / 'ckpt'}",
        f"optimizer.column_cache={tmp_path / 'columns'}",
    )  # fmt: skip
    _check_search(cluster, tmp_path, "ga")


def test_tune_runs_its_trials_on_both_nodes_and_logs_to_the_server(cluster, tmp_path):
    _run(
        cluster, tmp_path, "optimizer=tune", "optimizer.num_samples=2",
        "optimizer.max_concurrent=2", "optimizer.scheduler=fifo",
        f"optimizer.storage_dir={tmp_path / 'tune'}",
        f"optimizer.column_cache={tmp_path / 'columns'}",
    )  # fmt: skip
    _check_search(cluster, tmp_path, "tune")
