"""The HTML report in a real browser (Debian's chromium driven by Playwright): slow suite."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from cryptotrade.env import CompiledMarket, EnvSettings
from cryptotrade.evaluation import evaluate_split
from cryptotrade.evaluation.settings import EvaluationSettings
from tests.env.env_testdata import random_walk

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.slow


def _report(tmp_path: Path) -> Path:
    data = random_walk(n=400, n_features=2, seed=4)
    data = replace(data, regime=(np.arange(400) // 100 % 2).astype(np.int8))

    market = CompiledMarket.build(data, settings=EnvSettings(window=10), evaluation=True)

    def policy(obs, env):  # a simple trend follower: long after an up bar, short after a down bar
        t = env.current_index
        return 2 if env.data.close[t] > env.data.open[t] else 0

    result = evaluate_split(
        policy,
        market,
        prefix="test",
        seed=0,
        settings=EvaluationSettings(random_seeds=[0, 1]),
        regime_names=["up", "down"],
        config_yaml="env:\n  window: 10\n",
        log_to_run=False,
    )
    path = tmp_path / "report.html"
    path.write_text(result.html)
    return path


def test_report_renders_in_chromium(tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    path = _report(tmp_path)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(path.as_uri())
        # every picture decoded (a broken base64 PNG has naturalWidth 0)
        widths = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.naturalWidth)")
        headers = page.eval_on_selector_all("th", "ths => ths.map(t => t.textContent)")
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        browser.close()
    assert len(widths) == 5 and min(widths) > 0
    for name in ("agent", "buy_hold", "flat", "random", "oracle"):
        assert name in headers
    assert (tmp_path / "report.png").stat().st_size > 50_000
