"""Statistics over training seeds: mean, interquartile mean and a confidence interval.

One RL run is one sample of a noisy process; ``evaluation.seeds=[0,1,2,3,4]`` trains and tests
one nested run per seed, and the parent run logs, for every ``test/<metric>``:
``<metric>/mean``, ``<metric>/iqm`` (mean of the middle 50 %, robust to one lucky seed, as
Agarwal et al. 2021 recommend), ``<metric>/std`` and a 95 % interval of the mean,
``<metric>/ci_low`` and ``<metric>/ci_high``. The plain ``test/<metric>`` of the parent is the
mean, so searches and the summary table read a multi-seed run like a single one.

Which interval (:func:`confidence_interval`), named by the tag ``seeds/ci_method`` and in
``test/seeds.txt``:

* fewer than :data:`BOOTSTRAP_FROM` (10) seeds: **Student t**, ``mean +- t(0.975, n-1) s /
  sqrt(n)``. A percentile bootstrap of 3 values can only resample those 3: its interval is
  (almost) their range and far too narrow; the t interval widens with the uncertainty of ``s``.
* from 10 seeds: the 95 % **percentile bootstrap** of the mean (``scipy.stats.bootstrap``, a
  fixed generator so reruns agree), which needs no normality.

Below :data:`FEW_SEEDS` (5) seeds a warning says that any interval is rough.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence

import numpy as np

log = logging.getLogger(__name__)
CONFIDENCE = 0.95
BOOTSTRAP_FROM = 10  # seeds from which the percentile bootstrap is used (Student t below)
FEW_SEEDS = 5  # below this, a warning: an interval over so few seeds is rough
STUDENT_T = "student_t"
BOOTSTRAP = "percentile_bootstrap"


def ci_method(n: int) -> str:
    """The interval used for ``n`` seeds: ``student_t`` below 10, else the bootstrap."""
    return BOOTSTRAP if n >= BOOTSTRAP_FROM else STUDENT_T


def student_t_ci(values: np.ndarray) -> tuple[float, float]:
    """95 % Student t interval of the mean, ``mean +- t(0.975, n-1) s / sqrt(n)``."""
    from scipy.stats import t

    n = len(values)
    if n < 2:
        return float("nan"), float("nan")
    mean, sem = float(values.mean()), float(values.std(ddof=1) / np.sqrt(n))
    half = float(t.ppf(0.5 + CONFIDENCE / 2.0, n - 1)) * sem
    return mean - half, mean + half


def confidence_interval(values: np.ndarray) -> tuple[float, float, str]:
    """95 % interval of the mean over seeds and the method used (see the module docstring)."""
    method = ci_method(len(values))
    low, high = bootstrap_ci(values) if method == BOOTSTRAP else student_t_ci(values)
    return low, high, method


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
    """Mean, IQM, std and 95 % CI over seeds of every finite ``<prefix>/...`` metric (the
    interval's method: :func:`confidence_interval`).

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
        low, high, _ = confidence_interval(values)
        mean = float(values.mean())
        out[key] = mean
        out[f"{key}/mean"] = mean
        out[f"{key}/iqm"] = interquartile_mean(values)
        out[f"{key}/std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        out[f"{key}/ci_low"] = low
        out[f"{key}/ci_high"] = high
    return out


def describe(n_seeds: int) -> str:
    """How the intervals over ``n_seeds`` seeds were computed (for the report), with a warning
    below :data:`FEW_SEEDS` seeds (also logged)."""
    method = ci_method(n_seeds)
    text = f"{n_seeds} seeds; 95 % interval of the mean: " + (
        f"Student t (mean +- t(0.975, {n_seeds - 1}) s / sqrt(n)); the percentile bootstrap "
        f"is used from {BOOTSTRAP_FROM} seeds"
        if method == STUDENT_T
        else "percentile bootstrap (scipy.stats.bootstrap, 2,000 resamples)"
    )
    if n_seeds < FEW_SEEDS:
        warning = (
            f"only {n_seeds} seeds: intervals over fewer than {FEW_SEEDS} seeds are rough; "
            "add seeds to evaluation.seeds"
        )
        log.warning(warning)
        text += f"\nWARNING: {warning}"
    return text
