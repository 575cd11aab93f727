"""Curriculum training: stages trained one after another, the model carried over.

``train.curriculum`` is a list of stages, each a mapping::

    - name: calm                 # names the stage's nested MLflow run and output folder
      total_timesteps: 50000     # this stage's budget (env steps)
      overrides: [regime=bull, reward.weights.drawdown=0.0]   # Hydra overrides of the run config

A stage's config is the run's config re-composed with the run's own overrides followed by the
stage's (group choices such as ``regime=choppy`` or ``data=file`` and ``key=value``), so a stage
can change the market regime, the data (source, date range) or the reward weights. Each stage is
a nested MLflow run (:func:`cryptotrade.launch.tracking.nested_run`) with its own validation on
its own data; the model selected in one stage (best on its validation) starts the next. The run's
result is the last stage's.

``task=pipeline`` and ``task=train`` train a configured curriculum with :func:`train_curriculum`
(the objective's ``trainer``); a search (``optimizer=ga|tune``) trains each candidate in one
stage and refuses a curriculum before any run starts (:mod:`cryptotrade.tasks.pipeline`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from cryptotrade.errors import ConfigError
from cryptotrade.launch import tracking

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm

    from cryptotrade.agents.checkpoint import OnCheckpoint
    from cryptotrade.agents.training import TrainResult
    from cryptotrade.agents.validation import OnValidation
    from cryptotrade.data import Dataset

log = logging.getLogger(__name__)


def run_overrides() -> list[str]:
    """The command-line overrides of the running Hydra job.

    Raises:
        ConfigError: Outside a Hydra job (the stages could not be composed like the run).
    """
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        raise ConfigError(
            "train.curriculum composes each stage from the run's overrides; outside the "
            "launcher call cryptotrade.tasks.curriculum.train_curriculum(..., overrides=[...])"
        )
    return list(HydraConfig.get().overrides.task)


def compose_config(overrides: Sequence[str]) -> DictConfig:
    """Compose ``conf/config.yaml`` with ``overrides`` (inside a Hydra app or outside one)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from cryptotrade.config import CONF_DIR

    if GlobalHydra.instance().is_initialized():
        return compose(config_name="config", overrides=list(overrides))
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def stage_configs(cfg: DictConfig, base_overrides: Sequence[str]) -> list[tuple[str, DictConfig]]:
    """``(name, config)`` of every stage; each config has an empty curriculum.

    Raises:
        ConfigError: A stage lacks ``total_timesteps`` or its overrides do not compose.
    """
    stages = OmegaConf.to_container(cfg.train.curriculum, resolve=True)
    assert isinstance(stages, list)
    out = []
    for i, stage in enumerate(stages):
        if not isinstance(stage, dict) or "total_timesteps" not in stage:
            raise ConfigError(
                f"train.curriculum[{i}] must be a mapping with total_timesteps (and optional "
                f"name and overrides), got {stage!r}"
            )
        name = str(stage.get("name", f"stage{i}"))
        overrides = [str(o) for o in stage.get("overrides", [])]
        try:
            stage_cfg = compose_config(
                [
                    *base_overrides,
                    *overrides,
                    f"train.total_timesteps={int(stage['total_timesteps'])}",
                    "train.curriculum=[]",
                    f"seed={cfg.seed}",
                ]
            )
        except Exception as exc:
            raise ConfigError(f"train.curriculum[{i}] ({name}): {exc}") from exc
        out.append((name, stage_cfg))
    return out


def train_curriculum(
    cfg: DictConfig,
    output_dir: Path,
    *,
    on_validation: OnValidation | None = None,
    dataset: Dataset | None = None,
    model: BaseAlgorithm | None = None,
    on_checkpoint: OnCheckpoint | None = None,
    resume: bool = False,
    overrides: Sequence[str] | None = None,
) -> tuple[TrainResult, Dataset]:
    """Train every stage of ``cfg.train.curriculum`` in order; returns the last stage's result.

    The trainer of :func:`cryptotrade.optimize.objective.objective` for a curriculum run (same
    signature as :func:`cryptotrade.optimize.objective.train`). Logs the last stage's model to
    the run when ``tracking.log_model``.

    Args:
        cfg: The run config (with a non-empty ``train.curriculum``).
        output_dir: The job's folder; stage ``k`` writes to ``<output_dir>/<k>-<name>``.
        on_validation: Called after every validation of every stage; steps keep counting
            across stages (the model's step count carries over).
        dataset: Ignored: every stage prepares the data of its own config.
        model: Must be ``None``: the first stage starts from a new agent.
        on_checkpoint: Must be ``None`` (a curriculum hands out no checkpoints).
        resume: Must be ``False`` (a curriculum cannot be resumed).
        overrides: The run's overrides; default: those of the running Hydra job.

    Raises:
        ConfigError: Checkpoints or a resume were asked for, or a stage does not compose.
    """
    from cryptotrade.agents.training import train
    from cryptotrade.components import build
    from cryptotrade.optimize.objective import log_trained_model, prepare_data

    if on_checkpoint is not None or resume or cfg.get("resume"):
        raise ConfigError("a train.curriculum run cannot hand out or resume checkpoints")
    if model is not None:
        raise ConfigError("a train.curriculum run starts from a new agent; drop model=")
    # the folder of the checkpoints (the launcher's output_dir tag moves with a resume)
    tracking.set_tags({"checkpoint_dir": str(output_dir.resolve())})
    base = list(overrides) if overrides is not None else run_overrides()
    stages = stage_configs(cfg, base)
    for _, stage_cfg in stages:  # fail before the first stage trains
        build(stage_cfg)
    current: Any = None
    result = None
    for k, (name, stage_cfg) in enumerate(stages):
        budget = int(stage_cfg.train.total_timesteps)
        params = {"stage": k, "total_timesteps": budget, "overrides": " ".join(base)}
        with tracking.nested_run(f"stage{k}-{name}", tags={"stage": name}, params=params):
            components = build(stage_cfg)
            dataset = prepare_data(components)
            start = int(current.num_timesteps) if current is not None else 0
            log.info("curriculum stage %d (%s): %d env steps", k, name, budget)
            result = train(
                components,
                dataset,
                output_dir / f"{k}-{name}",
                on_validation=on_validation,
                model=current,
                total_timesteps=start + budget,
            )
            current = result.model
    assert result is not None and dataset is not None
    tracking.log_metrics(result.val_metrics)
    log_trained_model(cfg, result.path, dataset)
    return result, dataset
