"""The MLflow UI and the reports in a real browser (Debian's chromium driven by Playwright).

Real tiny runs through the launcher (a single run, a 2-job multirun, a 2-candidate GA) fill a
store in a temporary folder; ``mlflow server`` serves it on 127.0.0.1 and chromium visits the runs
table, run pages, every HTML artifact (and the first image) of the runs visited in MLflow's
artifact view, and every HTML and image artifact straight from its file. Each page must show no
console error, no page error, no broken image and no request leaving the machine; a full-page
screenshot of each is saved under the test's folder and copied to ``$CRYPTOTRADE_SCREENSHOTS``
when that is set.

Slow (the launcher trains six debug agents; about 18 minutes with the machine's 2 cores shared
and busy, the MLflow pages taking 20-30 s each). Skipped where chromium is not installed
(``apt-get install -y chromium``; Playwright's own browser download is not needed) or the
``playwright`` package is missing (``pip install -e .[dev]``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

import pytest
from conftest import run_cli

CHROMIUM = shutil.which("chromium")
SHOTS_ENV = "CRYPTOTRADE_SCREENSHOTS"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp")
CLI_TIMEOUT = 3600  # a GA trains several agents: minutes on a quiet machine, more on shared cores
PAGE_TIMEOUT_MS = 180_000  # MLflow's bundle is large and the cores are shared
# MLflow's own request, not the project's: the UI asks who is signed in, and a server without an
# auth app answers 404 (a "Failed to load resource" console error on every MLflow page)
MLFLOW_OWN_404 = ("/ajax-api/2.0/mlflow/users/current",)
BROKEN_IMAGES = (
    "() => Array.from(document.images)"
    ".filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src.slice(0, 120))"
)
ALL_IMAGES_DONE = "() => Array.from(document.images).every(i => i.complete)"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)"
    ),
]


@dataclass
class Store:
    """The runs the launcher made, the server that serves them and where screenshots go."""

    url: str  # the MLflow server, http://127.0.0.1:<port>
    uri: str  # the SQLite store
    experiment_id: str
    single: Any  # mlflow Run objects
    multirun_parent: Any
    ga_parent: Any
    shots: Path
    runs: list[Any] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _launch(uri: str, *overrides: str) -> None:
    proc = run_cli(*overrides, env={"MLFLOW_TRACKING_URI": uri}, timeout=CLI_TIMEOUT)
    assert proc.returncode == 0, (overrides, proc.stderr[-4000:])


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """Three launcher calls on a fresh store, then ``mlflow server`` over it (stopped after)."""
    import mlflow

    tmp = tmp_path_factory.mktemp("browser")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    # the launcher uses an existing experiment: its artifacts stay in this folder
    experiment_id = client.create_experiment(
        "cryptotrade", artifact_location=(tmp / "mlartifacts").as_uri()
    )
    out = f"paths.output_dir={tmp / 'out'}"
    _launch(uri, "debug=default", out)
    _launch(uri, "-m", "debug=default", "seed=0,1", out)
    _launch(
        uri, "debug=default", "optimizer=ga", "optimizer.population=2",
        "optimizer.generations=1", "ray.num_cpus=2", f"optimizer.checkpoint_dir={tmp / 'ckpt'}",
        f"optimizer.column_cache={tmp / 'columns'}", out,
    )  # fmt: skip
    runs = client.search_runs([experiment_id], order_by=["attributes.start_time ASC"])
    top = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    (multirun,) = [r for r in top if r.data.tags.get("sweep_role") == "parent"]
    (ga,) = [r for r in top if r.data.tags.get("search/kind") == "ga"]
    parents = {multirun.info.run_id, ga.info.run_id}
    (single,) = [r for r in top if r.info.run_id not in parents]
    assert len(runs) == 7, [r.info.run_name for r in runs]  # 3 top-level runs, 4 children

    port = _free_port()
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1",
            "--port", str(port), "--backend-store-uri", uri, "--workers", "1",
        ],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    shots = tmp / "screenshots"
    shots.mkdir()
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=5) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            assert server.poll() is None, "mlflow server exited"
            assert time.monotonic() < deadline, "mlflow server did not answer in 180 s"
            time.sleep(1)
        yield Store(url, uri, experiment_id, single, multirun, ga, shots, runs)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=30)
        if os.environ.get(SHOTS_ENV):
            target = Path(os.environ[SHOTS_ENV])
            target.mkdir(parents=True, exist_ok=True)
            for png in shots.glob("*.png"):
                shutil.copy(png, target / png.name)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the playwright package is missing (pip install -e .[dev])"
    )
    with sync_api.sync_playwright() as p:
        # --no-sandbox: chromium refuses to start its sandbox as root (containers, CI)
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        # one context for every page: its HTTP cache spares each page MLflow's large bundle
        context = chromium.new_context(viewport={"width": 1400, "height": 900})
        yield context
        context.close()
        chromium.close()


@dataclass
class Seen:
    """What one page showed: problems found and the images it decoded."""

    name: str
    errors: list[str]
    broken: list[str]
    outside: list[str]
    images: int
    frames: list[str]  # the URL of every frame (MLflow shows an HTML artifact in a blob: one)

    def check(self) -> None:
        assert not self.errors, f"{self.name}: console/page errors {self.errors}"
        assert not self.broken, f"{self.name}: broken images {self.broken}"
        assert not self.outside, f"{self.name}: requests leaving the machine {self.outside}"


def visit(
    browser: Any,
    url: str,
    name: str,
    shots: Path,
    ready: Callable[[Any], None] | None = None,
) -> Seen:
    """Open ``url`` in a new page of the ``browser`` context, wait for ``ready`` and for every
    image of every frame, collect errors and broken images, and save a full-page screenshot
    ``<shots>/<name>.png``."""
    errors: list[str] = []
    outside: list[str] = []
    base = urlparse(url)

    def route(request_route: Any) -> None:  # nothing leaves the machine
        target = urlparse(request_route.request.url)
        if target.scheme in ("data", "blob", "file") or target.netloc == base.netloc:
            request_route.continue_()
        else:
            outside.append(request_route.request.url)
            request_route.abort()

    def console(message: Any) -> None:
        if message.type != "error":
            return
        source = message.location.get("url", "")
        if "Failed to load resource" in message.text and source.endswith(MLFLOW_OWN_404):
            return
        errors.append(f"{message.text} ({source})")

    page = browser.new_page()
    page.route("**/*", route)
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    page.on("console", console)
    page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
    try:
        page.goto(url, wait_until="networkidle", timeout=PAGE_TIMEOUT_MS)
        if ready is not None:
            ready(page)
        page.wait_for_timeout(1500)  # let the page finish drawing what it just received
        broken: list[str] = []
        images = 0
        for frame in page.frames:
            frame.wait_for_function(ALL_IMAGES_DONE, timeout=PAGE_TIMEOUT_MS)
            broken += frame.evaluate(BROKEN_IMAGES)
            images += frame.evaluate("() => document.images.length")
        page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
        return Seen(name, errors, broken, outside, images, [f.url for f in page.frames])
    finally:
        page.close()


def _text(text: str) -> Callable[[Any], None]:
    def ready(page: Any) -> None:
        page.get_by_text(text, exact=True).first.wait_for(state="visible")

    return ready


def _artifact_ready(path: str) -> Callable[[Any], None]:
    """MLflow's artifact view has drawn ``path``: the HTML in its sandboxed iframe, or the
    image (fetched through the server's get-artifact endpoint, shown from a blob URL)."""

    def ready(page: Any) -> None:
        if path.endswith(".html"):
            body = page.frame_locator("iframe").first.locator("body")
            body.locator("*").first.wait_for(state="attached")
        else:
            page.locator('img[src^="blob:"]').first.wait_for(state="visible")

    return ready


def _artifacts(store: Store, run: Any, path: str | None = None) -> list[str]:
    """Every file of ``run`` (recursively) that is an HTML page or an image."""
    import mlflow

    client = mlflow.MlflowClient(store.uri)
    found: list[str] = []
    for item in client.list_artifacts(run.info.run_id, path):
        if item.is_dir:
            found += _artifacts(store, run, item.path)
        elif item.path.endswith((".html", *IMAGE_SUFFIXES)):
            found.append(item.path)
    return found


def _run_page(store: Store, run: Any, tab: str = "") -> str:
    return f"{store.url}/#/experiments/{store.experiment_id}/runs/{run.info.run_id}{tab}"


def _check_run_and_its_artifacts(browser: Any, store: Store, run: Any, label: str) -> list[Seen]:
    """The run's page; every HTML artifact and the first image in MLflow's artifact view (each
    view costs a load of the whole UI: tens of seconds on shared cores); every HTML and image
    artifact also straight from its file."""
    seen = [visit(browser, _run_page(store, run), label, store.shots, _text(run.info.run_name))]
    local = Path(url2pathname(urlparse(run.info.artifact_uri).path))
    paths = _artifacts(store, run)
    first_image = next((p for p in paths if p.endswith(IMAGE_SUFFIXES)), None)
    for path in paths:
        flat = path.replace("/", "_").replace(".", "-")
        if path.endswith(".html") or path == first_image:
            view = _run_page(store, run, f"/artifacts/{path}")
            shown = visit(browser, view, f"{label}-artifact-{flat}", store.shots,
                          _artifact_ready(path))  # fmt: skip
            if path.endswith(".html"):
                blobs = [f for f in shown.frames if f.startswith("blob:")]
                assert blobs, f"{label}: {path} is not shown in MLflow's artifact view"
            seen.append(shown)
        file = visit(browser, (local / path).as_uri(), f"{label}-file-{flat}", store.shots)
        assert file.images >= 1 or path.endswith(".html"), f"{label}: {path} shows no image"
        seen.append(file)
    for each in seen:
        each.check()
    return seen


def test_runs_table_in_the_model_training_view_lists_every_top_level_run(browser, store):
    # MLflow 3 opens in its GenAI view; README's "MLflow 3" paragraph gives this URL
    url = f"{store.url}/#/experiments/{store.experiment_id}/runs?workflowType=machine_learning"

    children = {
        parent.info.run_id: sorted(
            r.info.run_name
            for r in store.runs
            if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id
        )
        for parent in (store.multirun_parent, store.ga_parent)
    }

    def ready(page: Any) -> None:
        for run in (store.single, store.multirun_parent, store.ga_parent):
            page.get_by_text(run.info.run_name, exact=True).first.wait_for(state="visible")
        # expand both parents (the button before a parent's name) to show their children
        for parent in (store.multirun_parent, store.ga_parent):
            row = page.locator(".ag-row", has_text=parent.info.run_name).first
            row.get_by_role("button").first.click()
            for name in children[parent.info.run_id]:
                page.get_by_text(name, exact=True).first.wait_for(state="visible")

    assert [len(names) for names in children.values()] == [2, 2]
    seen = visit(browser, url, "runs-table", store.shots, ready)
    seen.check()


def test_single_run_page_metrics_and_report(browser, store):
    seen = _check_run_and_its_artifacts(browser, store, store.single, "single")
    names = [s.name for s in seen]
    assert "single-artifact-test_report-html" in names and "single-file-test_report-html" in names
    report = next(s for s in seen if s.name == "single-file-test_report-html")
    assert report.images >= 5, "the report's pictures (equity, drawdown, trades, ...) are shown"
    metrics = visit(
        browser,
        _run_page(store, store.single, "/model-metrics"),
        "single-model-metrics",
        store.shots,
        _text(store.single.info.run_name),
    )
    metrics.check()


def test_multirun_parent_and_its_reports(browser, store):
    seen = _check_run_and_its_artifacts(browser, store, store.multirun_parent, "multirun")
    assert seen  # the parent's page, and any report a sweep parent logs


def test_ga_parent_and_its_reports(browser, store):
    seen = _check_run_and_its_artifacts(browser, store, store.ga_parent, "ga")
    names = {s.name for s in seen}
    assert {"ga-file-ga_fitness-png", "ga-artifact-test_report-html"} <= names
    assert "ga-file-test_report-html" in names
