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

import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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


NAMES = (
    "SMA 20",
    "EMA 20",
    "RSI 14",
    "MACD line",
    "MACD signal",
    "MACD hist",
    "ATR 14",
    "BB upper",
    "BB middle",
    "BB lower",
)


def ours_tasks(m: dict[str, np.ndarray], block: np.ndarray | None = None) -> list[Callable]:
    """The six indicators with cryptotrade's kernels, as independent calls.

    With ``block`` (shape ``(10, n)``) every output is written into its row (``out=``).
    """
    h, lo, c = m["high"], m["low"], m["close"]
    r = (lambda i: None) if block is None else (lambda i: block[i])
    rows = (lambda i, j: None) if block is None else (lambda i, j: block[i:j])
    return [
        lambda: (ind.sma(c, 20, out=r(0)),),
        lambda: (ind.ema(c, 20, out=r(1)),),
        lambda: (ind.rsi(c, 14, out=r(2)),),
        lambda: ind.macd(c, 12, 26, 9, out=rows(3, 6)),
        lambda: (ind.atr(h, lo, c, 14, out=r(6)),),
        lambda: ind.bbands(c, 20, 2.0, out=rows(7, 10)),
    ]


def talib_tasks(m: dict[str, np.ndarray]) -> list[Callable]:
    """The same with TA-Lib."""
    import talib

    h, lo, c = m["high"], m["low"], m["close"]
    return [
        lambda: (talib.SMA(c, 20),),
        lambda: (talib.EMA(c, 20),),
        lambda: (talib.RSI(c, 14),),
        lambda: talib.MACD(c, 12, 26, 9),
        lambda: (talib.ATR(h, lo, c, 14),),
        lambda: talib.BBANDS(c, 20, 2.0, 2.0),
    ]


def run(tasks: list[Callable], pool: ThreadPoolExecutor | None = None) -> dict[str, np.ndarray]:
    """Run the six calls (in ``pool``'s threads if given) and name their ten outputs."""
    outs = list(pool.map(lambda t: t(), tasks)) if pool else [t() for t in tasks]
    return dict(zip(NAMES, (a for out in outs for a in out), strict=True))


def ours_block(m: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Ours, writing into one freshly allocated (10, n) float64 block (a feature matrix)."""
    return run(ours_tasks(m, np.empty((10, len(m["close"])))))


def _seeded_ewm(x: pd.Series, seed_at: int, n: int, alpha: float) -> pd.Series:
    """pandas ewm seeded like TA-Lib: NaN before ``seed_at``, the SMA of ``n`` values at it."""
    y = x.copy()
    y.iloc[seed_at] = x.iloc[seed_at - n + 1 : seed_at + 1].mean()
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
    out = {
        "SMA 20": mid,
        "EMA 20": _seeded_ewm(c, 19, 20, 2 / 21),
        "RSI 14": 100 * gain / (gain + loss),
        "MACD line": line,
        "MACD signal": sig,
        "MACD hist": line - sig,
        "ATR 14": _seeded_ewm(tr.fillna(0), 14, 14, 1 / 14),
        "BB upper": mid + dev,
        "BB middle": mid,
        "BB lower": mid - dev,
    }
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

    return (
        f"{cpu}, {os.cpu_count()} cores (shared with other jobs); Python "
        f"{platform.python_version()}, numba "
        f"{numba.__version__}, numpy {np.__version__}, pandas {pd.__version__}, TA-Lib "
        f"{talib.__version__}"
    )


# glibc keeps freed memory for reuse with these (no new page faults after the warm-up call)
WARM_MALLOC_ENV = {
    "MALLOC_MMAP_THRESHOLD_": str(1 << 30),
    "MALLOC_TRIM_THRESHOLD_": str(1 << 34),
    "MALLOC_TOP_PAD_": str(1 << 29),
}


def _warm_times(n: int, repeat: int) -> dict[str, float] | None:
    """The same timings in a child process whose allocator keeps freed memory (arithmetic only).

    A child, so the allocator settings cannot leak into the other benchmarks of ``make bench``.
    """
    code = (
        "import json; from experiments.benchmarks import bench_data as b; "
        f"print(json.dumps(b._time_six(b._market({n}), {repeat})))"
    )
    env = {**os.environ, **WARM_MALLOC_ENV, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        print(f"warm-memory run failed, left out:\n{proc.stderr[-2000:]}")
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _time_six(m: dict[str, np.ndarray], repeat: int) -> dict[str, float]:
    pool = ThreadPoolExecutor(2)
    ours_t, talib_t = ours_tasks(m), talib_tasks(m)
    t = _best(
        {
            "block": lambda: ours_block(m),
            "ours": lambda: run(ours_t),
            "talib": lambda: run(talib_t),
            "pandas": lambda: pandas_six(m),
            "ours2": lambda: run(ours_t, pool),
            "talib2": lambda: run(talib_t, pool),
        },
        repeat,
    )
    pool.shutdown()
    return t


def _speed_rows(t: dict[str, float], label: str) -> list[str]:
    def row(name: str, key: str) -> str:
        return (
            f"| {label} | {name} | {t[key] * 1e3:.1f} ms | {t['talib'] / t[key]:.2f}x | "
            f"{t['pandas'] / t[key]:.1f}x |"
        )

    return [
        row("cryptotrade, outputs into one preallocated block (`out=`)", "block"),
        row("cryptotrade, a new array per output (as TA-Lib)", "ours"),
        row("TA-Lib", "talib"),
        row("pandas rolling/ewm (seeded like TA-Lib)", "pandas"),
        f"| {label} | 2 threads: cryptotrade / TA-Lib (both release the GIL) | "
        f"{t['ours2'] * 1e3:.1f} / {t['talib2'] * 1e3:.1f} ms | "
        f"{t['talib2'] / t['ours2']:.2f}x | |",
    ]


def _values_rows(m: dict[str, np.ndarray]) -> tuple[list[str], float]:
    a, ta, pa = run(ours_tasks(m)), run(talib_tasks(m)), pandas_six(m)
    # writing into a block gives the very same numbers
    np.testing.assert_array_equal(
        np.stack(list(ours_block(m).values())), np.stack(list(a.values()))
    )
    rows = [
        "| output | max abs diff vs TA-Lib | same warm-up rows | max abs diff vs pandas |",
        "|---|---|---|---|",
    ]
    worst = 0.0
    for name in NAMES:
        dt, same = _max_diff(a[name], ta[name])
        dp, _ = _max_diff(a[name], pa[name])
        worst = max(worst, dt)
        rows.append(f"| {name} | {dt:.2e} | {'yes' if same else 'NO'} | {dp:.2e} |")
    return rows, worst


def _summary(fresh: dict[str, float], warm: dict[str, float] | None) -> str:
    """Say plainly which of the two speed targets hold in which setting."""
    parts = []
    for peer, goal in (("talib", 1.5), ("pandas", 10.0)):
        settings = {
            "fresh memory, block output": fresh[peer] / fresh["block"],
            "fresh memory, new arrays": fresh[peer] / fresh["ours"],
        }
        if warm:
            settings["arithmetic alone (warm memory)"] = warm[peer] / warm["ours"]
        met = [k for k, v in settings.items() if v >= goal]
        missed = [k for k, v in settings.items() if v < goal]
        name = "TA-Lib" if peer == "talib" else "pandas"
        parts.append(
            f"The >= {goal:g}x {name} target is met for: "
            f"{'; '.join(met) or 'none of the settings'}"
            + (f"; and NOT met for: {'; '.join(missed)}." if missed else ".")
        )
    return " ".join(parts)


def _indicator_section(m: dict[str, np.ndarray], repeat: int) -> str:
    fresh = _time_six(m, repeat)
    warm = _warm_times(len(m["close"]), repeat)
    values, worst = _values_rows(m)
    n = len(m["close"])
    head = [
        f"Six indicators together on {n:,} bars (best of {repeat}, 1 thread unless noted):",
        "",
        "| memory | implementation | time | speed-up vs TA-Lib | vs pandas |",
        "|---|---|---|---|---|",
        *_speed_rows(fresh, "fresh (default malloc)"),
    ]
    if warm is not None:
        head += _speed_rows(warm, "warm (freed memory reused)")
    verdict = [
        "",
        "Targets (1 thread): >= 1.5x TA-Lib - fresh memory, block: "
        f"**{fresh['talib'] / fresh['block']:.2f}x**, new arrays: "
        f"**{fresh['talib'] / fresh['ours']:.2f}x**"
        + (f"; warm memory: **{warm['talib'] / warm['ours']:.2f}x**" if warm else "")
        + ". >= 10x pandas - fresh, block: "
        f"**{fresh['pandas'] / fresh['block']:.1f}x**, new arrays: "
        f"**{fresh['pandas'] / fresh['ours']:.1f}x**"
        + (f"; warm: **{warm['pandas'] / warm['ours']:.1f}x**" if warm else "")
        + ". "
        + _summary(fresh, warm)
        + f" Values: every output within {worst:.1e} of TA-Lib (target 1e-6: "
        f"**{'met' if worst <= 1e-6 else 'NOT met'}**), with the same warm-up rows.",
    ]
    return "\n".join([*head, *verdict, "", *values])


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
    line = (
        f"| default feature set ({frame.shape[1]} columns incl. VPVR and 4h features), "
        f"{n:,} bars | {times['all']:.2f} s |"
    )
    if vp is not None:
        from cryptotrade.data.volume_profile import vpvr_nb

        h, lo, c, v = (bars[k].to_numpy() for k in ("high", "low", "close", "volume"))
        p = vp.params
        t = _best(
            {
                "vpvr": lambda: vpvr_nb(
                    h, lo, c, v, p.get("window", 96), p.get("bins", 24), p.get("value_area", 0.7)
                )
            },
            2,
        )
        line += (
            f"\n| of which VPVR (window {p.get('window', 96)}, {p.get('bins', 24)} bins) "
            f"| {t['vpvr']:.2f} s |"
        )
    return line


def main(n: int = N_BARS, repeat: int = 11) -> str:
    """Run the data benchmarks, print the markdown and write it into the README."""
    from experiments.benchmarks.readme import write_section

    market = _market(n)
    table = _indicator_section(market, repeat)
    features = _feature_set_row(n, repeat)
    synth = _best(
        {
            "gen": lambda: SyntheticSource(
                num_samples=SYNTHETIC_BARS, timeframe="15m", seed=0
            ).load()
        },
        repeat,
    )["gen"]
    md = "\n".join(
        [
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
            "Notes. *Fresh* memory is what a process sees by default: ~80 MB of new float64 "
            "outputs per round, whose first-touch page faults cost about as much as the "
            "arithmetic on this VM (and TA-Lib's MACD/BBANDS add internal temporaries that fault "
            "too). *Warm* memory (a child process whose glibc keeps freed memory, "
            "`MALLOC_MMAP_THRESHOLD_`/`MALLOC_TRIM_THRESHOLD_`, so nobody faults after the warm-up "
            "call) measures the arithmetic alone: there cryptotrade is ~1.4x TA-Lib, short of the "
            "1.5x target; the larger fresh-memory gains come from cheaper page faults: "
            "cryptotrade's outputs start on a 2 MB boundary so transparent huge pages cover all of "
            "them (`indicators.empty_rows`), and its fused kernels allocate no temporaries. "
            "Writing into one preallocated block (`out=`, how a feature matrix is filled) pays the "
            "faults once per block. Where "
            "the kernels win: exponential/Wilder recursions advance two rows per multiply-add on "
            "the loop-carried chain; MACD and Bollinger bands are single fused passes without "
            "temporaries; RSI/ATR/EMA avoid TA-Lib's divisions. SMA runs at memory speed, like "
            "TA-Lib's. The two cores of this machine are shared with other jobs, so the 2-thread "
            "rows are indicative only. The pandas versions are seeded like TA-Lib so values are "
            "comparable; their remaining Bollinger difference is pandas' online rolling-variance "
            "rounding (cryptotrade re-anchors its sums every window and stays within 1e-11 of a "
            "two-pass computation). Timings vary by +-20 % between runs on this shared machine; "
            "the ratios come from interleaved runs in one process.",
        ]
    )
    print(md)
    write_section("data", md)
    return md


if __name__ == "__main__":
    main()
