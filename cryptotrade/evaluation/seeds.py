"""Statistics over training seeds: mean, interquartile mean and a bootstrap confidence interval.

One RL run is one sample of a noisy process; ``evaluation.seeds=[0,1,2,3,4]`` trains and tests
one nested run per seed, and the parent run logs, for every ``test/<metric>``:
``<metric>/mean``, ``<metric>/iqm`` (mean of the middle 50 %, robust to one lucky seed, as
Agarwal et al. 2021 recommend), ``<metric>/ci_low`` and ``<metric>/ci_high`` (95 % percentile
bootstrap of the mean, ``scipy.stats.bootstrap``, fixed generator so reruns agree) and
``<metric>/std``. The plain ``test/<metric>`` of the parent is the mean, so searches and the
summary table read a multi-seed run like a single one.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np

CONFIDENCE = 0.95


def interquartile_mean(values: np.ndarray) -> float:
    """Mean of the values between the 25th and 75th percentile (``trim_mean(x, 0.25)``)."""
    from scipy.stats import trim_mean

    return float(trim_mean(values, 0.25))


def bootstrap_ci(
    values: np.ndarray, *, seed: int = 0, resamples: int = 2000
) -> tuple[float, float]:
    """95 % percentile-bootstrap interval of the mean; NaNs with fewer than two values."""
    if len(values) < 2:
        return float("nan"), float("nan")
    if np.all(values == values[0]):  # no spread: the interval is the value
        return float(values[0]), float(values[0])
    from scipy.stats import bootstrap

    with warnings.catch_warnings():  # a degenerate resample only widens the interval
        warnings.simplefilter("ignore")
        res = bootstrap(
            (values,),
            np.mean,
            confidence_level=CONFIDENCE,
            n_resamples=resamples,
            method="percentile",
            rng=np.random.default_rng(seed),
        )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def aggregate_seeds(
    per_seed: Sequence[Mapping[str, float]], prefix: str = "test"
) -> dict[str, float]:
    """Mean, IQM, std and bootstrap CI over seeds of every finite ``<prefix>/...`` metric.

    Args:
        per_seed: One metrics dict per seed (``evaluate_split`` outputs).
        prefix: The namespace to aggregate.

    Returns:
        ``<prefix>/<m>`` (the mean) and ``<prefix>/<m>/{mean,iqm,std,ci_low,ci_high}``.
    """
    keys = sorted({k for m in per_seed for k in m if k.startswith(f"{prefix}/")})
    out: dict[str, float] = {}
    for key in keys:
        values = np.array([m[key] for m in per_seed if key in m], dtype=np.float64)
        values = values[np.isfinite(values)]
        if len(values) == 0:
            continue
        low, high = bootstrap_ci(values)
        mean = float(values.mean())
        out[key] = mean
        out[f"{key}/mean"] = mean
        out[f"{key}/iqm"] = interquartile_mean(values)
        out[f"{key}/std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        out[f"{key}/ci_low"] = low
        out[f"{key}/ci_high"] = high
    return out
