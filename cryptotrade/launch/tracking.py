"""MLflow: where the store is, one run per invocation, and honest run status.

Every invocation of the launcher (and every Hydra multirun job) is one MLflow run. The run ends
FINISHED on success, FAILED on an exception (with the traceback as an artifact) and KILLED on
Ctrl-C or SIGTERM; no run is left RUNNING when the process ends.

MLflow is imported lazily so that ``--help`` and config errors answer without loading it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import subprocess
import tempfile
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from cryptotrade.launch import liveness, redaction, store

if TYPE_CHECKING:
    from mlflow.entities import Run

# MLflow limits (mlflow.utils.validation): param values up to 6000 chars, keys up to 250.
MAX_PARAM_VALUE = 6000
MAX_PARAM_KEY = 250
_INVALID_KEY_CHARS = re.compile(r"[^\w\-. /]")
# Download progress bars: MLflow draws one per artifact download (model reloads, reports), in the
# driver and in every search worker, which inherit the environment; the logs say what happens.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
# MLflow's INFO lines when it creates or migrates a store (the store is ours to set up).
QUIET_LOGGERS = ("mlflow.store.db.utils", "alembic.runtime.migration")
_heartbeats: dict[str, liveness.Heartbeat] = {}
redact = redaction.redact  # for callers that write configs elsewhere (Ray trial configs)


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


def param_key(key: str) -> str:
    """``key`` as MLflow accepts it: allowed characters only, and a normalised relative path
    (``a//b`` -> ``a/b``, no ``.``/``..`` parts, no leading or trailing ``/``)."""
    name = _INVALID_KEY_CHARS.sub("_", key)
    parts = [p if p not in (".", "..") else p.replace(".", "_") for p in name.split("/") if p]
    return "/".join(parts)[:MAX_PARAM_KEY] or "_"


# Hydra's instantiation keys: plumbing, not parameters. The classes (``_target_``) become
# ``class/<node>`` tags instead (:func:`class_tags`).
HYDRA_KEYS = frozenset({"_target_", "_partial_", "_convert_", "_recursive_", "_args_"})
CLASS_TAG = "class/"


def flatten_params(cfg: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Flatten a config into ``{key: value}`` strings with MLflow-valid, distinct keys.

    Keys become ``a.b.c`` sanitised by :func:`param_key`; lists are JSON. Two keys that would
    become the same name keep both values: the later one gets a ``_2``, ``_3`` ... suffix.
    Values are not cut here: :func:`split_long_params` sends the long ones to artifacts.
    Hydra's own keys (:data:`HYDRA_KEYS`) are left out.
    """
    out: dict[str, str] = {}
    for key, value in _flat_items(cfg, prefix):
        if key.rsplit(".", 1)[-1] in HYDRA_KEYS:
            continue
        name = base = param_key(key)
        n = 1
        while name in out:
            n += 1
            name = f"{base[: MAX_PARAM_KEY - len(str(n)) - 1]}_{n}"
        out[name] = value
    return out


def _flat_items(cfg: Mapping[str, Any], prefix: str) -> Iterator[tuple[str, str]]:
    for key, value in cfg.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from _flat_items(value, f"{name}.")
        else:
            yield name, json.dumps(value) if isinstance(value, list | dict) else str(value)


def class_tags(cfg: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"class/<node>": <_target_>}`` for every node of ``cfg`` built from a ``_target_``
    (``class/agent``: ``stable_baselines3.PPO``; ``class/data.source``: ...)."""
    tags: dict[str, str] = {}
    for key, value in _flat_items(cfg, prefix):
        node, _, last = key.rpartition(".")
        if last == "_target_":
            tags[f"{CLASS_TAG}{param_key(node or '_')}"] = value
    return tags


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
def _ends_honestly(before_end: Callable[[], None] | None = None) -> Iterator[None]:
    """End the active run FINISHED on success (``sys.exit(0)`` included), KILLED on
    Ctrl-C/SIGTERM, FAILED (traceback as ``error/traceback.txt``) on any other exception, which
    is re-raised."""
    import mlflow

    status = "FAILED"
    try:
        yield
        status = "FINISHED"
    except (KeyboardInterrupt, Terminated):
        status = "KILLED"
        raise
    except SystemExit as exc:
        if exc.code in (0, None):  # a clean exit: the run did what it was asked
            status = "FINISHED"
        else:
            with contextlib.suppress(Exception):
                log_text(traceback.format_exc(), "error/traceback.txt")
        raise
    except BaseException:
        with contextlib.suppress(Exception):
            log_text(traceback.format_exc(), "error/traceback.txt")
        raise
    finally:
        if before_end is not None:
            before_end()
        store.retry(mlflow.end_run, status=status)


@contextlib.contextmanager
def start_run(
    cfg: DictConfig,
    *,
    run_name: str,
    tags: Mapping[str, str],
    parent_run_id: str | None = None,
    resume_run_id: str | None = None,
    output_dir: str | Path | None = None,
) -> Iterator[Run]:
    """Open the MLflow run of one invocation and close it with an honest status.

    Safe with any number of processes starting at once on one store
    (:mod:`cryptotrade.launch.store`).
    Logs the composed config, secrets redacted, as flattened params and as ``config.yaml``,
    plus ``tags`` and the liveness tags of :mod:`cryptotrade.launch.liveness`.

    Args:
        cfg: The composed config (``tracking`` and ``paths`` nodes are read here).
        run_name: Name shown in the MLflow UI.
        tags: Tags such as task, git commit, Hydra overrides (redacted here).
        parent_run_id: Open the run as a child of this run (a sweep's parent, possibly
            created by another process).
        resume_run_id: Reopen this run instead of creating one (it is RUNNING again, with this
            process's liveness tags; params and ``config.yaml`` are not logged again).
        output_dir: The job's local folder: recorded as the ``output_dir`` tag, and the run id
            is written to ``<output_dir>/run_id``.

    Yields:
        The active MLflow run.
    """
    import mlflow

    quiet_mlflow()
    uri = tracking_uri(cfg.tracking.uri, cfg.paths.root)
    mlflow.set_tracking_uri(uri)
    experiment_id = store.experiment_id(
        uri, cfg.tracking.experiment, artifact_root(uri, cfg.paths.root)
    )
    describe_experiment(uri, experiment_id)
    config = plain(cfg)
    # later log lines and artifacts that echo a secret of the config mask it too
    redaction.remember(
        redaction.secret_values(config)
        | redaction.secret_values(dict(tags))
        | redaction.environment_secrets()  # MLFLOW_TRACKING_PASSWORD and the like
    )
    all_tags = {**class_tags(config), **redaction.redact(dict(tags)), **liveness.identity()}
    if parent_run_id:
        all_tags["mlflow.parentRunId"] = parent_run_id
    if output_dir is not None:
        all_tags["output_dir"] = str(Path(output_dir).resolve())
    if resume_run_id:
        with store.store_lock(uri, cfg.paths.root):  # the stale-run sweep takes it too
            client = mlflow.MlflowClient(uri)
            for key, value in all_tags.items():
                store.retry(client.set_tag, resume_run_id, key, value)
            run = store.retry(mlflow.start_run, run_id=resume_run_id)
    else:
        run = store.retry(
            mlflow.start_run, experiment_id=experiment_id, run_name=run_name, tags=all_tags
        )
    if output_dir is not None:
        (Path(output_dir) / "run_id").write_text(run.info.run_id + "\n")
    beat = _heartbeat(uri, float(cfg.tracking.get("heartbeat_s", 60)))
    beat.add(run.info.run_id)
    with _ends_honestly(lambda: beat.discard(run.info.run_id)):
        if not resume_run_id:
            config = redaction.redact(config)
            _log_params(flatten_params(config))
            store.retry(mlflow.log_text, OmegaConf.to_yaml(OmegaConf.create(config)), "config.yaml")
        with _sigterm_as_exception():
            yield run


EXPERIMENT_NOTE = """cryptotrade: one run per launcher call; sweeps, GA candidates, Tune
trials, seeds and walk-forward folds are child runs (expand a parent with its + sign).

MLflow 3 opens in its GenAI view: switch the experiment type to **Model training** (the toggle
beside the experiment name) to get the runs table and the metric charts.

Columns worth adding to the runs table (Columns button):
- metrics: `val/sharpe` (what model selection and searches rank by), `test/sharpe`,
  `test/total_return`, `test/max_drawdown`, `test/num_trades`, `search/fitness` (GA/Tune children)
- tags: `choice/agent`, `choice/data`, `choice/extractor`, `task`, `overrides`
- params: the ones a sweep varies, e.g. `agent.learning_rate`, `seed`

A run's `summary/metrics.json` artifact holds every metric it logged; `test/report.html` is the
test-split report with its plots."""


def quiet_mlflow() -> None:
    """Keep MLflow's store-setup INFO lines off the terminal (warnings still show); runs at
    import and again when a run starts (in case logging was reconfigured in between)."""
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


quiet_mlflow()


@contextlib.contextmanager
def muted(logger: str, *fragments: str) -> Iterator[None]:
    """Drop the records of ``logger`` whose message contains one of ``fragments`` while the block
    runs: a targeted silence for a known, harmless library notice, nothing else."""

    def keep(record: logging.LogRecord) -> bool:
        return not any(f in record.getMessage() for f in fragments)

    target = logging.getLogger(logger)
    target.addFilter(keep)
    try:
        yield
    finally:
        target.removeFilter(keep)


def describe_experiment(uri: str, experiment_id: str) -> None:
    """Give the experiment the description above (MLflow's ``mlflow.note.content`` tag) unless
    it has one: a user's own description is kept."""
    import mlflow

    client = mlflow.MlflowClient(uri)
    with contextlib.suppress(Exception):  # cosmetic: never block a run on it
        tags = store.retry(client.get_experiment, experiment_id).tags
        if "mlflow.note.content" not in tags:
            store.retry(
                client.set_experiment_tag, experiment_id, "mlflow.note.content", EXPERIMENT_NOTE
            )


def _heartbeat(uri: str, interval_s: float) -> liveness.Heartbeat:
    if uri not in _heartbeats:
        _heartbeats[uri] = liveness.Heartbeat(uri, interval_s)
    return _heartbeats[uri]


def _log_params(params: Mapping[str, str]) -> None:
    import mlflow

    short, long = split_long_params(params)
    store.retry(mlflow.log_params, short)
    for key, value in long.items():
        store.retry(mlflow.log_text, value, f"params/{key}.txt")


def mark_stale_runs(cfg: DictConfig, *, spare: str | None = None) -> list[str]:
    """Mark the dead RUNNING runs of the configured store FAILED
    (see :mod:`cryptotrade.launch.liveness`).

    Args:
        cfg: The composed config (``tracking`` and ``paths`` nodes are read).
        spare: A run id to leave alone (the run this launcher is about to resume).

    Returns:
        The ids of the runs marked.
    """
    uri = tracking_uri(cfg.tracking.uri, cfg.paths.root)
    store.open_store(uri)
    return liveness.mark_stale_runs(
        uri,
        stale_after_s=float(cfg.tracking.get("stale_after_s", 600)),
        lock_dir=cfg.paths.root,
        spare=spare,
    )


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
    Tags and params are redacted like the parent's config.

    Args:
        run_name: Name shown in the MLflow UI.
        tags: Extra tags of the child (e.g. ``{"fold": "2"}``).
        params: Params of the child, flattened like the parent's config.
    """
    import mlflow

    if not _active():
        raise RuntimeError("nested_run needs an active parent run (tracking.start_run)")
    all_tags = {**redaction.redact(dict(tags or {})), **liveness.identity()}
    parent = mlflow.active_run()
    run = store.retry(
        mlflow.start_run,
        run_name=run_name,
        nested=True,
        tags=all_tags,
        # without it MLflow files the child under the default experiment, not the parent's
        experiment_id=parent.info.experiment_id if parent else None,
    )
    with _ends_honestly():
        if params:
            _log_params(flatten_params(redaction.redact(dict(params))))
        yield run


def _active() -> bool:
    """Whether an MLflow run is active. Logging without one is skipped rather than letting
    MLflow open a stray run that nothing would close."""
    import mlflow

    return mlflow.active_run() is not None


def log_metrics(metrics: Mapping[str, float], step: int | None = None) -> None:
    """Log ``/``-namespaced metrics to the active run."""
    import mlflow

    if _active():
        store.retry(mlflow.log_metrics, {k: float(v) for k, v in metrics.items()}, step=step)


def set_tags(tags: Mapping[str, Any]) -> None:
    """Tag the active run (values are stringified and redacted)."""
    import mlflow

    if _active():
        store.retry(mlflow.set_tags, redaction.redact({k: str(v) for k, v in tags.items()}))


def log_dict(data: Mapping[str, Any], artifact_file: str) -> None:
    """Log a JSON/YAML-serialisable mapping (redacted) as an artifact of the active run."""
    import mlflow

    if _active():
        store.retry(mlflow.log_dict, redaction.redact(dict(data)), artifact_file)


def log_artifact(path: str | Path, artifact_path: str | None = None) -> None:
    """Upload a local file to the active run."""
    import mlflow

    if _active():
        store.retry(mlflow.log_artifact, str(path), artifact_path)


def log_text(text: str, artifact_file: str) -> None:
    """Log text (redacted) as an artifact of the active run."""
    import mlflow

    if _active():
        store.retry(mlflow.log_text, redaction.redact_text(text), artifact_file)


def active_run_id() -> str | None:
    """The id of the active run, if any."""
    import mlflow

    run = mlflow.active_run()
    return run.info.run_id if run else None


def run_class(uri: str, run_id: str, node: str) -> str | None:
    """The class run ``run_id`` built for config node ``node`` (its ``class/<node>`` tag, or the
    ``<node>._target_`` param that runs logged before the tag have); ``None`` if neither.

    Raises:
        ModelError: If the store has no such run.
    """
    data = _get_run(uri, run_id).data
    return data.tags.get(f"{CLASS_TAG}{node}") or data.params.get(f"{node}._target_")


def _get_run(uri: str, run_id: str) -> Any:
    import mlflow
    from mlflow.exceptions import MlflowException

    from cryptotrade.errors import ModelError

    try:
        return mlflow.MlflowClient(uri).get_run(run_id)
    except MlflowException as exc:
        raise ModelError(
            f"no MLflow run {run_id} in {uri}; check the run id (make ui) or set tracking.uri"
        ) from exc


@dataclass(frozen=True)
class StoredRun:
    """A run read back from the store (``resume=`` continues one).

    Attributes:
        status: ``RUNNING``, ``FINISHED``, ``FAILED`` or ``KILLED``.
        tags: The run's tags (``checkpoint_dir`` names its checkpoint folder).
        config_yaml: The run's logged ``config.yaml``.
    """

    status: str
    tags: dict[str, str]
    config_yaml: str


def stored_run(uri: str, run_id: str) -> StoredRun | None:
    """Status, tags and ``config.yaml`` of run ``run_id`` in the store at ``uri``; ``None``
    when the store has no such run or the run has no ``config.yaml``. Makes ``uri`` the
    process's tracking URI (the run is about to be continued there)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    mlflow.set_tracking_uri(uri)
    try:
        run = mlflow.MlflowClient(uri).get_run(run_id)
        text = mlflow.artifacts.load_text(f"runs:/{run_id}/config.yaml")
    except MlflowException:
        return None
    return StoredRun(run.info.status, dict(run.data.tags), text)


def run_tags(uri: str, run_id: str) -> dict[str, str]:
    """The tags of run ``run_id`` in the store at ``uri``."""
    import mlflow

    return dict(mlflow.MlflowClient(uri).get_run(run_id).data.tags)


def download_artifact(uri: str) -> Path:
    """Download an artifact URI (``runs:/<id>/model``) or return a local path unchanged."""
    if "://" not in uri and ":/" not in uri:
        return Path(uri)
    import mlflow

    dst = tempfile.mkdtemp(prefix="cryptotrade-")
    return Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=dst))
