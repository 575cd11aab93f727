"""The latest bars of a source as the model saw its training data: features, saved normalisation.

:func:`live_market` reads the configured source (a file, or the closed candles of a ccxt
exchange: :class:`~cryptotrade.data.sources.CcxtSource` never returns the candle still forming),
validates the bars with the run's policy, computes the run's causal features and normalises them
with the TRAINING split's saved statistics (``data/normaliser.json`` of the run); nothing is
refit on new data. The columns are the training run's, in its order: a feature the new bars
lack is an error, an extra one (e.g. not constant any more) is dropped.

:func:`with_padding` appends one placeholder bar so that an evaluation env over the result never
reaches its episode end (which would close the position) on the last real bar; the placeholder
is never stepped into, and no observation reads it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from cryptotrade.data.dataset import _bar_seconds, _market, source_name
from cryptotrade.data.market_data import MARK_COLUMNS
from cryptotrade.data.normalise import Normaliser
from cryptotrade.errors import DataError

if TYPE_CHECKING:
    from cryptotrade.data import DataSpec, FeatureSet, MarketData


def live_market(
    spec: DataSpec, features: FeatureSet, normaliser: dict[str, Any]
) -> tuple[MarketData, pd.DataFrame]:
    """All validated bars of ``spec.source`` after the feature warm-up, normalised as in training.

    Every bar the source returns is used (``data.max_bars`` is ignored), so a bar's features do
    not depend on how many bars arrived after it: a resumed paper account sees the same inputs.

    Args:
        spec: The run's data spec (source and validation policy).
        features: The run's feature set.
        normaliser: The training split's saved normaliser state.

    Returns:
        The normalised market data and the raw (unnormalised) features, one row per bar.

    Raises:
        DataError: Too few bars for the warm-up, or a training feature the bars cannot give.
    """
    name = source_name(spec.source)
    try:
        raw = spec.source.load()
        bars, _ = spec.validation.apply(raw)
    except DataError as exc:
        raise type(exc)(exc if name in str(exc) else f"{name}: {exc}") from exc
    feats = features.compute(bars)
    warm = features.warmup(bars, base_seconds=_bar_seconds(raw))
    if warm >= len(bars):
        raise DataError(
            f"{name}: the features need {warm} warm-up bars but the source gave {len(bars)}; "
            "give the source a longer history (data.source.start earlier, a longer file)"
        )
    bars, feats = bars.iloc[warm:], feats.iloc[warm:]
    norm = Normaliser.from_state(normaliser)
    missing = [c for c in norm.columns if c not in feats.columns]
    if missing:
        raise DataError(
            f"{name}: the model was trained on features {missing} that these bars do not give "
            f"(have {list(feats.columns)}); use the training run's source and features"
        )
    feats = feats[list(norm.columns)]
    values = feats.to_numpy(np.float64)
    bad = ~np.isfinite(values[-1])
    if bad.any():
        raise DataError(
            f"{name}: features {list(feats.columns[bad])} are NaN/inf at the latest bar "
            f"{bars.index[-1]}; the bars need repairing (data.validation)"
        )
    index = cast(pd.DatetimeIndex, bars.index)
    data = _market("live", bars, norm.transform(values), tuple(norm.columns))
    return data, pd.DataFrame(values, index=index, columns=feats.columns)


def window_from(data: MarketData, first: int, window: int) -> MarketData:
    """``data`` from ``window - 1`` bars before bar ``first`` (the env's first observation)."""
    if first < window - 1:
        raise DataError(
            f"bar {data.timestamps[first]} has only {first + 1} bars of features before it; the "
            f"model's observation needs env.window={window}: start later or give more history"
        )
    return _slice(data, slice(first - window + 1, len(data)))


def with_padding(data: MarketData) -> MarketData:
    """``data`` plus one placeholder bar (a copy of the last one, one bar later)."""
    step = data.timestamps[-1] - data.timestamps[-2] if len(data) > 1 else np.timedelta64(1, "h")
    pad: dict[str, Any] = {
        k: np.concatenate([getattr(data, k), getattr(data, k)[-1:]])
        for k in ("open", "high", "low", "close", "volume", "funding_rate", "features")
    }
    pad["funding_rate"][-1] = 0.0
    for k in ("regime", *MARK_COLUMNS):  # optional arrays
        arr = getattr(data, k)
        pad[k] = None if arr is None else np.concatenate([arr, arr[-1:]])
    stamps = np.concatenate([data.timestamps, data.timestamps[-1:] + step])
    return replace(data, timestamps=stamps, **pad)


def _slice(data: MarketData, sl: slice) -> MarketData:
    cols = ("timestamps", "open", "high", "low", "close", "volume", "funding_rate", "features")
    parts: dict[str, Any] = {k: getattr(data, k)[sl] for k in cols}
    for k in ("regime", *MARK_COLUMNS):  # optional arrays
        arr = getattr(data, k)
        parts[k] = None if arr is None else arr[sl]
    return replace(data, **parts)
