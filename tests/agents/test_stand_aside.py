"""The stand-aside gate (train.stand_aside_t): a selected model that does not beat flat on
validation by the threshold's t-statistic holds no position, in every backtest, after a reload
and in the logged MLflow model."""

from __future__ import annotations

import itertools
import math
import statistics

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from cryptotrade.agents.selection import edge_t, gate, stands_aside, validation_backtest
from cryptotrade.agents.training import train
from cryptotrade.components import build
from cryptotrade.config import CONF_DIR, register_configs
from cryptotrade.errors import ConfigError
from cryptotrade.evaluation import evaluate_split
from cryptotrade.evaluation.backtest import model_policy
from cryptotrade.optimize import objective

register_configs()


def compose_cfg(*overrides: str):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=["debug=default", "agent=a2c", *overrides])


def test_edge_t_is_the_t_statistic_of_the_bar_log_returns():
    equity = [100.0, 101.0, 100.5, 102.0, 101.8, 103.0]
    r = [math.log(b / a) for a, b in itertools.pairwise(equity)]
    expected = statistics.mean(r) / statistics.stdev(r) * math.sqrt(len(r))
    assert edge_t(np.array(equity)) == pytest.approx(expected, rel=1e-12)
    assert edge_t(np.array([5.0, 5.0, 5.0, 5.0])) == 0.0  # never traded: no evidence
    assert edge_t(np.array([5.0, 4.0, 0.0, 0.0])) == -math.inf  # liquidated
    assert math.isnan(edge_t(np.array([1.0, 2.0])))


def test_the_gate_marks_a_model_below_it_and_keeps_one_above_it():
    components = build(compose_cfg())
    dataset = objective.prepare_data(components)
    model = components.make_agent(components.env.make_vec(dataset.train, components.reward))
    val = components.env.compile(dataset.val, components.reward)
    metrics, curve = validation_backtest(components, model, val)
    kept, kept_curve = gate(components, model, metrics, curve, val, edge_t(curve[1]))
    assert kept == metrics | {"val/edge_t": edge_t(curve[1]), "val/stand_aside": 0.0}
    assert kept_curve is curve and not stands_aside(model)
    assert gate(components, model, metrics, curve, val, None)[0]["val/stand_aside"] == 0.0

    aside, flat_curve = gate(components, model, metrics, curve, val, 1e9)
    assert aside["val/stand_aside"] == 1.0 and aside["val/edge_t"] == edge_t(curve[1])
    assert aside["val/total_return"] == 0.0 and aside["val/num_trades"] == 0.0
    assert np.all(flat_curve[1] == flat_curve[1][0])
    assert stands_aside(model)
    test = components.env.compile(dataset.test, components.reward)
    run = evaluate_split(
        model_policy(model), test, prefix="test", seed=0, baselines=False, log_to_run=False
    )
    assert run.metrics["test/num_trades"] == 0.0 and run.metrics["test/total_return"] == 0.0


@pytest.mark.slow
def test_a_model_below_the_gate_holds_no_position_anywhere(tmp_path):
    cfg = compose_cfg("train.stand_aside_t=1e9")  # no model can pass
    components = build(cfg)
    dataset = objective.prepare_data(components)
    result = train(components, dataset, tmp_path)
    metrics = result.val_metrics
    assert metrics["val/stand_aside"] == 1.0 and metrics["val/edge_t"] < 1e9
    # what MLflow shows under val/ is the flat policy's: the run holds no position
    assert metrics["val/total_return"] == 0.0 and metrics["val/num_trades"] == 0.0
    reloaded = type(result.model).load(tmp_path / "model.zip", device="cpu")
    assert stands_aside(reloaded)
    test = components.env.compile(dataset.test, components.reward)
    run = evaluate_split(
        model_policy(reloaded), test, prefix="test", seed=0, baselines=False, log_to_run=False
    )
    assert run.metrics["test/num_trades"] == 0.0 and run.metrics["test/total_return"] == 0.0
    # the MLflow pyfunc model answers the flat action (discrete3: 1) for any observation
    from cryptotrade.evaluation.policy_model import PolicyModel

    pyfunc = PolicyModel()
    pyfunc.model = reloaded
    obs = np.random.default_rng(0).normal(size=(3, reloaded.observation_space.shape[0]))
    assert pyfunc.predict(None, obs).tolist() == [1, 1, 1]

    # a model that trains on (a curriculum's next stage) is judged again by its new selection;
    # a model above the gate is kept as it is
    kept = build(compose_cfg("train.stand_aside_t=-1e9"))  # every model passes
    again = train(kept, dataset, tmp_path / "next", model=reloaded)
    assert again.val_metrics["val/stand_aside"] == 0.0
    assert not stands_aside(type(again.model).load(tmp_path / "next" / "model.zip"))
    assert again.val_metrics["val/num_trades"] > 0  # the network's own validation, not flat's


@pytest.mark.parametrize("value", ["inf", "nan"])
def test_a_threshold_that_is_not_a_number_is_refused(value):
    with pytest.raises(ConfigError, match=r"train\.stand_aside_t"):
        build(compose_cfg(f"train.stand_aside_t={value}"))
