"""Model selection on the validation split: periodic deterministic backtests, best model kept.

Validation runs through the same path as the final test report
(:func:`cryptotrade.evaluation.backtest.run_backtest` and its metrics), on the validation split
only; the test split is never read here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from stable_baselines3.common.callbacks import BaseCallback

from cryptotrade.launch import tracking

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm

    from cryptotrade.components import Components
    from cryptotrade.data import MarketData
    from cryptotrade.evaluation.backtest import BacktestResult, Policy

OnValidation = Callable[[int, dict[str, float]], None]


def backtest(components: Components, policy: Policy, data: MarketData) -> BacktestResult:
    """One deterministic backtest of ``policy`` over the whole of ``data`` (an evaluation env)."""
    from cryptotrade.evaluation.backtest import run_backtest

    env = components.env.make(data, components.reward, seed=components.seed, evaluation=True)
    try:
        return run_backtest(policy, env, seed=components.seed)
    finally:
        env.close()


def validation_metrics(components: Components, model: BaseAlgorithm, data: MarketData) -> dict:
    """``val/<metric>`` of ``model`` acting deterministically on the validation split."""
    from cryptotrade.evaluation.backtest import model_policy

    result = backtest(components, model_policy(model), data)
    return {f"val/{k}": float(v) for k, v in result.metrics.items()}


@dataclass
class Selection:
    """What the validation callback has seen so far (checkpointed with the model).

    Attributes:
        metric: The ``val/`` metric that ranks models (higher wins).
        best_value: Its best value so far (``-inf`` before the first evaluation).
        best_step: Env step of the best model.
        best_metrics: All ``val/`` metrics of the best model.
        last_metrics: The metrics of the latest evaluation.
        last_step: Env step of the latest evaluation (-1: none yet).
    """

    metric: str
    best_value: float = -math.inf
    best_step: int = -1
    best_metrics: dict[str, float] = field(default_factory=dict)
    last_metrics: dict[str, float] = field(default_factory=dict)
    last_step: int = -1

    def to_json(self) -> str:
        """Serialise (``-inf`` as a string, which JSON lacks)."""
        data = asdict(self)
        data["best_value"] = repr(self.best_value)
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> Selection:
        """Inverse of :meth:`to_json`."""
        data = json.loads(text)
        data["best_value"] = float(data["best_value"])
        return cls(**data)


class ValidationCallback(BaseCallback):
    """Every ``eval_freq`` env steps: backtest on validation, log ``val/...``, keep the best.

    Args:
        components: The run's components (env factory, reward, seed).
        data: The validation split.
        selection: The running selection state (updated in place).
        best_path: Where the best model so far is saved (atomically).
        eval_freq: Env steps between evaluations; 0: only when :meth:`validate` is called.
        on_validation: Called as ``on_validation(num_timesteps, val_metrics)`` after each one.
    """

    def __init__(
        self,
        components: Components,
        data: MarketData,
        selection: Selection,
        *,
        best_path: Path,
        eval_freq: int,
        on_validation: OnValidation | None = None,
    ) -> None:
        super().__init__()
        self.components = components
        self.data = data
        self.selection = selection
        self.best_path = best_path
        self.eval_freq = eval_freq
        self.on_validation = on_validation

    def _on_step(self) -> bool:
        due = self.num_timesteps - max(self.selection.last_step, 0) >= self.eval_freq
        if self.eval_freq and due:
            self.validate(self.model)
        return True

    def validate(self, model: BaseAlgorithm) -> dict[str, float]:
        """Evaluate ``model`` now; save it if it is the best so far. Returns its metrics."""
        step = int(model.num_timesteps)
        metrics = validation_metrics(self.components, model, self.data)
        tracking.log_metrics(metrics, step=step)
        sel = self.selection
        if sel.metric not in metrics:
            raise KeyError(
                f"train.select_metric={sel.metric!r} is not a validation metric; "
                f"choose one of {sorted(metrics)}"
            )
        value = metrics[sel.metric]
        sel.last_metrics, sel.last_step = metrics, step
        if not math.isnan(value) and (value > sel.best_value or sel.best_step < 0):
            save_atomic(model, self.best_path)
            sel.best_value, sel.best_step, sel.best_metrics = value, step, metrics
        if self.on_validation is not None:
            self.on_validation(step, dict(metrics))
        return metrics


def save_atomic(model: BaseAlgorithm, path: Path) -> None:
    """``model.save(path)`` such that an interruption never leaves a truncated file."""
    partial = path.with_name(f".{path.stem}.partial.zip")
    try:
        model.save(partial)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
