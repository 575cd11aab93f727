"""Train one configuration on the planted-edge market and measure it against the rules.

:func:`run_config` composes the real config tree (``conf/``) with overrides, prepares the data,
trains the agent through :func:`cryptotrade.optimize.objective.train`, and backtests the trained
model on the validation and test splits through
:func:`~cryptotrade.evaluation.backtest.run_backtest`. Each split's log return is set beside the
rules of :mod:`experiments.learnability.oracle`
(sign rule; band rule with its threshold fit on the training split) and buy & hold.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig

from experiments.learnability.oracle import best_threshold, rule_result

ROOT = Path(__file__).resolve().parents[2]
THRESHOLDS = np.linspace(0.0, 0.01, 41)  # band-rule grid, |log return| of the last bar


def compose_config(overrides: list[str]) -> DictConfig:
    """The composed run config for ``overrides`` (as on the command line)."""
    from cryptotrade.config import register_configs

    register_configs()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base=None):
        return compose("config", overrides=overrides)


def log_return(equity: np.ndarray) -> float:
    """``log(final / initial)`` of an equity curve."""
    return float(math.log(equity[-1] / equity[0]))


def references(cfg: DictConfig, dataset: Any) -> dict[str, float]:
    """Log returns of the sign rule, the train-fit band rule and buy & hold, per split."""
    from cryptotrade.env.trading_env import TradingEnv
    from cryptotrade.evaluation.backtest import run_backtest, target_policy

    factory = instantiate(cfg.env)
    # the rules trade sides (discrete3) whatever action mode the agent uses (SAC: continuous)
    settings = dataclasses.replace(factory.settings, action_mode="discrete3")
    threshold = best_threshold(dataset.train, settings, THRESHOLDS)
    out = {"band_threshold": threshold}
    for name in ("val", "test"):
        split = getattr(dataset, name)
        out[f"{name}/sign_rule"] = rule_result(split, settings).log_return
        out[f"{name}/band_rule"] = rule_result(split, settings, threshold=threshold).log_return
        env = TradingEnv(split, instantiate(cfg.reward), settings, evaluation=True)
        out[f"{name}/buy_hold"] = log_return(run_backtest(target_policy(1.0), env, seed=0).equity)
    return out


def evaluate_model(cfg: DictConfig, model: Any, dataset: Any) -> dict[str, float]:
    """Log return, trades, action shares and the PnL split (gross, fees, funding as fractions of
    the initial cash) of ``model`` on the validation and test splits."""
    from cryptotrade.evaluation.backtest import model_policy, run_backtest

    factory = instantiate(cfg.env)
    out: dict[str, float] = {}
    for name in ("val", "test"):
        env = factory.make(
            getattr(dataset, name), instantiate(cfg.reward), seed=cfg.seed, evaluation=True
        )
        result = run_backtest(model_policy(model), env, seed=cfg.seed)
        out[f"{name}/log_return"] = log_return(result.equity)
        out[f"{name}/trades"] = float(len(result.trades))
        cash = float(result.equity[0])
        if len(result.trades):
            fees, funding = result.trades["fees"].sum(), result.trades["funding"].sum()
            # net PnL = gross - fees - funding: the three parts of the equity change
            out[f"{name}/gross_pnl"] = float(result.trades["pnl"].sum() + fees + funding) / cash
            out[f"{name}/fees"] = float(fees) / cash
            out[f"{name}/funding"] = float(funding) / cash
        side = np.sign(result.position[1:])
        for label, value in (("long", 1.0), ("flat", 0.0), ("short", -1.0)):
            out[f"{name}/share_{label}"] = float(np.mean(side == value))
    return out


def run_config(overrides: list[str], *, with_references: bool = True) -> dict[str, Any]:
    """Train the configuration of ``overrides`` and measure it (see the module docstring).

    Training goes through :func:`cryptotrade.optimize.objective.train`: the model it returns is
    the one selected on the validation split (``train.select``); the test split is backtested once.

    Returns:
        Metrics: ``train_cpu_s`` / ``train_wall_s`` (training with its validation backtests,
        without data preparation), ``selected_step``, ``val_curve`` (``[step, validation log
        return, val/sharpe]`` at every periodic validation), ``val/...``, ``test/...`` and, with
        ``with_references``, the rules' and buy & hold's log returns.
    """
    from cryptotrade.optimize.objective import prepare_data, seed_everything, train

    cfg = compose_config(overrides)
    seed_everything(cfg.seed, cfg.torch_threads)
    dataset = prepare_data(cfg)
    out: dict[str, Any] = {"overrides": list(overrides)}
    curve: list[list[float]] = []

    def record(step: int, val: dict[str, float]) -> None:
        # log growth on validation (total_return is equity / initial - 1) and the selection metric
        curve.append([step, math.log1p(val["val/total_return"]), val["val/sharpe"]])

    with tempfile.TemporaryDirectory() as tmp:
        cpu, wall = time.process_time(), time.perf_counter()
        result, dataset = train(cfg, Path(tmp), dataset=dataset, on_validation=record)
        out["train_cpu_s"] = time.process_time() - cpu
        out["train_wall_s"] = time.perf_counter() - wall
    out["timesteps"] = int(result.num_timesteps)
    out["selected_step"] = int(result.selected_step)
    out["val_curve"] = curve
    out |= evaluate_model(cfg, result.model, dataset)
    if with_references:
        out |= references(cfg, dataset)
    return out
