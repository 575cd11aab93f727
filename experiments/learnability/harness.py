"""Train one configuration on a market and measure it against the rules.

:func:`run_config` composes the real config tree (``conf/``) with overrides (any market: the
planted-edge study's, a probe market, a file), prepares the data, trains the agent through
:func:`cryptotrade.optimize.objective.train`, and backtests the trained model on the validation
and test splits through :func:`~cryptotrade.evaluation.backtest.run_backtest`. Each split's log
return is set beside the references of :func:`references`: the rules of
:mod:`experiments.learnability.oracle` (sign rule; band rule with its threshold fit on the
training split; a probe market's own exact rule), buy & hold and the DP oracle.
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

from experiments.learnability.oracle import (
    LiquidationReached,
    best_threshold,
    probe_model,
    reference_result,
    rule_result,
)

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
    """Log returns of the references, per split (``val/...``, ``test/...``).

    * ``sign_rule`` and ``band_rule`` (threshold fit on train): the AR(1) study's rules, on any
      data (on a file they are a plain lag-1 momentum rule);
    * ``rule``: a probe market's exact rule (``regime=planted|random_walk|gbm``) with its
      ``rule_trades`` and ``rule_fees`` (fraction of the initial cash); absent for other markets;
    * ``buy_hold``; ``oracle``: the DP oracle through the market model
      (:func:`cryptotrade.evaluation.oracle.solve_oracle` with ``evaluation.oracle_frontier`` and
      ``oracle_max_hold``: a lower bound of the perfect-foresight optimum when the hold is
      limited), when ``evaluation.baselines`` lists ``oracle``.
    """
    from cryptotrade.components import build
    from cryptotrade.env.trading_env import TradingEnv
    from cryptotrade.evaluation.backtest import run_backtest, target_policy
    from cryptotrade.evaluation.oracle import solve_oracle

    components = build(cfg, agent=False)
    # the rules trade sides (discrete3) whatever action mode the agent uses (SAC: continuous)
    settings = dataclasses.replace(components.env.settings, action_mode="discrete3")
    probe = probe_model(components.data.source)
    threshold = best_threshold(dataset.train, settings, THRESHOLDS)
    out = {"band_threshold": threshold}
    for name in ("val", "test"):
        split = getattr(dataset, name)
        # the AR(1) study's rules; on a drifting market a short may reach its liquidation
        # price, which their plain replay does not model: NaN then
        for rule, band in (("sign_rule", 0.0), ("band_rule", threshold)):
            try:
                out[f"{name}/{rule}"] = rule_result(split, settings, threshold=band).log_return
            except LiquidationReached:
                out[f"{name}/{rule}"] = math.nan
        if probe is not None:
            rule = reference_result(probe, split, settings)
            out[f"{name}/rule"] = rule.log_return
            out[f"{name}/rule_trades"] = float(rule.num_trades)
            out[f"{name}/rule_fees"] = rule.fees / float(rule.equity[0])
        env = TradingEnv(split, components.reward, settings, evaluation=True)
        out[f"{name}/buy_hold"] = log_return(run_backtest(target_policy(1.0), env, seed=0).equity)
        ev = components.evaluation
        if "oracle" in ev.baselines:  # evaluation.baselines (the registry) names the oracle
            best = solve_oracle(env, k_max=ev.oracle_frontier, max_hold=ev.oracle_max_hold)
            out[f"{name}/oracle"] = math.log(best.value / settings.initial_cash)
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
        out[f"{name}/bars"] = float(len(result.equity) - 1)  # decisions: trades per bar
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
        ``with_references``, the references' log returns (:func:`references`).
    """
    from cryptotrade.components import build
    from cryptotrade.optimize.derive import ConfigDeriver
    from cryptotrade.optimize.objective import prepare_data, seed_everything, train

    cfg = compose_config(overrides)
    seed_everything(cfg.seed, cfg.torch_threads)
    dataset = prepare_data(build(cfg, agent=False))
    out: dict[str, Any] = {"overrides": list(overrides)}
    curve: list[list[float]] = []

    def record(step: int, val: dict[str, float]) -> None:
        # log growth on validation (total_return is equity / initial - 1) and the selection metric
        curve.append([step, math.log1p(val["val/total_return"]), val["val/sharpe"]])

    with tempfile.TemporaryDirectory() as tmp:
        cpu, wall = time.process_time(), time.perf_counter()
        configs = ConfigDeriver(cfg)
        result, dataset = train(configs, Path(tmp), dataset=dataset, on_validation=record)
        out["train_cpu_s"] = time.process_time() - cpu
        out["train_wall_s"] = time.perf_counter() - wall
    out["timesteps"] = int(result.num_timesteps)
    out["selected_step"] = int(result.selected_step)
    out["val_curve"] = curve
    # the stand-aside gate (train.stand_aside_t): the selected network's validation t-statistic
    # against flat, and whether the run holds no position because of it
    out["edge_t"] = float(result.val_metrics.get("val/edge_t", math.nan))
    out["stand_aside"] = bool(result.val_metrics.get("val/stand_aside", 0.0))
    out |= evaluate_model(cfg, result.model, dataset)
    if out["stand_aside"]:
        # diagnostic only (the cell's result is the flat policy above): what the gated network
        # would have done, so a cell can say what the gate cost or saved
        from cryptotrade.agents.selection import clear_stand_aside

        clear_stand_aside(result.model)
        ungated = evaluate_model(cfg, result.model, dataset)
        out |= {f"ungated/{k}": v for k, v in ungated.items()}
    if with_references:
        out |= references(cfg, dataset)
    return out
