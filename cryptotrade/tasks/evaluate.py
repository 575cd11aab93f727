"""``task=evaluate model=runs:/<run_id>/model``: backtest a trained model on the test split."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from cryptotrade.tasks.common import check_model_source, load_model


def preflight(cfg: DictConfig) -> None:
    """A model is given and was trained by the configured agent (also ``task=infer``'s)."""
    check_model_source(cfg)


def restore(cfg: DictConfig, overrides: Sequence[str]) -> DictConfig:
    """With ``model=``: the training run's data, features, env ...; command-line overrides on
    top (:func:`cryptotrade.evaluation.reload.restore_training_config`; also ``task=infer``'s)."""
    if not cfg.model:
        return cfg
    from cryptotrade.evaluation.reload import restore_training_config

    return restore_training_config(cfg, list(overrides))


def run(cfg: DictConfig, output_dir: Path) -> dict[str, float]:
    """Backtest ``model=`` and the baselines on the test split of the configured data."""
    from cryptotrade.components import build
    from cryptotrade.optimize.objective import evaluate, prepare_data

    components = build(cfg)
    model = load_model(cfg, components)
    dataset = prepare_data(components)
    config_yaml = OmegaConf.to_yaml(cfg, resolve=True)
    return evaluate(components, model, dataset, source=str(cfg.model), config_yaml=config_yaml)
