"""Look-ahead checks for a feature set (``task=check``).

Three independent checks, each naming the feature columns that fail it:

1. **future perturbation** - for many cut points ``t``, replace every bar after ``t`` with random
   (valid) bars and recompute: every feature value at rows ``<= t`` must stay bit-identical.
2. **truncation** - compute on ``bars[:t + 1]`` only: row ``t`` must equal, bit for bit, row ``t``
   of the computation on all bars (what a live system would have seen at ``t``).
3. **warm-up stability** - the value at a row computed from only the declared warm-up history
   (and from several longer histories) must match the value computed from all history within a
   small tolerance. Catches features that depend on where history starts (cumulative sums,
   expanding means) and warm-up periods declared too short.

:func:`lookahead_canary` is a deliberately leaky feature (the next bar's return, a
``shift(-1)``) to prove the checks catch look-ahead:
``python -m cryptotrade.run task=check
'+features.indicators.leak={kind: cryptotrade.data.leakage.lookahead_canary}'`` must fail.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from cryptotrade.data.features import infer_seconds

if TYPE_CHECKING:
    from cryptotrade.data.features import FeatureSet

CHECKS = ("future_perturbation", "truncation", "warmup_stability")


def lookahead_canary(frame: pd.DataFrame) -> pd.Series:
    """The NEXT bar's return, ``close.shift(-1) / close - 1``: a planted look-ahead leak."""
    return frame["close"].shift(-1) / frame["close"] - 1.0


@dataclass
class LeakageReport:
    """Outcome of :func:`check_features`.

    Attributes:
        columns: Feature columns checked.
        rows: Number of bars checked on.
        warmup: Declared warm-up rows of the feature set.
        offending: ``check -> {column: first failure}`` (``row <t>: <what differed>``).
        cut_points: The rows ``t`` the perturbation and truncation checks cut at.
    """

    columns: tuple[str, ...]
    rows: int
    warmup: int
    offending: dict[str, dict[str, str]] = field(default_factory=dict)
    cut_points: tuple[int, ...] = ()

    @property
    def ok(self) -> bool:
        """True when no check found an offending column."""
        return not any(self.offending.values())

    @property
    def offending_columns(self) -> list[str]:
        """Every column that failed at least one check, in feature order."""
        bad = {c for per in self.offending.values() for c in per}
        return [c for c in self.columns if c in bad]

    def format(self) -> str:
        """A human-readable summary, one line per check and per offending column."""
        status = "OK" if self.ok else f"LEAK in {len(self.offending_columns)} column(s)"
        lines = [
            f"Leakage check of {len(self.columns)} feature columns on {self.rows} bars "
            f"(warm-up {self.warmup}, {len(self.cut_points)} cut points): {status}"
        ]
        for check in CHECKS:
            per = self.offending.get(check, {})
            lines.append(f"  {check}: {'ok' if not per else f'{len(per)} offending'}")
            lines.extend(f"    {col}: {why}" for col, why in per.items())
        return "\n".join(lines)


def _noise_bars(bars: pd.DataFrame, t: int, rng: np.random.Generator) -> pd.DataFrame:
    """``bars`` with every row after ``t`` replaced by random, internally consistent bars."""
    out = bars.copy()
    m = len(bars) - t - 1
    if m <= 0:
        return out
    start = float(bars["close"].iloc[t])
    close = start * np.exp(np.cumsum(rng.normal(0.0, 0.05, m)))
    opens = np.concatenate([[start], close[:-1]]) * np.exp(rng.normal(0.0, 0.01, m))
    top, bottom = np.maximum(opens, close), np.minimum(opens, close)
    cols = {
        "open": opens,
        "close": close,
        "high": top * (1 + rng.uniform(0, 0.03, m)),
        "low": bottom * (1 - rng.uniform(0, 0.03, m)),
    }
    scale = float(bars["volume"].mean()) + 1.0
    for col in bars.columns:
        if col in cols:
            continue
        if col == "regime":
            cols[col] = rng.integers(0, 5, m)
        else:
            cols[col] = rng.lognormal(0.0, 1.0, m) * (scale if col == "volume" else 1e-3)
    for col, values in cols.items():
        kept = out[col].to_numpy()
        out[col] = np.concatenate([kept[: t + 1], values]).astype(kept.dtype)
    return out


def _differs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-column: not bit-identical (NaN == NaN counts as equal)."""
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    return ~same.all(axis=0)


def _record(found: dict[str, str], columns: tuple[str, ...], bad: np.ndarray, why: str) -> None:
    for col, flag in zip(columns, bad, strict=True):
        if flag and col not in found:
            found[col] = why


def check_features(
    features: FeatureSet,
    bars: pd.DataFrame,
    *,
    points: int = 16,
    seed: int = 0,
    rtol: float = 1e-4,
) -> LeakageReport:
    """Run the three look-ahead checks for ``features`` on ``bars``.

    Args:
        features: The feature set to check.
        bars: Validated bars (at least a few times the warm-up).
        points: Number of cut points ``t`` (spread evenly over the bars).
        seed: Seed of the noise that replaces future bars.
        rtol: Warm-up stability tolerance, relative to each column's spread.

    Returns:
        The report; ``report.ok`` is False if any column failed any check.
    """
    if features.higher and features.base_seconds is None:
        # fix the base timeframe from all bars: a short prefix could not infer it
        features = copy.copy(features)
        features.base_seconds = infer_seconds(bars)
    full_frame = features.compute(bars)
    columns = tuple(full_frame.columns)
    full = full_frame.to_numpy()
    n = len(bars)
    warm = features.warmup(bars)
    if n < warm + 3:
        raise ValueError(f"check_features needs more than warm-up + 2 = {warm + 2} bars; got {n}")
    cuts = np.unique(np.linspace(0, n - 2, points).astype(int))
    rng = np.random.default_rng(seed)
    report = LeakageReport(columns, n, warm, {c: {} for c in CHECKS}, tuple(int(t) for t in cuts))
    for t in cuts:
        noisy = features.compute(_noise_bars(bars, int(t), rng)).to_numpy()
        _record(
            report.offending["future_perturbation"],
            columns,
            _differs(noisy[: t + 1], full[: t + 1]),
            f"row <= {t} changed when bars after {t} were replaced",
        )
        cut = features.compute(bars.iloc[: t + 1]).to_numpy()
        _record(
            report.offending["truncation"],
            columns,
            _differs(cut[t : t + 1], full[t : t + 1]),
            f"row {t} differs when computed on bars[:{t + 1}]",
        )
    # tolerance scale per column: its typical size after warm-up
    with np.errstate(all="ignore"):
        spread = np.nan_to_num(
            np.nanstd(full[warm:], axis=0) + np.nanmean(np.abs(full[warm:]), axis=0)
        )
    for end in np.unique([n - 1, warm + (n - warm) // 2, n - 1 - (n - warm) // 4]):
        for length in np.unique([warm + 1, 2 * warm + 1, (end + 1 + warm) // 2]):
            if length > end + 1:
                continue
            part = features.compute(bars.iloc[end + 1 - length : end + 1]).to_numpy()[-1]
            both_nan = np.isnan(part) & np.isnan(full[end])
            # NaN on one side only counts as a failure (the comparison is False)
            bad = ~(np.abs(part - full[end]) <= rtol * spread + 1e-12) & ~both_nan
            _record(
                report.offending["warmup_stability"],
                columns,
                bad,
                f"row {end} from {length} bars of history differs from all {end + 1}",
            )
    return report
