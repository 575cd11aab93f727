"""Search checkpoints: atomic pickles, and the fingerprint that names a search.

A checkpoint is written through :func:`cryptotrade.io.atomic_write` (a temporary file in the same
folder, renamed into place), so a search killed mid-write leaves the previous checkpoint intact,
and no process ever reads a half-written file.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import pickle
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptotrade.io import atomic_write

if TYPE_CHECKING:
    from cryptotrade.optimize.derive import ConfigDeriver

# Settings that do not change what a search computes: a resumed search may change them.
_NOT_SEARCH = ("resume", "workers", "eval_timeout", "max_concurrent", "checkpoints_to_keep")


def search_fingerprint(configs: ConfigDeriver, kind: str) -> str:
    """Hash of everything that determines a search's result (config, seed, space, settings).

    Tracking, Ray and the settings in ``_NOT_SEARCH`` are left out: resuming against another
    MLflow store, on a cluster, or with a different timeout continues the same search.
    """
    kept = configs.without(("tracking", "ray", "hydra"), {"optimizer": _NOT_SEARCH})
    text = f"{kind}\n{kept.yaml(resolve=False)}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def save_pickle(obj: Any, path: Path) -> None:
    """Pickle ``obj`` to ``path`` atomically (flushed to disk: a checkpoint outlives a crash)."""
    with atomic_write(path, fsync=True) as fh:
        pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)


def load_pickle(path: Path) -> Any | None:
    """The pickled object at ``path``, or ``None`` if there is none."""
    if not path.exists():
        return None
    with path.open("rb") as fh:
        return pickle.load(fh)


# ---- one story per search: the parent run a search records, and continues when resumed ----------
PARENT_SUFFIX = ".parent.json"
TAG_RESUMED = "search/resumed"  # how many times the search was continued in this parent run
TAG_RESUMED_AT = "search/resumed_at"  # when it was last continued (UTC, ISO 8601)


def record_parent(stem: Path, run_id: str, uri: str | None) -> None:
    """Write ``<stem>.parent.json``: the parent run (and its store) this search logs into, so a
    resumed search continues in it (:func:`continued_run`)."""
    path = stem.with_name(stem.name + PARENT_SUFFIX)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, fsync=True) as fh:
        fh.write(json.dumps({"run_id": run_id, "uri": uri}).encode())


def recorded_parent(stem: Path) -> dict[str, str] | None:
    """``{"run_id", "uri"}`` of ``<stem>.parent.json``, or ``None`` if there is none."""
    path = stem.with_name(stem.name + PARENT_SUFFIX)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("run_id") else None


@dataclass(frozen=True)
class ContinuedRun:
    """The parent run a resumed search continues in (``tracking.start_run(resume_run_id=)``).

    Attributes:
        run_id: The search's original parent run.
        tags: Set on it when it is reopened: :data:`TAG_RESUMED` (a count),
            :data:`TAG_RESUMED_AT`, and ``resume/<param>: old -> new`` for each logged param the
            resume changes (``optimizer.resume``, the workers, ``ray.address`` ...: settings
            outside the search's fingerprint).
    """

    run_id: str
    tags: dict[str, str]


def continued_run(optimizer: Any, configs: ConfigDeriver) -> ContinuedRun | None:
    """The parent run a search resumed with ``optimizer.resume=true`` continues in, if any.

    A search records its parent run beside its checkpoint (:func:`record_parent`). It is
    continued when the search resumes from a checkpoint (``optimizer.resume_stem``, only GA and
    Tune have one) of the same store, and that run did not finish (a finished search's rerun is
    a new run). Its leftover RUNNING child runs (candidates cut off by the kill) end FAILED;
    the resumed search retrains or continues them.

    Raises:
        ConfigError: The parent run is still RUNNING in a live process (two launchers would
            write one search).
    """
    from cryptotrade.errors import ConfigError
    from cryptotrade.launch import liveness, store, tracking

    resume_stem = getattr(optimizer, "resume_stem", None)
    settings = configs.settings
    stem = resume_stem(configs) if resume_stem and getattr(optimizer, "resume", False) else None
    record = recorded_parent(stem) if stem is not None else None
    uri = tracking.tracking_uri(settings.tracking.uri, settings.paths.root)
    if record is None or record.get("uri") != uri:
        return None
    client = tracking.client(uri)
    try:
        run = store.retry(client.get_run, record["run_id"])
    except Exception:  # deleted, or a store recreated since: a new parent
        return None
    if run.info.lifecycle_stage != "active" or run.info.status == "FINISHED":
        return None
    stale_after = float(settings.tracking.stale_after_s)
    if (
        run.info.status == "RUNNING"
        and liveness.why_dead(run.data.tags, stale_after, time.time()) is None
    ):
        raise ConfigError(
            f"optimizer.resume=true: the search is still running in MLflow run {run.info.run_id} "
            f"(process {run.data.tags.get(liveness.PREFIX + 'pid')} on "
            f"{run.data.tags.get(liveness.PREFIX + 'host')}); wait for it or stop it first"
        )
    _close_leftover_children(client, run)
    given = tracking.flatten_params(tracking.redact(configs.container()))
    changed = {
        f"resume/{key}": f"{old} -> {given[key]}"
        for key, old in run.data.params.items()
        if key in given and given[key] != old and len(given[key]) < tracking.MAX_PARAM_VALUE
    }
    count = int(run.data.tags.get(TAG_RESUMED, "0") or 0) + 1
    when = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    return ContinuedRun(run.info.run_id, {**changed, TAG_RESUMED: str(count), TAG_RESUMED_AT: when})


def _close_leftover_children(client: Any, parent: Any) -> None:
    """End the RUNNING child runs of ``parent`` (their search was killed) FAILED, with a note."""
    from cryptotrade.launch import store
    from cryptotrade.launch.liveness import NOTE, PARENT

    children = store.retry(
        client.search_runs,
        [parent.info.experiment_id],
        f"tags.`{PARENT}` = '{parent.info.run_id}' and attributes.status = 'RUNNING'",
    )
    for child in children:
        note = "its search was interrupted; the resumed search continues in the same parent run"
        with contextlib.suppress(Exception):
            store.retry(client.set_tag, child.info.run_id, NOTE, note)
            store.retry(client.set_terminated, child.info.run_id, "FAILED")
