"""The indicator column cache: same columns as the plain FeatureSet, each computed once."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from cryptotrade.config import CONF_DIR, register_configs
from cryptotrade.data.features import FeatureSet
from cryptotrade.optimize.columns import CACHED_TARGET, CachedFeatureSet
from cryptotrade.optimize.derive import ConfigDeriver

register_configs()
INDICATORS = {
    "rsi": {"kind": "rsi", "period": 14},
    "sma": {"kind": "sma", "period": 20},
    "vpvr": {"kind": "vpvr", "window": 48, "bins": 12},
}
HIGHER = {"h4": {"timeframe": "4h", "indicators": {"vol": {"kind": "volatility", "window": 5}}}}


def bars(n: int = 1500, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    spread = np.abs(rng.normal(0, 0.005, n)) * close
    index = pd.date_range("2024-01-01", periods=n, freq="15min", tz="UTC")
    return pd.DataFrame(
        {
            "open": np.r_[close[0], close[:-1]],
            "high": close + spread,
            "low": close - spread,
            "close": close,
            "volume": rng.exponential(10, n),
        },
        index=index,
    )


def test_cached_columns_equal_the_plain_ones_and_are_computed_once(tmp_path):
    data = bars()
    plain = FeatureSet(indicators=INDICATORS, higher=HIGHER).compute(data)
    first = CachedFeatureSet(str(tmp_path), indicators=INDICATORS, higher=HIGHER)
    pd.testing.assert_frame_equal(first.compute(data), plain)
    assert (first.column_cache.hits, first.column_cache.misses) == (0, 4)

    # another candidate: only the RSI period differs -> one column computed, three reused
    changed = {**INDICATORS, "rsi": {"kind": "rsi", "period": 21}}
    second = CachedFeatureSet(str(tmp_path), indicators=changed, higher=HIGHER)
    out = second.compute(data)
    assert (second.column_cache.hits, second.column_cache.misses) == (3, 1)
    pd.testing.assert_frame_equal(out, FeatureSet(indicators=changed, higher=HIGHER).compute(data))

    # other bars never reuse a column computed on different data
    third = CachedFeatureSet(str(tmp_path), indicators=INDICATORS, higher=HIGHER)
    third.compute(bars(seed=1))
    assert third.column_cache.hits == 0
    assert not list(tmp_path.glob(".*.tmp")), "no temporary file is left behind"


def test_custom_features_are_never_cached(tmp_path):
    calls = []

    def custom(frame, **params):
        calls.append(1)
        return frame["close"].pct_change().fillna(0.0)

    for _ in range(2):
        CachedFeatureSet(str(tmp_path), indicators={"c": {"kind": custom}}).compute(bars(200))
    assert len(calls) == 2


def test_searches_switch_the_configured_features_to_the_cache(tmp_path):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["optimizer=ga"])
    assert cfg.optimizer.column_cache.endswith("/columns")
    cached = ConfigDeriver(cfg).with_column_cache(str(tmp_path)).config
    assert cached.features._target_ == CACHED_TARGET
    assert isinstance(instantiate(cached.features), CachedFeatureSet)


@pytest.mark.parametrize("option", ["ga", "tune"])
def test_column_cache_can_be_switched_off(option):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[f"optimizer={option}", "optimizer.column_cache=null"])
    assert cfg.optimizer.column_cache is None
