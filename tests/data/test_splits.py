"""ChronoSplit (fractions, dates, embargo) and walk-forward folds."""

import pandas as pd
import pytest

from cryptotrade.data.splits import ChronoSplit, WalkForward

TS = pd.date_range("2024-01-01", periods=1000, freq="1h", tz="UTC")


def _sizes(slices):
    return {k: s.stop - s.start for k, s in slices.items()}


def test_fractions_in_order_and_covering():
    s = ChronoSplit(0.7, 0.15, 0.15).split(TS)
    assert list(s) == ["train", "val", "test"]
    assert s["train"] == slice(0, 700)
    assert s["val"] == slice(700, 850)
    assert s["test"] == slice(850, 1000)


def test_embargo_drops_bars_between_splits():
    s = ChronoSplit(0.6, 0.2, 0.2, embargo=10).split(TS)
    assert s["train"].start == 0
    assert s["val"].start - s["train"].stop == 10
    assert s["test"].start - s["val"].stop == 10
    assert s["test"].stop == 1000
    assert sum(_sizes(s).values()) == 1000 - 20
    assert _sizes(s)["train"] == int(0.6 * 980)


def test_dates_split_and_fraction_remainder():
    s = ChronoSplit(train_end="2024-01-20", val_end="2024-01-30").split(TS)
    assert TS[s["train"].stop - 1] < pd.Timestamp("2024-01-20", tz="UTC") <= TS[s["val"].start]
    assert TS[s["val"].stop - 1] < pd.Timestamp("2024-01-30", tz="UTC") <= TS[s["test"].start]
    s2 = ChronoSplit(train=0.5, val=0.25, test=0.25, train_end="2024-01-20").split(TS)
    rest = 1000 - s2["train"].stop
    assert _sizes(s2)["val"] == rest // 2
    # numpy datetime64 input gives the same answer as a DatetimeIndex
    naive = TS.tz_localize(None).to_numpy()
    assert ChronoSplit(train_end="2024-01-20", val_end="2024-01-30").split(naive) == s


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"train": 0.7, "val": 0.2, "test": 0.2}, "sum to 1"),
        ({"train": 0.0, "val": 0.5, "test": 0.5}, "train=0.0"),
        ({"embargo": -1}, "embargo"),
        ({"val_end": "2024-01-01"}, "train_end"),
        ({"train_end": "2024-02-01", "val_end": "2024-01-01"}, "after"),
        ({"train_end": "not a date"}, "ISO date"),
    ],
)
def test_bad_settings_name_the_setting(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ChronoSplit(**kwargs)


def test_empty_split_explains_fix():
    with pytest.raises(ValueError, match=r"val split .* empty"):
        ChronoSplit(train_end="2030-01-01").split(TS)
    with pytest.raises(ValueError, match="embargo"):
        ChronoSplit(embargo=600).split(TS)


def test_walk_forward_expanding_and_rolling():
    folds = WalkForward(folds=3, test=100, val=50, embargo=5).split(TS)
    assert len(folds) == 3
    assert folds[-1]["test"].stop == 1000
    for k, f in enumerate(folds):
        assert f["train"].start == 0
        assert f["val"].start - f["train"].stop == 5
        assert f["test"].start - f["val"].stop == 5
        assert _sizes(f)["test"] == 100 and _sizes(f)["val"] == 50
        if k:
            assert f["test"].start == folds[k - 1]["test"].stop
    rolling = WalkForward(folds=3, test=100, val=50, train=200).split(TS)
    assert all(_sizes(f)["train"] == 200 for f in rolling)
    with pytest.raises(ValueError, match="fold 0"):
        WalkForward(folds=10, test=100, val=50).split(TS)
