"""The winner's config: the point applied, no search around it, credentials masked."""

from __future__ import annotations

from hydra import compose, initialize_config_dir
from hydra.utils import get_class
from omegaconf import OmegaConf

from cryptotrade.config import CONF_DIR, register_configs
from cryptotrade.optimize.derive import ConfigDeriver
from cryptotrade.optimize.runner import winner_config
from cryptotrade.optimize.trial import candidate_config, point_hash, point_key

register_configs()


def test_winner_config_is_a_plain_run_of_the_point_with_secrets_masked():
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["optimizer=ga", "optimizer.metric=val/total_return"])
    # a credential that reached the config anyway (typed nodes take no new keys: a plain copy)
    data = OmegaConf.to_container(cfg.data, resolve=False)
    data["source"] |= {"api_key": "sk-very-secret", "api_key_env": "BINANCE_KEY"}
    cfg.data = OmegaConf.create(data)
    best = winner_config(ConfigDeriver(cfg), {"agent.gamma": 0.95, "env.window": 16}).config
    assert best.agent.gamma == 0.95 and best.env.window == 16
    assert get_class(best.optimizer._target_).__name__ == "NoSearch"
    assert best.optimizer.metric == "val/total_return"
    text = OmegaConf.to_yaml(best)
    assert "sk-very-secret" not in text
    assert best.data.source.api_key_env == "BINANCE_KEY", "a variable name is not a secret"
    assert cfg.agent.gamma == 0.9, "the base config is untouched (the PPO default)"


def test_points_are_keyed_canonically_and_candidates_resolve():
    assert point_key({"b": 1, "a": 2.5}) == point_key({"a": 2.5, "b": 1})
    assert point_hash({"b": 1, "a": 2.5}) == point_hash({"a": 2.5, "b": 1})
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config")
    container = candidate_config(ConfigDeriver(cfg), {"env.window": 48})
    assert container["env"]["window"] == 48
    assert "${" not in OmegaConf.to_yaml(OmegaConf.create(container)), "fully resolved"


def test_a_candidate_config_from_another_process_builds_like_the_driver_one(tmp_path):
    from cryptotrade.components import build
    from cryptotrade.config import TrainConfig
    from cryptotrade.optimize.columns import CachedFeatureSet

    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["debug=default", "optimizer=ga"])
    configs = ConfigDeriver(cfg).with_column_cache(str(tmp_path))
    # as a worker sees it
    worker = ConfigDeriver.from_container(candidate_config(configs, {"env.window": 16}))
    worker_cfg = worker.config
    assert isinstance(OmegaConf.to_object(worker_cfg.train), TrainConfig)
    components = build(worker_cfg)
    assert isinstance(components.features, CachedFeatureSet)
    assert worker_cfg.env.window == 16


def test_checkpoint_selection_uses_the_search_metric_by_default():
    """experiment=ga_bitmex ranks candidates by val/total_return: their models are selected on
    it too (before, checkpoints were selected on val/sharpe and ranked on val/total_return)."""
    from cryptotrade.components import build

    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        bitmex = compose("config", overrides=["experiment=ga_bitmex"])
        tune = compose("config", overrides=["optimizer=tune", "optimizer.metric=val/sortino"])
        explicit = compose("config", overrides=["optimizer=ga", "train.select_metric=val/calmar"])
    assert bitmex.train.select_metric == bitmex.optimizer.metric == "val/total_return"
    assert build(tune, agent=False).train.select_metric == "val/sortino"
    assert explicit.train.select_metric == "val/calmar", "an explicit choice still wins"
    # a candidate's resolved config carries the candidate's own metric
    assert candidate_config(ConfigDeriver(tune), {})["train"]["select_metric"] == "val/sortino"


def test_a_tune_trial_logs_its_fitness_in_its_child_run(tmp_path, mlflow_store, monkeypatch):
    import mlflow
    from ray import tune

    import cryptotrade.optimize.tune_trial as tune_trial

    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["debug=default", "optimizer=tune"])
    monkeypatch.setattr(
        tune_trial, "evaluate_candidate", lambda spec, **kw: {"val/sharpe": 1.25, "val/x": 2.0}
    )
    context = type("Context", (), {"get_trial_id": lambda self: "t1"})()
    monkeypatch.setattr(tune, "get_context", lambda: context)
    reports: list = []
    monkeypatch.setattr(tune, "report", lambda payload, **kw: reports.append(payload))
    with mlflow.start_run() as parent:
        tune_trial.tune_trial(
            {"agent.gamma": 0.95}, base=OmegaConf.to_container(cfg), metric="val/sharpe",
            penalty=-1e9, parent=(parent.info.run_id, parent.info.experiment_id),
            uri=mlflow_store, output_root=str(tmp_path), checkpoints=False,
        )  # fmt: skip
    client = mlflow.MlflowClient(mlflow_store)
    (child,) = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert child.data.metrics["search/fitness"] == 1.25 == reports[-1]["score"]


def test_point_label_names_each_gene_briefly():
    from cryptotrade.optimize.trial import point_label

    point = {"agent.learning_rate": 0.000312345, "env.window": 30, "reward.kind": "pnl"}
    assert point_label(point) == "learning_rate=0.000312 window=30 kind=pnl"
    assert len(point_label({f"k{i}": 1.0 for i in range(40)})) == 80
    # two genes ending alike (the GA's default space) keep as much of their keys as tells them
    # apart: "window=78 window=30" named two different genes the same in the runs table
    genes = {"features.indicators.vol.window": 78, "env.window": 30, "a.b.c": 1, "x.b.c": 2}
    assert point_label(genes) == "vol.window=78 env.window=30 a.b.c=1 x.b.c=2"
    from cryptotrade.optimize.trial import short_keys

    assert short_keys(["agent.gamma", "a.window", "b.window"]) == {
        "agent.gamma": "gamma", "a.window": "a.window", "b.window": "b.window"
    }  # fmt: skip
