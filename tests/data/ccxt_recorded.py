"""Recorded Binance REST responses served to a *real* ``ccxt.binance`` object (not a test module).

The exchange object is genuine: markets come from ``set_markets`` with recorded market data, and
only its low-level HTTP method ``fetch`` is replaced by :meth:`RecordedBinance.fetch`, which
answers ``/api/v3/klines``, ``/fapi/v1/klines``, ``/fapi/v1/markPriceKlines`` and
``/fapi/v1/fundingRate`` from recorded raw rows (the real REST layout) with Binance's own paging
rules (``startTime``/``endTime``/``limit``). Errors are injected the way ccxt's real ``fetch``
raises them: HTTP error responses go through the exchange's own ``handle_errors`` /
``handle_http_status_code``; timeouts raise ``RequestTimeout``.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import ccxt
import numpy as np
import pandas as pd

FIXTURES = Path(__file__).resolve().parent / "fixtures"
HOUR_MS = 3_600_000

# Recorded Binance error responses: (HTTP status, reason, body)
ERRORS = {
    "timeout": None,  # requests' Timeout -> ccxt.RequestTimeout
    "reset": None,  # ConnectionResetError -> ccxt.NetworkError
    "too_many": (429, "Too Many Requests", ""),  # bare 429 -> ccxt.RateLimitExceeded
    "rate_limit": (
        429,
        "Too Many Requests",
        '{"code":-1003,"msg":"Too many requests; current limit is 6000 request weight '
        'per 1 MINUTE."}',
    ),
    "order_rate": (400, "Bad Request", '{"code":-1015,"msg":"Too many new orders."}'),
    "ban": (418, "I'm a teapot", '{"code":-1003,"msg":"Way too many requests; IP banned."}'),
    "unavailable": (503, "Service Unavailable", "Service Unavailable"),
    "maintenance": (
        503,
        "Service Unavailable",
        '{"code":-1001,"msg":"System is under maintenance."}',
    ),
    "bad_symbol": (400, "Bad Request", '{"code":-1121,"msg":"Invalid symbol."}'),
    "auth": (
        401,
        "Unauthorized",
        '{"code":-2015,"msg":"Invalid API-key, IP, or permissions for action."}',
    ),
}


def recorded_markets() -> list[dict]:
    """Unified Binance markets for BTC/USDT and BTC/USDT:USDT (recorded)."""
    return json.loads((FIXTURES / "binance_markets.json").read_text())["markets"]


def kline_rows_from_csv(path: Path) -> list[list]:
    """Raw REST kline rows from a data.binance.vision CSV (with or without header)."""
    table = pd.read_csv(path, header=None, dtype=str)
    if not table.iloc[0, 0].isdigit():
        table = table.iloc[1:]
    return [[int(r[0]), *r[1:6], int(r[6]), r[7], int(r[8]), *r[9:12]] for r in table.to_numpy()]


def kline_rows_from_bars(bars: pd.DataFrame, step_ms: int = HOUR_MS) -> list[list]:
    """Raw REST kline rows (Binance layout, prices as decimal strings) for a bars frame."""
    rows = []
    opens = bars.index.as_unit("ns").asi8 // 1_000_000
    for t, (o, h, lo, c, v) in zip(
        opens, bars[["open", "high", "low", "close", "volume"]].to_numpy(), strict=True
    ):
        quote = v * (o + c) / 2
        rows.append(
            [
                int(t),
                f"{o:.8f}",
                f"{h:.8f}",
                f"{lo:.8f}",
                f"{c:.8f}",
                f"{v:.8f}",
                int(t + step_ms - 1),
                f"{quote:.8f}",
                int(v * 10),
                f"{v / 2:.8f}",
                f"{quote / 2:.8f}",
                "0",
            ]
        )
    return rows


def mark_rows(opens_ms: np.ndarray, closes: np.ndarray, step_ms: int = HOUR_MS) -> list[list]:
    """Raw ``/fapi/v1/markPriceKlines`` rows (Binance's layout: no volume, ``"0"`` in the
    ignored fields) with the given closes; open, high and low are set around them."""
    rows = []
    for t, c in zip(np.asarray(opens_ms, np.int64), np.asarray(closes, float), strict=True):
        o = c * 0.999
        rows.append(
            [int(t), f"{o:.8f}", f"{c * 1.001:.8f}", f"{o * 0.999:.8f}", f"{c:.8f}", "0",
             int(t + step_ms - 1), "0", 60, "0", "0", "0"]
        )  # fmt: skip
    return rows


def funding_rows_from_parquet(path: Path) -> list[dict]:
    """Raw ``/fapi/v1/fundingRate`` rows from the recorded funding parquet (rate in `open`)."""
    table = pd.read_parquet(path)
    times = pd.DatetimeIndex(table["date"]).as_unit("ns").asi8 // 1_000_000
    return [
        {"symbol": "BTCUSDT", "fundingTime": int(t), "fundingRate": f"{r:.8f}", "markPrice": ""}
        for t, r in zip(times, table["open"], strict=True)
    ]


class RecordedBinance:
    """Serves recorded responses through a real ``ccxt.binance``'s ``fetch``.

    Args:
        spot: Raw spot kline rows (ascending open time).
        perp: Raw USDT-M perpetual kline rows.
        mark: Raw USDT-M mark-price kline rows.
        funding: Raw funding rows.
        now_ms: The exchange clock; candles opening after it do not exist yet, the one open at
            it is served with its close replaced by its open (still forming).
        errors: ``{request number (1-based): error name in ERRORS}`` injected before answering.
    """

    def __init__(self, spot=(), perp=(), funding=(), now_ms: int = 0, errors=None, mark=()) -> None:
        self.klines = {
            "/api/v3/klines": list(spot),
            "/fapi/v1/klines": list(perp),
            "/fapi/v1/markPriceKlines": list(mark),
        }
        self.funding = list(funding)
        self.now_ms = now_ms
        self.errors = dict(errors or {})
        self.urls: list[str] = []
        self.exchange = ccxt.binance({"enableRateLimit": True})
        self.exchange.rateLimit = 1  # ccxt's throttle still runs; 1 ms keeps tests fast
        self.exchange.set_markets(recorded_markets())
        self.exchange.fetch = self.fetch
        self.exchange.milliseconds = lambda: self.now_ms

    def requests_to(self, path: str) -> list[dict[str, str]]:
        """Query parameters of the requests sent to ``path``, in order."""
        return [
            {k: v[0] for k, v in parse_qs(urlparse(u).query).items()}
            for u in self.urls
            if urlparse(u).path == path
        ]

    def fetch(self, url, method="GET", headers=None, body=None):  # ccxt's signature
        self.urls.append(url)
        error = self.errors.get(len(self.urls))
        if error is not None:
            self._raise(error, url, method)
        parsed = urlparse(url)
        query = {k: v[0] for k, v in parse_qs(parsed.query).items()}
        start = int(query.get("startTime", 0))
        end = int(query.get("endTime", 2**62))
        if parsed.path in self.klines:
            limit = int(query.get("limit", 500))
            rows = [r for r in self.klines[parsed.path] if start <= r[0] <= min(end, self.now_ms)]
            rows = [list(r) for r in rows[:limit]]
            if rows and rows[-1][6] >= self.now_ms:  # still-open candle: not final yet
                rows[-1][4] = rows[-1][1]
            return rows
        if parsed.path == "/fapi/v1/fundingRate":
            limit = int(query.get("limit", 100))
            rows = [r for r in self.funding if start <= r["fundingTime"] <= min(end, self.now_ms)]
            return [dict(r) for r in rows[:limit]]
        raise AssertionError(f"no recording for {url}")

    def _raise(self, name: str, url: str, method: str) -> None:
        details = f"binance {method} {url}"
        if name == "timeout":
            raise ccxt.RequestTimeout(details)
        if name == "reset":
            raise ccxt.NetworkError(details)
        code, reason, body = ERRORS[name]
        ex = self.exchange
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        # exactly what ccxt.Exchange.fetch does with an HTTP error response
        if not ex.handle_errors(code, reason, url, method, {}, body, payload, None, None):
            ex.handle_http_status_code(code, reason, url, method, body)
        raise ccxt.ExchangeError(details)


def ms(date: str) -> int:
    """Milliseconds since epoch of an ISO date (UTC)."""
    return int(pd.Timestamp(date, tz="UTC").value // 1_000_000)


def as_float(rows: list[list]) -> np.ndarray:
    """OHLCV of raw kline rows as floats (what the source must store)."""
    return np.array([[float(x) for x in r[1:6]] for r in rows])
