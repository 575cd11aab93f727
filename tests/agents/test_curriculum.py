"""Curriculum: stages compose from the run's overrides, the model carries over, each stage is a
nested MLflow run with its own validation."""

from __future__ import annotations

import mlflow
import pytest
from conftest import SHARED_DATA
from hydra import compose, initialize_config_dir

from cryptotrade.config import CONF_DIR, register_configs
from cryptotrade.errors import ConfigError
from cryptotrade.launch import tracking
from cryptotrade.optimize.derive import ConfigDeriver
from cryptotrade.tasks.context import RunContext
from cryptotrade.tasks.curriculum import stage_configs, train_curriculum

register_configs()
BASE = ["debug=default", "experiment=curriculum", "agent=a2c", "train.total_timesteps=512"]


def compose_cfg(*overrides: str):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides))


@pytest.mark.slow
def test_shipped_curriculum_goes_from_calm_to_the_regime_mix_to_real_data():
    stages = stage_configs(ConfigDeriver(compose_cfg(*BASE)), BASE)
    assert [name for name, _ in stages] == ["calm", "regime_mix", "binance_1h"]
    calm, mix, real = (c.config for _, c in stages)
    assert calm.regime.regimes.expansion.volatility < mix.regime.regimes.expansion.volatility
    assert calm.reward.drawdown == 0.0 and mix.reward.drawdown > 0.0
    assert real.data.source._target_.endswith("FileSource")
    for c in (calm, mix, real):
        assert c.train.total_timesteps == 512 and not c.train.curriculum
        assert c.data.max_bars == 4000  # the run's debug preset applies to every stage


def test_the_curriculum_experiment_passes_the_launchers_checks(tmp_path):
    """``experiment=curriculum`` composes, passes strict checks and builds: its stages read
    ``${train.total_timesteps}``, which once failed to resolve when the train node was typed."""
    from cryptotrade.components import build
    from cryptotrade.launch import strict
    from cryptotrade.tasks import TASKS

    cfg = compose_cfg("experiment=curriculum")
    strict.check_config(cfg, TASKS)
    components = build(cfg, agent=False)  # the agent's imports are not what is tested
    assert [s["total_timesteps"] for s in components.train.curriculum] == [100_000] * 3
    context = RunContext.of(ConfigDeriver(cfg), tmp_path)
    TASKS["pipeline"].preflight(components, context)  # optimizer=none: a curriculum may run
    searched = compose_cfg("experiment=curriculum", "optimizer=ga")
    with pytest.raises(ConfigError, match=r"train\.curriculum runs with optimizer=none"):
        TASKS["pipeline"].preflight(components, RunContext.of(ConfigDeriver(searched), tmp_path))


def test_a_stage_without_a_budget_fails_naming_it():
    cfg = compose_cfg("debug=default", "+train.curriculum=[{name: x}]")
    with pytest.raises(ConfigError, match=r"train.curriculum\[0\] must be a mapping"):
        stage_configs(ConfigDeriver(cfg), [])


@pytest.mark.slow  # three stages, one on the real Binance file: ~30 s on 2 cores
def test_curriculum_trains_every_stage_in_a_nested_run(tmp_path, mlflow_uri):
    if not SHARED_DATA.exists():
        pytest.skip(f"{SHARED_DATA} (the real exchange data) is not beside the project")
    cfg = compose_cfg(*BASE)
    seen = []
    with tracking.start_run(cfg, run_name="curriculum", tags={}) as parent:
        result, dataset = train_curriculum(
            ConfigDeriver(cfg), tmp_path, overrides=BASE, on_validation=lambda s, m: seen.append(s)
        )
    assert result.num_timesteps >= 3 * 512  # the model carried over: steps keep counting
    assert seen == sorted(seen) and seen[-1] >= 3 * 512
    client = mlflow.MlflowClient(mlflow_uri)
    runs = client.search_runs([parent.info.experiment_id])
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(r.data.tags["stage"] for r in children) == ["binance_1h", "calm", "regime_mix"]
    assert all(r.info.status == "FINISHED" and "val/sharpe" in r.data.metrics for r in children)
    assert len(dataset.test) > 0
