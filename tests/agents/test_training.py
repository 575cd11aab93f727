"""Every agent trains under debug=default (>= 1 gradient step), validation selects the model,
and the budget/agent checks fail before any work."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from cryptotrade.agents.training import train
from cryptotrade.components import build
from cryptotrade.config import CONF_DIR, register_configs
from cryptotrade.errors import ConfigError
from cryptotrade.optimize import objective
from cryptotrade.optimize.derive import ConfigDeriver

register_configs()
AGENTS = ["ppo", "a2c", "dqn", "qrdqn", "sac", "recurrent_ppo"]


def compose_cfg(*overrides: str):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=["debug=default", *overrides])


@pytest.mark.slow
@pytest.mark.parametrize("agent", AGENTS)
def test_every_agent_takes_gradient_steps_under_debug(tmp_path, agent):
    cfg = compose_cfg(f"agent={agent}", "train.select=last")
    components = build(cfg)
    dataset = objective.prepare_data(components)
    seen: list[tuple[int, dict[str, float]]] = []
    result = train(components, dataset, tmp_path, on_validation=lambda s, m: seen.append((s, m)))
    assert result.num_timesteps >= cfg.train.total_timesteps
    trained = type(result.model).load(tmp_path / "model.zip")
    assert trained._n_updates >= 2, f"{agent} took < 2 gradient updates under debug=default"
    # one validation half-way (eval_freq 1024) and one at the end, each of a trained model
    assert len(seen) >= 2 and seen[-1][0] == result.num_timesteps
    assert all(set(m) >= {"val/sharpe", "val/total_return"} for _, m in seen)
    assert result.val_metrics == seen[-1][1] | {
        "val/edge_t": pytest.approx(result.val_metrics["val/edge_t"]),
        "val/stand_aside": 0.0,
    }
    # the first validation comes after an update (PPO's first is at n_steps x n_envs)
    n_steps = getattr(result.model, "n_steps", 0) * cfg.env.n_envs
    assert seen[0][0] >= max(n_steps, cfg.train.eval_freq)


def test_best_on_validation_is_the_selected_model(tmp_path):
    cfg = compose_cfg("agent=a2c", "train.eval_freq=256")
    components = build(cfg)
    seen: list[tuple[int, dict[str, float]]] = []
    result = train(
        components,
        objective.prepare_data(components),
        tmp_path,
        on_validation=lambda s, m: seen.append((s, m)),
    )
    assert len(seen) >= 8
    best = max(seen, key=lambda sm: sm[1]["val/sharpe"])
    assert result.selected_step == best[0]
    assert {k: result.val_metrics[k] for k in best[1]} == best[
        1
    ]  # plus val/edge_t, val/stand_aside
    # the returned model is that model: re-validating it reproduces its metrics
    from cryptotrade.agents.selection import validation_metrics

    val = components.env.compile(objective.prepare_data(components).val, components.reward)
    assert validation_metrics(components, result.model, val) == best[1]


def test_select_last_keeps_the_final_model(tmp_path):
    cfg = compose_cfg("train.select=last", "agent=a2c")
    components = build(cfg)
    result = train(components, objective.prepare_data(components), tmp_path)
    assert result.selected_step == result.num_timesteps


@pytest.mark.slow
def test_two_candidates_get_different_scores_under_debug(tmp_path):
    """Under debug=default a search ranks trained networks: different hyperparameters, different
    validation scores (before, every PPO candidate was validated untrained: one score)."""
    scores = []
    for lr in ("1e-5", "3e-3"):
        cfg = compose_cfg("agent=ppo", f"agent.learning_rate={lr}", "agent.ent_coef=0.0")
        objective.seed_everything(cfg.seed, 1)
        metrics = objective.objective(ConfigDeriver(cfg), tmp_path / lr, test=False)
        scores.append((metrics["val/total_return"], metrics["val/sharpe"]))
    assert scores[0] != scores[1], scores


def test_an_untrained_model_is_never_selected(tmp_path, monkeypatch):
    """A validation of a model that took no gradient step is on the curve only."""
    from cryptotrade.agents.selection import Selection, ValidationCallback

    cfg = compose_cfg("agent=a2c")
    components = build(cfg)
    dataset = objective.prepare_data(components)
    model = components.make_agent(components.env.make_vec(dataset.train, components.reward))
    selection = Selection(metric="val/sharpe")
    seen = []
    val_market = components.env.compile(dataset.val, components.reward)
    callback = ValidationCallback(
        components, val_market, selection, best_path=tmp_path / "best.zip", eval_freq=1,
        on_validation=lambda s, m: seen.append(s),
    )  # fmt: skip
    callback.validate(model)
    assert model._n_updates == 0 and selection.best_step == -1 and not seen
    assert not (tmp_path / "best.zip").exists()
    model._n_updates = 1  # as SB3 counts after its first update
    callback.validate(model)
    assert selection.best_step == 0 and seen == [0]


def test_a_budget_below_one_rollout_fails_naming_the_fix():
    cfg = compose_cfg("agent=ppo", "train.total_timesteps=1000")
    with pytest.raises(ConfigError, match=r"agent\.n_steps=256 x env\.n_envs=4 = 1024 > "):
        build(cfg)


def test_learning_starts_beyond_the_budget_fails_naming_the_fix():
    cfg = compose_cfg("agent=dqn", "train.total_timesteps=500")
    with pytest.raises(ConfigError, match=r"agent\.learning_starts=1000 >= train\.total_timesteps"):
        build(cfg)


def test_selection_on_the_test_split_is_refused():
    with pytest.raises(ConfigError, match="never reads the test split"):
        build(compose_cfg("train.select_metric=test/sharpe"))


def test_objective_without_test_never_touches_the_test_split(tmp_path, mlflow_uri, monkeypatch):
    # the test backtest without the oracle and pictures: what is checked is which split is read
    cfg = compose_cfg(
        "agent=a2c",
        "evaluation.baselines=[buy_hold,flat]",
        "evaluation.plots=false",
        "evaluation.report=false",
    )
    components = build(cfg)
    dataset = objective.prepare_data(components)
    touched = []
    from cryptotrade.env import CompiledMarket
    from cryptotrade.env.factory import EnvFactory

    def spying(original):
        def spy(self, data, *args, **kwargs):
            # every backtest (validation, test, baselines) compiles its split's market or builds
            # an env here; objective prepares its own Dataset, so compare bars, not identity
            bars = data.data if isinstance(data, CompiledMarket) else data
            touched.append(bool(np.array_equal(bars.timestamps, dataset.test.timestamps)))
            return original(self, data, *args, **kwargs)

        return spy

    monkeypatch.setattr(EnvFactory, "make", spying(EnvFactory.make))
    monkeypatch.setattr(EnvFactory, "compile", spying(EnvFactory.compile))
    metrics = objective.objective(ConfigDeriver(cfg), tmp_path, test=False)
    assert touched and not any(touched)
    assert metrics and all(k.startswith("val/") for k in metrics)
    metrics = objective.objective(ConfigDeriver(cfg), tmp_path / "b", test=True)
    assert any(touched)  # the test split is read only when asked for
    assert "test/sharpe" in metrics and "val/sharpe" in metrics


@pytest.mark.slow
def test_sb3_metric_names_reach_mlflow_and_tensorboard(tmp_path, mlflow_uri, caplog):
    """MLflow's ``val/`` values are the selected model's (what the terminal says), the curve of
    every validation lives under ``val_curve/``."""
    import logging
    import re

    from cryptotrade.run import execute

    cfg = compose_cfg("agent=ppo", "train.eval_freq=512")
    with caplog.at_level(logging.INFO, logger="cryptotrade.agents.training"):
        metrics = execute(cfg, output_dir=tmp_path, choices={"agent": "ppo"})
    client = mlflow.MlflowClient(mlflow_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("cryptotrade").experiment_id])
    shown = run.data.metrics
    assert {"train/value_loss", "train/policy_gradient_loss", "time/fps"} <= set(shown)
    # validations after each PPO update (1,024 env steps with 4 envs), none before the first
    curve = client.get_metric_history(run.info.run_id, "val_curve/sharpe")
    assert sorted(m.step for m in curve) == [1024, 2048]
    (selected,) = client.get_metric_history(run.info.run_id, "val/sharpe")  # logged once
    step = int(shown["val/selected_step"])
    at_step = {m.step: m.value for m in curve}[step]
    assert shown["val/sharpe"] == pytest.approx(at_step, rel=1e-12) == selected.value
    assert metrics["val/sharpe"] == pytest.approx(shown["val/sharpe"], rel=1e-12)
    returns = client.get_metric_history(run.info.run_id, "val_curve/total_return")
    assert shown["val/total_return"] == pytest.approx({m.step: m.value for m in returns}[step])
    said = re.search(r"selected the model of step (\d+) \(val/sharpe=(\S+)\)", caplog.text)
    assert said and int(said[1]) == step
    assert float(said[2]) == pytest.approx(shown["val/sharpe"], rel=1e-3)  # printed with %.4g
    events = list((tmp_path / "tensorboard").rglob("events.out.tfevents.*"))
    assert events, "no TensorBoard event files in the run's output folder"
