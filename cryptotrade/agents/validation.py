"""Model selection on the validation split: periodic deterministic backtests, best model kept.

Validation runs through the same path as the final test report
(:func:`cryptotrade.evaluation.evaluate_split`, without baselines), on the validation split's
compiled market only (one per run, shared by every validation); the test split is never read
here.
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
    from cryptotrade.env.compiled import CompiledMarket

OnValidation = Callable[[int, dict[str, float]], None]


def validation_metrics(
    components: Components, model: BaseAlgorithm, market: CompiledMarket
) -> dict[str, float]:
    """``val/<metric>`` of ``model`` acting deterministically on the validation split.

    Args:
        components: The run's components (the seed).
        model: The model to evaluate.
        market: The validation split's compiled market (``components.env.compile``).
    """
    from cryptotrade.evaluation import evaluate_split
    from cryptotrade.evaluation.backtest import model_policy

    evaluation = evaluate_split(
        model_policy(model),
        market,
        prefix="val",
        seed=components.seed,
        baselines=False,
        log_to_run=False,  # the callback logs them at the training step
    )
    return {k: float(v) for k, v in evaluation.metrics.items()}


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
        market: The validation split's compiled market (shared by every validation).
        selection: The running selection state (updated in place).
        best_path: Where the best model so far is saved (atomically).
        eval_freq: Env steps between evaluations; 0: only when :meth:`validate` is called.
        on_validation: Called as ``on_validation(num_timesteps, val_metrics)`` after each one.
    """

    def __init__(
        self,
        components: Components,
        market: CompiledMarket,
        selection: Selection,
        *,
        best_path: Path,
        eval_freq: int,
        on_validation: OnValidation | None = None,
    ) -> None:
        super().__init__()
        self.components = components
        self.market = market
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
        metrics = validation_metrics(self.components, model, self.market)
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
