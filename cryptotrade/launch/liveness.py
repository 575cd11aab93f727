"""Stale runs: a run whose process died without ending it is marked FAILED by the next launcher.

Every run the launcher opens records who runs it, as tags:

==========================  ========================================================
``cryptotrade.host``        host name of the process
``cryptotrade.boot_id``     the host's boot id (``/proc/sys/kernel/random/boot_id``)
``cryptotrade.pid``         process id
``cryptotrade.pid_start``   the process's start time (tells a reused pid apart)
``cryptotrade.heartbeat``   unix time, refreshed every ``tracking.heartbeat_s`` seconds
==========================  ========================================================

At its start the launcher looks at every RUNNING run of the store (:func:`mark_stale_runs`).
A run of this host is dead when the host rebooted since (power loss), or its process is gone,
a zombie, or another process now holds its pid (SIGKILL, OOM killer). A run of another host
(a shared ``mlflow server``) is dead when its heartbeat is older than
``tracking.stale_after_s``. Dead runs end FAILED with a note saying why.

The child runs of a search (GA individuals, Tune trials) carry no liveness tags: their workers
are Ray actors or pool processes of the launcher. A RUNNING child whose parent run
(``mlflow.parentRunId``, a launcher's run) is no longer RUNNING -- its driver died and was
marked FAILED, now or by an earlier sweep -- is marked FAILED too (:func:`mark_orphans`). A Tune
trial resumed later (``Tuner.restore``) reopens its run and moves it under the new parent.

A resumed run is taken over under the store lock with fresh tags
(``tracking.start_run(resume_run_id=...)``), and the sweep re-reads each run under the same lock
before marking it, so a run that another process has resumed is never marked; the launcher that
resumes a run spares it from its own sweep (``spare``).

The functions here take an ``MlflowClient`` from :func:`cryptotrade.launch.tracking.client`
(the package's one MLflow handle) rather than importing MLflow.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptotrade.launch import store

if TYPE_CHECKING:
    from cryptotrade.launch.tracking import MlflowClient

log = logging.getLogger(__name__)
PREFIX = "cryptotrade."
NOTE = "mlflow.note.content"
PARENT = "mlflow.parentRunId"


def _read(path: str) -> str:
    with contextlib.suppress(OSError):
        return Path(path).read_text().strip()
    return ""


def _stat(pid: int) -> tuple[str, str] | None:
    """``(state, start time)`` of process ``pid`` from ``/proc``, or ``None`` if it is gone."""
    text = _read(f"/proc/{pid}/stat")
    if not text:
        return None
    fields = text.rsplit(")", 1)[-1].split()  # the command name may contain spaces
    return fields[0], fields[19]


def identity() -> dict[str, str]:
    """The liveness tags of this process (heartbeat included)."""
    pid = os.getpid()
    stat = _stat(pid)
    return {
        f"{PREFIX}host": socket.gethostname(),
        f"{PREFIX}boot_id": _read("/proc/sys/kernel/random/boot_id"),
        f"{PREFIX}pid": str(pid),
        f"{PREFIX}pid_start": stat[1] if stat else "",
        f"{PREFIX}heartbeat": f"{time.time():.0f}",
    }


def why_dead(tags: Mapping[str, str], stale_after_s: float, now: float) -> str | None:
    """Why the process of a RUNNING run with these tags is dead, or ``None`` if it may live."""
    host, pid = tags.get(f"{PREFIX}host"), tags.get(f"{PREFIX}pid")
    if not host or not pid:
        return None  # not opened by this launcher: leave it alone
    if host != socket.gethostname():
        beat = float(tags.get(f"{PREFIX}heartbeat") or 0)
        if now - beat > stale_after_s:
            return f"no heartbeat from process {pid} on {host} for {now - beat:.0f} s"
        return None
    boot = tags.get(f"{PREFIX}boot_id")
    if boot and boot != _read("/proc/sys/kernel/random/boot_id"):
        return f"host {host} restarted since process {pid} started (power loss or reboot)"
    stat = _stat(int(pid))
    if stat is None:
        return f"process {pid} on {host} is gone (killed)"
    state, start = stat
    if state in ("Z", "X"):
        return f"process {pid} on {host} was killed (zombie)"
    if tags.get(f"{PREFIX}pid_start") and start != tags[f"{PREFIX}pid_start"]:
        return f"process {pid} on {host} is gone (its pid now belongs to another process)"
    return None


def mark_stale_runs(
    client: MlflowClient,
    uri: str,
    *,
    stale_after_s: float,
    lock_dir: str | Path | None,
    spare: str | None = None,
) -> list[str]:
    """End every RUNNING run of the store whose process is dead as FAILED, with a note.

    Args:
        client: A client of the store (:func:`cryptotrade.launch.tracking.client`).
        uri: The store (its lock).
        stale_after_s: Heartbeat age after which a run of another host is dead.
        lock_dir: Where the lock of a non-SQLite store lives (this machine's processes).
        spare: A run id to leave alone (the run this launcher is about to resume).

    Returns:
        The ids of the runs marked.
    """
    experiments = [e.experiment_id for e in store.retry(client.search_experiments)]
    if not experiments:
        return []
    running = store.retry(
        client.search_runs, experiments, "attributes.status = 'RUNNING'", max_results=5000
    )
    marked = []
    for run in running:
        if run.info.run_id == spare or why_dead(run.data.tags, stale_after_s, time.time()) is None:
            continue
        with store.store_lock(uri, lock_dir):  # a resume (claim) holds the same lock
            fresh = store.retry(client.get_run, run.info.run_id)
            reason = why_dead(fresh.data.tags, stale_after_s, time.time())
            if fresh.info.status != "RUNNING" or reason is None:
                continue
            beat = float(fresh.data.tags.get(f"{PREFIX}heartbeat") or time.time())
            note = f"Marked FAILED by the launcher at {time.strftime('%Y-%m-%d %H:%M:%S')}: "
            store.retry(client.set_tag, run.info.run_id, NOTE, note + reason)
            store.retry(client.set_tag, run.info.run_id, f"{PREFIX}stale", reason)
            store.retry(client.set_terminated, run.info.run_id, "FAILED", end_time=int(beat * 1000))
        log.warning("run %s (%s) marked FAILED: %s", run.info.run_name, run.info.run_id, reason)
        marked.append(run.info.run_id)
    rest = [r for r in running if r.info.run_id not in marked]
    return marked + mark_orphans(client, uri, rest, lock_dir)


def _orphaned(client: MlflowClient, tags: Mapping[str, str]) -> str | None:
    """Why a RUNNING run without liveness tags is dead (its launcher parent ended), or ``None``."""
    parent_id = tags.get(PARENT)
    if not parent_id or tags.get(f"{PREFIX}pid"):
        return None  # a top-level run, or one with its own liveness tags (checked above)
    parent = store.retry(client.get_run, parent_id)
    ours = any(parent.data.tags.get(f"{PREFIX}{key}") for key in ("pid", "stale"))
    if not ours or parent.info.status == "RUNNING":
        return None  # not a launcher's run (nor one this sweep ended), or its driver lives
    return f"its parent run {parent_id} ended {parent.info.status} (the search's driver died)"


def mark_orphans(
    client: MlflowClient, uri: str, running: list[Any], lock_dir: str | Path | None
) -> list[str]:
    """Mark FAILED the ``running`` child runs whose launcher parent run is no longer RUNNING.

    Repeats while it marks any, so a grandchild follows its child.

    Args:
        client: A client of the store (:func:`cryptotrade.launch.tracking.client`).
        uri: The store (its lock).
        running: The RUNNING runs to look at (MLflow ``Run`` objects).
        lock_dir: Where the lock of a non-SQLite store lives.

    Returns:
        The ids of the runs marked.
    """
    marked: list[str] = []
    while True:
        newly = []
        for run in running:
            if run.info.run_id in marked or _orphaned(client, run.data.tags) is None:
                continue
            with store.store_lock(uri, lock_dir):  # re-read: a resumed trial may have moved
                fresh = store.retry(client.get_run, run.info.run_id)
                reason = _orphaned(client, fresh.data.tags)
                if fresh.info.status != "RUNNING" or reason is None:
                    continue
                note = f"Marked FAILED by the launcher at {time.strftime('%Y-%m-%d %H:%M:%S')}: "
                store.retry(client.set_tag, run.info.run_id, NOTE, note + reason)
                store.retry(client.set_tag, run.info.run_id, f"{PREFIX}stale", reason)
                store.retry(client.set_terminated, run.info.run_id, "FAILED")
            log.warning("run %s (%s) marked FAILED: %s", run.info.run_name, run.info.run_id, reason)
            newly.append(run.info.run_id)
        if not newly:
            return marked
        marked += newly


class Heartbeat:
    """Refreshes ``cryptotrade.heartbeat`` of the registered runs from a daemon thread.

    Args:
        client: A client of the runs' store (:func:`cryptotrade.launch.tracking.client`).
        interval_s: Seconds between beats; 0: never.
    """

    def __init__(self, client: MlflowClient, interval_s: float) -> None:
        self.client, self.interval_s = client, interval_s
        self.runs: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, run_id: str) -> None:
        """Start beating for ``run_id`` (starts the thread on first use)."""
        self.runs.add(run_id)
        if self._thread is None and self.interval_s > 0:
            self._thread = threading.Thread(target=self._loop, name="mlflow-heartbeat", daemon=True)
            self._thread.start()

    def discard(self, run_id: str) -> None:
        """Stop beating for ``run_id``."""
        self.runs.discard(run_id)

    def _loop(self) -> None:
        client = self.client
        while not self._stop.wait(self.interval_s):
            for run_id in list(self.runs):
                try:
                    store.retry(client.set_tag, run_id, f"{PREFIX}heartbeat", f"{time.time():.0f}")
                except Exception as exc:  # a missed beat is not worth killing a run for
                    log.debug("heartbeat of %s failed: %s", run_id, exc)

    def stop(self) -> None:
        """Stop the thread."""
        self._stop.set()
