"""The watchdog that stops a private local Ray's processes when its driver dies
(:mod:`cryptotrade.optimize.reaper`). Fast: ``sleep`` processes stand in for Ray's, and Ray
itself is mocked; the real SIGKILLed search is in ``test_ray_orphans_slow.py``."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from conftest import ROOT

from cryptotrade.optimize import reaper, workers
from cryptotrade.optimize.reaper import MARK, RayWatchdog, marked_pids, reap

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def _sleeper(token: str | None, *argv: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != MARK}
    if token:
        env[MARK] = token
    return subprocess.Popen(argv or ["sleep", "60"], env=env)


def _gone(token: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while marked_pids(token) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not marked_pids(token)


def test_reap_stops_exactly_the_processes_with_its_token():
    token, other = uuid.uuid4().hex, uuid.uuid4().hex
    mine, theirs, unmarked = _sleeper(token), _sleeper(other), _sleeper(None)
    # a process that ignores SIGTERM is killed after the grace period
    stubborn = _sleeper(
        token,
        sys.executable,
        "-c",
        "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        "print('ready', flush=True); time.sleep(60)",
    )
    try:
        deadline = time.monotonic() + 10
        while len(marked_pids(token)) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)  # the stubborn one has installed its handler
        assert sorted(marked_pids(token)) == sorted([mine.pid, stubborn.pid])
        assert sorted(reap(token, grace=0.5)) == sorted([mine.pid, stubborn.pid])
        assert mine.wait(5) == -signal.SIGTERM
        assert stubborn.wait(5) == -signal.SIGKILL
        assert theirs.poll() is None and unmarked.poll() is None, "not ours: left alone"
    finally:
        for proc in (mine, theirs, unmarked, stubborn):
            proc.kill()
            proc.wait()


DRIVER = """
import subprocess, sys, time
from cryptotrade.optimize.reaper import RayWatchdog
watchdog = RayWatchdog().__enter__()
with watchdog.marking():  # what ray.init starts inherits the token
    child = subprocess.Popen(["sleep", "60"])
later = subprocess.Popen(["sleep", "60"])  # started after: not part of the Ray session
print(watchdog.token, child.pid, watchdog.process.pid, later.pid, flush=True)
time.sleep(60)
"""


def test_a_sigkilled_driver_leaves_no_process_it_marked():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER], stdout=subprocess.PIPE, text=True, env=env
    )
    token, child, watchdog, later = driver.stdout.readline().split()  # type: ignore[union-attr]
    try:
        assert marked_pids(token) == [int(child)], "only what was started while marking"
        time.sleep(0.3)
        assert marked_pids(token) == [int(child)], "nothing stopped while the driver lives"
        driver.kill()
        driver.wait()
        assert _gone(token, timeout=10), "the watchdog stopped the orphan"
        deadline = time.monotonic() + 5
        while os.path.exists(f"/proc/{watchdog}") and time.monotonic() < deadline:
            time.sleep(0.05)
        if os.path.exists(f"/proc/{watchdog}"):  # a zombie until init reaps it
            state = Path(f"/proc/{watchdog}/stat").read_text().split()[2]
            assert state == "Z", "the watchdog exits when done"
        assert Path(f"/proc/{later}").exists(), "an unmarked process is left alone"
    finally:
        driver.kill()
        driver.wait()
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(later), signal.SIGKILL)
        for pid in marked_pids(token):
            os.kill(pid, signal.SIGKILL)


class _FakeRay:
    def __init__(self) -> None:
        self.marks: list[str | None] = []

    def is_initialized(self) -> bool:
        return False

    def init(self, **kwargs):
        self.marks.append(os.environ.get(MARK))

    def shutdown(self) -> None:
        pass

    def cluster_resources(self) -> dict:
        return {"CPU": 1.0}


def test_a_started_ray_is_watched_and_a_joined_cluster_is_not(monkeypatch):
    import ray

    fake = _FakeRay()
    for name in ("is_initialized", "init", "shutdown", "cluster_resources"):
        monkeypatch.setattr(ray, name, getattr(fake, name))
    monkeypatch.setattr(workers, "enable_token_auth", lambda address: False)
    monkeypatch.delenv(MARK, raising=False)
    made: list[RayWatchdog] = []

    class Recorded(RayWatchdog):
        def __enter__(self) -> RayWatchdog:
            made.append(self)
            return super().__enter__()

    monkeypatch.setattr(workers, "RayWatchdog", Recorded)
    with workers.ray_session("", 1):
        assert made[0].process is not None and made[0].process.poll() is None
    assert made[0].process.returncode == 0, "the session ended: the watchdog is done"
    for address in ("auto", "127.0.0.1:6379"):
        with workers.ray_session(address):
            pass
    assert fake.marks == [made[0].token, None, None], "only a Ray we start carries a token"
    assert [w.process for w in made[1:]] == [None, None], "no watchdog for a joined cluster"
    assert MARK not in os.environ


def test_the_watchdog_runs_without_the_package():
    """It is started as ``python -I reaper.py``: the standard library only."""
    source = Path(reaper.__file__).read_text()
    imports = {
        line.split()[1].split(".")[0]
        for line in source.splitlines()
        if line.startswith(("import ", "from "))
    }
    assert imports <= set(sys.stdlib_module_names) | {"__future__"}, imports
