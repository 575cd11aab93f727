"""Tick resampling: 10,000,000 trades into 1-minute bars, numba kernel vs pandas ``resample``.

Both produce the same bars (open, high, low, close, volume, trade count, taker buy/sell volume,
VWAP; bars without trades dropped) from the same synthetic trades, in the same process. pandas gets
its DataFrame (including the derived ``buy_size`` and ``notional`` columns it needs) built before
the clock starts; the numba side is timed end to end from the raw arrays to its bars DataFrame.
Times are best-of-N after a warm-up call (numba compilation excluded).

Run: ``python -m experiments.benchmarks ticks`` (writes the table between the ``ticks`` markers).
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable

import numba
import numpy as np
import pandas as pd

from cryptotrade.data.sources import resample_trades
from experiments.benchmarks.readme import write_section

N_TRADES = 10_000_000
DAYS = 30  # ~231 trades per 1-minute bar, 43,200 bars
STEP_NS = 60 * 10**9
TARGET = 8.0


def synthetic_trades(n: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Sorted ns timestamps over DAYS days, a random-walk price, exponential sizes, buy flags."""
    rng = np.random.default_rng(seed)
    start = 1_704_067_200 * 10**9  # 2024-01-01
    ts = np.sort(rng.integers(0, DAYS * 86_400 * 10**9, n, dtype=np.int64)) + start
    price = np.round(40_000 + np.cumsum(rng.normal(0, 0.5, n)), 1)
    size = np.round(rng.exponential(100.0, n)) + 1.0
    is_buy = (rng.random(n) < 0.5).astype(np.int8)
    return ts, price, size, is_buy


def pandas_bars(frame: pd.DataFrame) -> pd.DataFrame:
    """The pandas way: resample, OHLC + sums + count, VWAP, drop bars without trades."""
    grouped = frame.resample("1min")
    bars = grouped["price"].ohlc()
    sums = grouped[["size", "buy_size", "notional"]].sum()
    bars["volume"] = sums["size"]
    bars["trades"] = grouped["price"].count()
    bars["buy_volume"] = sums["buy_size"]
    bars["sell_volume"] = sums["size"] - sums["buy_size"]
    bars["vwap"] = sums["notional"] / sums["size"]
    return bars[bars["trades"] > 0]


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo where available."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def best_of(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    """Best wall time of ``repeat`` calls and the last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def check_equal(ours: pd.DataFrame, ref: pd.DataFrame) -> None:
    """Same bars: identical index, prices and counts; sums equal to float rounding."""
    np.testing.assert_array_equal(ours.index.asi8, ref.index.as_unit("ns").asi8)
    for col in ("open", "high", "low", "close", "trades"):
        np.testing.assert_array_equal(ours[col].to_numpy(), ref[col].to_numpy(), err_msg=col)
    for col in ("volume", "buy_volume", "sell_volume", "vwap"):
        np.testing.assert_allclose(ours[col].to_numpy(), ref[col].to_numpy(), rtol=1e-12)


def main(n_trades: int = N_TRADES, repeat: int = 10) -> str:
    ts, price, size, is_buy = synthetic_trades(n_trades)

    def ours() -> pd.DataFrame:
        return resample_trades(ts, price, size, is_buy, STEP_NS, "drop")

    ours()  # numba warm-up (compiled or loaded from the on-disk cache)
    t_nb, bars_nb = best_of(ours, repeat)

    frame = pd.DataFrame(  # construction is not timed
        {"price": price, "size": size, "buy_size": size * is_buy, "notional": price * size},
        index=pd.to_datetime(ts, unit="ns", utc=True),
    )
    pandas_bars(frame)  # warm-up as well
    t_pd, bars_pd = best_of(lambda: pandas_bars(frame), repeat)
    check_equal(bars_nb, bars_pd)  # type: ignore[arg-type]
    ratio = t_pd / t_nb
    verdict = "target met" if ratio >= TARGET else f"target missed ({ratio:.1f}x < {TARGET:.0f}x)"
    markdown = "\n".join([
        f"{n_trades:,} synthetic trades ({DAYS} days, sorted) into {len(bars_nb):,} one-minute "  # type: ignore[arg-type]
        "bars: OHLC, volume, trade count, taker buy/sell volume, VWAP; empty bars dropped. "
        "Values checked equal (prices and counts exactly, sums to 1e-12 relative).",
        "",
        "| method | best time (ms) | speed-up vs pandas |",
        "|---|---:|---:|",
        f"| cryptotrade `resample_trades` (numba, arrays -> bars DataFrame) | {t_nb * 1e3:,.1f} "
        f"| {ratio:.1f}x |",
        f"| pandas `resample` + `ohlc`/`sum`/`count` (DataFrame built beforehand, not timed) "
        f"| {t_pd * 1e3:,.1f} | 1.0x |",
        "",
        f"Target >= {TARGET:.0f}x: **{verdict}**. Machine: {cpu_model()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, numba {numba.__version__}, pandas {pd.__version__}; "
        f"best of {repeat} runs each after a warm-up call; single-threaded on both sides.",
    ])  # fmt: skip
    print(markdown)
    write_section("ticks", markdown)
    return markdown


if __name__ == "__main__":
    main()
