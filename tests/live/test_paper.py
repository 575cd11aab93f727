"""Paper trading on recorded candles served by a real ccxt.binance: resumes, never counts twice.

The account trades real BTC/USDT 1h candles (../shared/data) through a real ``ccxt.binance``
whose HTTP ``fetch`` answers from recorded klines (tests/data/ccxt_recorded.py); the exchange
clock moves forward between "restarts", so new closed candles appear and the candle still
forming never counts.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from ccxt_recorded import RecordedBinance, kline_rows_from_bars, ms
from conftest import SHARED_DATA

from cryptotrade.components import build
from cryptotrade.config import CONF_DIR, register_configs
from cryptotrade.data.normalise import Normaliser
from cryptotrade.data.sources import CcxtSource
from cryptotrade.errors import ConfigError, DataError
from cryptotrade.live.observation import live_market
from cryptotrade.live.paper import PaperAccount, target_exposure

register_configs()
SPOT = SHARED_DATA / "binance_spot_BTCUSDT_1h.parquet"
pytestmark = pytest.mark.skipif(not SPOT.exists(), reason="../shared/data is absent")
START = "2024-02-20 00:00:00+00:00"  # the account's first bar


@pytest.fixture(scope="module")
def setup():
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["data=file", "env.window=8"])
    comps = build(cfg, agent=False)
    bars = pd.read_parquet(SPOT).set_index("date").loc["2024-01-01":"2024-03-10"]
    bars.index = pd.DatetimeIndex(bars.index, tz="UTC") if bars.index.tz is None else bars.index
    rows = kline_rows_from_bars(bars)
    # a "training" normaliser fit on January only: live bars are normalised with it, never refit
    feats = comps.features.compute(bars).loc[:"2024-01-31"].dropna()
    norm = Normaliser().fit(feats.to_numpy(), tuple(feats.columns)).state()
    return comps, rows, norm


def market_at(setup, now: str):
    """Everything the exchange has at ``now`` (closed candles only), as the model sees it."""
    comps, rows, norm = setup
    server = RecordedBinance(spot=rows, now_ms=ms(now))
    source = CcxtSource(
        symbol="BTC/USDT", timeframe="1h", start="2024-01-01", client=server.exchange
    )
    spec = type(comps.data)(source=source, validation=comps.data.validation, split=comps.data.split)
    return live_market(spec, comps.features, norm)[0]


def rule(obs: np.ndarray, env) -> object:
    """A deterministic stand-in policy: long when the latest first feature is up, else short."""
    last = (env.window - 1) * env.num_features
    return env.action_for_target(1.0 if obs[last] > 0 else -1.0)


def trade(setup, folder: Path, *nows: str) -> PaperAccount:
    comps = setup[0]
    for now in nows:  # a new process at each clock time: a new account object, same folder
        account = PaperAccount(folder, "runs:/abc/model")
        account.run(market_at(setup, now), comps.env, comps.reward, rule, start=START)
    return account


def test_only_closed_candles_count_and_the_first_bar_is_the_configured_start(setup, tmp_path):
    account = trade(setup, tmp_path, "2024-02-21 05:30")  # the 05:00 candle is still forming
    rows = account.decisions()
    assert rows[0].time == "2024-02-20T00:00:00+00:00"
    assert rows[-1].time == "2024-02-21T04:00:00+00:00"
    assert len(rows) == 29
    assert rows[0].equity == 10000.0 and rows[0].position == 0.0
    assert account.state()["last_bar"] == rows[-1].time


def test_restarts_give_the_same_trades_and_equity_as_one_pass(setup, tmp_path):
    once = trade(setup, tmp_path / "once", "2024-03-05 00:10")
    restarted = trade(
        setup, tmp_path / "restarted", "2024-02-22 13:59", "2024-02-22 14:00", "2024-03-05 00:10"
    )
    assert once.log_path.read_text() == restarted.log_path.read_text()
    a, b = once.state(), restarted.state()
    assert a == b
    rows = once.decisions()
    assert len(rows) == 24 * 14  # 2024-02-20 00:00 .. 03-04 23:00 (the 03-05 00:00 one is open)
    assert len({r.time for r in rows}) == len(rows)  # no bar twice
    assert len({r.target for r in rows}) == 2  # it traded both ways: the replay carried positions
    assert rows[-1].equity != rows[0].equity


def test_a_crash_between_log_append_and_state_write_does_not_double_count(setup, tmp_path):
    once = trade(setup, tmp_path / "once", "2024-02-25 00:00")
    crashed = trade(setup, tmp_path / "crashed", "2024-02-23 00:00")
    # the crash: the next bar's row reached the log, the state still names the previous bar
    with crashed.log_path.open("a") as fh:
        fh.write(crashed.log_path.read_text().splitlines()[-1] + "\n")
    trade(setup, tmp_path / "crashed", "2024-02-25 00:00")
    assert crashed.log_path.read_text() == once.log_path.read_text()
    assert crashed.state() == once.state()


def test_a_rerun_without_new_bars_adds_nothing(setup, tmp_path):
    account = trade(setup, tmp_path, "2024-02-21 00:00")
    before = account.log_path.read_text()
    again = PaperAccount(tmp_path, "runs:/abc/model")
    new = again.run(market_at(setup, "2024-02-21 00:30"), setup[0].env, setup[0].reward, rule)
    assert new == [] and account.log_path.read_text() == before


def test_changed_history_or_another_model_is_refused(setup, tmp_path):
    comps = setup[0]
    account = trade(setup, tmp_path, "2024-02-21 00:00")
    market = market_at(setup, "2024-02-22 00:00")
    close = market.close.copy()
    close[market.timestamps.searchsorted(np.datetime64("2024-02-20T05:00"))] *= 1.01
    market = dataclasses.replace(market, close=close)
    with pytest.raises(DataError, match="differs from row 5 of the paper log"):
        account.run(market, comps.env, comps.reward, rule)
    with pytest.raises(ConfigError, match=r"choose another infer\.state_dir"):
        PaperAccount(tmp_path, "runs:/other/model").run(market, comps.env, comps.reward, rule)


def test_target_exposure_of_each_action_mode():
    class Env:
        def __init__(self, mode: str, allow_short: bool = True) -> None:
            from cryptotrade.env.settings import EnvSettings

            self.settings = EnvSettings(action_mode=mode, allow_short=allow_short)

    flat = {"units": 0.0, "inventory": 0.0}
    long = {"units": 2.0, "inventory": 1.0}
    assert target_exposure(Env("discrete3"), 0, flat) == -1.0
    assert target_exposure(Env("discrete3", allow_short=False), 0, flat) == 0.0
    assert target_exposure(Env("discrete4"), 0, long) == 1.0  # hold keeps the long
    assert target_exposure(Env("discrete4"), 2, flat) == -1.0
    assert target_exposure(Env("discrete4"), 3, long) == 0.0
    assert target_exposure(Env("continuous"), 0.25, flat) == 0.25
    assert target_exposure(Env("buy_sell_hold"), 2, long) == 0.0
