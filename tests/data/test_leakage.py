"""Look-ahead checks: planted leaks are caught by name; every shipped feature set passes."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from cryptotrade.data.features import FeatureSet
from cryptotrade.data.leakage import CHECKS, check_features, lookahead_canary
from cryptotrade.data.synthetic import SyntheticSource

CONF = Path(__file__).resolve().parents[2] / "conf"
FEATURE_SETS = sorted(p.stem for p in (CONF / "features").glob("*.yaml"))


@pytest.fixture(scope="module")
def bars():
    return SyntheticSource(num_samples=2500, timeframe="15m", seed=21, funding=True).load()


# ---- planted features (referenced by dotted path, as a config would) -------------------------
def next_close(frame: pd.DataFrame) -> pd.Series:
    """The classic leak: tomorrow's price as today's feature."""
    return frame["close"].shift(-1)


def centred_mean(frame: pd.DataFrame) -> pd.Series:
    """A centred rolling mean: half its window lies in the future."""
    return frame["close"].rolling(5, center=True).mean() / frame["close"]


def full_sample_zscore(frame: pd.DataFrame) -> pd.Series:
    """Normalising with statistics of the whole series (future included)."""
    r = np.log(frame["close"]).diff()
    return (r - r.mean()) / r.std()


def cumulative_volume(frame: pd.DataFrame) -> pd.Series:
    """Causal, but depends on where history starts."""
    return frame["volume"].cumsum()


def _plant(name: str, **extra) -> FeatureSet:
    return FeatureSet(
        {
            "ret": {"kind": "log_return"},
            "rsi": {"kind": "rsi", "period": 14},
            "bad": {"kind": f"{__name__}.{name}", **extra},
        }
    )


def test_planted_shift_minus_one_is_caught_by_every_check(bars):
    report = check_features(_plant("next_close"), bars)
    assert not report.ok
    for check in CHECKS:
        assert list(report.offending[check]) == ["bad"], check
    assert report.offending_columns == ["bad"]
    text = report.format()
    assert "LEAK in 1 column" in text and "bad:" in text


def test_shipped_canary_is_caught(bars):
    fs = FeatureSet(
        {
            "ret": {"kind": "log_return"},
            "leak": {"kind": "cryptotrade.data.leakage.lookahead_canary"},
        }
    )
    report = check_features(fs, bars)
    assert report.offending_columns == ["leak"]
    assert lookahead_canary(bars).iloc[0] == bars["close"].iloc[1] / bars["close"].iloc[0] - 1


@pytest.mark.parametrize("name", ["centred_mean", "full_sample_zscore"])
def test_subtle_future_dependence_is_caught(bars, name):
    report = check_features(_plant(name, warmup=5), bars)
    assert report.offending_columns == ["bad"]
    assert "bad" in report.offending["future_perturbation"]
    assert "bad" in report.offending["truncation"]


def test_history_dependent_feature_fails_warmup_stability_only(bars):
    report = check_features(_plant("cumulative_volume"), bars)
    assert report.offending_columns == ["bad"]
    assert list(report.offending["warmup_stability"]) == ["bad"]
    assert not report.offending["future_perturbation"] and not report.offending["truncation"]


def test_understated_warmup_is_caught(bars):
    fs = FeatureSet({"ema": {"kind": "ema", "period": 50}, "ret": {"kind": "log_return"}})
    assert check_features(fs, bars).ok
    fs.indicators[0].warmup = 60  # an EMA(50) needs ~400 bars before its seed is forgotten
    report = check_features(fs, bars)
    assert list(report.offending["warmup_stability"]) == ["ema"]


@pytest.mark.parametrize("option", FEATURE_SETS)
def test_every_shipped_feature_set_passes(option, bars):
    node = OmegaConf.load(CONF / "features" / f"{option}.yaml")
    node.pop("defaults")
    fs = instantiate(node, _convert_="partial")
    report = check_features(fs, bars)
    assert report.ok, report.format()
    assert report.format().endswith("warmup_stability: ok")


def test_too_few_bars_is_explained(bars):
    with pytest.raises(ValueError, match="warm-up"):
        check_features(FeatureSet({"r": {"kind": "rsi", "period": 14}}), bars.iloc[:50])


def test_higher_timeframe_features_pass_when_data_starts_just_before_a_boundary(bars):
    # first bar at 03:45: on bars[:1] alone the base timeframe could not be inferred
    late = bars.iloc[15:]
    assert late.index[0].strftime("%H:%M") == "03:45"
    fs = FeatureSet(
        {"r": {"kind": "log_return"}},
        higher={
            "h4": {"timeframe": "4h", "indicators": {"c": {"kind": "column", "name": "close"}}}
        },
    )
    report = check_features(fs, late)
    assert report.ok, report.format()
    assert 0 in report.cut_points
