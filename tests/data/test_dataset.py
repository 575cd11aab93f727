"""build_dataset: pipeline order, split/normaliser discipline, summary, parquet cache."""

import json

import numpy as np
import pandas as pd
import pytest

from cryptotrade.data import Dataset, DataSpec, build_dataset
from cryptotrade.data.dataset import build_folds, load_cached
from cryptotrade.data.features import FeatureSet
from cryptotrade.data.splits import ChronoSplit, WalkForward
from cryptotrade.data.synthetic import SyntheticSource


class CountingSource:
    """A source that counts its loads (to see the cache at work)."""

    def __init__(self, bars: pd.DataFrame) -> None:
        self.bars, self.loads = bars, 0

    def load(self) -> pd.DataFrame:
        self.loads += 1
        return self.bars.copy()


class DropFirstRows:
    """A stand-in validation policy: 'repairs' by dropping rows, and counts them."""

    def __init__(self, rows: int = 0) -> None:
        self.rows = rows

    def apply(self, bars):
        return bars.iloc[self.rows :], {"dropped_rows": self.rows}


FEATURES = {
    "r": {"kind": "log_return"},
    "rsi": {"kind": "rsi", "period": 14},
    "vol": {"kind": "volatility", "window": 20},
}


@pytest.fixture(scope="module")
def bars():
    return SyntheticSource(num_samples=4000, seed=11, funding=True).load()


def _spec(bars, **split):
    return DataSpec(CountingSource(bars), DropFirstRows(10), ChronoSplit(**split))


def test_dataset_contents(bars):
    fs = FeatureSet(FEATURES)
    ds = build_dataset(_spec(bars, embargo=5), fs, cache_dir=None, fingerprint="x")
    assert isinstance(ds, Dataset)
    warm = fs.warmup()
    usable = 4000 - 10 - warm
    assert len(ds.train) + len(ds.val) + len(ds.test) == usable - 10
    for m in ds.splits.values():
        assert m.features.dtype == np.float32 and m.close.dtype == np.float64
        assert m.timestamps.dtype == np.dtype("datetime64[ns]")
        assert m.regime is not None and m.regime.dtype == np.int8
        assert np.isfinite(m.features).all()
        assert m.feature_names == ("r", "rsi", "vol")
    # chronological, embargo respected, prices are the bars' own
    assert ds.train.timestamps[-1] < ds.val.timestamps[0] < ds.test.timestamps[0]
    first_train = bars.index[10 + warm].tz_localize(None).to_datetime64()
    assert ds.train.timestamps[0] == first_train
    close, funding = bars["close"].to_numpy(), bars["funding_rate"].to_numpy()
    np.testing.assert_array_equal(ds.train.close, close[10 + warm :][: len(ds.train)])
    np.testing.assert_array_equal(ds.test.funding_rate, funding[-len(ds.test) :])
    # the normaliser saw the training rows only
    np.testing.assert_allclose(ds.train.features.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(ds.train.features.std(0), 1, atol=1e-3)
    assert abs(ds.test.features[:, 2].mean()) > 1e-3
    json.dumps(ds.normaliser)


def test_meta_summary(bars):
    ds = build_dataset(_spec(bars), FeatureSet(FEATURES), cache_dir=None, fingerprint="fp1")
    meta = json.loads(json.dumps(ds.meta))
    assert meta["source"] == "CountingSource(loads=1)"  # class and settings, not an address
    assert meta["rows"]["loaded"] == 4000 and meta["rows"]["validated"] == 3990
    assert meta["repairs"] == {"dropped_rows": 10}
    assert meta["features"] == ["r", "rsi", "vol"]
    assert meta["fingerprint"] == "fp1"
    assert set(meta["splits"]) == {"train", "val", "test"}
    assert meta["splits"]["test"]["end"] == str(bars.index[-1])
    assert meta["cache"]["hit"] is False


def test_cache_hit_reloads_identical_dataset_without_loading(tmp_path, bars):
    spec = _spec(bars)
    fs = FeatureSet(FEATURES, normalise="robust")
    first = build_dataset(spec, fs, cache_dir=tmp_path, fingerprint="abc")
    assert spec.source.loads == 1
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["dataset-abc.parquet"]  # no temporary file left behind
    second = build_dataset(spec, fs, cache_dir=tmp_path, fingerprint="abc")
    assert spec.source.loads == 1
    assert second.meta["cache"]["hit"] is True
    assert second.normaliser == first.normaliser
    for name, a in first.splits.items():
        b = second.splits[name]
        assert a.feature_names == b.feature_names and a.name == b.name
        for attr in (
            "timestamps",
            "open",
            "high",
            "low",
            "close",
            "volume",
            "features",
            "funding_rate",
            "regime",
        ):
            np.testing.assert_array_equal(getattr(a, attr), getattr(b, attr))
            assert getattr(a, attr).dtype == getattr(b, attr).dtype
    build_dataset(spec, fs, cache_dir=tmp_path, fingerprint="other")
    assert spec.source.loads == 2


def test_interrupted_write_keeps_no_partial_file(tmp_path, bars, monkeypatch):
    import pyarrow.parquet as pq

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", boom)
    with pytest.raises(OSError, match="disk full"):
        build_dataset(_spec(bars), FeatureSet(FEATURES), cache_dir=tmp_path, fingerprint="z")
    assert list(tmp_path.iterdir()) == []


def test_cache_without_regime_or_funding(tmp_path, bars):
    plain = bars.drop(columns=["regime", "funding_rate"])
    ds = build_dataset(_spec(plain), FeatureSet(FEATURES), cache_dir=tmp_path, fingerprint="p")
    assert ds.train.regime is None
    assert (ds.train.funding_rate == 0).all()
    again = load_cached(tmp_path / "dataset-p.parquet")
    assert again.train.regime is None


def test_too_few_bars_and_nan_features_are_explained(bars):
    with pytest.raises(ValueError, match="warm-up"):
        build_dataset(_spec(bars.iloc[:30]), FeatureSet(FEATURES), cache_dir=None, fingerprint="s")
    leaky = FeatureSet({"x": {"kind": f"{__name__}.nan_tail"}})
    with pytest.raises(ValueError, match=r"\['x'\] are NaN"):
        build_dataset(_spec(bars), leaky, cache_dir=None, fingerprint="n")


def nan_tail(frame):
    out = frame["close"].to_numpy().copy()
    out[-3:] = np.nan
    return out


def test_walk_forward_folds(bars):
    folds = build_folds(
        _spec(bars), FeatureSet(FEATURES), WalkForward(folds=3, test=300, val=200, embargo=4)
    )
    assert len(folds) == 3
    assert folds[0].train.name == "fold0/train"
    assert folds[-1].test.timestamps[-1] == bars.index[-1].tz_localize(None).to_datetime64()
    for ds in folds:
        np.testing.assert_allclose(ds.train.features.mean(0), 0, atol=1e-5)
        assert len(ds.test) == 300
    assert folds[0].normaliser["shift"] != folds[2].normaliser["shift"]


def test_load_bars_runs_source_then_validation(bars):
    from cryptotrade.data import load_bars

    raw, valid, repairs = load_bars(_spec(bars))
    assert len(raw) == 4000 and len(valid) == 3990 and repairs == {"dropped_rows": 10}


def test_lazy_exports():
    import cryptotrade.data as data

    assert data.check_features.__module__ == "cryptotrade.data.leakage"
    assert data.leakage.LeakageReport is data.LeakageReport
    with pytest.raises(AttributeError):
        data.no_such_name  # noqa: B018


def test_keep_raw_columns_stay_raw_in_the_dataset(bars):
    fs = FeatureSet(FEATURES, normalise="minmax", keep_raw=["rsi"], clip=None)
    ds = build_dataset(_spec(bars), fs, cache_dir=None, fingerprint="raw")
    rsi = ds.train.features[:, 1]
    assert rsi.min() >= 0.0 and rsi.max() <= 1.0 and rsi.std() > 0.05  # RSI/100, untouched
    np.testing.assert_allclose(ds.train.features[:, 0].min(), 0.0, atol=1e-6)  # minmax on train
    np.testing.assert_allclose(ds.train.features[:, 0].max(), 1.0, atol=1e-6)
    assert ds.normaliser["keep_raw"] == ["rsi"] and ds.normaliser["scale"][1] == 1.0


def test_same_config_builds_the_same_dataset_twice():
    def build():
        spec = DataSpec(
            SyntheticSource(num_samples=3000, seed=4, funding=True),
            DropFirstRows(0),
            ChronoSplit(embargo=3),
        )
        return build_dataset(spec, FeatureSet(FEATURES), cache_dir=None, fingerprint="d")

    a, b = build(), build()
    for name in ("train", "val", "test"):
        np.testing.assert_array_equal(a.splits[name].features, b.splits[name].features)
        np.testing.assert_array_equal(a.splits[name].close, b.splits[name].close)
    assert a.normaliser == b.normaliser


def test_bars_hash_changes_with_any_value_and_not_otherwise():
    import pandas as pd

    from cryptotrade.data.dataset import bars_hash

    index = pd.date_range("2024-01-01", periods=4, freq="1h", tz="UTC", name="date")
    bars = pd.DataFrame({"open": [1.0, 2, 3, 4], "close": [2.0, 3, 4, 5]}, index=index)
    assert bars_hash(bars) == bars_hash(bars.copy())
    changed = bars.copy()
    changed.iloc[2, 1] = 4.0000001
    assert bars_hash(changed) != bars_hash(bars)
    assert bars_hash(bars.shift(freq="1h")) != bars_hash(bars)
