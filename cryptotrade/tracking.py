"""MLflow: where the store is, one run per invocation, and honest run status.

Every invocation of the launcher (and every Hydra multirun job) is one MLflow run. The run ends
FINISHED on success, FAILED on an exception (with the traceback as an artifact) and KILLED on
Ctrl-C or SIGTERM; no run is left RUNNING when the process ends.

MLflow is imported lazily so that ``--help`` and config errors answer without loading it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import tempfile
import traceback
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

if TYPE_CHECKING:
    from mlflow.entities import Run

# MLflow limits (mlflow.utils.validation): param values up to 6000 chars, keys up to 250.
MAX_PARAM_VALUE = 6000
MAX_PARAM_KEY = 250
_INVALID_KEY_CHARS = re.compile(r"[^\w\-. /]")


class Terminated(BaseException):
    """Raised in the main thread on SIGTERM so the run can be marked KILLED."""


def tracking_uri(uri: str | None, root: str | Path) -> str:
    """Resolve the store: ``uri``, else ``$MLFLOW_TRACKING_URI``, else ``<root>/mlflow.db``.

    The default is an absolute SQLite path so Hydra's working directory does not move it.
    """
    if uri:
        return uri
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{Path(root).resolve() / 'mlflow.db'}"


def artifact_root(uri: str, root: str | Path) -> str | None:
    """Artifact location for new experiments of a local SQLite store: ``<root>/mlartifacts``.

    MLflow would otherwise put artifacts relative to the current directory, which Hydra moves.
    """
    if uri.startswith("sqlite:///"):
        return (Path(root).resolve() / "mlartifacts").as_uri()
    return None


def flatten_params(cfg: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Flatten a config into ``{key: value}`` strings with MLflow-valid keys.

    Keys become ``a.b.c`` with characters MLflow rejects replaced by ``_``; lists are JSON.
    Values are not cut here: :func:`split_long_params` sends the long ones to artifacts.
    """
    out: dict[str, str] = {}
    for key, value in cfg.items():
        name = _INVALID_KEY_CHARS.sub("_", f"{prefix}{key}")[:MAX_PARAM_KEY]
        if isinstance(value, Mapping) and value:
            out.update(flatten_params(value, f"{name}."))
            continue
        out[name] = json.dumps(value) if isinstance(value, list | dict) else str(value)
    return out


def split_long_params(params: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """Split params into those MLflow accepts and those longer than its value limit.

    Returns:
        ``(params, long)``: ``params`` with each long value replaced by a pointer to the
        artifact ``params/<key>.txt`` that holds it in full, and ``long`` (key -> full value).
    """
    short = dict(params)
    long = {k: v for k, v in params.items() if len(v) > MAX_PARAM_VALUE}
    for key in long:
        short[key] = f"(longer than {MAX_PARAM_VALUE} characters: artifact params/{key}.txt)"
    return short, long


def plain(cfg: DictConfig) -> dict[str, Any]:
    """A resolved config node as a plain ``dict``."""
    container = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(container, dict)
    return {str(k): v for k, v in container.items()}


def git_commit(root: str | Path) -> str:
    """The project's git commit (``+dirty`` if the tree has changes), or ``unknown``."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit}+dirty" if dirty else commit


@contextlib.contextmanager
def _sigterm_as_exception() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated` while the run is active (main thread only)."""

    def handler(signum: int, frame: Any) -> None:
        raise Terminated(f"received signal {signum}")

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def start_run(
    cfg: DictConfig,
    *,
    run_name: str,
    tags: Mapping[str, str],
    run_id: str | None = None,
) -> Iterator[Run]:
    """Open the MLflow run of one invocation and close it with an honest status.

    Logs the composed config as flattened params and as ``config.yaml``, plus ``tags``.

    Args:
        cfg: The composed config (``tracking`` and ``paths`` nodes are read here).
        run_name: Name shown in the MLflow UI.
        tags: Tags such as task, git commit, Hydra overrides.
        run_id: Reopen this existing run instead (``resume=<run id>``: a killed run, possibly
            left RUNNING by SIGKILL); its params and config are already logged.

    Yields:
        The active MLflow run.
    """
    import mlflow

    uri = tracking_uri(cfg.tracking.uri, cfg.paths.root)
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.get_experiment_by_name(cfg.tracking.experiment)
    if experiment is None:
        experiment_id = mlflow.create_experiment(
            cfg.tracking.experiment, artifact_location=artifact_root(uri, cfg.paths.root)
        )
    else:
        experiment_id = experiment.experiment_id
    if run_id is not None:
        run = mlflow.start_run(run_id=run_id)
    else:
        run = mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=dict(tags))
    status = "FAILED"
    try:
        if run_id is None:
            params, long = split_long_params(flatten_params(plain(cfg)))
            mlflow.log_params(params)
            for key, value in long.items():
                mlflow.log_text(value, f"params/{key}.txt")
            mlflow.log_text(OmegaConf.to_yaml(cfg, resolve=True), "config.yaml")
        with _sigterm_as_exception():
            yield run
        status = "FINISHED"
    except (KeyboardInterrupt, Terminated):
        status = "KILLED"
        raise
    except BaseException:
        with contextlib.suppress(Exception):
            mlflow.log_text(traceback.format_exc(), "error/traceback.txt")
        raise
    finally:
        mlflow.end_run(status=status)


@contextlib.contextmanager
def nested_run(
    run_name: str,
    *,
    tags: Mapping[str, str] | None = None,
    params: Mapping[str, Any] | None = None,
) -> Iterator[Run]:
    """A child run of the active run (a seed, a fold, a curriculum stage, a search candidate).

    Ends FINISHED on success, KILLED on Ctrl-C/SIGTERM and FAILED (with ``error/traceback.txt``)
    on any other exception, which is re-raised; the parent run becomes active again afterwards.

    Args:
        run_name: Name shown in the MLflow UI.
        tags: Extra tags of the child (e.g. ``{"fold": "2"}``).
        params: Params of the child, flattened like the parent's config.
    """
    import mlflow

    if not _active():
        raise RuntimeError("nested_run needs an active parent run (tracking.start_run)")
    parent = mlflow.active_run()
    assert parent is not None
    run = mlflow.start_run(  # in the parent's experiment, not MLflow's "Default"
        run_name=run_name,
        nested=True,
        tags=dict(tags or {}),
        experiment_id=parent.info.experiment_id,
    )
    status = "FAILED"
    try:
        if params:
            short, long = split_long_params(flatten_params(params))
            mlflow.log_params(short)
            for key, value in long.items():
                mlflow.log_text(value, f"params/{key}.txt")
        yield run
        status = "FINISHED"
    except (KeyboardInterrupt, Terminated):
        status = "KILLED"
        raise
    except BaseException:
        with contextlib.suppress(Exception):
            mlflow.log_text(traceback.format_exc(), "error/traceback.txt")
        raise
    finally:
        mlflow.end_run(status=status)


def _active() -> bool:
    """Whether an MLflow run is active. Logging without one is skipped rather than letting
    MLflow open a stray run that nothing would close."""
    import mlflow

    return mlflow.active_run() is not None


def log_metrics(metrics: Mapping[str, float], step: int | None = None) -> None:
    """Log ``/``-namespaced metrics to the active run."""
    import mlflow

    if _active():
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, step=step)


def set_tags(tags: Mapping[str, Any]) -> None:
    """Tag the active run (values are stringified)."""
    import mlflow

    if _active():
        mlflow.set_tags({k: str(v) for k, v in tags.items()})


def log_dict(data: Mapping[str, Any], artifact_file: str) -> None:
    """Log a JSON/YAML-serialisable mapping as an artifact of the active run."""
    import mlflow

    if _active():
        mlflow.log_dict(dict(data), artifact_file)


def log_artifact(path: str | Path, artifact_path: str | None = None) -> None:
    """Upload a local file to the active run."""
    import mlflow

    if _active():
        mlflow.log_artifact(str(path), artifact_path)


def log_text(text: str, artifact_file: str) -> None:
    """Log text as an artifact of the active run."""
    import mlflow

    if _active():
        mlflow.log_text(text, artifact_file)


def active_run_id() -> str | None:
    """The id of the active run, if any."""
    import mlflow

    run = mlflow.active_run()
    return run.info.run_id if run else None


def run_params(uri: str, run_id: str) -> dict[str, str]:
    """The params of run ``run_id`` in the store at ``uri``.

    Raises:
        ValueError: If the store has no such run, naming the store that was searched.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        return dict(mlflow.MlflowClient(uri).get_run(run_id).data.params)
    except MlflowException as exc:
        raise ValueError(
            f"no MLflow run {run_id} in {uri}; check the run id (make ui) or set tracking.uri"
        ) from exc


def download_artifact(uri: str) -> Path:
    """Download an artifact URI (``runs:/<id>/model``) or return a local path unchanged."""
    if "://" not in uri and ":/" not in uri:
        return Path(uri)
    import mlflow

    dst = tempfile.mkdtemp(prefix="cryptotrade-")
    return Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=dst))
