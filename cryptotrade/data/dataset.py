"""Prepare a :class:`~cryptotrade.data.market_data.Dataset`: load, validate, featurise, split.

``build_dataset`` runs ``source.load() -> validation.apply() -> features.compute() -> drop the
feature warm-up rows -> split -> fit the normaliser on train -> MarketData`` and caches the result
as one parquet file named by the config fingerprint (float32 features, float64 prices and mark
prices, the split of every row, and the normaliser statistics and summary in the file's
metadata). A later call with the same fingerprint reads the file instead of recomputing. The file
is written to a temporary name and renamed into place, so an interrupted run never leaves a
truncated cache."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from cryptotrade.data.features import FeatureSet
from cryptotrade.data.market_data import BAR_COLUMNS, MARK_COLUMNS, Dataset, MarketData
from cryptotrade.data.normalise import Normaliser
from cryptotrade.data.spec import DataSpec
from cryptotrade.data.splits import SPLIT_NAMES, WalkForward
from cryptotrade.errors import DataError
from cryptotrade.io import atomic_write
from cryptotrade.timeframes import timeframe_seconds

CACHE_VERSION = 1
_META_KEY = b"cryptotrade"


def _jsonable(value: Any) -> Any:
    """Plain JSON types for the summary (numpy scalars from repair counts and the like)."""
    return json.loads(
        json.dumps(value, default=lambda v: v.item() if hasattr(v, "item") else str(v))
    )


def source_name(source: Any) -> str:
    """What error messages call a source: its file, or its description."""
    path = getattr(source, "path", None)
    return str(path) if path is not None else _describe(source)


def load_bars(spec: DataSpec) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """``source.load()`` then ``validation.apply()``: (raw bars, validated bars, repair counts).

    With ``spec.max_bars`` only the last ``max_bars`` validated bars are kept. What
    ``task=check`` runs the leakage checks on. A :class:`DataError` is re-raised with the
    source's file in front when its message does not name it already.
    """
    try:
        raw = spec.source.load()
        bars, repairs = spec.validation.apply(raw)
    except DataError as exc:
        name = source_name(spec.source)
        if name in str(exc):
            raise
        raise type(exc)(f"{name}: {exc}") from exc
    if spec.max_bars is not None:
        bars = bars.iloc[-spec.max_bars :]
    return raw, bars, dict(repairs)


def bars_hash(bars: pd.DataFrame) -> str:
    """Content hash of a bars frame (index and every column): what the data *is*, as opposed to
    the config fingerprint, which names how it was made."""
    rows = pd.util.hash_pandas_object(bars, index=True).to_numpy()
    digest = hashlib.sha256(rows.tobytes())
    digest.update(",".join(map(str, bars.columns)).encode())
    return digest.hexdigest()[:16]


def _describe(obj: Any) -> str:
    """``repr`` of a source, or its class and public settings when it has no repr of its own."""
    text = repr(obj)
    if " object at 0x" not in text:
        return text
    attrs = {
        k: v
        for k, v in vars(obj).items()
        if not k.startswith("_") and isinstance(v, str | int | float | bool | None)
    }
    args = ", ".join(f"{k}={v!r}" for k, v in attrs.items())
    return f"{type(obj).__name__}({args})"


def _bar_seconds(raw: pd.DataFrame) -> int | None:
    """The bar length a source reported (``frame.attrs['timeframe']``), in seconds."""
    tf = raw.attrs.get("timeframe")
    return None if tf is None else timeframe_seconds(str(tf))


def _prepare(spec: DataSpec, features: FeatureSet) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Validated bars and raw features after the warm-up rows, plus the summary so far."""
    raw, bars, repairs = load_bars(spec)
    content = bars_hash(bars)
    feats = features.compute(bars)
    warm = features.warmup(bars, base_seconds=_bar_seconds(raw))
    span = {"start": str(bars.index[0]), "end": str(bars.index[-1])} if len(bars) else {}
    if warm >= len(bars):
        raise DataError(
            f"{source_name(spec.source)}: the features need {warm} warm-up bars but it has only "
            f"{len(bars)} validated bar(s); use more bars (a longer file, a wider date range, "
            "data.source.num_samples) or shorter feature windows"
        )
    bars, feats = bars.iloc[warm:], feats.iloc[warm:]
    values = feats.to_numpy()
    bad = ~np.isfinite(values)
    if bad.any():
        cols = [c for c, b in zip(feats.columns, bad.any(axis=0), strict=True) if b]
        first = feats.index[bad.any(axis=1)][0]
        raise DataError(
            f"features {cols} are NaN/inf after the {warm}-bar warm-up (first at {first}); a "
            "custom feature needs a larger 'warmup' param, or the bars need repairing"
        )
    feats, constant = features.drop_constant(feats, source_name(spec.source))
    summary = {
        "source": _describe(spec.source),
        "bars_hash": content,
        "rows": {"loaded": len(raw), "validated": len(bars) + warm, "warmup_dropped": warm},
        "range": span,
        "repairs": _jsonable(dict(repairs)),
        "features": list(feats.columns),
        "feature_config": _jsonable(features.describe()),
    }
    if constant:
        summary["constant_features"] = constant
    if "funding" in raw.attrs:
        summary["funding"] = _jsonable(raw.attrs["funding"])
    if "mark" in raw.attrs:
        summary["mark"] = _jsonable(raw.attrs["mark"])
    if raw.attrs.get("warnings"):
        summary["warnings"] = list(raw.attrs["warnings"])
    return bars, feats, summary


def _market(name: str, bars: pd.DataFrame, feats: np.ndarray, names: tuple[str, ...]) -> MarketData:
    regime = bars["regime"].to_numpy(np.int8) if "regime" in bars else None
    funding = (
        bars["funding_rate"].to_numpy(np.float64) if "funding_rate" in bars else np.zeros(len(bars))
    )
    mark_price, mark_high, mark_low = (
        bars[c].to_numpy(np.float64) if c in bars else None for c in MARK_COLUMNS
    )
    return MarketData(
        name=name,
        timestamps=cast(pd.DatetimeIndex, bars.index).as_unit("ns").asi8.view("datetime64[ns]"),
        **{c: bars[c].to_numpy(np.float64) for c in BAR_COLUMNS},
        features=np.ascontiguousarray(feats, dtype=np.float32),
        feature_names=names,
        funding_rate=funding,
        regime=regime,
        mark_price=mark_price,
        mark_high=mark_high,
        mark_low=mark_low,
    )


def _assemble(
    bars: pd.DataFrame,
    feats: pd.DataFrame,
    slices: dict[str, slice],
    features: FeatureSet,
    fingerprint: str,
    summary: dict[str, Any],
    prefix: str = "",
) -> Dataset:
    """Fit the normaliser on ``slices['train']`` and build the three MarketData splits."""
    names = tuple(feats.columns)
    values = feats.to_numpy(np.float64)
    norm = features.normaliser().fit(values[slices["train"]], names)
    splits = {
        k: _market(prefix + k, bars.iloc[sl], norm.transform(values[sl]), names)
        for k, sl in slices.items()
    }
    meta = dict(summary)
    meta["fingerprint"] = fingerprint
    meta["rows"] = dict(summary["rows"], **{k: len(m) for k, m in splits.items()})
    meta["splits"] = {
        k: {
            "start": str(bars.index[sl.start]),
            "end": str(bars.index[sl.stop - 1]),
            "rows": sl.stop - sl.start,
        }
        for k, sl in slices.items()
    }
    return Dataset(fingerprint=fingerprint, normaliser=norm.state(), meta=meta, **splits)


def build_dataset(
    spec: DataSpec, features: FeatureSet, *, cache_dir: Path | str | None, fingerprint: str
) -> Dataset:
    """Build (or load from cache) the train/val/test dataset of a data config.

    Args:
        spec: Source, validation policy and split.
        features: The feature set (carries the normaliser settings).
        cache_dir: Folder of cached datasets; ``None`` disables caching.
        fingerprint: Hash of the data + features config; names the cache file, so any config
            change gives a new file.

    Returns:
        The dataset; ``dataset.meta`` summarises source, rows, date range, repairs, features,
        split boundaries and whether the cache was hit.
    """
    path = None if cache_dir is None else Path(cache_dir) / f"dataset-{fingerprint}.parquet"
    if path is not None and path.exists():
        dataset = load_cached(path)
        dataset.meta["cache"] = {"hit": True, "path": str(path)}
        return dataset
    bars, feats, summary = _prepare(spec, features)
    slices = spec.split.split(cast(pd.DatetimeIndex, bars.index))
    if list(slices) != list(SPLIT_NAMES):
        raise ValueError(f"data.split returned {list(slices)}; expected {list(SPLIT_NAMES)}")
    dataset = _assemble(bars, feats, slices, features, fingerprint, summary)
    if path is not None:
        save_cached(dataset, path)
    dataset.meta["cache"] = {"hit": False, "path": None if path is None else str(path)}
    return dataset


def build_folds(spec: DataSpec, features: FeatureSet, folds: WalkForward) -> list[Dataset]:
    """Walk-forward datasets: one :class:`Dataset` per fold, each normalised on its own train.

    The features are computed once over the whole series (they are causal), then every fold's
    normaliser is fit on that fold's training window only. Splits are named ``fold<k>/train``...
    """
    bars, feats, summary = _prepare(spec, features)
    return [
        _assemble(bars, feats, slices, features, f"fold{k}", summary, prefix=f"fold{k}/")
        for k, slices in enumerate(folds.split(cast(pd.DatetimeIndex, bars.index)))
    ]


def save_cached(dataset: Dataset, path: Path) -> None:
    """Write ``dataset`` to ``path`` as parquet, atomically (temporary file, then rename)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    parts = list(dataset.splits.values())
    cols: dict[str, Any] = {
        "date": np.concatenate([m.timestamps for m in parts]),
        "split": np.concatenate([np.full(len(m), i, np.int8) for i, m in enumerate(parts)]),
    }
    for c in (*BAR_COLUMNS, "funding_rate"):
        cols[c] = np.concatenate([getattr(m, c) for m in parts])
    for c in ("regime", *MARK_COLUMNS):
        if getattr(dataset.train, c) is not None:
            cols[c] = np.concatenate([getattr(m, c) for m in parts])
    feats = np.concatenate([m.features for m in parts])
    for j, name in enumerate(dataset.train.feature_names):
        cols[f"f:{name}"] = feats[:, j]
    meta = {
        "version": CACHE_VERSION,
        "fingerprint": dataset.fingerprint,
        "normaliser": dataset.normaliser,
        "meta": _jsonable(dataset.meta),
        "features": list(dataset.train.feature_names),
    }
    table = pa.table(cols).replace_schema_metadata({_META_KEY: json.dumps(meta).encode()})
    with atomic_write(path) as fh:
        pq.write_table(table, fh)


def load_cached(path: Path) -> Dataset:
    """Read a dataset written by :func:`save_cached`."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    meta = json.loads(table.schema.metadata[_META_KEY])
    if meta.get("version") != CACHE_VERSION:
        raise ValueError(
            f"{path} is cache version {meta.get('version')}, expected "
            f"{CACHE_VERSION}; delete it to rebuild"
        )
    names = tuple(meta["features"])
    split = table.column("split").to_numpy()
    arrays = {c: table.column(c).to_numpy() for c in table.column_names if not c.startswith("f:")}
    feats = (
        np.stack([table.column(f"f:{n}").to_numpy() for n in names], axis=1)
        if names
        else (np.zeros((len(split), 0), np.float32))
    )
    splits = {}
    for i, name in enumerate(SPLIT_NAMES):
        rows = split == i
        splits[name] = MarketData(
            name=name,
            timestamps=arrays["date"][rows].astype("datetime64[ns]"),
            **{c: arrays[c][rows] for c in (*BAR_COLUMNS, "funding_rate")},
            features=np.ascontiguousarray(feats[rows], dtype=np.float32),
            feature_names=names,
            regime=arrays["regime"][rows].astype(np.int8) if "regime" in arrays else None,
            # absent in a dataset prepared without marks (or mark candles), and in old caches
            mark_price=arrays["mark_price"][rows] if "mark_price" in arrays else None,
            mark_high=arrays["mark_high"][rows] if "mark_high" in arrays else None,
            mark_low=arrays["mark_low"][rows] if "mark_low" in arrays else None,
        )
    Normaliser.from_state(meta["normaliser"])  # fails loudly on a corrupt statistics block
    return Dataset(
        fingerprint=meta["fingerprint"], normaliser=meta["normaliser"], meta=meta["meta"], **splits
    )
