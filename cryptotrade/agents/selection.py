"""Model selection on the validation split: periodic deterministic backtests, best model kept.

Validation runs through the same path as the final test report
(:func:`cryptotrade.evaluation.evaluate_split`, without baselines), on the validation split's
compiled market only (one per run, shared by every validation); the test split is never read
here.

What MLflow shows: every validation is logged as ``val_curve/<metric>`` at its env step (the
learning curve); ``val/<metric>`` is logged once, by :func:`log_selected`, with the metrics of
the model that was selected, so the run page, a sort by ``val/sharpe`` and the terminal's
"selected the model of step N" line all show the same numbers.

Validations happen at rollout boundaries (after an update, before the next rollout), so every
validated model is one that SB3 trained; a model that never took a gradient step (SB3's
``_n_updates == 0``: before PPO's first rollout ended, before an off-policy agent's
``learning_starts``) is logged on the curve but is not eligible for selection.

The stand-aside gate (``train.stand_aside_t``): the selected model is kept only if it beats
flat on validation by more than chance, i.e. the t-statistic of its per-bar log returns
(:func:`edge_t`; flat earns exactly 0 per bar) reaches the threshold. Otherwise the run trades
flat: :func:`stand_aside` marks the model (``stand_aside_action``, saved in ``model.zip``) and
every backtest and the logged MLflow model then hold the flat position. A search or a curriculum
sees the flat policy's validation metrics for such a run.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from cryptotrade.launch import tracking
from cryptotrade.progress import Clock

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm

    from cryptotrade.components import Components
    from cryptotrade.env.compiled import CompiledMarket

OnValidation = Callable[[int, dict[str, float]], None]
Curve = tuple["np.ndarray", "np.ndarray"]  # (close times, equity) of one validation backtest
log = logging.getLogger(__name__)


def validation_metrics(
    components: Components, model: BaseAlgorithm, market: CompiledMarket
) -> dict[str, float]:
    """``val/<metric>`` of ``model`` acting deterministically on the validation split."""
    return validation_backtest(components, model, market)[0]


def validation_backtest(
    components: Components, model: BaseAlgorithm, market: CompiledMarket
) -> tuple[dict[str, float], Curve]:
    """:func:`validation_metrics` and the equity curve ``(close times, equity)`` behind them.

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
    metrics = {k: float(v) for k, v in evaluation.metrics.items()}
    result = evaluation.agent
    return metrics, (np.asarray(result.close_times), np.asarray(result.equity))


def log_curve(curve: Curve) -> None:
    """The selected model's validation equity as ``val/equity.csv`` (a search reads every
    candidate's to measure its multiple-testing statistics)."""
    import pandas as pd

    frame = pd.DataFrame({"close_time": curve[0], "equity": curve[1]})
    tracking.log_text(frame.to_csv(index=False), "val/equity.csv")


CURVE = "val_curve/"  # the history of every validation, at its env step


def curve_metrics(metrics: dict[str, float]) -> dict[str, float]:
    """``val/<m>`` -> ``val_curve/<m>``: how one validation is logged on the learning curve."""
    return {CURVE + k.removeprefix("val/"): v for k, v in metrics.items()}


def log_selected(metrics: dict[str, float], step: int, *, num_timesteps: int) -> None:
    """Log the SELECTED model's ``val/...`` metrics (once, at the end of training) and
    ``val/selected_step``: the values MLflow shows for the run's ``val/`` family."""
    tracking.log_metrics(dict(metrics) | {"val/selected_step": float(step)}, step=num_timesteps)


def updates(model: BaseAlgorithm) -> int:
    """Gradient updates ``model`` has taken (SB3's ``_n_updates``; every algorithm counts)."""
    return int(getattr(model, "_n_updates", 0))


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
    """Every ``eval_freq`` env steps: backtest on validation, log ``val_curve/...``, keep the best.

    The check runs at the start of each rollout, i.e. after SB3's update of the previous one
    (on-policy: after ``train()`` on ``n_steps * n_envs`` samples; off-policy: after the
    ``train_freq`` updates), so the model validated is the model that would be kept. A
    validation of a model without any update is logged on the curve only: it is neither
    selectable nor handed to ``on_validation`` (a search never ranks an untrained network).

    Args:
        components: The run's components (env factory, reward, seed).
        market: The validation split's compiled market (shared by every validation).
        selection: The running selection state (updated in place).
        best_path: Where the best model so far is saved (atomically).
        eval_freq: Env steps between evaluations; 0: only when :meth:`validate` is called.
        on_validation: Called as ``on_validation(num_timesteps, val_metrics)`` after each
            validation of a trained model.
        total_steps: The run's last env step, for the ETA in the log line of each validation.
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
        total_steps: int | None = None,
    ) -> None:
        super().__init__()
        self.total_steps = total_steps
        self.clock: Clock | None = None
        self.components = components
        self.market = market
        self.selection = selection
        self.best_path = best_path
        self.eval_freq = eval_freq
        self.on_validation = on_validation
        self.curves: dict[int, Curve] = {}  # the best and the latest validation's equity

    def curve(self, step: int, model: BaseAlgorithm) -> Curve:
        """The validation equity of the model of ``step`` (``model``: re-run if not kept, e.g.
        the best model of a run resumed from a checkpoint)."""
        if step not in self.curves:
            self.curves[step] = validation_backtest(self.components, model, self.market)[1]
        return self.curves[step]

    def _on_rollout_start(self) -> None:
        # SB3 calls this after the previous rollout's update: validate the updated model
        step = int(self.model.num_timesteps)
        if self.eval_freq and step - max(self.selection.last_step, 0) >= self.eval_freq:
            self.validate(self.model)

    def _on_training_start(self) -> None:
        self.clock = Clock(self.total_steps or 0, done=self.num_timesteps)

    def _on_step(self) -> bool:
        return True

    def validate(self, model: BaseAlgorithm) -> dict[str, float]:
        """Evaluate ``model`` now; save it if it is the best so far. Returns its metrics."""
        step = int(model.num_timesteps)
        metrics, curve = validation_backtest(self.components, model, self.market)
        trained = updates(model) > 0
        tracking.log_metrics(curve_metrics(metrics) | {"val_curve/trained": float(trained)}, step)
        sel = self.selection
        if sel.metric not in metrics:
            raise KeyError(
                f"train.select_metric={sel.metric!r} is not a validation metric; "
                f"choose one of {sorted(metrics)}"
            )
        value = metrics[sel.metric]
        sel.last_metrics, sel.last_step = metrics, step
        if not trained:  # an untrained network is not a candidate (its score says nothing)
            return metrics
        keep = {sel.best_step}
        if not math.isnan(value) and (value > sel.best_value or sel.best_step < 0):
            save_atomic(model, self.best_path)
            sel.best_value, sel.best_step, sel.best_metrics = value, step, metrics
            keep = {step}
        self.curves = {k: v for k, v in self.curves.items() if k in keep} | {step: curve}
        self._log_line(step, value)
        if self.on_validation is not None:
            self.on_validation(step, dict(metrics))
        return metrics

    def _log_line(self, step: int, value: float) -> None:
        """One line per validation: readable in a pipe or CI log, where no bar is drawn."""
        sel = self.selection
        clock = self.clock or Clock(self.total_steps or step, done=step)
        total = f"/{self.total_steps:,}" if self.total_steps else ""
        log.info(
            "validation at step %s%s: %s %.4g (best %.4g at step %s), %s",
            f"{step:,}",
            total,
            sel.metric,
            value,
            sel.best_value,
            f"{sel.best_step:,}",
            clock.summary(step),
        )


def edge_t(equity: np.ndarray) -> float:
    """t-statistic of the mean per-bar log return of an equity curve (against flat's 0).

    ``mean / std * sqrt(n)`` over the ``n`` bar-to-bar log returns; 0 for a curve that never
    moves (a policy that never traded), ``-inf`` if the equity reaches 0 (liquidated), NaN for
    fewer than 3 points.
    """
    equity = np.asarray(equity, dtype=float)
    if len(equity) < 3:
        return math.nan
    if not np.all(equity > 0):
        return -math.inf
    returns = np.diff(np.log(equity))
    std = float(returns.std(ddof=1))
    mean = float(returns.mean())
    if std == 0.0:
        return 0.0 if mean == 0.0 else math.copysign(math.inf, mean)
    return mean / std * math.sqrt(len(returns))


def stands_aside(model: BaseAlgorithm) -> bool:
    """Whether ``model`` was gated by :func:`stand_aside` (its policy is "hold flat")."""
    return getattr(model, "stand_aside_action", None) is not None


def stand_aside(model: BaseAlgorithm, flat_action: Any) -> None:
    """Mark ``model`` as standing aside: every backtest and the logged MLflow model answer
    ``flat_action`` (the action that keeps a flat account flat). Saved with the model."""
    model.stand_aside_action = np.asarray(flat_action).tolist()  # type: ignore[attr-defined]


def clear_stand_aside(model: BaseAlgorithm) -> None:
    """Undo :func:`stand_aside` (a model that trains on, e.g. the next curriculum stage)."""
    model.__dict__.pop("stand_aside_action", None)


def flat_validation(
    components: Components, market: CompiledMarket
) -> tuple[dict[str, float], Curve, Any]:
    """The flat policy on the validation split: its ``val/`` metrics, equity curve and the
    action that holds a flat account flat (what a standing-aside model answers)."""
    from cryptotrade.evaluation import evaluate_split
    from cryptotrade.evaluation.backtest import target_policy

    evaluation = evaluate_split(
        target_policy(0.0),
        market,
        prefix="val",
        seed=components.seed,
        baselines=False,
        log_to_run=False,
    )
    env = components.env.make(market, seed=components.seed, evaluation=True)
    try:
        action = env.action_for_target(0.0)  # a fresh env is flat
    finally:
        env.close()
    metrics = {k: float(v) for k, v in evaluation.metrics.items()}
    result = evaluation.agent
    return metrics, (np.asarray(result.close_times), np.asarray(result.equity)), action


def gate(
    components: Components,
    model: BaseAlgorithm,
    metrics: dict[str, float],
    curve: Curve,
    market: CompiledMarket,
    threshold: float | None,
) -> tuple[dict[str, float], Curve]:
    """The stand-aside gate on the selected ``model``: its validation ``metrics`` and equity
    ``curve`` if its :func:`edge_t` reaches ``threshold`` (or ``threshold`` is None), else
    ``model`` is marked (:func:`stand_aside`) and the flat policy's metrics and curve are
    returned. Either way the metrics gain ``val/edge_t`` (the model's) and ``val/stand_aside``
    (1: the run holds no position).
    """
    t = edge_t(curve[1])
    aside = threshold is not None and not t >= threshold  # NaN (too short a split): aside
    if aside:
        metrics, curve, action = flat_validation(components, market)
        stand_aside(model, action)
        log.info(
            "standing aside: the selected model beats flat on validation with t=%.2f < "
            "train.stand_aside_t=%g, so the run holds no position (not enough evidence of an "
            "edge; train.stand_aside_t=null keeps the model)",
            t,
            threshold,
        )
    return dict(metrics) | {"val/edge_t": t, "val/stand_aside": float(aside)}, curve


def save_atomic(model: BaseAlgorithm, path: Path) -> None:
    """``model.save(path)`` such that an interruption never leaves a truncated file."""
    partial = path.with_name(f".{path.stem}.partial.zip")
    try:
        model.save(partial)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
