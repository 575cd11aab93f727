"""SyntheticSource / RegimeModel: frame contract, OHLC consistency, determinism, config presets."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from cryptotrade.config import schema_from_target
from cryptotrade.data.synthetic import RegimeModel, SyntheticSource
from cryptotrade.timeframes import timeframe_seconds

CONF = Path(__file__).resolve().parents[2] / "conf"


def _instantiate(path: Path):
    node = OmegaConf.load(path)
    node.pop("defaults")
    given = OmegaConf.to_container(node)
    schema = schema_from_target("T", node._target_, given=given)
    return instantiate(OmegaConf.merge(OmegaConf.structured(schema), node))


def test_frame_contract_and_ohlc_consistency():
    bars = SyntheticSource(num_samples=5000, timeframe="1h", funding=True, seed=3).load()
    assert bars.index.name == "date"
    assert str(bars.index.tz) == "UTC"
    assert bars.index.dtype == "datetime64[ns, UTC]"
    assert bars.index.is_monotonic_increasing and bars.index.is_unique
    assert (np.diff(bars.index.asi8) == 3600 * 10**9).all()
    for col in ("open", "high", "low", "close", "volume", "funding_rate"):
        assert bars[col].dtype == np.float64
    assert bars["regime"].dtype == np.int8
    o, h, lo, c = (bars[k].to_numpy() for k in ("open", "high", "low", "close"))
    assert (lo <= np.minimum(o, c)).all() and (np.maximum(o, c) <= h).all()
    assert (lo > 0).all() and (bars["volume"] > 0).all()
    # crypto trades continuously: each bar opens at the previous close
    np.testing.assert_array_equal(o[1:], c[:-1])
    assert np.isfinite(bars.to_numpy()).all()


def test_same_seed_same_market_other_seed_other_market():
    a = SyntheticSource(num_samples=2000, seed=1).load()
    b = SyntheticSource(num_samples=2000, seed=1).load()
    c = SyntheticSource(num_samples=2000, seed=2).load()
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["close"], c["close"])


def test_funding_only_at_settlements_and_prices_unchanged_by_it():
    with_f = SyntheticSource(num_samples=3000, timeframe="15m", funding=True, seed=5).load()
    without = SyntheticSource(num_samples=3000, timeframe="15m", funding=False, seed=5).load()
    settle = (with_f.index.hour % 8 == 0) & (with_f.index.minute == 0)
    assert (with_f["funding_rate"][~settle] == 0).all()
    assert (with_f["funding_rate"][settle] != 0).all()
    assert settle.sum() == 3000 // 32 + 1
    assert (with_f["funding_rate"].abs() <= 0.0075).all()
    pd.testing.assert_frame_equal(with_f.drop(columns="funding_rate"), without)
    # longs pay more in uptrends: the mean rate follows the regime drift
    up = with_f["funding_rate"][settle & (with_f["regime"] == 0)]
    down = with_f["funding_rate"][settle & (with_f["regime"] == 1)]
    if len(up) > 5 and len(down) > 5:
        assert up.mean() > down.mean()


def test_timeframe_parsing():
    assert timeframe_seconds("15m") == 900
    assert timeframe_seconds("4h") == 14400
    assert timeframe_seconds("1d") == 86400
    assert timeframe_seconds("15min") == 900  # the pandas spelling file sources accept
    for bad in ("15", "m", "0h", "1y", "1.5h"):
        with pytest.raises(ValueError, match="timeframe"):
            timeframe_seconds(bad)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"transitions": {"uptrend": {"ranging": 0.5}}}, "sums to 0.5"),
        ({"transitions": {"bull": {"ranging": 1.0}}}, "unknown regime"),
        ({"regimes": {"a": {"drift": 0.1}}}, "missing"),
        ({"process": "levy"}, "process"),
        ({"initial": "moon"}, "initial"),
    ],
)
def test_regime_model_validation_names_the_setting(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RegimeModel(**kwargs)


def test_bad_regime_parameters_rejected():
    bad = {
        "drift": 0.0,
        "volatility": 0.1,
        "mean_reversion": 0.0,
        "volume_factor": 1.0,
        "min_duration": 10,
        "max_duration": 5,
    }
    with pytest.raises(ValueError, match="min_duration"):
        RegimeModel(regimes={"a": bad}, transitions={"a": {"a": 1.0}})
    with pytest.raises(ValueError, match="num_samples"):
        SyntheticSource(num_samples=1)


@pytest.mark.parametrize("preset", ["default", "bull", "choppy"])
def test_regime_presets_instantiate_and_generate(preset):
    model = _instantiate(CONF / "regime" / f"{preset}.yaml")
    assert isinstance(model, RegimeModel)
    assert model.names == ("uptrend", "downtrend", "ranging", "expansion", "contraction")
    bars = SyntheticSource(num_samples=4000, regime=model, seed=0).load()
    assert len(bars) == 4000 and bars["regime"].nunique() >= 2


def test_bull_preset_trends_up_more_than_choppy():
    bull = _instantiate(CONF / "regime" / "bull.yaml")
    choppy = _instantiate(CONF / "regime" / "choppy.yaml")
    ends = {}
    for name, model in (("bull", bull), ("choppy", choppy)):
        r = [
            np.log(
                SyntheticSource(num_samples=35040, timeframe="15m", regime=model, seed=s)
                .load()["close"]
                .iloc[-1]
                / 30000
            )
            for s in range(3)
        ]
        ends[name] = np.mean(r)
    assert ends["bull"] > ends["choppy"] + 0.3


def test_data_option_composes_with_regime_interpolation():
    node = OmegaConf.load(CONF / "data" / "synthetic.yaml")
    node.pop("defaults")
    pytest.importorskip(
        "cryptotrade.data.validation",
        reason="ValidationPolicy comes from the sources branch; composes once merged",
    )
    regime = OmegaConf.load(CONF / "regime" / "default.yaml")
    regime.pop("defaults")
    root = OmegaConf.create({"regime": regime, "data": node})
    spec = instantiate(root.data)
    assert isinstance(spec.source, SyntheticSource)
    assert isinstance(spec.source.regime, RegimeModel)


def test_data_option_source_and_split_nodes_instantiate():
    node = OmegaConf.load(CONF / "data" / "synthetic.yaml")
    regime = OmegaConf.load(CONF / "regime" / "choppy.yaml")
    regime.pop("defaults")
    src = OmegaConf.create({"regime": regime, "source": node.source}).source
    source = instantiate(src)
    assert source.num_samples == 20000 and source.timeframe == "15m"
    assert source.regime.initial == "ranging"
    split = instantiate(node.split)
    assert list(split.split(np.arange(100).astype("datetime64[h]"))) == ["train", "val", "test"]


def test_experiment_10y_chooses_the_10y_data_option():
    node = OmegaConf.load(CONF / "data" / "synthetic_10y_15m.yaml")
    assert node.source.num_samples == 10 * 365 * 96
    assert node.source.timeframe == "15m"
    text = (CONF / "experiment" / "synthetic_10y_15m.yaml").read_text()
    assert text.startswith("# @package _global_")
    assert "override /data: synthetic_10y_15m" in text


@pytest.mark.parametrize("preset", ["default", "bull", "choppy"])
def test_every_regime_parameter_is_a_valid_hydra_override(preset):
    from hydra.core.override_parser.overrides_parser import OverridesParser

    node = OmegaConf.to_container(OmegaConf.load(CONF / "regime" / f"{preset}.yaml"))
    paths = [
        f"regime.regimes.{r}.{k}={v}" for r, p in node["regimes"].items() for k, v in p.items()
    ]
    paths += [
        f"regime.transitions.{a}.{b}={v}"
        for a, row in node["transitions"].items()
        for b, v in row.items()
    ]
    parsed = OverridesParser.create().parse_overrides(paths)
    assert len(parsed) == len(paths) > 40


@pytest.mark.parametrize("timeframe", ["1d", "12h", "3h"])
def test_bars_longer_than_or_off_the_funding_grid_collect_every_settlement(timeframe):
    # only bars opening exactly on a settlement got funding: daily bars paid one of the three
    # 8h settlements a day, 12h or 3h bars missed some too, so perpetual costs came out far
    # too low. Every settlement is due on the first bar opening at or after it (align_funding)
    flat = {"funding_mean": 0.0001, "funding_drift_beta": 0.0, "funding_noise": 0.0}
    src = SyntheticSource(num_samples=400, timeframe=timeframe, funding=True, seed=2, **flat)
    rate = src.load()["funding_rate"]
    daily = rate.groupby(rate.index.floor("1D")).sum()
    np.testing.assert_allclose(daily.iloc[1:-1], 0.0003, rtol=1e-12)
