"""cryptotrade.evaluation: backtests, metrics, baselines, the oracle, pictures and the report.

``evaluate_split`` is imported lazily so that ``import cryptotrade.evaluation.settings`` (the
config schema) stays light.
"""

from typing import Any

__all__ = ["evaluate_split"]


def __getattr__(name: str) -> Any:
    if name == "evaluate_split":
        from cryptotrade.evaluation.evaluate import evaluate_split

        return evaluate_split
    raise AttributeError(name)
