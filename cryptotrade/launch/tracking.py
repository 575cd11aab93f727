"""MLflow: where the store is, one run per invocation, and honest run status.

Every invocation of the launcher (and every Hydra multirun job) is one MLflow run. The run ends
FINISHED on success, FAILED on an exception (with the traceback as an artifact) and KILLED on
Ctrl-C or SIGTERM; no run is left RUNNING when the process ends.

This module is the package's one MLflow handle: no other module imports ``mlflow``
(tests/test_layout.py checks it). The one listed exception is the pyfunc wrapper
``PolicyModel`` of :mod:`cryptotrade.evaluation.policy_model`, which subclasses MLflow's
``PythonModel``. Logging needs an active run: without one, every ``log_*`` call raises
:class:`NoActiveRunError` instead of dropping the value, except inside :func:`run_optional`,
the explicit switch for code that may run untracked (tests, experiment scripts, the candidates
of a search that has no run).

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
import threading
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from cryptotrade.launch import liveness, redaction, store

if TYPE_CHECKING:
    from mlflow import MlflowClient as MlflowClient  # re-exported for type hints elsewhere
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
PARENT_TAG = liveness.PARENT  # MLflow's tag naming a child run's parent (the UI nests by it)


class Terminated(BaseException):
    """Raised in the main thread on SIGTERM so the run can be marked KILLED."""


class NoActiveRunError(RuntimeError):
    """A value was logged with no active MLflow run, outside :func:`run_optional`."""


_optional = 0  # depth of the open run_optional() blocks of this process
_optional_lock = threading.Lock()


@contextlib.contextmanager
def run_optional() -> Iterator[None]:
    """Let the block log without an active MLflow run: with none, values are dropped.

    The explicit switch for the code that legitimately runs untracked: tests that call library
    functions directly, the experiment scripts (``experiments/``), and the candidates of a search
    whose driver has no run (:func:`attached_run` with no run id). With a run active, values are
    logged as usual. It holds for the whole process while the block runs (SB3 and Ray Tune call
    back from other threads), and blocks nest.
    """
    global _optional
    with _optional_lock:
        _optional += 1
    try:
        yield
    finally:
        with _optional_lock:
            _optional -= 1


def recording(what: str) -> bool:
    """Whether ``what`` (e.g. ``"artifact val/equity.csv"``) is logged: ``True`` with an active
    run, ``False`` with none inside :func:`run_optional` (the caller skips its work).

    Raises:
        NoActiveRunError: With no active run outside :func:`run_optional`: the value would be
            lost silently.
    """
    if _active():
        return True
    if _optional:
        return False
    raise NoActiveRunError(
        f"cannot log {what}: no MLflow run is active. Run through the launcher "
        "(python -m cryptotrade.run opens the run), open one with tracking.start_run or "
        "tracking.nested_run, or wrap code that may run untracked (a test, a script) in "
        "tracking.run_optional()"
    )


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
def _ends_honestly(
    before_end: Callable[[], None] | None = None,
    *,
    stopped: tuple[type[BaseException], ...] = (),
) -> Iterator[None]:
    """End the active run FINISHED on success (``sys.exit(0)`` included), KILLED on
    Ctrl-C/SIGTERM (and on the ``stopped`` exceptions), FAILED (traceback as
    ``error/traceback.txt``) on any other exception, which is re-raised."""
    import mlflow

    killed: tuple[type[BaseException], ...] = (KeyboardInterrupt, Terminated, *stopped)
    status = "FAILED"
    try:
        yield
        status = "FINISHED"
    except killed:
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
    experiment = experiment_id(uri, cfg.tracking.experiment, artifact_root(uri, cfg.paths.root))
    describe_experiment(uri, experiment)
    config = plain(cfg)
    # later log lines and artifacts that echo a secret of the config mask it too
    redaction.remember(
        redaction.secret_values(config)
        | redaction.secret_values(dict(tags))
        | redaction.environment_secrets()  # MLFLOW_TRACKING_PASSWORD and the like
    )
    all_tags = {**class_tags(config), **redaction.redact(dict(tags)), **liveness.identity()}
    if parent_run_id:
        all_tags[PARENT_TAG] = parent_run_id
    if output_dir is not None:
        all_tags["output_dir"] = str(Path(output_dir).resolve())
    if resume_run_id:
        with store.store_lock(uri, cfg.paths.root):  # the stale-run sweep takes it too
            client_ = client(uri)
            for key, value in all_tags.items():
                store.retry(client_.set_tag, resume_run_id, key, value)
            run = store.retry(mlflow.start_run, run_id=resume_run_id)
    else:
        run = store.retry(
            mlflow.start_run, experiment_id=experiment, run_name=run_name, tags=all_tags
        )
    if output_dir is not None:
        (Path(output_dir) / "run_id").write_text(run.info.run_id + "\n")
    beat = heartbeat(uri, float(cfg.tracking.get("heartbeat_s", 60)))
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

MLflow 3 opens in its GenAI view: click **Model training** in the GenAI | Model training switch
at the top of the left sidebar (or the **Training runs** item) to get the runs table and the
metric charts.

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


def describe_experiment(uri: str, experiment: str) -> None:
    """Give experiment ``experiment`` (an id) the description above (MLflow's
    ``mlflow.note.content`` tag) unless it has one: a user's own description is kept."""
    client_ = client(uri)
    with contextlib.suppress(Exception):  # cosmetic: never block a run on it
        tags = store.retry(client_.get_experiment, experiment).tags
        if liveness.NOTE not in tags:
            store.retry(client_.set_experiment_tag, experiment, liveness.NOTE, EXPERIMENT_NOTE)


def heartbeat(uri: str, interval_s: float) -> liveness.Heartbeat:
    """The heartbeat of this process's runs in the store at ``uri`` (one thread per store;
    ``interval_s`` is read when it is first made)."""
    if uri not in _heartbeats:
        _heartbeats[uri] = liveness.Heartbeat(client(uri), interval_s)
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
    open_store(uri)
    return liveness.mark_stale_runs(
        client(uri),
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
    """Whether an MLflow run is active in this thread."""
    import mlflow

    return mlflow.active_run() is not None


def _names(keys: Any) -> str:
    text = ", ".join(sorted(map(str, keys)))
    return text if len(text) <= 200 else text[:199] + "~"


def log_metrics(
    metrics: Mapping[str, float],
    step: int | None = None,
    *,
    run_id: str | None = None,
    uri: str | None = None,
) -> None:
    """Log ``/``-namespaced metrics to the active run, or to run ``run_id`` of the store at
    ``uri`` (a search candidate's run, from the driver: it need not be active).

    Raises:
        NoActiveRunError: Without ``run_id``, no active run and no :func:`run_optional`.
    """
    values = {k: float(v) for k, v in metrics.items()}
    if run_id is not None:
        import time

        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        batch = [Metric(k, v, stamp, step or 0) for k, v in values.items()]
        for start in range(0, len(batch), 1000):  # MLflow's batch limit
            store.retry(client(uri).log_batch, run_id, metrics=batch[start : start + 1000])
        return
    import mlflow

    if recording(f"metrics {_names(metrics)}"):
        store.retry(mlflow.log_metrics, values, step=step)


def set_tags(tags: Mapping[str, Any], *, run_id: str | None = None, uri: str | None = None) -> None:
    """Tag the active run, or run ``run_id`` of the store at ``uri`` (values are stringified
    and redacted).

    Raises:
        NoActiveRunError: Without ``run_id``, no active run and no :func:`run_optional`.
    """
    values = redaction.redact({k: str(v) for k, v in tags.items()})
    if run_id is not None:
        client_ = client(uri)
        for key, value in values.items():
            store.retry(client_.set_tag, run_id, key, value)
        return
    import mlflow

    if recording(f"tags {_names(tags)}"):
        store.retry(mlflow.set_tags, values)


def log_dict(
    data: Mapping[str, Any],
    artifact_file: str,
    *,
    run_id: str | None = None,
    uri: str | None = None,
) -> None:
    """Log a JSON/YAML-serialisable mapping (redacted) as an artifact of the active run, or of
    run ``run_id`` of the store at ``uri``.

    Raises:
        NoActiveRunError: Without ``run_id``, no active run and no :func:`run_optional`.
    """
    import mlflow

    if run_id is not None:
        store.retry(client(uri).log_dict, run_id, redaction.redact(dict(data)), artifact_file)
    elif recording(f"artifact {artifact_file}"):
        store.retry(mlflow.log_dict, redaction.redact(dict(data)), artifact_file)


def log_artifact(path: str | Path, artifact_path: str | None = None) -> None:
    """Upload a local file to the active run.

    Raises:
        NoActiveRunError: With no active run outside :func:`run_optional`.
    """
    import mlflow

    if recording(f"artifact {artifact_path or ''}/{Path(path).name}".replace("//", "/")):
        store.retry(mlflow.log_artifact, str(path), artifact_path)


def log_artifacts(
    folder: str | Path,
    artifact_path: str | None = None,
    *,
    run_id: str | None = None,
    uri: str | None = None,
) -> None:
    """Upload every file of a local folder to the active run, or to run ``run_id`` of the store
    at ``uri``.

    Raises:
        NoActiveRunError: Without ``run_id``, no active run and no :func:`run_optional`.
    """
    import mlflow

    if run_id is not None:
        store.retry(client(uri).log_artifacts, run_id, str(folder), artifact_path)
    elif recording(f"artifacts {artifact_path or ''}/ (from {folder})"):
        store.retry(mlflow.log_artifacts, str(folder), artifact_path)


def log_text(
    text: str, artifact_file: str, *, run_id: str | None = None, uri: str | None = None
) -> None:
    """Log text (redacted) as an artifact of the active run, or of run ``run_id`` of the store
    at ``uri``.

    Raises:
        NoActiveRunError: Without ``run_id``, no active run and no :func:`run_optional`.
    """
    import mlflow

    if run_id is not None:
        store.retry(client(uri).log_text, run_id, redaction.redact_text(text), artifact_file)
    elif recording(f"artifact {artifact_file}"):
        store.retry(mlflow.log_text, redaction.redact_text(text), artifact_file)


def log_table(columns: Mapping[str, Sequence[Any]], artifact_file: str) -> None:
    """Log ``{column: values}`` as a table artifact of the active run (the MLflow UI shows a
    ``.json`` table as a table).

    Raises:
        NoActiveRunError: With no active run outside :func:`run_optional`.
    """
    import mlflow

    if recording(f"table {artifact_file}"):
        store.retry(mlflow.log_table, dict(columns), artifact_file=artifact_file)


def log_figure(figure: Any, artifact_file: str) -> None:
    """Log a matplotlib figure as an image artifact of the active run.

    Raises:
        NoActiveRunError: With no active run outside :func:`run_optional`.
    """
    import mlflow

    if recording(f"figure {artifact_file}"):
        store.retry(mlflow.log_figure, figure, artifact_file)


def log_pyfunc_model(
    name: str,
    python_model: Any,
    *,
    artifacts: Mapping[str, str],
    pip_requirements: list[str],
) -> str | None:
    """Log ``python_model`` (an ``mlflow.pyfunc.PythonModel``) as an MLflow model of the active
    run; returns its model URI, or ``None`` when nothing is recorded (:func:`run_optional`).

    Raises:
        NoActiveRunError: With no active run outside :func:`run_optional`.
    """
    import mlflow

    if not recording(f"model {name}"):
        return None
    # MLflow's notice about a deliberate design: the wrapper object is cloudpickled (it holds
    # no state; the model and settings are artifacts).
    with muted("mlflow.pyfunc", "CloudPickle"):
        info = mlflow.pyfunc.log_model(
            name=name,
            python_model=python_model,
            artifacts=dict(artifacts),
            pip_requirements=pip_requirements,
        )
    return str(info.model_uri)


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
    from mlflow.exceptions import MlflowException

    from cryptotrade.errors import ModelError

    try:
        return client(uri).get_run(run_id)
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
        run = client(uri).get_run(run_id)
        text = mlflow.artifacts.load_text(f"runs:/{run_id}/config.yaml")
    except MlflowException:
        return None
    return StoredRun(run.info.status, dict(run.data.tags), text)


def run_metrics(uri: str | None, run_id: str) -> dict[str, float]:
    """The latest value of every metric of run ``run_id`` in the store at ``uri``."""
    return dict(store.retry(client(uri).get_run, run_id).data.metrics)


def run_tags(uri: str | None, run_id: str) -> dict[str, str]:
    """The tags of run ``run_id`` in the store at ``uri`` (the process's tracking URI when
    ``None``)."""
    return dict(store.retry(client(uri).get_run, run_id).data.tags)


def download_artifact(uri: str) -> Path:
    """Download an artifact URI (``runs:/<id>/model``) or return a local path unchanged."""
    if "://" not in uri and ":/" not in uri:
        return Path(uri)
    import mlflow

    dst = tempfile.mkdtemp(prefix="cryptotrade-")
    return Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=dst))


# ---- runs reached by id: a search's candidates and trials, a sweep's parent ---------------------
def client(uri: str | None = None) -> MlflowClient:
    """An MLflow client of the store at ``uri`` (the process's tracking URI when ``None``), for
    the launch modules that work on many runs by id (:mod:`~cryptotrade.launch.liveness`)."""
    import mlflow

    return mlflow.MlflowClient(uri)


def preload() -> None:
    """Import MLflow and its tracking stores (SQLite through SQLAlchemy and Alembic, a tracking
    server) now: a pool worker pays the imports once, not in its first candidate's run (~1 CPU-s
    on the first ``attached_run`` otherwise)."""
    import mlflow
    import mlflow.store.db.utils
    import mlflow.store.tracking.rest_store
    import mlflow.store.tracking.sqlalchemy_store  # noqa: F401


_opened: set[str] = set()  # stores this process has opened


def open_store(uri: str) -> None:
    """Make sure the store at ``uri`` exists and is initialised; safe to call from many
    processes at once (the first one creates the tables under :func:`store.store_lock
    <cryptotrade.launch.store.store_lock>`)."""
    if uri in _opened:
        return
    with store.store_lock(uri):
        store.retry(client(uri).search_experiments, max_results=1)
    _opened.add(uri)


def experiment_id(uri: str, name: str, artifact_location: str | None) -> str:
    """The id of experiment ``name``, created if missing; race-free across processes (the
    store lock on one machine; a lost creation race against a server is caught)."""
    from mlflow.exceptions import MlflowException

    open_store(uri)
    client_ = client(uri)
    with store.store_lock(uri):
        found = store.retry(client_.get_experiment_by_name, name)
        if found is not None:
            return str(found.experiment_id)
        try:
            return str(
                store.retry(client_.create_experiment, name, artifact_location=artifact_location)
            )
        except MlflowException as exc:  # another machine created it first (server store)
            if "already exists" not in str(exc) and "RESOURCE_ALREADY_EXISTS" not in str(exc):
                raise
        again = store.retry(client_.get_experiment_by_name, name)
        assert again is not None
        return str(again.experiment_id)


@dataclass(frozen=True)
class RunRef:
    """Where a run lives, for code that reaches it by id (other processes included).

    Attributes:
        run_id: The run.
        experiment_id: Its experiment (child runs are created there).
        uri: The tracking URI of its store (``None``: the process's tracking URI).
    """

    run_id: str
    experiment_id: str
    uri: str | None


def active_run_ref() -> RunRef | None:
    """The active run of this thread as a :class:`RunRef`; ``None`` when no run is active."""
    import mlflow

    run = mlflow.active_run()
    if run is None:
        return None
    return RunRef(run.info.run_id, run.info.experiment_id, mlflow.get_tracking_uri())


def create_run(
    uri: str | None,
    experiment: str,
    name: str,
    *,
    tags: Mapping[str, Any],
    params: Mapping[str, Any] | None = None,
    parent: RunRef | None = None,
) -> str:
    """Create a run without making it active: a sweep's parent, or a child of ``parent`` that a
    worker attaches to (:func:`attached_run`).

    Args:
        uri: The store (``None``: the process's tracking URI).
        experiment: The experiment id.
        name: Name shown in the MLflow UI.
        tags: Its tags (stringified).
        params: Its params, flattened like a config; values over MLflow's limit are cut.
        parent: The run it is a child of (:data:`PARENT_TAG`).

    Returns:
        The new run's id.
    """
    from mlflow.entities import Param

    client_ = client(uri)
    all_tags = {k: str(v) for k, v in tags.items()}
    if parent is not None:
        all_tags[PARENT_TAG] = parent.run_id
    run = store.retry(client_.create_run, experiment, run_name=name, tags=all_tags)
    short, _ = split_long_params(flatten_params(dict(params or {})))
    if short:
        batch = [Param(k, v) for k, v in short.items()]
        store.retry(client_.log_batch, run.info.run_id, params=batch)
    return str(run.info.run_id)


def child_runs(
    parent: RunRef, tags: Mapping[str, str] | None = None, *, running: bool = False
) -> dict[str, dict[str, str]]:
    """The child runs of ``parent`` that carry ``tags`` (only the RUNNING ones with
    ``running``): ``{run id: its tags}``."""
    filters = [f"tags.`{PARENT_TAG}` = '{parent.run_id}'"]
    filters += [f"tags.`{key}` = '{value}'" for key, value in (tags or {}).items()]
    if running:
        filters.append("attributes.status = 'RUNNING'")
    found = store.retry(
        client(parent.uri).search_runs, [parent.experiment_id], filter_string=" and ".join(filters)
    )
    return {run.info.run_id: dict(run.data.tags) for run in found}


def run_exists(run_id: str, uri: str | None = None) -> bool:
    """Whether the store at ``uri`` holds run ``run_id`` (and it is not deleted)."""
    try:
        return bool(client(uri).get_run(run_id).info.lifecycle_stage == "active")
    except Exception:  # MLflow raises several kinds for a missing run
        return False


def delete_tags(run_id: str, keys: list[str], uri: str | None = None) -> None:
    """Remove the tags ``keys`` of run ``run_id``; a key the run lacks is skipped."""
    client_ = client(uri)
    for key in keys:
        with contextlib.suppress(Exception):  # MLflow raises when the tag is missing
            store.retry(client_.delete_tag, run_id, key)


def end_run(
    run_id: str,
    status: str,
    *,
    uri: str | None = None,
    tags: Mapping[str, Any] | None = None,
    only_if_running: bool = False,
) -> bool:
    """End run ``run_id`` (not the active run: a candidate's whose worker died, a sweep's
    parent) with ``status``, after setting ``tags`` on it. With ``only_if_running`` a run that
    has ended already is left as it is, tags included. Returns whether the run was ended."""
    client_ = client(uri)
    if only_if_running and store.retry(client_.get_run, run_id).info.status != "RUNNING":
        return False
    if tags:
        set_tags(tags, run_id=run_id, uri=uri)
    store.retry(client_.set_terminated, run_id, status)
    return True


def artifact_names(run_id: str, folder: str, uri: str | None = None) -> list[str]:
    """The paths of the artifacts directly under ``folder`` of run ``run_id`` (``test`` ->
    ``["test/equity.csv", ...]``)."""
    return [f.path for f in store.retry(client(uri).list_artifacts, run_id, folder)]


def load_run_text(run_id: str, artifact: str, uri: str | None = None) -> str:
    """The text of artifact ``artifact`` of run ``run_id`` in the store at ``uri``.

    Raises:
        Exception: MLflow's error (or ``OSError``) when the run or the artifact is missing.
    """
    with tempfile.TemporaryDirectory() as tmp:
        return Path(client(uri).download_artifacts(run_id, artifact, tmp)).read_text()


@contextlib.contextmanager
def attached_run(run_id: str | None, uri: str | None) -> Iterator[None]:
    """Make the run ``run_id``, created elsewhere (:func:`create_run`, by a search's driver),
    the active run of this (worker) process or thread.

    Ends it FINISHED, KILLED on Ctrl-C/SIGTERM or ``SystemExit`` (Ray Tune stops a trial that
    way), FAILED with ``error/traceback.txt`` on any other exception, like :func:`nested_run`.
    With ``run_id=None`` (the search has no run) the block runs untracked, by
    :func:`run_optional`.
    """
    if run_id is None:
        with run_optional():
            yield
        return
    import mlflow

    if uri:
        mlflow.set_tracking_uri(uri)
    store.retry(mlflow.start_run, run_id=run_id, nested=mlflow.active_run() is not None)
    with _ends_honestly(stopped=(SystemExit,)):  # Ray Tune stops a trial by SystemExit
        yield
