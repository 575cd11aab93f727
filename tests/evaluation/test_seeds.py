"""Statistics over seeds against hand-computed values and scipy."""

from __future__ import annotations

import numpy as np
import pytest

from cryptotrade.evaluation.seeds import aggregate_seeds, bootstrap_ci, interquartile_mean


def test_interquartile_mean_drops_the_outer_quarters():
    # 8 values: the middle four are 3, 4, 5, 6
    assert interquartile_mean(np.array([100.0, 1, 2, 3, 4, 5, 6, -50])) == pytest.approx(3.5)


def test_bootstrap_ci_brackets_the_mean_and_is_reproducible():
    values = np.array([0.1, 0.3, -0.2, 0.25, 0.05])
    low, high = bootstrap_ci(values)
    assert low < values.mean() < high
    assert values.min() <= low and high <= values.max()
    assert bootstrap_ci(values) == (low, high)  # fixed generator
    assert bootstrap_ci(np.array([0.2, 0.2, 0.2])) == (0.2, 0.2)
    assert all(np.isnan(bootstrap_ci(np.array([0.3]))))


def test_aggregate_names_and_values():
    per_seed = [
        {"test/total_return": r, "test/sharpe": s, "baseline/flat/total_return": 0.0}
        for r, s in ((0.1, 1.0), (0.2, 2.0), (0.3, 3.0), (0.6, np.inf))
    ]
    out = aggregate_seeds(per_seed)
    assert out["test/total_return"] == out["test/total_return/mean"] == pytest.approx(0.3)
    assert out["test/total_return/iqm"] == pytest.approx(0.25)
    assert out["test/total_return/std"] == pytest.approx(np.std([0.1, 0.2, 0.3, 0.6], ddof=1))
    assert out["test/total_return/ci_low"] < 0.3 < out["test/total_return/ci_high"]
    assert out["test/sharpe/mean"] == pytest.approx(2.0)  # the infinite seed is left out
    assert not any(k.startswith("baseline/") for k in out)
