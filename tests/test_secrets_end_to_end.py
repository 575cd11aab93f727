"""A pipeline that succeeds with a credential under every ccxt name writes none of them anywhere.

The launcher runs as a user runs it (``python -m cryptotrade.run``, here through a driver that
gives the real ``ccxt.binance`` recorded REST answers, as ``tests/data/ccxt_recorded.py`` does),
with ``data=binance`` and a unique value under each of ccxt's ``requiredCredentials`` names plus a
URI password in ``data.source.options``. Then every byte of the MLflow store, the artifacts (the
logged models included), the output folders, the caches, Ray's temp folder and the terminal is
searched for every value. A plain run and a GA search through Ray are both checked (slow).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
from conftest import ROOT, SHARED_DATA

CREDENTIALS = (
    "apiKey", "secret", "password", "uid", "login", "twofa", "privateKey", "walletAddress", "token",
)  # fmt: skip
VALUES = {name: f"Zq{i}x{name.lower()}7731" for i, name in enumerate(CREDENTIALS)}
URI_PASSWORD = "Zqurip4ss7731"

DRIVER = textwrap.dedent(
    """
    import runpy, sys
    import ccxt
    import pandas as pd
    sys.path.insert(0, {tests_data!r})
    from ccxt_recorded import RecordedBinance, kline_rows_from_bars, ms, recorded_markets

    bars = pd.read_parquet({spot!r}).set_index("date").loc["2023-12-01":"2024-07-31"]
    server = RecordedBinance(spot=kline_rows_from_bars(bars), now_ms=ms("2024-08-01"))

    class Recorded(ccxt.binance):
        # the real exchange class; only its HTTP layer answers from the recording
        def __init__(self, config=None):
            super().__init__(config)
            self.rateLimit = 1
            self.fetch = server.fetch
            self.milliseconds = lambda: server.now_ms

        def load_markets(self, reload=False, params=None):
            self.set_markets(recorded_markets())
            return self.markets

    ccxt.binance = Recorded
    sys.argv = ["cryptotrade.run", *sys.argv[1:]]
    runpy.run_module("cryptotrade.run", run_name="__main__", alter_sys=True)
    """
)


def _options() -> str:
    pairs = [f"{k}: {v}" for k, v in VALUES.items()]
    pairs.append(f"feed: 'wss://trader:{URI_PASSWORD}@example.invalid/stream'")
    return "data.source.options={" + ", ".join(pairs) + "}"


def _leaks(folder: Path, secrets: list[str]) -> list[str]:
    found = []
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            found += [f"{path}: {s}" for s in secrets if s.encode() in data]
    return found


@pytest.mark.slow
@pytest.mark.parametrize(
    "search",
    [[], ["optimizer=ga", "optimizer.population=2", "optimizer.generations=1",
          "optimizer.workers=1", "ray.num_cpus=1", "ray.object_store_memory=100000000"]],
    ids=["pipeline", "ga-on-ray"],
)  # fmt: skip
def test_no_credential_reaches_any_file_or_the_terminal(tmp_path, mlflow_store, search):
    ray_tmp = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))  # short: Ray's socket paths
    try:
        driver = tmp_path / "driver.py"
        spot = SHARED_DATA / "binance_spot_BTCUSDT_1h.parquet"
        driver.write_text(DRIVER.format(tests_data=str(ROOT / "tests" / "data"), spot=str(spot)))
        overrides = [
            "debug=default",
            "data=binance",
            "data.source.start=2024-01-01",
            "data.source.end=2024-08-01",
            "data.source.max_retries=0",
            _options(),
            f"paths.root={tmp_path}",
            "evaluation.plots=false",
            *search,
        ]
        proc = subprocess.run(
            [sys.executable, str(driver), *overrides],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=1800,
            env={**os.environ, "RAY_TMPDIR": str(ray_tmp), "PYTHONPATH": str(ROOT)},
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        secrets = [*VALUES.values(), URI_PASSWORD]
        files = [p for p in tmp_path.rglob("*") if p.is_file()]
        assert any(p.name == "settings.json" for p in files), "the logged model is searched"
        assert any(p.parent.name == ".hydra" for p in files)
        assert any("ccxt" in p.parts for p in files), "the download cache is searched"
        if search:
            assert any(ray_tmp.rglob("*.log")), "Ray's temp folder is searched"
        terminal = proc.stdout + proc.stderr
        assert [s for s in secrets if s in terminal] == []
        assert _leaks(tmp_path, secrets) == []
        assert _leaks(ray_tmp, secrets) == []
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.parametrize("flags", [["--cfg", "job"], ["--info", "config"]])
def test_printed_configs_mask_every_credential(flags):
    """Hydra prints these before any launcher callback runs (``--info`` printed them in clear)."""
    proc = subprocess.run(
        [sys.executable, "-m", "cryptotrade.run", "data=binance", _options(), *flags],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    terminal = proc.stdout + proc.stderr
    assert "twofa: '***'" in terminal or "twofa: ***" in terminal
    assert [s for s in [*VALUES.values(), URI_PASSWORD] if s in terminal] == []
