"""A watchdog that stops every process of a private local Ray whose driver died.

Ray ties the processes that ``ray.init`` starts (GCS, raylet, monitors) to the driver with
``PR_SET_PDEATHSIG``, so a SIGKILLed driver takes them down at once. Its DashboardAgent and
RuntimeEnvAgent are children of the raylet: they notice its death at once, but before exiting
they report it to the GCS, already dead, and that call waits out a fixed 60 s timeout (Ray
2.60: ``report_raylet_error_logs`` -> ``publish_error_to_driver(..., 60)``; no setting shortens
it). Ray workers leave within a few seconds on their own.

:class:`RayWatchdog` closes that gap for a Ray this process starts (never for a cluster it
joins): before ``ray.init`` the driver starts this module as a small separate process (stdlib
only, its own session, so a signal to the driver's process group leaves it alone) and marks
its environment with ``CRYPTOTRADE_RAY_OWNER=<token>``, which every process Ray starts then
inherits (the raylet passes its environment to agents and workers; a process title set by Ray
does not touch it). When the driver dies (the watchdog's stdin pipe from the driver reaches EOF,
or its parent changes) or the session ends, the watchdog sends SIGTERM to every process whose
``/proc/<pid>/environ`` holds that exact token, then SIGKILL to any still there after
:data:`GRACE_SECONDS`. Processes of another run, or of a cluster the user started, never hold
the token. Linux only (``/proc``); elsewhere the watchdog is not started.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)
MARK = "CRYPTOTRADE_RAY_OWNER"
GRACE_SECONDS = 2.0  # after SIGTERM, before SIGKILL
POLL_SECONDS = 1.0  # how often the watchdog checks that its driver is still its parent
PROC = Path("/proc")


def marked_pids(token: str) -> list[int]:
    """Processes whose initial environment holds ``CRYPTOTRADE_RAY_OWNER=<token>``.

    Args:
        token: The session's token (:class:`RayWatchdog`).

    Returns:
        Their pids, without this process; processes of other users (unreadable) are skipped.
    """
    entry = f"{MARK}={token}".encode()
    found = []
    with contextlib.suppress(OSError):
        for path in PROC.iterdir():
            if not path.name.isdigit() or int(path.name) == os.getpid():
                continue
            with contextlib.suppress(OSError):  # gone, or not ours
                if entry in (path / "environ").read_bytes().split(b"\0"):
                    found.append(int(path.name))
    return found


def _signal(pids: list[int], token: str, signum: int) -> list[int]:
    """Send ``signum`` to the pids still marked with ``token``; the pids it reached."""
    still = set(marked_pids(token))  # re-read: a pid may have been reused meanwhile
    reached = []
    for pid in pids:
        if pid in still:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signum)
                reached.append(pid)
    return reached


def reap(token: str, grace: float = GRACE_SECONDS) -> list[int]:
    """Stop every process marked with ``token``: SIGTERM, then SIGKILL after ``grace`` s.

    Args:
        token: The session's token.
        grace: Seconds a process has to exit after SIGTERM.

    Returns:
        The pids that were signalled.
    """
    pids = _signal(marked_pids(token), token, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while pids and time.monotonic() < deadline:
        time.sleep(0.05)
        if not set(pids) & set(marked_pids(token)):  # an exited process (or zombie) has none
            return pids
    _signal(pids, token, signal.SIGKILL)
    return pids


def watch(token: str, driver: int, log_path: str | None = None) -> None:
    """The watchdog's loop: wait for the driver to die or close stdin, then :func:`reap`.

    Args:
        token: The session's token.
        driver: The driver's pid (this process's parent while the driver lives).
        log_path: A file to append a line to when processes were reaped; a later line on stdin
            replaces it (the driver sends its Ray session's log folder once Ray has started).
    """
    pending = b""
    while os.getppid() == driver:
        ready, _, _ = select.select([0], [], [], POLL_SECONDS)
        if not ready:
            continue
        chunk = os.read(0, 4096)
        if not chunk:
            break  # EOF: the driver closed the pipe (session over) or died
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            log_path = line.decode() or log_path
    reaped = reap(token)
    if reaped and log_path:
        with contextlib.suppress(OSError), open(log_path, "a") as log:
            log.write(
                f"{time.strftime('%Y-%m-%d %H:%M:%S')} driver {driver} gone: stopped "
                f"{len(reaped)} processes of its local Ray ({MARK}={token}): {reaped}\n"
            )


class RayWatchdog:
    """Stops the processes of the local Ray this process starts if it dies (module docstring).

    Use as a context manager around a private Ray's whole life, with :meth:`marking` around
    ``ray.init``; with ``enabled=False`` (a joined cluster, or no ``/proc``) it does nothing.

    Args:
        enabled: Start the watchdog.
    """

    def __init__(self, enabled: bool = True) -> None:
        self.token = uuid.uuid4().hex
        self.process: subprocess.Popen[bytes] | None = None
        self.enabled = enabled and (PROC / "self" / "environ").exists()

    def __enter__(self) -> RayWatchdog:
        if not self.enabled:
            return self
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-I", str(Path(__file__).resolve()), self.token, str(os.getpid())],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # outlives a signal sent to the driver's process group
            )
        except OSError as err:  # the search runs on; only a SIGKILL's leftovers go unguarded
            log.warning("Ray watchdog not started (%s): a killed run may leave Ray behind", err)
        return self

    @contextlib.contextmanager
    def marking(self) -> Iterator[None]:
        """Processes started inside (by ``ray.init``) inherit the token; this one's later
        children (a process pool, a ``git`` call) do not."""
        if self.process is None:
            yield
            return
        before = os.environ.get(MARK)
        os.environ[MARK] = self.token
        try:
            yield
        finally:
            if before is None:
                os.environ.pop(MARK, None)
            else:
                os.environ[MARK] = before

    def log_to(self, path: str) -> None:
        """Where the watchdog notes what it stopped (a file in the Ray session's log folder)."""
        if self.process is not None and self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.write(path.encode() + b"\n")
                self.process.stdin.flush()

    def __exit__(self, *exc: object) -> None:
        """The session is over (Ray shut down): the watchdog stops any straggler and exits."""
        if self.process is None:
            return
        with contextlib.suppress(OSError):
            self.process.stdin.close()  # type: ignore[union-attr]
        # a watchdog still reaping after that goes on by itself; nothing here needs it any more
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=GRACE_SECONDS + 10)


if __name__ == "__main__":  # python -I reaper.py <token> <driver pid>
    watch(sys.argv[1], int(sys.argv[2]))
