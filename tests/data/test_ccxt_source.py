"""CcxtSource against a real ccxt.binance fed recorded REST responses (see ccxt_recorded.py)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from ccxt_recorded import (
    HOUR_MS,
    RecordedBinance,
    as_float,
    funding_rows_from_parquet,
    kline_rows_from_bars,
    kline_rows_from_csv,
    ms,
)
from sources_testutil import data_option_node, shared_file

from cryptotrade.data.sources import CcxtSource
from cryptotrade.data.sources.ccxt_source import CcxtSourceError

SPOT_1H = "binance_spot_BTCUSDT_1h.parquet"
PERP_1H = "binance_usdm_BTCUSDT_perp_1h.parquet"
FUNDING = "binance_usdm_BTCUSDT_funding_8h.parquet"


@pytest.fixture(scope="module")
def spot_rows() -> list[list]:
    """Raw klines for Binance spot BTC/USDT 1h, 2023-12-01 .. 2024-03-31 (recorded bars)."""
    bars = pd.read_parquet(shared_file(SPOT_1H)).set_index("date")
    return kline_rows_from_bars(bars.loc["2023-12-01":"2024-03-31"])


def source(server: RecordedBinance, tmp_path: Path, **kwargs) -> CcxtSource:
    args = {"symbol": "BTC/USDT", "timeframe": "1h", "cache_dir": str(tmp_path), "backoff_s": 0.0}
    src = CcxtSource(**{**args, **kwargs}, client=server.exchange)
    src.sleep = lambda s: server.sleeps.append(s)  # record backoff delays instead of sleeping
    return src


def make_server(**kwargs) -> RecordedBinance:
    server = RecordedBinance(**kwargs)
    server.sleeps = []
    return server


def cache_files(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in tmp_path.rglob("*") if p.is_file())


def test_one_page_of_real_rest_klines_parses_exactly(tmp_path: Path) -> None:
    rows = kline_rows_from_csv(shared_file("binance_public_data_spot_BTCUSDT-1h-2024-10-28.csv"))
    server = make_server(spot=rows, now_ms=ms("2024-11-01"))
    bars = source(server, tmp_path, start="2024-10-28", end="2024-10-29").load()
    assert len(server.urls) == 1  # 24 candles fit one page; the next page would start at `end`
    assert bars.index[0] == pd.Timestamp("2024-10-28", tz="UTC") and len(bars) == 24
    np.testing.assert_array_equal(bars.to_numpy(), as_float(rows))
    assert bars.iloc[0].tolist() == [68021.69, 68116.78, 67839.90, 67859.91, 555.35912]


def test_perpetual_rest_klines_from_the_usdm_dump(tmp_path: Path) -> None:
    rows = kline_rows_from_csv(shared_file("binance_public_data_usdm_BTCUSDT-1h-2024-10-28.csv"))
    server = make_server(perp=rows, now_ms=ms("2024-10-29 00:00"))  # last candle just closed
    src = source(server, tmp_path, symbol="BTC/USDT:USDT", start="2024-10-28", funding=False)
    bars = src.load()
    assert [q["symbol"] for q in server.requests_to("/fapi/v1/klines")] == ["BTCUSDT"]
    np.testing.assert_array_equal(bars.to_numpy(), as_float(rows))
    assert bars.iloc[0].tolist() == [67992.7, 68094.6, 67804.7, 67835.2, 5179.117]


def test_pagination_follows_pages_until_end(spot_rows, tmp_path: Path) -> None:
    server = make_server(spot=spot_rows, now_ms=ms("2024-06-01"))
    bars = source(server, tmp_path, start="2024-01-01", end="2024-03-01", limit=500).load()
    starts = [int(q["startTime"]) for q in server.requests_to("/api/v3/klines")]
    assert starts == [ms("2024-01-01") + k * 500 * HOUR_MS for k in range(3)]  # 1440 bars
    ref = pd.read_parquet(shared_file(SPOT_1H)).set_index("date").loc["2024-01-01":"2024-02-29"]
    assert bars.index.equals(ref.index.as_unit("ns").rename("date"))
    np.testing.assert_array_equal(bars.to_numpy(), ref.to_numpy())


def test_second_call_downloads_only_the_missing_ranges(spot_rows, tmp_path: Path) -> None:
    server = make_server(spot=spot_rows, now_ms=ms("2024-06-01"))
    first = source(server, tmp_path, start="2024-02-01", end="2024-02-15").load()
    assert len(server.urls) == 1 and len(first) == 14 * 24
    server.urls.clear()
    wider = source(server, tmp_path, start="2024-01-25", end="2024-02-20").load()
    queries = server.requests_to("/api/v3/klines")
    # only before (01-25 .. 02-01) and after (02-15 .. 02-20) the cached range
    assert [int(q["startTime"]) for q in queries] == [ms("2024-01-25"), ms("2024-02-15")]
    assert len(wider) == 26 * 24 and wider.index.is_unique and wider.index.is_monotonic_increasing
    pd.testing.assert_frame_equal(wider.loc[first.index], first)
    server.urls.clear()
    inner = source(server, tmp_path, start="2024-02-03", end="2024-02-10").load()
    assert server.urls == [] and len(inner) == 7 * 24  # fully cached: no request at all
    stored = pd.read_parquet(next(tmp_path.rglob("*.parquet"))).set_index("date")
    assert len(stored) == 26 * 24 and stored.index.is_unique


def test_open_last_candle_is_never_stored(spot_rows, tmp_path: Path) -> None:
    server = make_server(spot=spot_rows, now_ms=ms("2024-03-01 10:30"))
    bars = source(server, tmp_path, start="2024-03-01").load()
    assert bars.index[-1] == pd.Timestamp("2024-03-01 09:00", tz="UTC")  # 10:00 still forming
    stored = pd.read_parquet(next(tmp_path.rglob("*.parquet"))).set_index("date")
    assert stored.index[-1] == pd.Timestamp("2024-03-01 09:00", tz="UTC")
    server.now_ms = ms("2024-03-01 12:05")
    server.urls.clear()
    later = source(server, tmp_path, start="2024-03-01").load()
    assert [int(q["startTime"]) for q in server.requests_to("/api/v3/klines")] == [
        ms("2024-03-01 10:00")
    ]
    ref = (
        pd.read_parquet(shared_file(SPOT_1H)).set_index("date").loc["2024-03-01":"2024-03-01 11:00"]
    )
    np.testing.assert_array_equal(later.to_numpy(), ref.to_numpy())  # final 10:00 values


@pytest.mark.parametrize(
    "error",
    [
        "timeout",
        "reset",
        "too_many",
        "rate_limit",
        "order_rate",
        "ban",
        "unavailable",
        "maintenance",
    ],
)
def test_retryable_errors_are_retried_with_backoff(spot_rows, tmp_path: Path, error: str) -> None:
    server = make_server(spot=spot_rows, now_ms=ms("2024-06-01"), errors={2: error, 3: error})
    src = source(server, tmp_path, start="2024-01-01", end="2024-01-20", limit=200, backoff_s=0.5)
    bars = src.load()
    assert len(server.urls) == 3 + 2  # 3 pages (456 bars / 200) + 2 failed attempts
    assert server.sleeps == [0.5, 1.0]  # exponential backoff
    ref = pd.read_parquet(shared_file(SPOT_1H)).set_index("date").loc["2024-01-01":"2024-01-19"]
    np.testing.assert_array_equal(bars.to_numpy(), ref.to_numpy())


def test_retries_exhausted_fail_clearly_and_keep_no_partial_cache(spot_rows, tmp_path) -> None:
    server = make_server(
        spot=spot_rows, now_ms=ms("2024-06-01"), errors={k: "timeout" for k in range(2, 10)}
    )
    src = source(server, tmp_path, start="2024-01-01", end="2024-01-20", limit=200, max_retries=2)
    with pytest.raises(CcxtSourceError, match=r"RequestTimeout persisted after 2 retries"):
        src.load()
    assert len(server.urls) == 1 + 3
    assert cache_files(tmp_path) == []  # the first page alone was not written


@pytest.mark.parametrize(
    ("error", "message"),
    [
        ("bad_symbol", r"BadSymbol: .*Invalid symbol.*check data.source.symbol"),
        ("auth", r"AuthenticationError: .*api_key_env"),
    ],
)
def test_fatal_errors_fail_immediately(spot_rows, tmp_path: Path, error, message) -> None:
    server = make_server(spot=spot_rows, now_ms=ms("2024-06-01"), errors={2: error})
    with pytest.raises(CcxtSourceError, match=message):
        source(server, tmp_path, start="2024-01-01", end="2024-01-20", limit=200).load()
    assert len(server.urls) == 2 and server.sleeps == []  # not retried
    assert cache_files(tmp_path) == []


def test_fatal_error_while_extending_leaves_the_cache_untouched(spot_rows, tmp_path) -> None:
    server = make_server(spot=spot_rows, now_ms=ms("2024-06-01"))
    source(server, tmp_path, start="2024-02-01", end="2024-02-05").load()
    path = next(tmp_path.rglob("*.parquet"))
    before = path.read_bytes()
    server.errors = {len(server.urls) + 1: "bad_symbol"}
    with pytest.raises(CcxtSourceError, match="BadSymbol"):
        source(server, tmp_path, start="2024-02-01", end="2024-02-10").load()
    assert path.read_bytes() == before and cache_files(tmp_path) == [path.name]


def test_unknown_symbol_fails_before_any_request(tmp_path: Path) -> None:
    server = make_server(now_ms=ms("2024-06-01"))
    with pytest.raises(CcxtSourceError, match=r"BadSymbol.*DOGE/EUR.*check data.source.symbol"):
        source(server, tmp_path, symbol="DOGE/EUR", start="2024-01-01").load()
    assert server.urls == []


def test_unknown_timeframe_lists_the_exchange_ones(tmp_path: Path) -> None:
    server = make_server(now_ms=ms("2024-06-01"))
    with pytest.raises(CcxtSourceError, match=r"no timeframe '7m'; use one of .*'1h'"):
        source(server, tmp_path, timeframe="7m", start="2024-01-01").load()


def test_crash_during_write_keeps_the_old_cache(spot_rows, tmp_path, monkeypatch) -> None:
    server = make_server(spot=spot_rows, now_ms=ms("2024-06-01"))
    source(server, tmp_path, start="2024-02-01", end="2024-02-05").load()
    path = next(tmp_path.rglob("*.parquet"))
    before = path.read_bytes()
    import cryptotrade.data.sources.cache as cache

    def crash(table, where, **kwargs):
        where.write(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(cache.pq, "write_table", crash)
    with pytest.raises(OSError, match="disk full"):
        source(server, tmp_path, start="2024-02-01", end="2024-02-10").load()
    assert path.read_bytes() == before and cache_files(tmp_path) == [path.name]
    monkeypatch.undo()
    bars = source(server, tmp_path, start="2024-02-01", end="2024-02-10").load()
    assert len(bars) == 9 * 24


def test_perpetual_gets_funding_aligned_and_cached(tmp_path: Path) -> None:
    perp = pd.read_parquet(shared_file(PERP_1H)).set_index("date").loc["2024-01-01":"2024-01-31"]
    funding = funding_rows_from_parquet(shared_file(FUNDING))
    server = make_server(
        perp=kline_rows_from_bars(perp), funding=funding, now_ms=ms("2024-02-01 00:30")
    )
    src = source(
        server, tmp_path, symbol="BTC/USDT:USDT", start="2024-01-01", end="2024-01-10", limit=20
    )
    bars = src.load()
    queries = server.requests_to("/fapi/v1/fundingRate")
    assert len(queries) == 2 and [q["symbol"] for q in queries] == ["BTCUSDT"] * 2  # 27 rows
    paid = bars["funding_rate"][bars["funding_rate"] != 0]
    ref = pd.read_parquet(shared_file(FUNDING)).set_index("date").loc["2024-01-01":"2024-01-09"]
    assert len(paid) == 27 and set(paid.index.hour) == {0, 8, 16}
    np.testing.assert_array_equal(paid.to_numpy(), ref["open"].to_numpy())
    server.urls.clear()
    src = source(
        server, tmp_path, symbol="BTC/USDT:USDT", start="2024-01-01", end="2024-01-12", limit=20
    )
    again = src.load()
    assert [int(q["startTime"]) for q in server.requests_to("/fapi/v1/fundingRate")] == [
        ms("2024-01-10")
    ]
    assert (again["funding_rate"] != 0).sum() == 33
    assert cache_files(tmp_path) == ["BTC-USDT-USDT_1h.parquet", "BTC-USDT-USDT_funding.parquet"]


def test_spot_has_no_funding_and_funding_true_on_spot_is_refused(spot_rows, tmp_path) -> None:
    server = make_server(spot=spot_rows, now_ms=ms("2024-06-01"))
    bars = source(server, tmp_path, start="2024-01-01", end="2024-01-02").load()
    assert "funding_rate" not in bars.columns and server.requests_to("/fapi/v1/fundingRate") == []
    with pytest.raises(CcxtSourceError, match=r"funding=true but BTC/USDT .*no funding history"):
        source(server, tmp_path, start="2024-01-01", end="2024-01-02", funding=True).load()


def test_api_keys_come_only_from_the_environment(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CT_TEST_KEY", "k-secret-123")
    monkeypatch.setenv("CT_TEST_SECRET", "s-secret-456")
    src = CcxtSource(
        cache_dir=str(tmp_path), api_key_env="CT_TEST_KEY", secret_env="CT_TEST_SECRET"
    )
    ex = src._build_exchange()
    assert ex.apiKey == "k-secret-123" and ex.secret == "s-secret-456" and ex.enableRateLimit
    assert "secret" not in repr(src) and "k-secret" not in repr(vars(src))
    monkeypatch.delenv("CT_TEST_SECRET")
    with pytest.raises(CcxtSourceError, match=r"CT_TEST_SECRET .* is not set") as err:
        src._build_exchange()
    assert "s-secret" not in str(err.value)


def test_constructor_validates_dates_and_limits() -> None:
    with pytest.raises(ValueError, match="end='2023-01-01' is not after start"):
        CcxtSource(start="2024-01-01", end="2023-01-01")
    with pytest.raises(ValueError, match="limit=0 must be positive"):
        CcxtSource(limit=0)
    with pytest.raises(CcxtSourceError, match="no exchange 'nosuchx'"):
        CcxtSource(exchange="nosuchx").load()


@pytest.mark.parametrize(
    ("option", "symbol"), [("binance", "BTC/USDT"), ("binance_perp", "BTC/USDT:USDT")]
)
def test_binance_options_instantiate_with_the_cache_in_data_dir(option, symbol) -> None:
    src = data_option_node(option, "source")
    assert isinstance(src, CcxtSource) and src.symbol == symbol and src.exchange == "binance"
    assert src.cache_dir is not None and src.cache_dir.parts[-2:] == (".cache", "data")
    assert os.environ.get("BINANCE_API_KEY") is None or "apiKey" not in repr(src)


def test_funding_published_after_the_download_is_fetched_by_the_next_one(tmp_path: Path) -> None:
    # funding was cached as complete up to "now", so a settlement the exchange had not yet
    # published at that instant (rows appear moments after the settlement time) fell inside
    # the covered range and was never downloaded again: its bar kept funding 0 for good
    perp = pd.read_parquet(shared_file(PERP_1H)).set_index("date").loc["2024-01-01":"2024-01-31"]
    funding = funding_rows_from_parquet(shared_file(FUNDING))
    settle = ms("2024-01-05")
    published = [r for r in funding if r["fundingTime"] < settle]  # 00:00 not out yet
    server = make_server(perp=kline_rows_from_bars(perp), funding=published, now_ms=settle + 3)
    kwargs = {"symbol": "BTC/USDT:USDT", "start": "2024-01-01", "limit": 50}
    source(server, tmp_path, **kwargs).load()
    server.funding, server.now_ms = funding, settle + 2 * HOUR_MS
    bars = source(server, tmp_path, **kwargs).load()
    ref = pd.read_parquet(shared_file(FUNDING)).set_index("date")["open"]
    due = bars.index[bars.index >= ref.index[ref.index >= "2024-01-05"][0]][0]
    assert bars["funding_rate"].loc[due] == ref.loc["2024-01-05":].iloc[0] != 0


def test_an_unreachable_exchange_is_one_line_naming_it(spot_rows, tmp_path) -> None:
    # the launcher prints a UserError as one line instead of a 146-line traceback
    from cryptotrade.errors import UserError

    server = make_server(spot=spot_rows, now_ms=ms("2024-06-01"), errors={1: "reset", 2: "reset"})
    src = source(server, tmp_path, start="2024-01-01", end="2024-01-20", max_retries=1)
    with pytest.raises(CcxtSourceError) as info:
        src.load()
    assert isinstance(info.value, UserError) and isinstance(info.value, RuntimeError)
    message = str(info.value)
    assert "\n" not in message and len(message) < 400
    assert message.startswith("binance BTC/USDT: NetworkError persisted after 1 retries")
