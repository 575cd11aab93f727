"""Shared fixtures and helpers: an isolated MLflow store, Hydra composition of the real config
tree (its files parsed once per session), the CLI in a subprocess, and one episode loop."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# `make test` runs one xdist worker per core: a second torch/OpenMP (and BLAS) thread per worker
# only oversubscribes the cores, and its spin-waits cost ~12 % of the agents tests' CPU. Set
# before any test module imports torch; a value from the environment wins.
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def _memoise_config_files() -> None:
    """Parse each config file of ``conf/`` (and each registered schema node) once per session.

    A Hydra compose reads and parses every YAML file of its defaults list again, about half of
    its 0.3 CPU-s, and the suite composes several hundred times. This memoises Hydra's
    ``ConfigRepository.load_config`` for the project's own config tree, Hydra's package configs
    and the ConfigStore schemas, and hands out a deep copy each time, so every compose still runs
    Hydra's defaults-list, override and merge logic on fresh objects. A file's modification time
    and size are part of the key (an edited file is read again); config folders other than
    ``conf/`` (a test's ``tmp_path``) are always read from disk. Subprocesses (the CLI tests)
    compose without it.
    """
    import copy

    from hydra._internal.config_repository import ConfigRepository
    from hydra.core.object_type import ObjectType

    conf_dir = str(ROOT / "conf")
    load = ConfigRepository.load_config
    memo: dict[tuple, object] = {}

    def load_config(self: ConfigRepository, config_path: str):  # type: ignore[no-untyped-def]
        source = self._find_object_source(config_path=config_path, object_type=ObjectType.CONFIG)
        if source is None:
            return load(self, config_path)
        scheme = source.scheme()
        if scheme == "file":
            if source.path != conf_dir:
                return load(self, config_path)
            file = Path(conf_dir) / (
                config_path if config_path.endswith(".yaml") else f"{config_path}.yaml"
            )
            stat = file.stat()
            stamp: tuple = (stat.st_mtime_ns, stat.st_size)
        elif scheme in ("pkg", "structured"):
            stamp = ()
        else:
            return load(self, config_path)
        key = (scheme, source.provider, source.path, config_path, *stamp)
        if key not in memo:
            memo[key] = load(self, config_path)
        return copy.deepcopy(memo[key])

    ConfigRepository.load_config = load_config  # type: ignore[method-assign]


_memoise_config_files()


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


@dataclass
class Episode:
    """What :func:`run_episode` saw: each step's info and reward, and how the episode ended."""

    infos: list[dict[str, Any]]
    rewards: list[float]
    terminated: bool
    truncated: bool

    @property
    def info(self) -> dict[str, Any]:
        """The last step's info."""
        return self.infos[-1]

    @property
    def steps(self) -> int:
        """Steps taken."""
        return len(self.infos)


def run_episode(env: Any, policy: Any, *, seed: int | None = None) -> Episode:
    """Reset ``env`` with ``seed`` and step it until the episode terminates or truncates.

    ``policy`` is a fixed action, or ``policy(step, obs)`` -> action with ``step`` counting from
    1 and ``obs`` the latest observation. The one episode loop of the env tests.
    """
    obs, _ = env.reset(seed=seed)
    act = policy if callable(policy) else (lambda step, obs: policy)
    infos: list[dict[str, Any]] = []
    rewards: list[float] = []
    while True:
        obs, reward, terminated, truncated, info = env.step(act(len(infos) + 1, obs))
        infos.append(info)
        rewards.append(float(reward))
        if terminated or truncated:
            return Episode(infos, rewards, bool(terminated), bool(truncated))


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
