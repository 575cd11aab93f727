"""Chronological splits: train/val/test by fraction or date, and walk-forward folds.

Splits never shuffle: train precedes val precedes test. ``embargo`` bars are dropped between
consecutive ranges, so an observation window of up to ``embargo`` bars that ends in one range
never reaches back into the previous one (the gap that López de Prado calls an embargo).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SPLIT_NAMES = ("train", "val", "test")


def _to_ns(timestamps: np.ndarray | pd.DatetimeIndex) -> np.ndarray:
    """Timestamps as int64 nanoseconds since the epoch (UTC)."""
    if isinstance(timestamps, pd.DatetimeIndex):
        idx = timestamps.tz_convert("UTC") if timestamps.tz is not None else timestamps
        return idx.as_unit("ns").asi8
    return np.asarray(timestamps).astype("datetime64[ns]").astype(np.int64)


def _date_ns(value: str, name: str) -> int:
    try:
        stamp = pd.Timestamp(value)
    except ValueError as err:
        raise ValueError(f"data.split.{name}={value!r} is not an ISO date like 2024-01-01") from err
    stamp = stamp.tz_localize("UTC") if stamp.tz is None else stamp.tz_convert("UTC")
    return int(stamp.as_unit("ns").value)


class ChronoSplit:
    """Chronological train/val/test split of the bars left after feature warm-up.

    Args:
        train: Fraction of bars in the training split.
        val: Fraction of bars in the validation split.
        test: Fraction of bars in the test split (the three must sum to 1).
        train_end: ISO date: train = bars opening before it (overrides the fractions).
        val_end: ISO date ending val (needs ``train_end``); test = the rest. If ``None`` with a
            ``train_end``, the bars after ``train_end`` are shared between val and test in the
            ratio ``val : test``.
        embargo: Bars dropped between consecutive splits (use at least the env window).
    """

    def __init__(
        self,
        train: float = 0.7,
        val: float = 0.15,
        test: float = 0.15,
        train_end: str | None = None,
        val_end: str | None = None,
        embargo: int = 0,
    ) -> None:
        for name, frac in (("train", train), ("val", val), ("test", test)):
            if not 0 < frac < 1:
                raise ValueError(f"data.split.{name}={frac} must be a fraction in (0, 1)")
        if abs(train + val + test - 1.0) > 1e-9:
            raise ValueError(
                f"data.split fractions train={train} + val={val} + test={test} = "
                f"{train + val + test:.6g}; they must sum to 1"
            )
        if embargo < 0:
            raise ValueError(f"data.split.embargo={embargo} must be >= 0 bars")
        if val_end is not None and train_end is None:
            raise ValueError(f"data.split.val_end={val_end!r} needs data.split.train_end too")
        self.train, self.val, self.test = float(train), float(val), float(test)
        self.train_end = None if train_end is None else _date_ns(train_end, "train_end")
        self.val_end = None if val_end is None else _date_ns(val_end, "val_end")
        if (
            self.val_end is not None
            and self.train_end is not None
            and (self.val_end <= self.train_end)
        ):
            raise ValueError(
                f"data.split.val_end={val_end!r} must be after train_end={train_end!r}"
            )
        self.embargo = int(embargo)

    def _boundaries(self, ts: np.ndarray) -> tuple[int, int]:
        """End (exclusive) of train and of val, before the embargo is applied."""
        n = len(ts)
        if self.train_end is None:
            usable = n - 2 * self.embargo
            n_train = int(self.train * usable)
            n_val = int(self.val * usable)
            return n_train, n_train + self.embargo + n_val
        train_stop = int(np.searchsorted(ts, self.train_end, side="left"))
        if self.val_end is not None:
            return train_stop, int(np.searchsorted(ts, self.val_end, side="left"))
        rest = n - train_stop - 2 * self.embargo
        n_val = int(rest * self.val / (self.val + self.test))
        return train_stop, train_stop + self.embargo + n_val

    def split(self, timestamps: np.ndarray | pd.DatetimeIndex) -> dict[str, slice]:
        """Split bar indices ``0..n-1`` into ``{"train", "val", "test"}`` slices, in order.

        Args:
            timestamps: Bar open times, strictly increasing (``datetime64`` or DatetimeIndex).

        Raises:
            ValueError: If a split would be empty; the message names the setting to change.
        """
        ts = _to_ns(timestamps)
        train_stop, val_stop = self._boundaries(ts)
        e = self.embargo
        slices = {
            "train": slice(0, train_stop),
            "val": slice(min(train_stop + e, val_stop), val_stop),
            "test": slice(min(val_stop + e, len(ts)), len(ts)),
        }
        for name, sl in slices.items():
            if sl.stop - sl.start <= 0:
                raise ValueError(
                    f"the {name} split of {len(ts)} bars is empty (train_end/val_end/fractions "
                    f"{self.train_end, self.val_end, self.train, self.val, self.test}, embargo="
                    f"{e}); use more bars (data.source.num_samples), move data.split.train_end/"
                    "val_end inside the data range, or lower data.split.embargo"
                )
        return slices


class WalkForward:
    """Walk-forward folds: train on the past, validate and test on the next bars, then roll.

    Fold ``k`` (``k = 0..folds-1``) tests on the ``k``-th of ``folds`` equal test blocks at the end
    of the data; its validation block of ``val`` bars and training window precede it, each pair
    separated by ``embargo`` bars. With ``train=None`` the training window expands from bar 0
    (anchored walk-forward); with ``train=N`` it is the ``N`` bars before the validation block.

    Args:
        folds: Number of folds.
        test: Bars in each test block.
        val: Bars in each validation block.
        train: Bars in each training window, or ``None`` for an expanding window.
        embargo: Bars dropped between train and val and between val and test.
    """

    def __init__(
        self,
        folds: int = 5,
        test: int = 1000,
        val: int = 500,
        train: int | None = None,
        embargo: int = 0,
    ) -> None:
        if folds < 1 or test < 1 or val < 1 or embargo < 0 or (train is not None and train < 1):
            raise ValueError(
                f"walk-forward folds={folds}, test={test}, val={val} must be >= 1, train={train} "
                f"None or >= 1, embargo={embargo} >= 0"
            )
        self.folds, self.test, self.val = int(folds), int(test), int(val)
        self.train = None if train is None else int(train)
        self.embargo = int(embargo)

    def split(self, timestamps: np.ndarray | pd.DatetimeIndex) -> list[dict[str, slice]]:
        """The folds in chronological order, each ``{"train", "val", "test"}`` slices."""
        n = len(_to_ns(timestamps))
        first_test = n - self.folds * self.test
        out = []
        for k in range(self.folds):
            test_start = first_test + k * self.test
            val_start = test_start - self.embargo - self.val
            train_stop = val_start - self.embargo
            train_start = 0 if self.train is None else train_stop - self.train
            if train_start < 0 or train_stop <= train_start:
                raise ValueError(
                    f"walk-forward fold {k} needs {self.folds * self.test} test + {self.val} val "
                    f"+ 2x{self.embargo} embargo + {self.train or 1} train bars but there are "
                    f"only {n}; lower folds/test/val/train or use more data"
                )
            out.append(
                {
                    "train": slice(train_start, train_stop),
                    "val": slice(val_start, val_start + self.val),
                    "test": slice(test_start, test_start + self.test),
                }
            )
        return out
