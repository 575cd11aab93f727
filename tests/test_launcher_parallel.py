"""Launchers in parallel: concurrent jobs on one store, distinct folders, stale runs, sweeps
grouped under a parent run, secrets written nowhere, and a real ``mlflow server``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
from conftest import ROOT, run_cli
from hydra import compose, initialize_config_dir

from cryptotrade.config import CONF_DIR, register_configs
from cryptotrade.run import execute

register_configs()
DATA = ["debug=default", "task=data"]  # the lightest task that opens a run


def _runs(uri: str, experiment: str = "cryptotrade"):
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    return client.search_runs([exp.experiment_id]) if exp else []


def _launch(*overrides: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cryptotrade.run", *overrides],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.slow
def test_four_launchers_at_once_on_a_fresh_store_finish_in_distinct_folders(tmp_path, mlflow_uri):
    out = tmp_path / "out"
    procs = [_launch(*DATA, f"seed={i}", f"paths.output_dir={out}") for i in range(4)]
    results = [p.communicate(timeout=900) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [err[-2000:] for _, err in results]
    runs = _runs(mlflow_uri)
    assert len(runs) == 4 and {r.info.status for r in runs} == {"FINISHED"}
    folders = {r.data.tags["output_dir"] for r in runs}
    assert len(folders) == 4, "every job has its own folder"
    for run in runs:
        folder = Path(run.data.tags["output_dir"])
        assert folder.is_relative_to(out)
        assert (folder / "run_id").read_text().strip() == run.info.run_id
        assert (folder / "run.log").exists() and (folder / ".hydra" / "config.yaml").exists()
    assert len({r.info.run_name for r in runs}) == 4


def _compose(*overrides: str):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def _open_run_and_hang(tmp_path: Path, uri: str, resume: str = "") -> subprocess.Popen[bytes]:
    """A process that opens (or resumes) a run, prints its id and hangs."""
    code = (
        "import sys, time; from omegaconf import OmegaConf\n"
        "from cryptotrade.launch import tracking\n"
        "cfg = OmegaConf.create({'paths': {'root': sys.argv[1]}, "
        "'tracking': {'uri': sys.argv[2], 'experiment': 'cryptotrade'}})\n"
        "resume = sys.argv[3] or None\n"
        "with tracking.start_run(cfg, run_name='doomed', tags={}, resume_run_id=resume) as run:\n"
        "    print(run.info.run_id, flush=True); time.sleep(600)\n"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path), uri, resume], stdout=subprocess.PIPE
    )


def _run_id(proc: subprocess.Popen[bytes]) -> str:
    assert proc.stdout is not None
    return proc.stdout.readline().decode().strip()


def test_sigkilled_run_is_failed_by_the_next_launcher_start_unless_resumed(tmp_path, mlflow_store):
    killed, other = (_open_run_and_hang(tmp_path, mlflow_store) for _ in range(2))
    run_id, resumed_id = _run_id(killed), _run_id(other)
    for proc in (killed, other):
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    client = mlflow.MlflowClient(mlflow_store)
    assert client.get_run(run_id).info.status == "RUNNING"  # nothing ended it
    # another process resumes the second run: it is RUNNING again, with that process's pid
    resumer = _open_run_and_hang(tmp_path, mlflow_store, resume=resumed_id)
    try:
        assert _run_id(resumer) == resumed_id
        out = tmp_path / "out"
        execute(_compose(*DATA, f"paths.output_dir={out}"), output_dir=out / "next")
        stale = client.get_run(run_id)
        assert stale.info.status == "FAILED"
        assert "is gone (killed)" in stale.data.tags["mlflow.note.content"]
        assert client.get_run(resumed_id).info.status == "RUNNING"  # spared: it lives
    finally:
        resumer.kill()
        resumer.wait(timeout=60)


@pytest.mark.slow
def test_multirun_2x2_is_one_parent_with_four_named_children(tmp_path, mlflow_uri):
    out = tmp_path / "out"
    proc = run_cli("-m", *DATA, "seed=0,1", "data.split.embargo=0,1", f"paths.output_dir={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = _runs(mlflow_uri)
    (parent,) = [r for r in runs if r.data.tags.get("sweep_role") == "parent"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(runs) == 5 and len(children) == 4
    assert parent.info.status == "FINISHED" and parent.data.tags["jobs_failed"] == "0"
    assert {r.info.status for r in children} == {"FINISHED"}
    assert {r.data.tags["sweep_id"] for r in children} == {parent.data.tags["sweep_id"]}
    assert sorted(r.info.run_name for r in children) == [
        "#0 seed=0 embargo=0",
        "#1 seed=0 embargo=1",
        "#2 seed=1 embargo=0",
        "#3 seed=1 embargo=1",
    ]
    jobs = mlflow.MlflowClient(mlflow_uri).download_artifacts(
        parent.info.run_id, "jobs.json", str(tmp_path)
    )
    assert Path(jobs).read_text().count('"FINISHED"') == 4


@pytest.mark.slow
def test_failed_sweep_job_keeps_its_log_and_the_summary_names_it(tmp_path, mlflow_uri):
    out = tmp_path / "out"
    proc = run_cli("-m", "debug=default", "task=data,evaluate,check", f"paths.output_dir={out}")
    assert proc.returncode == 1
    assert "Error: job #1: task=evaluate needs a trained model" in proc.stderr
    assert "3 jobs, 1 failed" in proc.stderr
    assert "FAILED #1 task=evaluate" in proc.stderr
    (job,) = out.glob("multirun/*/*/1")
    assert "ConfigError" in (job / "error" / "traceback.txt").read_text()
    assert "Traceback" in (job / "run.log").read_text()
    assert '"status": "FAILED"' in (job / "job.json").read_text()
    runs = _runs(mlflow_uri)
    (parent,) = [r for r in runs if r.data.tags.get("sweep_role") == "parent"]
    assert parent.info.status == "FAILED" and parent.data.tags["jobs_failed"] == "1"
    assert sorted(r.info.status for r in runs if r is not parent) == ["FINISHED", "FINISHED"]


@pytest.mark.parametrize("mode", [["-m", "seed=0,1"], []], ids=["multirun", "single"])
def test_secret_override_appears_nowhere_on_disk(tmp_path, mlflow_store, mode):
    """An exchange key given as an override (not the supported env variable) is masked in the
    MLflow store, artifacts, Hydra's files, logs and the terminal, whether the job succeeds or
    (offline) fails."""
    secret = "SEKRET-4242-apikey-value"
    proc = run_cli(
        *mode,
        *DATA,
        "data=binance",
        "data.source.start=2024-01-01",
        "data.source.end=2024-01-02",
        "data.source.max_retries=0",
        "data.source.cache_dir=null",
        f"+data.source.options.apiKey={secret}",
        f"paths.root={tmp_path}",
    )
    assert secret not in proc.stdout + proc.stderr
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "multirun.yaml" for p in files) == bool(mode)
    assert any(p.name == "config.yaml" and p.parent.name == ".hydra" for p in files)
    assert any(p.name == "config.yaml" and "mlartifacts" in p.parts for p in files)
    leaked = [p for p in files if secret.encode() in p.read_bytes()]
    assert not leaked


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_launchers_in_parallel_against_a_real_mlflow_server(tmp_path):
    port = _free_port()
    server = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("mlflow")),
            "server",
            "--backend-store-uri",
            f"sqlite:///{tmp_path / 'server.db'}",
            "--artifacts-destination",
            str(tmp_path / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180
        while time.time() < deadline:
            try:
                mlflow.MlflowClient(uri).search_experiments()
                break
            except Exception:
                time.sleep(1)
        else:
            pytest.fail("mlflow server did not start")
        env = {"MLFLOW_TRACKING_URI": uri}
        out = f"paths.output_dir={tmp_path / 'out'}"
        procs = [_launch(*DATA, f"seed={i}", out, env=env) for i in range(3)]
        results = [p.communicate(timeout=900) for p in procs]
        assert [p.returncode for p in procs] == [0] * 3, [e[-2000:] for _, e in results]
        runs = _runs(uri)
        assert len(runs) == 3 and {r.info.status for r in runs} == {"FINISHED"}
        client = mlflow.MlflowClient(uri)
        assert "config.yaml" in {f.path for f in client.list_artifacts(runs[0].info.run_id)}
    finally:
        server.terminate()
        server.wait(timeout=60)
