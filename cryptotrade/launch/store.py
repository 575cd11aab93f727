"""One MLflow store, many writers: the store lock and retries of locked writes.

Any number of launcher processes (multirun jobs, Ray workers) may start together against the
default SQLite store, a fresh one included:

* MLflow creates the tables of a new SQLite store on first use, in several steps; two processes
  doing it at once break the store for good (``table _alembic_tmp_tags already exists``).
  :func:`cryptotrade.launch.tracking.open_store` makes the first use of a store in each process
  happen under the exclusive file lock of :func:`store_lock` beside the database
  (``mlflow.db.lock``), so exactly one process creates the tables and the others find them ready.
* :func:`cryptotrade.launch.tracking.experiment_id` gets or creates an experiment under the same
  lock; against a server (no shared file) a lost creation race is caught and the winner's
  experiment is used.
* :func:`retry` repeats a store call that failed with ``database is locked`` (SQLite allows one
  writer at a time; a busy store can exceed its 5 s wait).

More than one machine: run ``mlflow server`` on one of them and point ``tracking.uri`` at it
(README, "Several machines"); the server serialises writes, no file lock is involved.
"""

from __future__ import annotations

import contextlib
import fcntl
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote

T = TypeVar("T")
RETRIES = 12  # attempts of a locked write; waits grow to ~5 s, ~35 s in all


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI, else ``None``."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(unquote(uri.removeprefix("sqlite:///")).split("?")[0])


@contextlib.contextmanager
def store_lock(uri: str, lock_dir: str | Path | None = None) -> Iterator[None]:
    """An exclusive inter-process lock for the store at ``uri``.

    SQLite stores are locked by ``<db>.lock`` beside the file. Other stores (a server) use
    ``<lock_dir>/mlflow-store.lock`` when ``lock_dir`` is given, which serialises the
    processes of this machine only; otherwise no lock is taken.
    """
    db = sqlite_path(uri)
    if db is not None:
        path: Path | None = db.with_name(db.name + ".lock")
    elif lock_dir is not None:
        path = Path(lock_dir) / "mlflow-store.lock"
    else:
        path = None
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def is_locked_error(exc: BaseException) -> bool:
    """Whether ``exc`` (or its cause) is SQLite's ``database is locked``/``busy``."""
    while exc is not None:
        text = str(exc).lower()
        if "database is locked" in text or "database is busy" in text:
            return True
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return False


def retry(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call ``func``; on ``database is locked`` wait (jittered, growing) and call it again."""
    for attempt in range(RETRIES):
        try:
            return func(*args, **kwargs)
        except Exception as exc:
            if not is_locked_error(exc) or attempt == RETRIES - 1:
                raise
            time.sleep(min(5.0, 0.05 * 2**attempt) * (0.5 + random.random()))
    raise AssertionError("unreachable")
