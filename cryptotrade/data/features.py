"""Causal feature sets built from config: the ``_target_`` of ``conf/features/<option>.yaml``.

A :class:`FeatureSet` is a dict ``name -> {kind: ..., <params>}`` of indicators on the base bars,
plus optional higher-timeframe indicators joined to the base bars only once their bar has closed.
Every parameter is a config value (``features.indicators.rsi.period=21``), so a search (GA, Tune)
can tune them. Features are scale-free (ratios to the close, bounded oscillators), so one
normaliser fit on the training years stays sensible on later prices.

Kinds (see :data:`KINDS`): ``log_return``, ``volatility``, ``sma``, ``ema``, ``rsi``, ``macd``,
``atr``, ``bbands``, ``obv``, ``vwap``, ``vpvr``, ``volume``, ``time``, ``column``. A ``kind``
containing a dot is the dotted path of a custom function ``fn(bars: pd.DataFrame, **params)``
returning a Series, DataFrame or array aligned with ``bars`` (its ``warmup`` param, default 0,
says how many leading rows are unreliable). The leakage checks use this to plant a leak.

Column names: ``<name>`` for one-column kinds, ``<name>_<part>`` for several (``macd_hist``),
``<name>@<timeframe>`` for higher-timeframe columns.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import math
from collections.abc import Callable
from typing import Any, Literal, cast

import numpy as np
import pandas as pd

from cryptotrade.data import indicators as ind
from cryptotrade.data.mtf import higher_bars, join_closed_nb
from cryptotrade.data.normalise import Normaliser
from cryptotrade.data.volume_profile import vpvr_nb
from cryptotrade.errors import DataError
from cryptotrade.timeframes import timeframe_seconds

_log = logging.getLogger(__name__)

Arrays = dict[str, np.ndarray]
# exponential smoothers: rows until a seed's influence has decayed below this (relative)
DECAY_TOL = 1e-6


def decay_rows(alpha: float) -> int:
    """Rows after which an exponential smoother's start-up influence is below ``DECAY_TOL``."""
    return math.ceil(math.log(DECAY_TOL) / math.log(1.0 - alpha))


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a / b - 1`` (distance of ``a`` above ``b`` as a fraction of ``b``)."""
    return a / b - 1.0


# ---- kinds: compute(bars arrays, **params) -> {suffix: column}; warmup(**params) -> rows --------
def _log_return(a: Arrays, lag: int = 1) -> Arrays:
    return {"": ind.log_return_nb(a["close"], lag)}


def _volatility(a: Arrays, window: int = 20) -> Arrays:
    return {"": ind.rolling_volatility_nb(a["close"], window)}


def _sma(a: Arrays, period: int = 20) -> Arrays:
    return {"": _ratio(a["close"], ind.sma(a["close"], period))}


def _ema(a: Arrays, period: int = 20) -> Arrays:
    return {"": _ratio(a["close"], ind.ema(a["close"], period))}


def _rsi(a: Arrays, period: int = 14) -> Arrays:
    return {"": ind.rsi(a["close"], period) / 100.0}


def _macd(a: Arrays, fast: int = 12, slow: int = 26, signal: int = 9) -> Arrays:
    line, sig, hist = ind.macd(a["close"], fast, slow, signal)
    c = a["close"]
    return {"line": line / c, "signal": sig / c, "hist": hist / c}


def _atr(a: Arrays, period: int = 14) -> Arrays:
    return {"": ind.atr(a["high"], a["low"], a["close"], period) / a["close"]}


def _bbands(a: Arrays, period: int = 20, k: float = 2.0) -> Arrays:
    pct_b, width = ind.bb_position(a["close"], *ind.bbands(a["close"], period, float(k)))
    return {"pctb": pct_b, "width": width}


def _obv(a: Arrays, window: int = 20) -> Arrays:
    return {"": ind.obv_ratio_nb(a["close"], a["volume"], window)}


def _vwap(a: Arrays, window: int = 20) -> Arrays:
    return {
        "": _ratio(a["close"], ind.vwap_nb(a["high"], a["low"], a["close"], a["volume"], window))
    }


def _vpvr(a: Arrays, window: int = 96, bins: int = 24, value_area: float = 0.7) -> Arrays:
    poc, vah, val = vpvr_nb(
        a["high"], a["low"], a["close"], a["volume"], window, bins, float(value_area)
    )
    c = a["close"]
    return {"poc": _ratio(c, poc), "vah": _ratio(c, vah), "val": _ratio(c, val)}


def _volume(a: Arrays, window: int = 20) -> Arrays:
    mean = ind.sma(a["volume"], window)
    return {"": np.where(mean > 0, a["volume"] / np.where(mean > 0, mean, 1.0), 1.0)}


def _time(a: Arrays) -> Arrays:
    sec = (a["ts"] // 10**9).astype(np.float64)
    day = 2 * np.pi * (sec % 86400) / 86400
    week = 2 * np.pi * ((sec // 86400 + 3) % 7) / 7  # 1970-01-01 was a Thursday: Monday = 0
    return {
        "hour_sin": np.sin(day),
        "hour_cos": np.cos(day),
        "dow_sin": np.sin(week),
        "dow_cos": np.cos(week),
    }


def _column(a: Arrays, name: str = "funding_rate") -> Arrays:
    if name not in a:
        raise ValueError(f"feature kind 'column' needs bars column {name!r}; have {sorted(a)}")
    return {"": a[name].astype(np.float64)}


KINDS: dict[str, tuple[Callable[..., Arrays], Callable[..., int]]] = {
    "log_return": (_log_return, lambda lag=1: lag),
    "volatility": (_volatility, lambda window=20: window),
    "sma": (_sma, lambda period=20: period - 1),
    "ema": (_ema, lambda period=20: period - 1 + decay_rows(2 / (period + 1))),
    "rsi": (_rsi, lambda period=14: period + decay_rows(1 / period)),
    "macd": (
        _macd,
        lambda fast=12, slow=26, signal=9: (
            slow + signal - 2 + decay_rows(2 / (slow + 1)) + decay_rows(2 / (signal + 1))
        ),
    ),
    "atr": (_atr, lambda period=14: period + decay_rows(1 / period)),
    "bbands": (_bbands, lambda period=20, k=2.0: period - 1),
    "obv": (_obv, lambda window=20: window),
    "vwap": (_vwap, lambda window=20: window - 1),
    "vpvr": (_vpvr, lambda window=96, bins=24, value_area=0.7: window - 1),
    "volume": (_volume, lambda window=20: window - 1),
    "time": (_time, lambda: 0),
    "column": (_column, lambda name="funding_rate": 0),
}
# lower bounds of integer parameters (a period of 1 is degenerate for most kinds)
_MIN_INT = {"lag": 1, "window": 2, "period": 2, "fast": 2, "slow": 3, "signal": 1, "bins": 2}


def _import(path: str) -> Callable[..., Any]:
    module, _, name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"feature kind {path!r} is not an importable function: {err}") from err


class _Feature:
    """One configured feature: a kind and its validated parameters."""

    def __init__(self, name: str, spec: dict[str, Any]) -> None:
        spec = dict(spec)
        if "kind" not in spec:
            raise ValueError(f"features.{name} has no 'kind'; use one of {sorted(KINDS)}")
        self.name = name
        kind = spec.pop("kind")
        self.custom = callable(kind) or "." in kind
        if self.custom:
            self.warmup = int(spec.pop("warmup", 0))
            self.fn = kind if callable(kind) else _import(kind)
            self.params = spec
            return
        if kind not in KINDS:
            raise ValueError(
                f"features.{name}.kind={kind!r} is unknown; use one of "
                f"{sorted(KINDS)} or a dotted path to a function"
            )
        self.fn, warm = KINDS[kind]
        allowed = inspect.signature(warm).parameters
        unknown = [p for p in spec if p not in allowed]
        if unknown:
            raise ValueError(
                f"features.{name}: unknown parameter(s) {unknown} for kind "
                f"{kind!r}; it takes {list(allowed)}"
            )
        for key, value in spec.items():
            if key in _MIN_INT and (int(value) != value or value < _MIN_INT[key]):
                raise ValueError(
                    f"features.{name}.{key}={value} must be an integer >= {_MIN_INT[key]}"
                )
        if kind == "macd" and spec.get("fast", 12) >= spec.get("slow", 26):
            raise ValueError(
                f"features.{name}: fast={spec.get('fast', 12)} must be < "
                f"slow={spec.get('slow', 26)}"
            )
        self.params = {k: (int(v) if k in _MIN_INT else v) for k, v in spec.items()}
        self.warmup = int(warm(**self.params))

    def compute(self, arrays: Arrays, frame: pd.DataFrame | None) -> Arrays:
        if not self.custom:
            parts = self.fn(arrays, **self.params)
            return {(f"{self.name}_{k}" if k else self.name): v for k, v in parts.items()}
        if frame is None:
            raise ValueError(f"custom feature {self.name!r} cannot run on a higher timeframe")
        out = self.fn(frame, **self.params)
        if isinstance(out, pd.DataFrame):
            return {f"{self.name}_{c}": out[c].to_numpy(np.float64) for c in out.columns}
        return {self.name: np.asarray(out, dtype=np.float64).reshape(len(frame))}


def _arrays(bars: pd.DataFrame) -> Arrays:
    out = {c: bars[c].to_numpy(np.float64) for c in bars.columns if c != "regime"}
    out["ts"] = cast(pd.DatetimeIndex, bars.index).as_unit("ns").asi8
    return out


class FeatureSet:
    """Causal features from config, plus the normaliser the dataset fits on train.

    Args:
        indicators: ``name -> {kind: <kind or dotted path>, <params>}`` on the base bars.
        higher: ``group -> {timeframe: <tf>, indicators: {name -> {kind, params}}}``: indicators
            on higher-timeframe bars (epoch-aligned, e.g. ``4h`` bars open at 00, 04, ... UTC),
            joined to a base row only once the higher bar has closed (at or before the base
            bar's close). Group names are plain identifiers so overrides can reach every
            parameter (``features.higher.h4.indicators.vol.window=10``; Hydra keys cannot start
            with a digit).
        base_timeframe: The base bar length (``15m``); ``None`` infers it from the smallest
            spacing of the bars. Only used to time the higher-timeframe joins.
        normalise: ``zscore``, ``minmax``, ``robust`` (median/IQR) or ``none``; fit on train.
        keep_raw: Feature columns passed through unnormalised.
        clip: Clip normalised features to ``[-clip, clip]``; ``null`` = no clipping.
        constant: Feature columns that never change after the warm-up (every volume feature of
            a file whose volume is always zero): ``reject`` (an error naming them), ``drop``
            them (logged and listed in the data summary), or ``keep``.
    """

    def __init__(
        self,
        indicators: dict[str, dict[str, Any]] | None = None,
        higher: dict[str, dict[str, Any]] | None = None,
        base_timeframe: str | None = None,
        normalise: Literal["zscore", "minmax", "robust", "none"] = "zscore",
        keep_raw: list[str] | None = None,
        clip: float | None = 10.0,
        constant: Literal["reject", "drop", "keep"] = "reject",
    ) -> None:
        if constant not in ("reject", "drop", "keep"):
            raise ValueError(f"features.constant={constant!r}; use reject, drop or keep")
        self.constant = constant
        indicators = dict(indicators or {})
        if not indicators:
            raise ValueError("features.indicators is empty; add e.g. rsi: {kind: rsi}")
        self.indicators = [_Feature(n, s) for n, s in indicators.items()]
        # timeframe label -> (seconds, features)
        self.higher: dict[str, tuple[int, list[_Feature]]] = {}
        for group, node in (higher or {}).items():
            if set(node) != {"timeframe", "indicators"}:
                raise ValueError(
                    f"features.higher.{group} needs exactly 'timeframe' and "
                    f"'indicators', got {sorted(node)}"
                )
            tf = str(node["timeframe"])
            feats = [_Feature(n, s) for n, s in node["indicators"].items()]
            if any(f.custom for f in feats):
                raise ValueError(f"features.higher.{group}: custom functions run on base bars only")
            if tf in self.higher:
                raise ValueError(
                    f"features.higher.{group}: timeframe {tf} appears twice; merge the groups"
                )
            self.higher[tf] = (timeframe_seconds(tf), feats)
        self.base_seconds = None if base_timeframe is None else timeframe_seconds(base_timeframe)
        if self.base_seconds is not None:
            for tf, (sec, _) in self.higher.items():
                if sec <= self.base_seconds or sec % self.base_seconds:
                    raise ValueError(
                        f"features.higher timeframe {tf} must be a multiple of the "
                        f"base timeframe {base_timeframe}"
                    )
        self.keep_raw = list(keep_raw or [])
        self._normaliser_args = (normalise, self.keep_raw, clip)
        Normaliser(*self._normaliser_args)  # validates method and clip now, not after the data

    def warmup(self, bars: pd.DataFrame | None = None, base_seconds: int | None = None) -> int:
        """Leading base rows whose values are not yet reliable (the dataset drops them).

        Args:
            bars: The bars the features will run on; only needed to infer the base timeframe
                when there are higher-timeframe features and ``base_timeframe`` is not set.
            base_seconds: The bars' length as the source knows it; used when neither
                ``base_timeframe`` is set nor the bars (fewer than two) show it.
        """
        rows = max(f.warmup for f in self.indicators)
        if not self.higher:
            return rows
        base = self.base_seconds
        if base is None and base_seconds is not None and (bars is None or len(bars) < 2):
            base = base_seconds
        if base is None:
            if bars is None:
                raise ValueError(
                    "FeatureSet.warmup() needs the bars (or features.base_timeframe)"
                    " to time the higher-timeframe features"
                )
            base = _infer_seconds(cast(pd.DatetimeIndex, bars.index).as_unit("ns").asi8)
        for sec, feats in self.higher.values():
            # +2 higher bars: the first may be partial, and each joins only after it closes
            rows = max(rows, (max(f.warmup for f in feats) + 2) * math.ceil(sec / base))
        return rows

    def drop_constant(self, feats: pd.DataFrame, source: str) -> tuple[pd.DataFrame, list[str]]:
        """Apply the ``constant`` policy to the features after the warm-up rows.

        Returns:
            ``(features, dropped column names)``.

        Raises:
            DataError: naming the constant columns under ``constant=reject``.
        """
        values = feats.to_numpy()
        flat = [
            c for c, v in zip(feats.columns, values.T, strict=True) if len(v) and np.ptp(v) == 0
        ]
        if not flat or self.constant == "keep":
            return feats, []
        if self.constant == "reject":
            raise DataError(
                f"{source}: feature column(s) {flat} are constant over all {len(feats)} bars "
                "(volume always zero?); remove them from features.indicators, or set "
                "features.constant=drop (or keep)"
            )
        _log.warning(
            "%s: dropping constant feature column(s) %s (features.constant=drop)", source, flat
        )
        return feats.drop(columns=flat), flat

    def normaliser(self) -> Normaliser:
        """A fresh, unfitted normaliser as configured."""
        return Normaliser(*self._normaliser_args)

    def compute(self, bars: pd.DataFrame) -> pd.DataFrame:
        """All feature columns (float64, NaN during warm-up), indexed like ``bars``."""
        arrays = _arrays(bars)
        cols: dict[str, np.ndarray] = {}
        for feat in self.indicators:
            for name, col in feat.compute(arrays, bars).items():
                if name in cols:  # a dict would silently keep only the later column
                    raise ValueError(f"duplicate feature column {name!r}; rename a feature")
                cols[name] = col
        if self.higher and len(bars) > 0:
            base = self.base_seconds or _infer_seconds(arrays["ts"])
            spacing = _infer_seconds(arrays["ts"]) if len(bars) > 1 else base
            if spacing < base:
                # rows would be taken to close later than they do: a higher bar would be
                # joined before its last base bars had closed
                raise ValueError(
                    f"features.base_timeframe is {base}s but the bars are {spacing}s apart; "
                    "set it to the bars' length or null (inferred)"
                )
            # base = the smallest bar spacing: no bar opens within `base` after another, so a
            # higher bar that ends by open + base holds no later row, even for sparse bars
            # (trades only at funding times) or a "higher" timeframe below the bars' own
            # (daily bars: each 4h bucket is one daily bar, joined on its own row)
            for tf, (sec, feats) in self.higher.items():
                hi, group_end = higher_bars(arrays, sec)
                close_ns = arrays["ts"] + np.int64(base) * 10**9
                for feat in feats:
                    for name, col in feat.compute(hi, None).items():
                        if f"{name}@{tf}" in cols:
                            raise ValueError(f"duplicate feature column {name}@{tf}; rename one")
                        cols[f"{name}@{tf}"] = join_closed_nb(group_end, col, close_ns)
        return pd.DataFrame(cols, index=bars.index)

    def describe(self) -> dict[str, Any]:
        """Configured features and warm-up, for the dataset summary and logging."""
        return {
            "indicators": {f.name: f.params for f in self.indicators},
            "higher": {
                tf: {f.name: f.params for f in feats} for tf, (_, feats) in self.higher.items()
            },
            "normalise": self._normaliser_args[0],
            "constant": self.constant,
        }


def _infer_seconds(ts_ns: np.ndarray) -> int:
    """Smallest spacing of the bars in seconds (the base timeframe, gaps aside)."""
    if len(ts_ns) < 2:
        return 60
    return int(np.diff(ts_ns).min() // 10**9)


def infer_seconds(bars: pd.DataFrame) -> int:
    """The base timeframe of ``bars`` in seconds: their smallest spacing."""
    return _infer_seconds(cast(pd.DatetimeIndex, bars.index).as_unit("ns").asi8)
