"""What a user sees: a 2x2 multirun is one parent run with four children in the MLflow UI
(headless chromium screenshot; slow, needs playwright and a chromium binary)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow
import pytest
from conftest import run_cli

CHILDREN = ["#0 seed=0 embargo=0", "#1 seed=0 embargo=1", "#2 seed=1 embargo=0"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_mlflow_ui_shows_one_sweep_parent_with_four_children(tmp_path, mlflow_uri):
    sync_api = pytest.importorskip("playwright.sync_api")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no chromium binary (apt-get install chromium)")
    out = f"paths.output_dir={tmp_path / 'out'}"
    proc = run_cli("-m", "debug=default", "task=data", "seed=0,1", "data.split.embargo=0,1", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    experiment = mlflow.MlflowClient(mlflow_uri).get_experiment_by_name("cryptotrade")
    port = _free_port()
    mlflow_bin = str(Path(sys.executable).with_name("mlflow"))
    command = [mlflow_bin, "ui", "--backend-store-uri", mlflow_uri, "--host", "127.0.0.1"]
    ui = subprocess.Popen(
        [*command, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(180):
            try:
                urllib.request.urlopen(f"{base}/health")
                break
            except OSError:
                time.sleep(1)
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1600, "height": 600})
            page.goto(f"{base}/#/experiments/{experiment.experiment_id}/runs", timeout=120_000)
            parent = page.get_by_text("sweep seed=0,1").first
            parent.wait_for(timeout=120_000)
            assert page.get_by_text("5 matching runs").count() == 1
            assert page.get_by_text(CHILDREN[0]).count() == 0  # nested under the parent
            expand = page.locator(
                '[role="gridcell"] button[data-component-id*="runnamecellrenderer"]'
            )
            assert expand.count() == 1, "exactly one run has children"
            expand.first.click()
            page.get_by_text("#3 seed=1 embargo=1").first.wait_for(timeout=60_000)
            for name in CHILDREN:
                assert page.get_by_text(name).count() == 1, name
            page.screenshot(path=str(tmp_path / "mlflow-sweep.png"))
            browser.close()
    finally:
        ui.terminate()
        ui.wait(timeout=60)
    assert (tmp_path / "mlflow-sweep.png").stat().st_size > 10_000


def test_make_ui_takes_a_port():
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    root = Path(__file__).resolve().parents[1]
    for args, port in (([], "5000"), (["PORT=5123"], "5123")):
        # -n prints the recipe without running it (nor the install it depends on)
        out = subprocess.run(
            [make, "-n", "-o", ".venv/.installed", "ui", *args],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        line = next(x for x in out.splitlines() if "mlflow ui" in x)
        assert line.endswith(f"--host 127.0.0.1 --port {port}")
