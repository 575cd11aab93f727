"""Normaliser: statistics from train only, methods, raw columns, JSON state."""

import json

import numpy as np
import pytest

from cryptotrade.data.normalise import Normaliser

COLS = ("a", "b", "c")
TRAIN = np.array([[1.0, 10.0, 5.0], [2.0, 20.0, 5.0], [3.0, 30.0, 5.0], [4.0, 40.0, 5.0]])


def test_zscore_fit_on_train_applied_to_test():
    n = Normaliser("zscore").fit(TRAIN, COLS)
    out = n.transform(TRAIN)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[:, :2].mean(0), 0, atol=1e-6)
    np.testing.assert_allclose(out[:, :2].std(0), 1, atol=1e-6)
    np.testing.assert_array_equal(out[:, 2], 0)  # constant column -> scale 1 -> 0
    test = np.array([[5.0, 50.0, 6.0]])
    np.testing.assert_allclose(
        n.transform(test),
        [[(5 - 2.5) / np.std([1, 2, 3, 4]), (50 - 25) / np.std([10, 20, 30, 40]), 1.0]],
        rtol=1e-6,
    )


def test_minmax_and_robust():
    mm = Normaliser("minmax").fit(TRAIN, COLS).transform(TRAIN)
    np.testing.assert_allclose(mm[:, 0], [0, 1 / 3, 2 / 3, 1], rtol=1e-6)
    rb = Normaliser("robust").fit(TRAIN, COLS)
    q25, q50, q75 = np.percentile(TRAIN[:, 1], [25, 50, 75])
    np.testing.assert_allclose(
        rb.transform(np.array([[0, 45.0, 5]]))[0, 1], (45 - q50) / (q75 - q25), rtol=1e-6
    )
    none = Normaliser("none").fit(TRAIN, COLS).transform(TRAIN)
    np.testing.assert_array_equal(none, TRAIN.astype(np.float32))


def test_keep_raw_and_clip():
    n = Normaliser("zscore", keep_raw=["b"], clip=1.0).fit(TRAIN, COLS)
    out = n.transform(np.array([[100.0, 1000.0, 5.0]]))
    assert out[0, 0] == 1.0  # clipped
    assert out[0, 1] == 1000.0  # raw column: untouched, not clipped
    with pytest.raises(ValueError, match="unknown columns"):
        Normaliser("zscore", keep_raw=["zz"]).fit(TRAIN, COLS)


def test_state_roundtrips_through_json():
    n = Normaliser("robust", keep_raw=["c"], clip=5.0).fit(TRAIN, COLS)
    state = json.loads(json.dumps(n.state()))
    m = Normaliser.from_state(state)
    x = np.array([[7.0, -3.0, 2.0]])
    np.testing.assert_array_equal(n.transform(x), m.transform(x))


def test_validation():
    with pytest.raises(ValueError, match="normalise='l2'"):
        Normaliser("l2")
    with pytest.raises(ValueError, match="clip"):
        Normaliser(clip=0)
    with pytest.raises(RuntimeError, match="fit"):
        Normaliser().transform(TRAIN)
    with pytest.raises(ValueError, match="shape"):
        Normaliser().fit(TRAIN, ("a",))
