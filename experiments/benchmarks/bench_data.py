"""Data-layer benchmark: numba indicators vs TA-Lib and pandas, the default feature set, and the
synthetic market generator.

``python -m experiments.benchmarks data`` (or ``make bench``) prints the tables and writes them
between the ``data`` markers of experiments/benchmarks/README.md.

* The six indicators TA-Lib also has (SMA 20, EMA 20, RSI 14, MACD 12/26/9, ATR 14, Bollinger
  20/2) on 1,000,000 bars, computed together, against TA-Lib and against the pandas
  ``rolling``/``ewm`` equivalents (seeded like TA-Lib so the values are comparable). Targets:
  >= 1.5x faster than TA-Lib and >= 10x faster than pandas, with equal values.
* The whole default feature set (``conf/features/default.yaml``, VPVR and 4h features included).
* 10 years of 15-minute bars (350,400 rows) from the synthetic generator. Target: < 1 s.

Every timing is the best of ``repeat`` runs after a warm-up call (numba compiled and cached), and
the three implementations are timed interleaved in the same loop so background load hits all of
them alike.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryptotrade.data import indicators as ind
from cryptotrade.data.synthetic import SyntheticSource

N_BARS = 1_000_000
SYNTHETIC_BARS = 350_400
ROOT = Path(__file__).resolve().parents[2]


def _market(n: int) -> dict[str, np.ndarray]:
    bars = SyntheticSource(num_samples=n, timeframe="15m", seed=0).load()
    return {c: bars[c].to_numpy() for c in ("high", "low", "close", "volume")}


def ours(m: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The six indicators with cryptotrade's kernels."""
    h, lo, c = m["high"], m["low"], m["close"]
    line, sig, hist = ind.macd(c, 12, 26, 9)
    up, mid, low = ind.bbands(c, 20, 2.0)
    return {"SMA 20": ind.sma(c, 20), "EMA 20": ind.ema(c, 20), "RSI 14": ind.rsi(c, 14),
            "MACD line": line, "MACD signal": sig, "MACD hist": hist,
            "ATR 14": ind.atr(h, lo, c, 14), "BB upper": up, "BB middle": mid, "BB lower": low}


def talib_six(m: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The same with TA-Lib."""
    import talib

    h, lo, c = m["high"], m["low"], m["close"]
    line, sig, hist = talib.MACD(c, 12, 26, 9)
    up, mid, low = talib.BBANDS(c, 20, 2.0, 2.0)
    return {"SMA 20": talib.SMA(c, 20), "EMA 20": talib.EMA(c, 20), "RSI 14": talib.RSI(c, 14),
            "MACD line": line, "MACD signal": sig, "MACD hist": hist,
            "ATR 14": talib.ATR(h, lo, c, 14), "BB upper": up, "BB middle": mid, "BB lower": low}


def _seeded_ewm(x: pd.Series, seed_at: int, n: int, alpha: float) -> pd.Series:
    """pandas ewm seeded like TA-Lib: NaN before ``seed_at``, the SMA of ``n`` values at it."""
    y = x.copy()
    y.iloc[seed_at] = x.iloc[seed_at - n + 1: seed_at + 1].mean()
    y.iloc[:seed_at] = np.nan
    return y.ewm(alpha=alpha, adjust=False).mean()


def pandas_six(m: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The same with pandas rolling/ewm (what a researcher would write without TA-Lib)."""
    c = pd.Series(m["close"])
    h, lo = pd.Series(m["high"]), pd.Series(m["low"])
    d = c.diff()
    gain = _seeded_ewm(d.clip(lower=0).fillna(0), 14, 14, 1 / 14)
    loss = _seeded_ewm((-d).clip(lower=0).fillna(0), 14, 14, 1 / 14)
    fast = _seeded_ewm(c, 25, 12, 2 / 13)
    slow = _seeded_ewm(c, 25, 26, 2 / 27)
    line = fast - slow
    sig = _seeded_ewm(line, 33, 9, 2 / 10)
    line[:33] = np.nan
    prev = c.shift(1)
    tr = pd.concat([h - lo, (h - prev).abs(), (lo - prev).abs()], axis=1).max(axis=1)
    tr.iloc[0] = np.nan
    mid = c.rolling(20).mean()
    dev = 2.0 * c.rolling(20).std(ddof=0)
    out = {"SMA 20": mid, "EMA 20": _seeded_ewm(c, 19, 20, 2 / 21),
           "RSI 14": 100 * gain / (gain + loss), "MACD line": line, "MACD signal": sig,
           "MACD hist": line - sig, "ATR 14": _seeded_ewm(tr.fillna(0), 14, 14, 1 / 14),
           "BB upper": mid + dev, "BB middle": mid, "BB lower": mid - dev}
    return {k: v.to_numpy() for k, v in out.items()}


def _best(fns: dict[str, Callable[[], Any]], repeat: int) -> dict[str, float]:
    """Best wall time of each function, run interleaved ``repeat`` times after a warm-up."""
    for fn in fns.values():
        fn()
    best = dict.fromkeys(fns, np.inf)
    for _ in range(repeat):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def _max_diff(a: np.ndarray, b: np.ndarray) -> tuple[float, bool]:
    """(max |a - b| where both are defined, whether the warm-up NaNs are the same rows)."""
    both = ~np.isnan(a) & ~np.isnan(b)
    return float(np.abs(a[both] - b[both]).max()), bool(np.array_equal(np.isnan(a), np.isnan(b)))


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import numba
    import talib

    return (f"{cpu}, {os.cpu_count()} cores; Python {platform.python_version()}, numba "
            f"{numba.__version__}, numpy {np.__version__}, pandas {pd.__version__}, TA-Lib "
            f"{talib.__version__}")


def _indicator_table(m: dict[str, np.ndarray], repeat: int) -> tuple[str, dict[str, float]]:
    times = _best({"ours": lambda: ours(m), "talib": lambda: talib_six(m),
                   "pandas": lambda: pandas_six(m)}, repeat)
    a, t, p = ours(m), talib_six(m), pandas_six(m)
    rows = ["| indicator | max abs diff vs TA-Lib | same warm-up rows | max abs diff vs pandas |",
            "|---|---|---|---|"]
    worst = 0.0
    for name in a:
        dt, same = _max_diff(a[name], t[name])
        dp, _ = _max_diff(a[name], p[name])
        worst = max(worst, dt)
        rows.append(f"| {name} | {dt:.2e} | {'yes' if same else 'NO'} | {dp:.2e} |")
    vs_talib, vs_pandas = times["talib"] / times["ours"], times["pandas"] / times["ours"]
    head = [
        "| six indicators together, 1,000,000 bars | time (best of "
        f"{repeat}) | cryptotrade speed-up | target |",
        "|---|---|---|---|",
        f"| cryptotrade (numba) | {times['ours'] * 1e3:.1f} ms | 1.0x | |",
        f"| TA-Lib | {times['talib'] * 1e3:.1f} ms | {vs_talib:.2f}x | >= 1.5x: "
        f"{'met' if vs_talib >= 1.5 else 'NOT met'} |",
        f"| pandas rolling/ewm | {times['pandas'] * 1e3:.1f} ms | {vs_pandas:.1f}x | >= 10x: "
        f"{'met' if vs_pandas >= 10 else 'NOT met'} |",
    ]
    values = (f"Values: every output agrees with TA-Lib within {worst:.1e} (target 1e-6: "
              f"{'met' if worst <= 1e-6 else 'NOT met'}), with the same warm-up rows.")
    return "\n".join([*head, "", values, "", *rows]), {"talib": vs_talib, "pandas": vs_pandas,
                                                       "worst": worst}


def _feature_set_row(n: int, repeat: int) -> str:
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    node = OmegaConf.load(ROOT / "conf" / "features" / "default.yaml")
    node.pop("defaults")
    features = instantiate(node, _convert_="partial")
    bars = SyntheticSource(num_samples=n, timeframe="15m", seed=0).load()
    kinds = {f.name: f for f in features.indicators}
    vp = kinds.get("vpvr")
    times = _best({"all": lambda: features.compute(bars)}, max(1, repeat // 2))
    frame = features.compute(bars)
    line = (f"| default feature set ({frame.shape[1]} columns incl. VPVR and 4h features), "
            f"{n:,} bars | {times['all']:.2f} s |")
    if vp is not None:
        from cryptotrade.data.volume_profile import vpvr_nb

        h, lo, c, v = (bars[k].to_numpy() for k in ("high", "low", "close", "volume"))
        p = vp.params
        t = _best({"vpvr": lambda: vpvr_nb(h, lo, c, v, p.get("window", 96), p.get("bins", 24),
                                           p.get("value_area", 0.7))}, 2)
        line += (f"\n| of which VPVR (window {p.get('window', 96)}, {p.get('bins', 24)} bins) "
                 f"| {t['vpvr']:.2f} s |")
    return line


def main(n: int = N_BARS, repeat: int = 7) -> str:
    """Run the data benchmarks, print the markdown and write it into the README."""
    from experiments.benchmarks.readme import write_section

    market = _market(n)
    table, _ = _indicator_table(market, repeat)
    features = _feature_set_row(n, repeat)
    synth = _best({"gen": lambda: SyntheticSource(num_samples=SYNTHETIC_BARS, timeframe="15m",
                                                  seed=0).load()}, repeat)["gen"]
    md = "\n".join([
        f"Machine: {_machine()}. Same process, same data (a synthetic 15m market).",
        "",
        table,
        "",
        "| other | time |",
        "|---|---|",
        features,
        f"| synthetic market, 10 years of 15m bars ({SYNTHETIC_BARS:,} rows, OHLCV + regime) "
        f"| {synth:.3f} s (target < 1 s: {'met' if synth < 1 else 'NOT met'}) |",
        "",
        "Notes: the pandas versions are seeded like TA-Lib (SMA seeds for EMA/Wilder averages) "
        "so their values are comparable; their remaining differences are pandas' online "
        "rolling-variance rounding. cryptotrade's rolling variance re-anchors its sums every "
        "window, so it stays within 1e-11 of a two-pass computation on a million rows. Outputs "
        "are allocated by numpy, which requests transparent huge pages for large arrays: on "
        "this VM first-touch page faults of ten 8 MB outputs otherwise cost as much as the "
        "arithmetic.",
    ])
    print(md)
    write_section("data", md)
    return md


if __name__ == "__main__":
    main()
