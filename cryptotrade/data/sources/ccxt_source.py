"""Bars from any ccxt exchange: paginated, rate-limited, retried, cached incrementally.

``CcxtSource(exchange="binance", symbol="BTC/USDT", timeframe="1h", start=..., end=...)`` downloads
closed candles with ``fetch_ohlcv`` page by page through ccxt's own rate limiter
(``enableRateLimit``), retries the errors ccxt marks as transient with exponential backoff, and
fails at once, with a message saying what to fix, on the ones that are not. Candles are kept in an
incremental parquet cache (:mod:`cryptotrade.data.sources.cache`): a later call downloads only the
missing stretch before or after the cached range; the still-open last candle is never stored.
Perpetual swaps also get their funding history (``fetch_funding_rate_history``), cached the same
way and aligned into ``funding_rate``; with ``mark_price=true`` also the exchange's mark-price
candles (``fetch_mark_ohlcv``), whose close is the mark at each bar's close (``mark_price``)
and whose high/low are the mark's own range in the bar (``mark_high``/``mark_low``, on which
the env liquidates; see :mod:`cryptotrade.data.sources.mark`).

API keys are only read from environment variables named in the config (never the keys
themselves), and never logged; public market data needs none.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd

from cryptotrade.data.market_data import BAR_COLUMNS
from cryptotrade.data.sources.cache import merge_rows, missing_ranges, read_cache, write_cache
from cryptotrade.data.sources.frames import bars_frame, dt_index, parse_date
from cryptotrade.data.sources.funding import align_funding
from cryptotrade.data.sources.mark import candle_marks, put_marks
from cryptotrade.errors import DataError
from cryptotrade.timeframes import timeframe_to_ms

log = logging.getLogger(__name__)

# ccxt's transient errors (OnMaintenance is an ExchangeNotAvailable, RateLimitExceeded a
# DDoSProtection in older versions; all are NetworkErrors). Everything else fails at once.
RETRYABLE = (
    "NetworkError",
    "RequestTimeout",
    "ExchangeNotAvailable",
    "DDoSProtection",
    "RateLimitExceeded",
    "OnMaintenance",
)
_FIXES = {
    "AuthenticationError": "check the API key environment variables named by "
    "data.source.api_key_env / secret_env (public candles need no key: set them to null)",
    "BadSymbol": "check data.source.symbol (unified ccxt symbol: BTC/USDT for spot, "
    "BTC/USDT:USDT for the USDT-margined perpetual)",
    "NotSupported": "this exchange or market does not offer it through ccxt; choose another "
    "data.source.exchange, or set data.source.funding=false",
}


class ExchangeClient(Protocol):
    """The part of a ``ccxt.Exchange`` this source uses (a real ccxt object in tests too)."""

    id: str
    has: dict[str, Any]
    timeframes: dict[str, Any]

    def load_markets(self) -> dict[str, Any]: ...
    def market(self, symbol: str) -> dict[str, Any]: ...
    def milliseconds(self) -> int: ...
    def fetch_ohlcv(self, symbol: str, timeframe: str, since: int, limit: int) -> list: ...
    def fetch_funding_rate_history(self, symbol: str, since: int, limit: int) -> list: ...
    def fetch_mark_ohlcv(self, symbol: str, timeframe: str, since: int, limit: int) -> list: ...


class CcxtSourceError(DataError, RuntimeError):
    """A non-retryable exchange error, or retries exhausted; the message says what to fix.

    A :class:`~cryptotrade.errors.UserError`: the launcher prints it as one line (an exchange
    that cannot be reached is not a bug to trace); ``HYDRA_FULL_ERROR=1`` shows the trace.
    """


def _first_line(exc: BaseException, limit: int = 200) -> str:
    """The start of an exception's message: ccxt's network errors carry whole HTTP bodies."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


class CcxtSource:
    """Closed OHLCV candles (and funding for perpetuals) from a ccxt exchange.

    Args:
        exchange: ccxt exchange id (``binance``, ``bybit``, ``okx``, ``kraken`` ...).
        symbol: Unified ccxt symbol: ``BTC/USDT`` (spot) or ``BTC/USDT:USDT`` (linear perpetual).
        timeframe: Candle length as the exchange names it (``1m``, ``1h``, ``1d`` ...).
        start: First candle open time, ISO date UTC (inclusive).
        end: Candle open time to stop before (exclusive); ``None`` = up to the last closed candle.
        cache_dir: Folder of the parquet cache; ``None`` downloads every time.
        funding: Fetch funding history: ``None`` = for perpetual swaps only, ``True`` = required,
            ``False`` = never.
        limit: Candles (or funding rows) per request; ``None`` = the exchange's maximum we know
            (1000), capped by ccxt per exchange.
        max_retries: Retries of one request on a transient error before giving up.
        backoff_s: First retry delay in seconds; doubled on every further retry.
        max_backoff_s: Longest delay between retries.
        options: Extra ccxt exchange options (e.g. ``{defaultType: swap}``).
        api_key_env: Name of the environment variable holding the API key (not the key).
        secret_env: Name of the environment variable holding the API secret.
        client: A ready ccxt exchange object to use instead of building one (tests, sessions).
        mark_price: Also fetch the mark-price candles of a perpetual or future
            (``fetch_mark_ohlcv``, cached like the candles) into ``mark_price`` and
            ``mark_high``/``mark_low``: funding then uses the mark, liquidation the mark's own
            low (longs) / high (shorts) in each bar, fills the traded price.
        mark_coverage: Bars whose mark candle the exchange does not return: ``reject``, or
            ``warn`` (the last earlier mark, else the traded close; counted in the summary).
    """

    def __init__(
        self,
        exchange: str = "binance",
        symbol: str = "BTC/USDT",
        timeframe: str = "1h",
        start: str = "2024-01-01",
        end: str | None = None,
        cache_dir: str | None = None,
        funding: bool | None = None,
        limit: int | None = None,
        max_retries: int = 5,
        backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
        options: dict[str, Any] | None = None,
        api_key_env: str | None = None,
        secret_env: str | None = None,
        client: ExchangeClient | None = None,
        mark_price: bool = False,
        mark_coverage: Literal["reject", "warn"] = "reject",
    ) -> None:
        self.step_ms = timeframe_to_ms(timeframe)
        self.start_ms = int(parse_date(start).value // 1_000_000)
        self.end_ms = None if end is None else int(parse_date(end).value // 1_000_000)
        if self.end_ms is not None and self.end_ms <= self.start_ms:
            raise ValueError(f"data.source.end={end!r} is not after start={start!r}")
        if max_retries < 0 or backoff_s < 0:
            raise ValueError(f"max_retries={max_retries} and backoff_s={backoff_s} must be >= 0")
        if limit is not None and limit <= 0:
            raise ValueError(f"data.source.limit={limit} must be positive (or null)")
        if mark_coverage not in ("reject", "warn"):
            raise ValueError(f"data.source.mark_coverage={mark_coverage!r}; use reject or warn")
        self.mark_price = mark_price
        self.mark_coverage = mark_coverage
        self.exchange = exchange
        self.symbol = symbol
        self.timeframe = timeframe
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.funding = funding
        self.limit = limit or 1000
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.options = dict(options or {})
        self.api_key_env = api_key_env
        self.secret_env = secret_env
        self.client = client
        self.sleep: Callable[[float], None] = time.sleep
        self.requests = 0  # requests sent by the last load(), retries included

    @property
    def reproducible(self) -> bool:
        """Whether two loads give the same bars: not when ``end`` is open (new candles arrive),
        so a prepared dataset of an open range is never served from the dataset cache."""
        return self.end_ms is not None

    def __repr__(self) -> str:  # never shows credentials, only where they would come from
        return (
            f"CcxtSource(exchange={self.exchange!r}, symbol={self.symbol!r}, "
            f"timeframe={self.timeframe!r}, start_ms={self.start_ms}, end_ms={self.end_ms})"
        )

    # ----------------------------------------------------------------------------------------
    def load(self) -> pd.DataFrame:
        """Download what the cache lacks and return the bars (UTC open-time index)."""
        self.requests = 0
        ex = self.client if self.client is not None else self._build_exchange()
        self._call(ex.load_markets)
        market = self._call(ex.market, self.symbol)
        if not ex.has.get("fetchOHLCV"):
            raise CcxtSourceError(f"{ex.id} has no fetchOHLCV; {_FIXES['NotSupported']}")
        if ex.timeframes and self.timeframe not in ex.timeframes:
            raise CcxtSourceError(
                f"{ex.id} has no timeframe {self.timeframe!r}; use one of {sorted(ex.timeframes)}"
            )
        now = int(ex.milliseconds())
        end = min(self.end_ms if self.end_ms is not None else now, self._closed_until(now))
        candles = self._sync(
            "ohlcv", list(BAR_COLUMNS), self.start_ms, end, lambda a, b: self._ohlcv(ex, a, b, now)
        )
        candles = candles[(candles.index >= _ts(self.start_ms)) & (candles.index < _ts(end))]
        if candles.empty:
            raise CcxtSourceError(
                f"{ex.id} returned no closed {self.timeframe} candles for {self.symbol} in "
                f"[{_ts(self.start_ms)}, {_ts(end)}); check data.source.start/end"
            )
        bars = bars_frame(dt_index(candles), {c: candles[c].to_numpy() for c in BAR_COLUMNS})
        if self._wants_funding(ex, market):
            # settlements are only due on bars opening before `end` (align_funding drops later
            # ones); stopping there, not at `now`, also leaves the exchange time to publish a
            # settlement before its time is cached as complete
            rates = self._sync(
                "funding",
                ["funding_rate"],
                self.start_ms,
                end,
                lambda a, b: self._funding(ex, a, b),
            )
            bars["funding_rate"] = align_funding(dt_index(bars), rates["funding_rate"])
        if self.mark_price:
            self._add_marks(ex, market, bars, end, now)
        return bars

    def _add_marks(
        self, ex: ExchangeClient, market: dict[str, Any], bars: pd.DataFrame, end: int, now: int
    ) -> None:
        """Mark candles of the bars' range into ``bars["mark_price"]`` (their close: the mark at
        the bar's close) and ``bars["mark_high"]``/``["mark_low"]`` (the mark's own range in the
        bar, which liquidation uses), the coverage summary into ``bars.attrs["mark"]``."""
        if not (market.get("swap") or market.get("future")) or not ex.has.get("fetchMarkOHLCV"):
            raise CcxtSourceError(
                f"mark_price=true but {self.symbol} on {ex.id} has no mark-price candles "
                f"(swap={bool(market.get('swap'))}); use a perpetual or future symbol "
                "(BTC/USDT:USDT), or set data.source.mark_price=false"
            )
        candles = self._sync(
            "mark",
            ["mark_price", "mark_high", "mark_low"],
            self.start_ms,
            end,
            lambda a, b: self._ohlcv(ex, a, b, now, ex.fetch_mark_ohlcv)[
                ["close", "high", "low"]
            ].rename(columns={"close": "mark_price", "high": "mark_high", "low": "mark_low"}),
        )
        if candles.empty:
            raise CcxtSourceError(
                f"{ex.id} returned no {self.timeframe} mark-price candles for {self.symbol}; "
                "set data.source.mark_price=false"
            )
        step = self.step_ms * 1_000_000
        marks = candle_marks(
            dt_index(candles).asi8,
            candles["mark_price"].to_numpy(),
            step,
            f"the {ex.id} {self.symbol} mark-price candles",
            candles["mark_high"].to_numpy(),
            candles["mark_low"].to_numpy(),
        )
        warning = put_marks(bars, marks, step, repr(self), self.mark_coverage)
        if warning is not None:
            log.warning(warning)
            bars.attrs.setdefault("warnings", []).append(warning)

    def _closed_until(self, now: int) -> int:
        """Every candle opening before this time is closed (t + step <= now); none after is."""
        until = now - self.step_ms + 1
        if 86_400_000 % self.step_ms == 0:  # intraday/daily candles sit on the epoch grid
            until = -(-until // self.step_ms) * self.step_ms
        return until

    # ----------------------------------------------------------------------------------------
    def _build_exchange(self) -> ExchangeClient:
        import ccxt  # heavy-ish import, only when a download is actually requested

        if not hasattr(ccxt, self.exchange):
            raise CcxtSourceError(
                f"ccxt has no exchange {self.exchange!r}; see ccxt.exchanges for the ids"
            )
        config: dict[str, Any] = {"enableRateLimit": True, "options": self.options}
        for field, env in (("apiKey", self.api_key_env), ("secret", self.secret_env)):
            if env is None:
                continue
            value = os.environ.get(env)
            if not value:
                raise CcxtSourceError(f"environment variable {env} (for {field}) is not set")
            config[field] = value
        return getattr(ccxt, self.exchange)(config)

    def _wants_funding(self, ex: ExchangeClient, market: dict[str, Any]) -> bool:
        perpetual = bool(market.get("swap"))
        if self.funding is False or (self.funding is None and not perpetual):
            return False
        if not perpetual or not ex.has.get("fetchFundingRateHistory"):
            raise CcxtSourceError(
                f"funding=true but {self.symbol} on {ex.id} has no funding history "
                f"(swap={perpetual}); {_FIXES['NotSupported']}"
            )
        return True

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call ``fn``, retrying ccxt's transient errors with exponential backoff."""
        import ccxt

        retryable = tuple(getattr(ccxt, name) for name in RETRYABLE)
        for attempt in range(self.max_retries + 1):
            self.requests += 1
            try:
                return fn(*args, **kwargs)
            except retryable as exc:
                if attempt == self.max_retries:
                    raise CcxtSourceError(
                        f"{self.exchange} {self.symbol}: {type(exc).__name__} persisted after "
                        f"{self.max_retries} retries ({_first_line(exc)}); try later or raise "
                        "data.source.max_retries"
                    ) from exc
                delay = min(self.max_backoff_s, self.backoff_s * 2**attempt)
                log.warning(
                    "%s: %s, retry %d/%d in %.1fs",
                    self.exchange,
                    type(exc).__name__,
                    attempt + 1,
                    self.max_retries,
                    delay,
                )
                self.sleep(delay)
            except ccxt.BaseError as exc:
                fix = _FIXES.get(type(exc).__name__, "this error is not transient; not retried")
                raise CcxtSourceError(
                    f"{self.exchange} {self.symbol} {self.timeframe}: {type(exc).__name__}: "
                    f"{_first_line(exc)}; {fix}"
                ) from exc
        raise AssertionError("unreachable")

    # ----------------------------------------------------------------------------------------
    def _sync(
        self,
        kind: str,
        columns: list[str],
        start: int,
        end: int,
        fetch: Callable[[int, int], pd.DataFrame],
    ) -> pd.DataFrame:
        """Bring the ``kind`` cache up to ``[start, end)``; return all cached rows."""
        key = {"exchange": self.exchange, "symbol": self.symbol, "kind": kind}
        if kind in ("ohlcv", "mark"):
            key["timeframe"] = self.timeframe
        path = self._cache_path(kind)
        cached = read_cache(path, key, columns)
        frame, c0, c1 = cached.frame, cached.start_ms, cached.end_ms
        for a, b in missing_ranges(c0, c1, start, end):
            log.info(
                "%s %s %s: downloading %s .. %s", self.exchange, self.symbol, kind, _ts(a), _ts(b)
            )
            frame = merge_rows(frame, fetch(a, b))
            c0 = a if c0 is None else min(c0, a)
            c1 = b if c1 is None else max(c1, b)
            if path is not None:  # each completed range is saved before the next one starts
                write_cache(path, frame, c0, c1, key)
        return frame

    def _cache_path(self, kind: str) -> Path | None:
        if self.cache_dir is None:
            return None
        name = re.sub(r"[^A-Za-z0-9]+", "-", self.symbol).strip("-")
        # mark candles keep close, high and low (a cache of closes only, "_mark", is not read)
        suffix = {"ohlcv": f"_{self.timeframe}", "mark": f"_{self.timeframe}_mark_hlc"}.get(
            kind, f"_{kind}"
        )
        return self.cache_dir / "ccxt" / self.exchange / f"{name}{suffix}.parquet"

    def _ohlcv(
        self,
        ex: ExchangeClient,
        start: int,
        end: int,
        now: int,
        fetch: Callable[..., list] | None = None,
    ) -> pd.DataFrame:
        """Closed candles with open time in ``[start, end)``, page by page (``fetch``: the
        exchange's ``fetch_ohlcv``, or ``fetch_mark_ohlcv`` for mark-price candles)."""
        rows: list[list[float]] = []
        since = start
        while since < end:
            page = self._call(
                fetch or ex.fetch_ohlcv, self.symbol, self.timeframe, since, self.limit
            )
            page = [r for r in page if r[0] >= since]
            if not page:
                break
            rows.extend(r for r in page if r[0] < end and r[0] + self.step_ms <= now)
            since = int(page[-1][0]) + self.step_ms
        table = np.asarray(rows, dtype=np.float64).reshape(-1, 6)
        index = pd.to_datetime(table[:, 0].astype(np.int64), unit="ms", utc=True)
        frame = pd.DataFrame(table[:, 1:], columns=list(BAR_COLUMNS), index=index.as_unit("ns"))
        return frame[~frame.index.duplicated(keep="last")].rename_axis("date")

    def _funding(self, ex: ExchangeClient, start: int, end: int) -> pd.DataFrame:
        """Funding settlements with time in ``[start, end)``, page by page."""
        times: list[int] = []
        rates: list[float] = []
        since = start
        while since < end:
            page = self._call(ex.fetch_funding_rate_history, self.symbol, since, self.limit)
            page = [r for r in page if r["timestamp"] is not None and r["timestamp"] >= since]
            if not page:
                break
            for r in page:
                if r["timestamp"] < end:
                    times.append(int(r["timestamp"]))
                    rates.append(float(r["fundingRate"]))
            since = int(page[-1]["timestamp"]) + 1
        index = pd.to_datetime(np.asarray(times, dtype=np.int64), unit="ms", utc=True)
        frame = pd.DataFrame({"funding_rate": rates}, index=index.as_unit("ns"), dtype=np.float64)
        return frame[~frame.index.duplicated(keep="last")].rename_axis("date")


def _ts(ms: int) -> pd.Timestamp:
    return pd.Timestamp(ms, unit="ms", tz="UTC")
