"""FeatureSet: config options, column names, warm-up, custom functions, multi-timeframe joins."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from cryptotrade.config import schema_from_target
from cryptotrade.data import indicators as ind
from cryptotrade.data.features import FeatureSet
from cryptotrade.data.leakage import check_features
from cryptotrade.data.synthetic import SyntheticSource

CONF = Path(__file__).resolve().parents[2] / "conf"
FEATURE_SETS = sorted(p.stem for p in (CONF / "features").glob("*.yaml"))


def load_feature_set(option: str) -> FeatureSet:
    node = OmegaConf.load(CONF / "features" / f"{option}.yaml")
    node.pop("defaults")
    schema = schema_from_target("F", node._target_, given=OmegaConf.to_container(node))
    return instantiate(OmegaConf.merge(OmegaConf.structured(schema), node), _convert_="partial")


@pytest.fixture(scope="module")
def bars():
    return SyntheticSource(num_samples=3000, timeframe="15m", seed=7, funding=True).load()


def double_close(frame: pd.DataFrame, factor: float = 2.0) -> pd.Series:
    return frame["close"] * factor


@pytest.mark.parametrize("option", FEATURE_SETS)
def test_shipped_feature_sets_compute_finite_after_warmup(option, bars):
    fs = load_feature_set(option)
    feats = fs.compute(bars)
    assert feats.index.equals(bars.index)
    assert (feats.dtypes == np.float64).all()
    warm = fs.warmup(bars)
    assert 0 < warm < 1000
    assert np.isfinite(feats.iloc[warm:].to_numpy()).all()
    # every column is still warming up on its first row: the warm-up is not overstated by 0
    assert feats.iloc[0].isna().any()


def test_columns_match_kernels(bars):
    fs = FeatureSet(
        {
            "rsi": {"kind": "rsi", "period": 10},
            "m": {"kind": "macd", "fast": 5, "slow": 13, "signal": 4},
            "bb": {"kind": "bbands", "period": 10, "k": 1.5},
            "t": {"kind": "time"},
        }
    )
    f = fs.compute(bars)
    c = bars["close"].to_numpy()
    assert list(f.columns) == [
        "rsi",
        "m_line",
        "m_signal",
        "m_hist",
        "bb_pctb",
        "bb_width",
        "t_hour_sin",
        "t_hour_cos",
        "t_dow_sin",
        "t_dow_cos",
    ]
    np.testing.assert_array_equal(f["rsi"], ind.rsi(c, 10) / 100)
    np.testing.assert_array_equal(f["m_hist"], ind.macd(c, 5, 13, 4)[2] / c)
    np.testing.assert_array_equal(f["bb_pctb"], ind.bb_position(c, *ind.bbands(c, 10, 1.5))[0])
    hours = bars.index.hour + bars.index.minute / 60
    np.testing.assert_allclose(f["t_hour_sin"], np.sin(2 * np.pi * hours / 24), atol=1e-12)
    monday = bars.index.day_of_week == 0
    np.testing.assert_allclose(f["t_dow_sin"][monday], 0.0, atol=1e-12)


def test_params_override_like_a_search_would(bars):
    base = load_feature_set("default")
    node = OmegaConf.load(CONF / "features" / "default.yaml")
    node.pop("defaults")
    node.indicators.rsi.period = 30
    tuned = instantiate(node, _convert_="partial")
    assert tuned.describe()["indicators"]["rsi"] == {"period": 30}
    a, b = base.compute(bars)["rsi"].iloc[500:], tuned.compute(bars)["rsi"].iloc[500:]
    assert not np.allclose(a, b)


def test_custom_function_by_dotted_path(bars):
    fs = FeatureSet(
        {
            "x": {"kind": f"{__name__}.double_close", "factor": 3.0, "warmup": 5},
            "r": {"kind": "log_return"},
        }
    )
    f = fs.compute(bars)
    np.testing.assert_array_equal(f["x"], bars["close"] * 3.0)
    assert fs.warmup() == 5
    with pytest.raises(ValueError, match="not an importable function"):
        FeatureSet({"x": {"kind": "no.such.module.fn"}})


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ({"a": {"kind": "wavelet"}}, "unknown"),
        ({"a": {"period": 3}}, "no 'kind'"),
        ({"a": {"kind": "rsi", "length": 3}}, "unknown parameter"),
        ({"a": {"kind": "rsi", "period": 1}}, "period=1"),
        ({"a": {"kind": "macd", "fast": 30, "slow": 10}}, "fast=30"),
        ({}, "empty"),
    ],
)
def test_bad_feature_config_names_the_key(spec, match):
    with pytest.raises(ValueError, match=match):
        FeatureSet(spec)


def test_bad_normaliser_settings_fail_at_construction():
    with pytest.raises(ValueError, match="normalise"):
        FeatureSet({"r": {"kind": "log_return"}}, normalise="l2")
    with pytest.raises(ValueError, match="multiple"):
        FeatureSet(
            {"r": {"kind": "log_return"}},
            higher={"m20": {"timeframe": "20m", "indicators": {"r": {"kind": "log_return"}}}},
            base_timeframe="15m",
        )
    with pytest.raises(ValueError, match="exactly 'timeframe' and 'indicators'"):
        FeatureSet({"r": {"kind": "log_return"}}, higher={"h1": {"r": {"kind": "log_return"}}})


def test_higher_timeframe_joined_only_after_the_bar_closed(bars):
    fs = FeatureSet(
        {"r": {"kind": "log_return"}},
        higher={
            "h1": {
                "timeframe": "1h",
                "indicators": {"r": {"kind": "log_return"}, "rsi": {"kind": "rsi", "period": 5}},
            }
        },
    )
    f = fs.compute(bars)
    hourly = bars["close"].resample("1h", label="left", closed="left").last()
    hourly_ret = np.log(hourly / hourly.shift(1))
    for i in (40, 41, 42, 43, 44, 101, 2999):
        t = bars.index[i]
        # bar t closes at t + 15m: the last 1h bar closed by then is the one ending <= t + 15m
        closed_hour = (t + pd.Timedelta("15min")).floor("1h") - pd.Timedelta("1h")
        assert f["r@1h"].iloc[i] == pytest.approx(hourly_ret[closed_hour], abs=1e-15)
    assert np.isnan(f["r@1h"].iloc[:7]).all()  # first full hourly return needs two closed hours
    assert fs.warmup(bars) >= (5 + 2 + 5) * 4 - 4
    # the last row opens at hh:45, so its close also closes hour hh: RSI over all closed hours
    closed = hourly[hourly.index <= bars.index[-1] - pd.Timedelta("45min")]
    assert f["rsi@1h"].iloc[-1] * 100 == pytest.approx(ind.rsi(closed.to_numpy(), 5)[-1])


def test_higher_timeframe_handles_missing_base_bars(bars):
    gappy = bars.drop(bars.index[50:58])  # two whole hours missing
    fs = FeatureSet(
        {"r": {"kind": "log_return"}},
        higher={
            "h1": {"timeframe": "1h", "indicators": {"c": {"kind": "column", "name": "close"}}}
        },
    )
    f = fs.compute(gappy)
    assert fs.warmup(gappy) > 0
    t = gappy.index[gappy.index.get_loc(bars.index[60])]
    # 12:30..14:15 are missing; bar 15:00 closes at 15:15, when the 14:00 hour (only 14:30 and
    # 14:45 left) is the last closed one: its close is the 14:45 close
    expect = gappy["close"][gappy.index < (t + pd.Timedelta("15min")).floor("1h")].iloc[-1]
    assert f["c@1h"].loc[t] == expect


def test_plain_instantiate_without_convert_works(bars):
    # the pipeline calls instantiate(cfg.features): the dicts arrive as DictConfig
    node = OmegaConf.load(CONF / "features" / "full.yaml")  # the set with 4h columns
    node.pop("defaults")
    node.keep_raw = ["rsi"]
    fs = instantiate(node)
    assert isinstance(fs.describe()["indicators"]["rsi"]["period"], int)
    f = fs.compute(bars)
    assert "rsi" in f.columns and "vol@4h" in f.columns
    assert fs.normaliser().keep_raw == ("rsi",)


def _leaf_paths(node, prefix):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaf_paths(value, f"{prefix}.{key}")
    else:
        yield prefix, node


@pytest.mark.parametrize("option", FEATURE_SETS)
def test_every_feature_parameter_is_a_valid_hydra_override(option, bars):
    # a search (GA, Tune) changes parameters through overrides: every leaf must be addressable
    from hydra.core.override_parser.overrides_parser import OverridesParser

    node = OmegaConf.load(CONF / "features" / f"{option}.yaml")
    node.pop("defaults")
    leaves = [
        (p, v)
        for p, v in _leaf_paths(OmegaConf.to_container(node), "features")
        if p.startswith(("features.indicators.", "features.higher."))
        and not p.endswith((".kind", ".timeframe"))
    ]
    assert leaves
    parsed = OverridesParser.create().parse_overrides([f"{p}={v}" for p, v in leaves])
    assert [o.key_or_group for o in parsed] == [p for p, _ in leaves]
    tuned = node.copy()
    for path, value in leaves:
        OmegaConf.update(
            tuned,
            path.removeprefix("features."),
            value * 2 if isinstance(value, int) and not isinstance(value, bool) else value,
        )
    assert (
        instantiate(tuned).compute(bars).shape[1] == load_feature_set(option).compute(bars).shape[1]
    )


def test_higher_timeframe_below_the_bars_degenerates_to_the_bars_themselves():
    # daily bars with 4h "higher" features: each 4h bucket holds one daily bar, joined on it
    daily = SyntheticSource(num_samples=300, timeframe="1d").load()
    fs = FeatureSet(
        {"vol": {"kind": "volatility", "window": 20}},
        higher={
            "h4": {"timeframe": "4h", "indicators": {"vol": {"kind": "volatility", "window": 20}}}
        },
    )
    f = fs.compute(daily)
    np.testing.assert_array_equal(f["vol@4h"], f["vol"])
    assert check_features(fs, daily).ok


def test_base_timeframe_longer_than_the_bars_is_refused_not_leaked(bars):
    # 15m bars with base_timeframe=1h: each row was taken to close an hour after its open, so
    # the 4h bar was joined up to three 15m bars before it had closed (a look-ahead leak)
    higher = {"h4": {"timeframe": "4h", "indicators": {"c": {"kind": "column", "name": "close"}}}}
    fs = FeatureSet({"r": {"kind": "log_return"}}, higher=higher, base_timeframe="1h")
    with pytest.raises(ValueError, match="base_timeframe"):
        fs.compute(bars)
    ok = FeatureSet({"r": {"kind": "log_return"}}, higher=higher, base_timeframe="15m")
    np.testing.assert_array_equal(
        ok.compute(bars)["c@4h"],
        FeatureSet({"r": {"kind": "log_return"}}, higher=higher).compute(bars)["c@4h"],
    )


def test_colliding_feature_column_names_are_refused(bars):
    # "bb" (bbands) makes bb_pctb and bb_width; a feature named bb_pctb silently replaced the
    # first one in the column dict, so the duplicate check after it could never fire
    fs = FeatureSet({"bb": {"kind": "bbands"}, "bb_pctb": {"kind": "rsi"}})
    with pytest.raises(ValueError, match="duplicate feature column"):
        fs.compute(bars)
