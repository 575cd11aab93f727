"""The baselines registry: ``evaluation.baselines`` chooses which run, by name, in order."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from cryptotrade.config import CONF_DIR, register_configs
from cryptotrade.env import CompiledMarket, EnvSettings
from cryptotrade.evaluation import evaluate_split
from cryptotrade.evaluation.backtest import target_policy
from cryptotrade.evaluation.baselines import BASELINES, run_baselines
from cryptotrade.evaluation.settings import EvaluationSettings
from tests.env.env_testdata import random_walk

register_configs()


def _settings(*overrides: str) -> EvaluationSettings:
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        node = compose("config", overrides=list(overrides)).evaluation
    return EvaluationSettings(**OmegaConf.to_container(node))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def market() -> CompiledMarket:
    data = random_walk(n=160, n_features=2, seed=3)
    return CompiledMarket.build(data, settings=EnvSettings(window=8), evaluation=True)


def test_default_config_runs_every_registered_baseline_once(market):
    settings = _settings("evaluation.random_seeds=[0,1]")
    assert settings.baselines == list(BASELINES)
    out = run_baselines(market, seed=0, settings=settings)
    assert list(out.metrics) == ["buy_hold", "flat", "random", "oracle"]
    assert out.oracle_exact == bool(out.metrics["oracle"]["exact"])


def test_the_config_choice_selects_the_baselines_and_their_order(market):
    settings = _settings("evaluation.baselines=[flat,buy_hold]")
    ev = evaluate_split(
        target_policy(1.0), market, prefix="test", seed=0, settings=settings, log_to_run=False
    )
    assert list(ev.baselines.metrics) == ["flat", "buy_hold"]
    assert not any(k.startswith(("baseline/random/", "baseline/oracle")) for k in ev.metrics)
    # the agent holds long: it is buy & hold, measured on the same compiled market
    assert ev.metrics["test/total_return"] == ev.metrics["baseline/buy_hold/total_return"]
    assert ev.metrics["test/excess_vs_buy_hold"] == 0.0
    assert "return_vs_oracle" not in " ".join(ev.metrics)  # no oracle, no comparison with it


def test_an_empty_choice_runs_no_baseline(market):
    ev = evaluate_split(
        target_policy(0.0),
        market,
        prefix="val",
        seed=0,
        settings=_settings("evaluation.baselines=[]"),
        log_to_run=False,
    )
    assert ev.baselines.metrics == {} and all(k.startswith("val/") for k in ev.metrics)


def test_bad_choices_fail_by_name_with_the_fix():
    with pytest.raises(ValueError, match=r"evaluation.baselines=.*'hodl'.*choose from"):
        EvaluationSettings(baselines=["buy_hold", "hodl"])
    with pytest.raises(ValueError, match="repeats"):
        EvaluationSettings(baselines=["flat", "flat"])
    with pytest.raises(ValueError, match=r"evaluation\.random_seeds is empty"):
        EvaluationSettings(baselines=["random"], random_seeds=[])
    EvaluationSettings(baselines=["flat"], random_seeds=[])  # no random: no seeds needed


def test_agent_and_every_baseline_share_the_one_compiled_market(market):
    from cryptotrade.env.compiled import compile_count

    before = compile_count()
    evaluate_split(
        target_policy(1.0),
        market,
        prefix="test",
        seed=0,
        settings=EvaluationSettings(random_seeds=[0, 1]),
        log_to_run=False,
    )
    assert compile_count() == before  # 6 backtests and the oracle's DP, no new compilation
