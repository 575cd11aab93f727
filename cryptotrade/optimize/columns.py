"""Indicator columns computed once per (indicator, parameters, bars) and reused across candidates.

A GA over indicator parameters changes one or two indicators per candidate; the other columns
are the same as the previous candidate's. :class:`CachedFeatureSet` is a
:class:`~cryptotrade.data.features.FeatureSet` whose built-in indicators look their columns up in
an on-disk cache first (the GA+RL system's precalculation, generalised): one parquet file per
column group, named by a hash of the indicator kind, its parameters and the content of the bars
it runs on (base or higher-timeframe bars), so a cached column can only be reused for exactly the
input that produced it. Files are written to a temporary name and renamed into place, so any
number of workers (processes, Ray tasks, machines sharing the folder) can fill the cache at once.

Searches switch it on for their candidates (``optimizer.column_cache``, see
:meth:`cryptotrade.optimize.derive.ConfigDeriver.with_column_cache`); the winner's final run and
its saved config use the plain ``FeatureSet``, which computes the same numbers.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from cryptotrade.data.features import Arrays, FeatureSet, _Feature
from cryptotrade.io import atomic_write

PLAIN_TARGET = "cryptotrade.data.features.FeatureSet"
CACHED_TARGET = "cryptotrade.optimize.columns.CachedFeatureSet"


class ColumnCache:
    """Parquet files of indicator columns under ``folder``, keyed by kind + params + bars."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.hits = 0
        self.misses = 0
        self._hashes: dict[int, tuple[Any, str]] = {}

    def _bars_hash(self, arrays: Arrays) -> str:
        """Content hash of the input arrays, memoised per arrays object within a compute."""
        memo = self._hashes.get(id(arrays))
        if memo is not None and memo[0] is arrays:
            return memo[1]
        digest = hashlib.sha256()
        for name in sorted(arrays):
            column = np.ascontiguousarray(arrays[name])
            digest.update(f"{name}:{column.dtype}:{column.shape}".encode())
            digest.update(column.tobytes())
        value = digest.hexdigest()[:24]
        self._hashes[id(arrays)] = (arrays, value)
        return value

    def key(self, feature: _Feature, arrays: Arrays) -> str:
        """File stem of ``feature``'s columns on ``arrays``."""
        recipe = json.dumps(
            {"fn": f"{feature.fn.__module__}.{feature.fn.__qualname__}", "params": feature.params},
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(f"{recipe}|{self._bars_hash(arrays)}".encode()).hexdigest()[:32]

    def compute(self, feature: _Feature, arrays: Arrays, frame: Any) -> Arrays:
        """``feature``'s columns on ``arrays``: from the cache, or computed and stored."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = self.folder / f"{self.key(feature, arrays)}.parquet"
        if path.exists():
            self.hits += 1
            table = pq.read_table(path)
            parts = {n: table.column(n).to_numpy() for n in table.column_names}
        else:
            self.misses += 1
            parts = type(feature).compute(feature, arrays, frame)
            table = pa.table({n: np.asarray(c, np.float64) for n, c in parts.items()})
            with atomic_write(path) as fh:  # concurrent writers: the last complete file wins
                pq.write_table(table, fh)
        # the column names depend on the feature's name, which is not part of the key
        return {n: np.asarray(c, np.float64) for n, c in parts.items()}

    def clear_memo(self) -> None:
        """Forget the input hashes (called after each feature computation)."""
        self._hashes.clear()


class CachedFeatureSet(FeatureSet):
    """A :class:`FeatureSet` whose built-in indicators are cached in ``column_cache``.

    Args:
        column_cache: Folder of the cached columns (shared by every candidate of a search).
        **kwargs: The :class:`FeatureSet` arguments.
    """

    def __init__(self, column_cache: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.column_cache = cache = ColumnCache(Path(column_cache))
        higher = [f for _, feats in self.higher.values() for f in feats]
        for feature in [*self.indicators, *higher]:
            if not feature.custom:  # user functions may not be pure: always run them
                feature.compute = functools.partial(cache.compute, feature)  # type: ignore[method-assign]

    def compute(self, bars: Any) -> Any:
        """See :meth:`FeatureSet.compute`."""
        try:
            return super().compute(bars)
        finally:
            self.column_cache.clear_memo()
