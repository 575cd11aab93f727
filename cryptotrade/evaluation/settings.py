"""Typed settings of the evaluation (the ``evaluation`` node of the config)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class EvaluationSettings:
    """How a split is evaluated (see the ``evaluation:`` block of ``conf/config.yaml``).

    Args:
        random_seeds: Seeds of the random-policy baseline (mean and std over them are logged).
        oracle: Compute the perfect-foresight oracle baseline (a DP over positions).
        oracle_frontier: Oracle DP points kept per (bar, side); more = slower, closer to exact.
        oracle_max_hold: Longest hold, in bars, the oracle considers; null = no limit (exact,
            O(T^2) in the split's length). A limit makes the oracle a lower bound.
        plots: Log the PNG pictures of the test evaluation.
        log_scale: Equity pictures on a log scale (the oracle grows by orders of magnitude).
        report: Log the self-contained HTML report of the test evaluation.
        seeds: Training seeds; non-empty: one nested run per seed, and the run logs each test
            metric's mean, IQM and 95 % CI over them (Student t below 10 seeds, bootstrap from
            10; :mod:`cryptotrade.evaluation.seeds`) (empty: the run's ``seed`` only).
    """

    random_seeds: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])
    oracle: bool = True
    oracle_frontier: int = 2
    oracle_max_hold: int | None = 256
    plots: bool = True
    log_scale: bool = True
    report: bool = True
    seeds: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.oracle_frontier < 1:
            raise ValueError(f"evaluation.oracle_frontier={self.oracle_frontier} must be >= 1")
        if self.oracle_max_hold is not None and self.oracle_max_hold < 1:
            raise ValueError(
                f"evaluation.oracle_max_hold={self.oracle_max_hold} must be >= 1 or null (no limit)"
            )
