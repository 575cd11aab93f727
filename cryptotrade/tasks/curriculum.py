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

from cryptotrade.errors import ConfigError
from cryptotrade.launch import tracking
from cryptotrade.optimize.derive import ConfigDeriver

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm

    from cryptotrade.agents.checkpoint import OnCheckpoint
    from cryptotrade.agents.selection import OnValidation
    from cryptotrade.agents.training import TrainResult
    from cryptotrade.components import Components
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


def stage_configs(
    configs: ConfigDeriver, base_overrides: Sequence[str]
) -> list[tuple[str, ConfigDeriver]]:
    """``(name, config)`` of every stage of the run's ``train.curriculum``; each stage's
    config is composed again (:meth:`ConfigDeriver.compose`) and has an empty curriculum.

    Raises:
        ConfigError: A stage lacks ``total_timesteps`` or its overrides do not compose.
    """
    stages = configs.train_settings().curriculum
    seed = configs.settings.seed
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
            stage_cfg = ConfigDeriver.compose(
                [
                    *base_overrides,
                    *overrides,
                    f"train.total_timesteps={int(stage['total_timesteps'])}",
                    "train.curriculum=[]",
                    f"seed={seed}",
                ]
            )
        except Exception as exc:
            raise ConfigError(f"train.curriculum[{i}] ({name}): {exc}") from exc
        out.append((name, stage_cfg))
    return out


def train_curriculum(
    configs: ConfigDeriver,
    output_dir: Path,
    *,
    components: Components | None = None,
    on_validation: OnValidation | None = None,
    dataset: Dataset | None = None,
    model: BaseAlgorithm | None = None,
    on_checkpoint: OnCheckpoint | None = None,
    resume: bool = False,
    overrides: Sequence[str] | None = None,
) -> tuple[TrainResult, Dataset]:
    """Train every stage of the run's ``train.curriculum`` in order; returns the last stage's
    result.

    The trainer of :func:`cryptotrade.optimize.objective.objective` for a curriculum run (same
    signature as :func:`cryptotrade.optimize.objective.train`). Logs the last stage's model to
    the run when ``tracking.log_model``.

    Args:
        configs: The run's config (with a non-empty ``train.curriculum``).
        output_dir: The job's folder; stage ``k`` writes to ``<output_dir>/<k>-<name>``.
        components: Ignored: every stage builds the components of its own config.
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
    from cryptotrade.optimize.objective import log_trained_model, prepare_data

    if on_checkpoint is not None or resume or configs.settings.resume:
        raise ConfigError("a train.curriculum run cannot hand out or resume checkpoints")
    if model is not None:
        raise ConfigError("a train.curriculum run starts from a new agent; drop model=")
    # the folder of the checkpoints (the launcher's output_dir tag moves with a resume)
    tracking.set_tags({"checkpoint_dir": str(output_dir.resolve())})
    base = list(overrides) if overrides is not None else run_overrides()
    # every stage built (and so checked) before the first one trains
    stages = [(name, stage.build()) for name, stage in stage_configs(configs, base)]
    current: Any = None
    result = None
    for k, (name, stage) in enumerate(stages):
        budget = stage.train.total_timesteps
        params = {"stage": k, "total_timesteps": budget, "overrides": " ".join(base)}
        with tracking.nested_run(f"stage{k}-{name}", tags={"stage": name}, params=params):
            dataset = prepare_data(stage)
            start = int(current.num_timesteps) if current is not None else 0
            log.info("curriculum stage %d (%s): %d env steps", k, name, budget)
            result = train(
                stage,
                dataset,
                output_dir / f"{k}-{name}",
                on_validation=on_validation,
                model=current,
                total_timesteps=start + budget,
            )
            current = result.model
    assert result is not None and dataset is not None
    tracking.log_metrics(result.val_metrics)
    log_trained_model(configs, result.path, dataset)
    return result, dataset
