"""Shared fixtures: an isolated MLflow store and Hydra composition of the real config tree."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _run_optional(request: pytest.FixtureRequest) -> Iterator[None]:
    """Tests call the library (training, evaluation, searches) without the launcher's MLflow
    run, so logging is allowed to drop its values here, explicitly
    (:func:`cryptotrade.launch.tracking.run_optional`); a test that opens a run logs to it as
    usual. Tests marked ``run_required`` see the production rule: logging with no run raises."""
    if request.node.get_closest_marker("run_required"):
        yield
        return
    from cryptotrade.launch import tracking

    with tracking.run_optional():
        yield


@pytest.fixture
def mlflow_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh SQLite MLflow store for one test (also for subprocesses via the environment)."""
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    # an earlier in-process run's mlflow.set_tracking_uri would win over the environment
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    yield uri
    mlflow.set_tracking_uri(previous)


@pytest.fixture(scope="session")
def _initialised_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with MLflow's tables created once (creating them takes seconds per store)."""
    import mlflow

    db = tmp_path_factory.mktemp("template") / "mlflow.db"
    mlflow.MlflowClient(f"sqlite:///{db}").search_experiments()
    return db


@pytest.fixture
def mlflow_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _initialised_store: Path
) -> Iterator[str]:
    """Like ``mlflow_uri`` but the store already exists (a copy of an initialised one): for
    tests that need a store, not the absence of one."""
    import shutil

    shutil.copy(_initialised_store, tmp_path / "mlflow.db")
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    # an earlier in-process run's mlflow.set_tracking_uri would win over the environment
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    yield uri
    mlflow.set_tracking_uri(previous)


def run_cli(*overrides: str, env: dict[str, str] | None = None, timeout: float = 600):
    """Run ``python -m cryptotrade.run`` in a subprocess; returns the CompletedProcess."""
    import subprocess

    return subprocess.run(
        [sys.executable, "-m", "cryptotrade.run", *overrides],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
