"""``make_pool`` against a real Ray head started here (``ray start --head`` on 127.0.0.1, its own
temp dir and token): joined by its GCS address with token authentication, and left alone by an
empty ``ray.address`` (a private local Ray). Only the processes of that head are stopped."""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
RAY = Path(sys.executable).parent / "ray"

DRIVER = """
import json, sys
import ray
from cryptotrade.optimize.trial import TrialSpec
from cryptotrade.optimize.workers import make_pool

def double(spec):
    return {"y": 2 * spec.point["x"]}

specs = [TrialSpec(config={}, point={"x": x}, output_dir=".") for x in (1, 2)]
with make_pool(ray_enabled=True, address=sys.argv[1], num_cpus=1, workers=None, timeout=60) as p:
    outcomes = p.map(double, specs)
    gcs = ray.get_runtime_context().gcs_address
print(json.dumps({"gcs": gcs, "y": [o.metrics and o.metrics["y"] for o in outcomes],
                  "errors": [o.error for o in outcomes if o.error]}))
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _psutil() -> Any:
    """Ray's bundled psutil (``import ray`` puts it on the path)."""
    import ray  # noqa: F401

    return importlib.import_module("psutil")


def _ours(temp_dir: str) -> list:
    """The processes of the head started with ``temp_dir``: those whose command lines name it
    and their descendants (Ray's agents rename themselves ``ray::...``)."""
    psutil = _psutil()
    found: dict[int, Any] = {}
    for proc in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if any(temp_dir in part for part in proc.info["cmdline"] or []):
                found[proc.pid] = proc
                found |= {child.pid: child for child in proc.children(recursive=True)}
    return [p for p in found.values() if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def _stop(temp_dir: str) -> None:
    """Stop only the head started with ``temp_dir`` (never ``ray stop``: it stops every Ray of
    this machine, other users' included)."""
    psutil = _psutil()
    procs = _ours(temp_dir)
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, alive = psutil.wait_procs(procs, timeout=10)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()


@pytest.fixture
def ray_head(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """A Ray head on 127.0.0.1 with token authentication (token file in ``tmp_path``); yields
    its GCS address and the environment that holds the token."""
    temp_dir = tempfile.mkdtemp(prefix="rayt", dir="/tmp")  # short: Ray's socket paths
    token = tmp_path / "auth_token"
    token.write_text("ct" * 16)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_AUTH", "RAY_ADDRESS"))}
    env |= {"RAY_AUTH_TOKEN_PATH": str(token), "PYTHONPATH": str(ROOT)}
    port = _free_port()
    try:
        subprocess.run(
            [str(RAY), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}",
             f"--temp-dir={temp_dir}", "--num-cpus=2", "--include-dashboard=false",
             "--disable-usage-stats"],
            env=env, check=True, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        yield f"127.0.0.1:{port}", env
    finally:
        _stop(temp_dir)
        time.sleep(1)
        assert not _ours(temp_dir), "the head's processes are still running"
        shutil.rmtree(temp_dir, ignore_errors=True)


def _drive(address: str, env: dict[str, str]) -> dict:
    import json

    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, address],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def test_make_pool_joins_a_head_by_its_gcs_address_with_its_token(ray_head):
    address, env = ray_head
    result = _drive(address, env)  # RAY_AUTH_MODE unset: the token is sent (enable_token_auth)
    port = address.rsplit(":", 1)[1]  # Ray reports the node's IP for 127.0.0.1
    assert result["gcs"].endswith(f":{port}") and result["y"] == [2.0, 4.0] and not result["errors"]


def test_an_empty_address_starts_a_private_ray_beside_a_running_head(ray_head):
    address, env = ray_head
    result = _drive("", env | {"RAY_ADDRESS": address})  # not even RAY_ADDRESS makes it join
    port = address.rsplit(":", 1)[1]
    assert (
        not result["gcs"].endswith(f":{port}")
        and result["y"] == [2.0, 4.0]
        and not result["errors"]
    )
