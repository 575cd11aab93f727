"""Typed settings of the evaluation (the ``evaluation`` node of the config)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class EvaluationSettings:
    """How a split is evaluated (see the ``evaluation:`` block of ``conf/config.yaml``).

    Args:
        baselines: Which baselines of the registry
            (:data:`cryptotrade.evaluation.baselines.BASELINES`: ``buy_hold``, ``flat``,
            ``random``, ``oracle``) every evaluation of a test split or fold measures, in order.
        random_seeds: Seeds of the random-policy baseline (mean and std over them are logged).
        oracle_frontier: Oracle DP points kept per (bar, side); more = slower, closer to exact.
        oracle_max_hold: Longest hold, in bars, the oracle considers; null = no limit (exact,
            O(T^2) in the split's length). A limit makes the oracle a lower bound.
        plots: Log the PNG pictures of the test evaluation.
        log_scale: Equity pictures on a log scale (the oracle grows by orders of magnitude).
        report: Log the self-contained HTML report of the test evaluation.
        seeds: Training seeds; non-empty: one nested run per seed, and the run logs each test
            metric's mean, IQM and 95 % bootstrap CI over them (empty: the run's ``seed`` only).
    """

    baselines: list[str] = field(default_factory=lambda: ["buy_hold", "flat", "random", "oracle"])
    random_seeds: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])
    oracle_frontier: int = 2
    oracle_max_hold: int | None = 256
    plots: bool = True
    log_scale: bool = True
    report: bool = True
    seeds: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        from cryptotrade.evaluation.baselines import BASELINES  # the registry, imported on use

        unknown = [name for name in self.baselines if name not in BASELINES]
        if unknown:
            raise ValueError(
                f"evaluation.baselines={list(self.baselines)} names {unknown}, which is not a "
                f"baseline; choose from {sorted(BASELINES)}"
            )
        if len(set(self.baselines)) != len(self.baselines):
            raise ValueError(f"evaluation.baselines={list(self.baselines)} repeats a baseline")
        if "random" in self.baselines and not self.random_seeds:
            raise ValueError(
                "evaluation.random_seeds is empty but evaluation.baselines lists random; give "
                "it seeds or drop random from evaluation.baselines"
            )
        if self.oracle_frontier < 1:
            raise ValueError(f"evaluation.oracle_frontier={self.oracle_frontier} must be >= 1")
        if self.oracle_max_hold is not None and self.oracle_max_hold < 1:
            raise ValueError(
                f"evaluation.oracle_max_hold={self.oracle_max_hold} must be >= 1 or null (no limit)"
            )
