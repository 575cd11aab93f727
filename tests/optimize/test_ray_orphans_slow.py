"""A search SIGKILLed while candidates train leaves no process of its private local Ray behind
(issue 20: Ray's DashboardAgent and RuntimeEnvAgent outlived the driver by about a minute).

Slow: a real GA starts Ray and trains a candidate. The session's processes are found by the
test's own Ray temp dir (``RAY_TMPDIR``), in their command line or, for the agents and workers
whose title Ray rewrites, their environment, so other Ray instances on the machine are neither
counted nor touched."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import ROOT

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
]
START_TIMEOUT = 900  # until a candidate trains: Ray's start and a worker's imports, shared cores
GONE_WITHIN = 20.0  # seconds after the SIGKILL (Ray alone: about 60 s for its agents)


def _session(ray_tmp: str) -> dict[int, str]:
    """The live processes of the Ray session under ``ray_tmp``: pid -> command line."""
    found = {}
    needle, env_entry = ray_tmp.encode(), f"RAY_TMPDIR={ray_tmp}".encode()
    for path in Path("/proc").iterdir():
        if not path.name.isdigit() or int(path.name) == os.getpid():
            continue
        try:
            cmdline = (path / "cmdline").read_bytes()
            environ = (path / "environ").read_bytes()  # empty for a zombie
        except OSError:
            continue
        if needle in cmdline or env_entry in environ.split(b"\0"):
            found[int(path.name)] = cmdline.replace(b"\0", b" ").decode(errors="replace")[:120]
    return found


def test_a_sigkilled_search_leaves_no_process_of_its_ray(tmp_path, mlflow_uri):
    # a short path of its own: Ray's socket paths must stay under 107 bytes
    ray_tmp = tempfile.mkdtemp(prefix="ct-orphans-", dir="/tmp")
    log_path = tmp_path / "driver.log"
    with open(log_path, "w") as log:
        driver = subprocess.Popen(
            [
                sys.executable, "-m", "cryptotrade.run", "debug=default", "optimizer=ga",
                "optimizer.population=4", "optimizer.generations=2", "ray.num_cpus=1",
                f"optimizer.checkpoint_dir={tmp_path / 'ckpt'}",
                f"optimizer.column_cache={tmp_path / 'columns'}",
                f"paths.output_dir={tmp_path / 'out'}",
            ],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "RAY_TMPDIR": ray_tmp},
        )  # fmt: skip
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not any(c.startswith("ray::run_trial") for c in _session(ray_tmp).values()):
            assert driver.poll() is None, log_path.read_text()[-4000:]
            assert time.monotonic() < deadline, "no candidate started training"
            time.sleep(0.5)
        titles = " ".join(_session(ray_tmp).values())
        for name in ("raylet", "gcs_server", "ray::DashboardAgent", "ray::RuntimeEnvAgent"):
            assert name in titles, f"{name} is not among the session's processes: {titles}"

        driver.send_signal(signal.SIGKILL)
        driver.wait()
        killed = time.monotonic()
        while _session(ray_tmp) and time.monotonic() - killed < GONE_WITHIN:
            time.sleep(0.25)
        left = _session(ray_tmp)
        assert not left, f"still running {GONE_WITHIN:.0f} s after the driver's SIGKILL: {left}"
        print(f"the session's processes were gone {time.monotonic() - killed:.1f} s after SIGKILL")
    finally:
        driver.kill()
        driver.wait()
        for pid in _session(ray_tmp):  # only this test's session: found by its temp dir
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(ray_tmp, ignore_errors=True)
