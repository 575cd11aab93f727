"""Bar validation: every defect is repaired by an explicit policy and counted, or rejected.

Every source's bars pass through :class:`ValidationPolicy` before features are computed. The
checks run in this order, each with its own setting (the default of every setting rejects):

====================  ==============================  =======================================
defect                setting                         repairs
====================  ==============================  =======================================
timestamps unsorted   ``unsorted``                    ``sort`` (stable)
duplicate timestamps  ``duplicates``                  ``keep_first`` / ``keep_last``
NaN / inf values      ``non_finite``                  ``drop`` the row / ``fill`` (prices from
                                                      the previous close, a mark price from
                                                      the previous mark, a mark high/low from
                                                      the row's mark, other columns 0)
prices <= 0, vol < 0  ``non_positive``                ``drop`` the row (a ``mark_price``,
                                                      ``mark_high`` or ``mark_low`` <= 0
                                                      counts as a price)
OHLC inconsistent     ``ohlc``                        ``widen`` high/low to cover open/close,
                                                      ``clip`` open/close into [low, high]
price jumps           ``outliers`` +                  ``clip`` the bar's prices to the bound
                      ``outlier_sigmas``              (a jump beyond k robust standard
                                                      deviations of the log returns, see
                                                      :mod:`cryptotrade.data.outliers`);
                                                      ``keep`` (counted)
missing bars          ``fill_gaps`` + ``long_gaps``   gaps of <= ``fill_gaps`` bars filled with
                                                      flat bars at the previous close (and
                                                      mark), zero volume; longer ones ``keep``
                                                      (left as is)
====================  ==============================  =======================================

Volume that is zero on every bar (a mark-price or index file) is not a defect of the bars but
makes every volume feature constant: it is logged as a warning and counted as
``volume_all_zero`` (``features.constant`` then decides about the constant columns).

A rejection raises :class:`DataValidationError` naming the rows (position and timestamp) and the
setting that would allow them; a repair is counted in the returned dict, which the dataset summary
and MLflow report. Nothing is changed silently.
"""

from __future__ import annotations

import logging
from typing import Literal, get_args

import numpy as np
import pandas as pd

from cryptotrade.data.market_data import BAR_COLUMNS, MARK_COLUMNS
from cryptotrade.data.outliers import find_jumps
from cryptotrade.data.sources.frames import dt_index
from cryptotrade.errors import DataError
from cryptotrade.timeframes import format_ns, infer_step_ns, timeframe_to_ns

_log = logging.getLogger(__name__)
_HOUR_NS = 3_600_000_000_000
_SUNDAY = 6
_DST_FIX = (
    "they repeat one hour of a Sunday night, as local times written without a zone do when "
    "the clocks go back: set data.source.timezone to the zone the file was written in (e.g. "
    "Europe/Berlin), which reads them as the distinct times they are"
)

PRICE_COLUMNS = ("open", "high", "low", "close")
# Columns whose value on an empty (filled) bar is the previous close, or zero.
_PRICE_LIKE = (*PRICE_COLUMNS, "vwap")
_MARK_RANGE = ("mark_high", "mark_low")  # a mark candle's range, given only with mark_price
_ADDITIVE = ("volume", "funding_rate", "trades", "buy_volume", "sell_volume", "quote_volume")

Unsorted = Literal["reject", "sort"]
Duplicates = Literal["reject", "keep_first", "keep_last"]
NonFinite = Literal["reject", "drop", "fill"]
NonPositive = Literal["reject", "drop"]
Ohlc = Literal["reject", "widen", "clip"]
LongGaps = Literal["reject", "keep"]
Outliers = Literal["reject", "clip", "keep"]

COUNT_KEYS = (
    "unsorted",
    "duplicates",
    "non_finite",
    "non_positive",
    "ohlc",
    "outliers",
    "volume_all_zero",
    "gaps_filled",
    "bars_filled",
    "gaps_kept",
    "bars_missing",
)


class DataValidationError(DataError):
    """A defect in the bars that the configured policy does not allow."""


class ValidationPolicy:
    """Check a bars frame; repair each defect by its configured policy or reject it.

    Args:
        timeframe: Expected bar spacing (``1h``, ``15min`` ...); ``None`` infers the most common
            spacing. Spacings that are not a whole multiple of it are always rejected.
        unsorted: ``reject`` | ``sort`` timestamps that go backwards.
        duplicates: ``reject`` | ``keep_first`` | ``keep_last`` of rows sharing a timestamp.
        non_finite: ``reject`` | ``drop`` | ``fill`` rows with NaN/inf in any numeric column.
            ``fill`` sets prices (and ``vwap``) to the previous close, other columns to 0.
        non_positive: ``reject`` | ``drop`` rows with a price <= 0 or a negative volume.
        ohlc: ``reject`` | ``widen`` | ``clip`` rows where high < max(open, close) or
            low > min(open, close) (e.g. BitMEX bucketed bars, whose open is the previous close).
            ``widen`` moves high/low out to cover open and close; ``clip`` moves open/close in.
        outliers: ``reject`` | ``clip`` | ``keep`` bars whose open, high, low or close jumps
            more than ``outlier_sigmas`` robust standard deviations of the close-to-close log
            returns from the previous close (a bad tick, a bar x1000). ``clip`` clamps the
            bar's prices to that bound (measured from the previous, clipped, close).
        outlier_sigmas: The bound ``k``. Real moves on the shared files (1m to 1d bars, the
            2019 and 2020 crashes included) stay below 70; a bar x1000 is 129 or more.
        fill_gaps: Gaps of up to this many missing bars are filled with flat bars at the
            previous close and zero volume (0 = fill none).
        long_gaps: ``reject`` | ``keep`` gaps longer than ``fill_gaps`` (``keep`` leaves the jump
            in time as it is and counts it).
        max_rows_listed: How many offending rows an error message lists.
    """

    def __init__(
        self,
        timeframe: str | None = None,
        unsorted: Unsorted = "reject",
        duplicates: Duplicates = "reject",
        non_finite: NonFinite = "reject",
        non_positive: NonPositive = "reject",
        ohlc: Ohlc = "reject",
        fill_gaps: int = 0,
        long_gaps: LongGaps = "reject",
        outliers: Outliers = "reject",
        outlier_sigmas: float = 100.0,
        max_rows_listed: int = 5,
    ) -> None:
        for name, value, kind in (
            ("unsorted", unsorted, Unsorted),
            ("duplicates", duplicates, Duplicates),
            ("non_finite", non_finite, NonFinite),
            ("non_positive", non_positive, NonPositive),
            ("ohlc", ohlc, Ohlc),
            ("long_gaps", long_gaps, LongGaps),
            ("outliers", outliers, Outliers),
        ):
            if value not in get_args(kind):
                raise ValueError(
                    f"validation.{name}={value!r} is not a policy; use one of {get_args(kind)}"
                )
        if outlier_sigmas <= 0:
            raise ValueError(f"validation.outlier_sigmas={outlier_sigmas} must be > 0")
        if fill_gaps < 0:
            raise ValueError(f"validation.fill_gaps={fill_gaps} must be >= 0 (0 fills no gap)")
        self.step_ns = None if timeframe is None else timeframe_to_ns(timeframe)
        self.timeframe = timeframe
        self.unsorted = unsorted
        self.duplicates = duplicates
        self.non_finite = non_finite
        self.non_positive = non_positive
        self.ohlc = ohlc
        self.fill_gaps = int(fill_gaps)
        self.long_gaps = long_gaps
        self.outliers = outliers
        self.outlier_sigmas = float(outlier_sigmas)
        self.max_rows_listed = max_rows_listed

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if k != "step_ns")
        return f"ValidationPolicy({fields})"

    # ----------------------------------------------------------------------------------------
    def apply(self, bars: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
        """Validate ``bars`` and return the repaired copy with the count of every repair.

        Args:
            bars: A bars frame (see :mod:`cryptotrade.data.market_data`).

        Returns:
            ``(bars, counts)``: the repaired frame (float64 columns, UTC index named ``date``) and
            a dict with every key of :data:`COUNT_KEYS` (0 where nothing was repaired).

        Raises:
            DataValidationError: for a defect the policy rejects, naming rows and the setting.
        """
        counts = dict.fromkeys(COUNT_KEYS, 0)
        frame = _normalise(bars)
        frame = self._check_order(frame, counts)
        frame = self._check_duplicates(frame, counts)
        # the bar length is inferred before any row is dropped, so drops cannot change it
        step = self.step_ns or (infer_step_ns(dt_index(frame).asi8) if len(frame) > 1 else 0)
        frame = self._check_non_finite(frame, counts)
        frame = self._check_non_positive(frame, counts)
        frame = self._check_ohlc(frame, counts)
        frame = self._check_jumps(frame, counts)
        if len(frame) and not frame["volume"].to_numpy().any():
            counts["volume_all_zero"] = 1
            _log.warning(
                "volume is zero on all %d bars (a mark-price or index file?): every volume "
                "feature is constant; features.constant decides about them",
                len(frame),
            )
        frame = self._check_gaps(frame, step, counts)
        return frame, counts

    # ----------------------------------------------------------------------------------------
    def _rows(self, frame: pd.DataFrame, mask: np.ndarray) -> str:
        pos = np.flatnonzero(mask)
        shown = ", ".join(
            f"{p} ({frame.index[p].isoformat()})" for p in pos[: self.max_rows_listed]
        )
        more = (
            f" and {pos.size - self.max_rows_listed} more"
            if pos.size > self.max_rows_listed
            else ""
        )
        return f"{pos.size} row(s): {shown}{more}"

    def _reject(self, what: str, frame: pd.DataFrame, mask: np.ndarray, fix: str) -> None:
        raise DataValidationError(f"{what} at {self._rows(frame, mask)}; {fix}")

    @staticmethod
    def _repeats_one_hour(ts: np.ndarray, repeated: np.ndarray) -> bool:
        """Whether the repeated (or backward) times all fall in one hour of a Sunday: what
        local times written without a zone do when the clocks go back at a DST change (EU, US,
        Australia and most other zones change on a Sunday night)."""
        times = ts[repeated]
        if not times.size or int(times.max() - times.min()) >= _HOUR_NS:
            return False
        return bool(pd.Timestamp(int(times[0])).day_of_week == _SUNDAY)

    def _check_order(self, frame: pd.DataFrame, counts: dict[str, int]) -> pd.DataFrame:
        ts = dt_index(frame).asi8
        back = np.zeros(len(ts), dtype=bool)
        back[1:] = ts[1:] < ts[:-1]
        if not back.any():
            return frame
        if self.unsorted == "reject":
            # after a jump back, the rows up to the time jumped from are repeats
            rerun = np.zeros(len(ts), dtype=bool)
            for i in np.flatnonzero(back):
                rerun[i:] |= ts[i:] <= ts[i - 1]
            self._reject(
                "timestamps go backwards",
                frame,
                back,
                _DST_FIX
                if self._repeats_one_hour(ts, rerun)
                else "set data.validation.unsorted=sort to sort them",
            )
        counts["unsorted"] = int(back.sum())
        return frame.sort_index(kind="mergesort")

    def _check_duplicates(self, frame: pd.DataFrame, counts: dict[str, int]) -> pd.DataFrame:
        dup = frame.index.duplicated(keep=False)
        if not dup.any():
            return frame
        if self.duplicates == "reject":
            self._reject(
                "duplicate timestamps",
                frame,
                dup,
                _DST_FIX
                if self._repeats_one_hour(dt_index(frame).asi8, dup)
                else "set data.validation.duplicates=keep_first or keep_last",
            )
        drop = frame.index.duplicated(keep="first" if self.duplicates == "keep_first" else "last")
        counts["duplicates"] = int(drop.sum())
        return frame[~drop]

    def _check_non_finite(self, frame: pd.DataFrame, counts: dict[str, int]) -> pd.DataFrame:
        values = frame.to_numpy(dtype=np.float64)
        bad = ~np.isfinite(values)
        rows = bad.any(axis=1)
        if not rows.any():
            return frame
        cols = [c for c, b in zip(frame.columns, bad.any(axis=0), strict=True) if b]
        if self.non_finite == "reject":
            self._reject(
                f"NaN/inf values in columns {cols}",
                frame,
                rows,
                "set data.validation.non_finite=drop or fill",
            )
        counts["non_finite"] = int(rows.sum())
        if self.non_finite == "drop":
            return frame[~rows]
        frame = frame.copy()
        close = frame["close"].where(np.isfinite(frame["close"]))
        prev_close = close.ffill().shift(1)
        for col in frame.columns:
            finite = np.isfinite(frame[col])
            fill = prev_close if col in _PRICE_LIKE else 0.0
            if col == "mark_price":  # the mark carries forward: it is no traded price
                fill = frame[col].where(finite).ffill().shift(1)
            if col in _MARK_RANGE:  # filled below from the (filled) mark close
                continue
            frame[col] = frame[col].where(finite, fill)
        for col in _MARK_RANGE:  # a bar without its mark candle's range: the mark close
            if col in frame:
                frame[col] = frame[col].where(np.isfinite(frame[col]), frame["mark_price"])
        prices = [c for c in (*PRICE_COLUMNS, *MARK_COLUMNS) if c in frame]
        still = ~np.isfinite(frame[prices].to_numpy()).all(axis=1)
        if still.any():
            self._reject(
                "NaN/inf prices with no previous close to fill from",
                frame,
                still,
                "set data.validation.non_finite=drop for leading rows",
            )
        # a filled price may fall outside the row's high/low: bound it so the fill adds no defect
        o, c = frame["open"], frame["close"]
        frame["high"] = np.where(rows, np.maximum(frame["high"], np.maximum(o, c)), frame["high"])
        frame["low"] = np.where(rows, np.minimum(frame["low"], np.minimum(o, c)), frame["low"])
        return frame

    def _check_non_positive(self, frame: pd.DataFrame, counts: dict[str, int]) -> pd.DataFrame:
        prices = frame[[c for c in (*PRICE_COLUMNS, *MARK_COLUMNS) if c in frame]].to_numpy()
        bad = (prices <= 0).any(axis=1) | (frame["volume"].to_numpy() < 0)
        if not bad.any():
            return frame
        if self.non_positive == "reject":
            self._reject(
                "prices <= 0 or negative volume",
                frame,
                bad,
                "set data.validation.non_positive=drop to drop those rows",
            )
        counts["non_positive"] = int(bad.sum())
        return frame[~bad]

    def _check_ohlc(self, frame: pd.DataFrame, counts: dict[str, int]) -> pd.DataFrame:
        o, h, lo, c = (frame[k].to_numpy() for k in PRICE_COLUMNS)
        bad = (h < np.maximum(o, c)) | (lo > np.minimum(o, c)) | (h < lo)
        if not bad.any():
            return frame
        if self.ohlc == "reject":
            self._reject(
                "OHLC inconsistent (high < max(open, close) or low > min(open, close))",
                frame,
                bad,
                "set data.validation.ohlc=widen or clip",
            )
        if self.ohlc == "clip" and (h < lo).any():
            self._reject(
                "high < low, which clipping cannot repair",
                frame,
                h < lo,
                "set data.validation.ohlc=widen",
            )
        counts["ohlc"] = int(bad.sum())
        frame = frame.copy()
        if self.ohlc == "widen":
            frame["high"] = np.maximum.reduce([o, h, lo, c])
            frame["low"] = np.minimum.reduce([o, h, lo, c])
        else:
            frame["open"] = np.clip(o, lo, h)
            frame["close"] = np.clip(c, lo, h)
        return frame

    def _check_jumps(self, frame: pd.DataFrame, counts: dict[str, int]) -> pd.DataFrame:
        ohlc = frame[list(PRICE_COLUMNS)].to_numpy()
        flagged, clipped, scale = find_jumps(ohlc, self.outlier_sigmas, self.outliers == "clip")
        if not flagged.any():
            return frame
        if self.outliers == "reject":
            self._reject(
                f"price jumps beyond {self.outlier_sigmas:g} robust standard deviations "
                f"({scale:.2e} in log return) from the previous close",
                frame,
                flagged,
                "fix those rows, or set data.validation.outliers=clip or keep (or raise "
                "data.validation.outlier_sigmas)",
            )
        counts["outliers"] = int(flagged.sum())
        if self.outliers == "keep":
            return frame
        frame = frame.copy()
        for j, col in enumerate(PRICE_COLUMNS):
            frame[col] = clipped[:, j]
        return frame

    def _check_gaps(self, frame: pd.DataFrame, step: int, counts: dict[str, int]) -> pd.DataFrame:
        ts = dt_index(frame).asi8
        if len(ts) < 2:
            return frame
        diffs = np.diff(ts)
        off = np.zeros(len(ts), dtype=bool)
        off[1:] = diffs % step != 0
        if off.any():
            self._reject(
                f"timestamps off the {format_ns(step)} grid",
                frame,
                off,
                "no policy repairs this; resample the source to one bar length "
                "(or set data.validation.timeframe to the true bar length)",
            )
        missing = diffs // step - 1
        gap_at = np.zeros(len(ts), dtype=bool)  # the bar after each gap
        gap_at[1:] = missing > 0
        if not gap_at.any():
            return frame
        longest = int(missing.max())
        long = np.zeros(len(ts), dtype=bool)
        long[1:] = missing > self.fill_gaps
        if long.any() and self.long_gaps == "reject":
            self._reject(
                f"gaps of more than {self.fill_gaps} missing bar(s) (longest {longest} bars) end",
                frame,
                long,
                f"set data.validation.fill_gaps={longest} to fill them with flat "
                "bars, or data.validation.long_gaps=keep to leave them",
            )
        fill = (missing > 0) & (missing <= self.fill_gaps)
        counts["gaps_kept"] = int(long.sum())
        counts["bars_missing"] = int(missing[missing > self.fill_gaps].sum())
        counts["gaps_filled"] = int(fill.sum())
        counts["bars_filled"] = int(missing[fill].sum())
        if not fill.any():
            return frame
        return _fill_gaps(frame, np.flatnonzero(fill), missing[fill], step)


def _normalise(bars: pd.DataFrame) -> pd.DataFrame:
    """Check the frame's structure and return a float64 copy with a UTC index named ``date``."""
    if not isinstance(bars, pd.DataFrame) or not isinstance(bars.index, pd.DatetimeIndex):
        raise DataValidationError(
            "bars must be a DataFrame indexed by a DatetimeIndex of bar open times; "
            f"got {type(bars).__name__} with index {type(getattr(bars, 'index', None)).__name__}"
        )
    if bars.index.tz is None:
        raise DataValidationError(
            "bars index is timezone-naive; the source must localise it to UTC (tz_localize('UTC'))"
        )
    missing = [c for c in BAR_COLUMNS if c not in bars.columns]
    if missing:
        raise DataValidationError(f"bars lack columns {missing}; map them in the source's columns")
    if len(bars) == 0:
        raise DataValidationError("the source returned no bars; check its path, symbol or dates")
    non_numeric = [c for c in bars.columns if not pd.api.types.is_numeric_dtype(bars[c])]
    if non_numeric:
        raise DataValidationError(
            f"bars columns {non_numeric} are not numeric; drop them in the source"
        )
    # every column becomes float64 except an integer regime label, which stays an integer
    keep = {c: bars[c].dtype for c in ("regime",) if c in bars and bars[c].dtype.kind in "iu"}
    frame = bars.astype({c: keep.get(c, np.float64) for c in bars.columns})
    frame.index = pd.DatetimeIndex(bars.index).tz_convert("UTC").as_unit("ns").rename("date")
    return frame


def _fill_gaps(
    frame: pd.DataFrame, before: np.ndarray, missing: np.ndarray, step: int
) -> pd.DataFrame:
    """Insert ``missing[k]`` flat bars after row ``before[k]``, at that row's close, zero volume."""
    reps = missing.astype(np.int64)
    base = np.repeat(dt_index(frame).asi8[before], reps)
    offset = np.concatenate([np.arange(1, m + 1, dtype=np.int64) for m in reps]) * step
    rows = frame.iloc[np.repeat(before, reps)].copy()
    rows.index = pd.to_datetime(base + offset, unit="ns", utc=True).rename("date")
    close = rows["close"].to_numpy()
    for col in rows.columns:
        if col in _PRICE_LIKE:
            rows[col] = close
        elif col in _ADDITIVE or col.endswith("volume"):
            rows[col] = 0.0
        elif col in _MARK_RANGE:  # a flat bar of the mark too: its range is the carried mark
            rows[col] = rows["mark_price"].to_numpy()
        # other columns (a regime label, the mark price) carry the previous bar's value
    return pd.concat([frame, rows]).sort_index(kind="mergesort")
