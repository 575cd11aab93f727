"""What several tasks share: the trained model they load, and the run a ``resume=`` continues."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import DictConfig, OmegaConf

from cryptotrade.components import Components, build
from cryptotrade.errors import ConfigError, ModelError
from cryptotrade.launch import tracking

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm

log = logging.getLogger(__name__)


def check_model_source(cfg: DictConfig) -> None:
    """``model=...``: a model is given and, if it comes from an MLflow run, was trained by the
    configured agent class (loading a DQN as PPO would fail deep inside SB3)."""
    if not cfg.model:
        raise ConfigError(
            f"task={cfg.task} needs a trained model: add model=runs:/<run_id>/model "
            "(or a path to a saved model.zip)"
        )
    if not str(cfg.model).startswith("runs:/"):
        return
    run_id = str(cfg.model).removeprefix("runs:/").split("/")[0]
    uri = tracking.tracking_uri(cfg.tracking.uri, cfg.paths.root)
    trained = tracking.run_params(uri, run_id).get("agent._target_")
    if trained and trained != cfg.agent._target_:
        raise ModelError(
            f"model={cfg.model} was trained by {trained} but agent is {cfg.agent._target_}; "
            "choose the matching agent (e.g. agent=dqn) to use it"
        )


def load_model(cfg: DictConfig, components: Components | None = None) -> BaseAlgorithm:
    """Load ``cfg.model`` (``runs:/<id>/model``, a folder or a zip) as the configured agent."""
    comps = components or build(cfg)
    path = tracking.download_artifact(cfg.model)
    if path.is_dir():
        path = path / "model.zip"
    if not path.exists():
        raise ModelError(f"model={cfg.model} has no model.zip (looked at {path})")
    return comps.agent_class.load(path, device="cpu")


def resume_config(cfg: DictConfig) -> DictConfig:
    """``resume=<run id>``: the config of that (killed) run, to continue it in the same run.

    The stored ``config.yaml`` of the run wins over the command line (the run must continue as
    it started); ``tracking.uri`` and ``resume`` are kept from the command line.

    Raises:
        ConfigError: The run does not exist, already finished, or left no checkpoint.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    from cryptotrade.agents.checkpoint import latest_checkpoint
    from cryptotrade.config import Config

    run_id = str(cfg.resume)
    uri = tracking.tracking_uri(cfg.tracking.uri, cfg.paths.root)
    mlflow.set_tracking_uri(uri)
    try:
        run = mlflow.MlflowClient(uri).get_run(run_id)
        stored = mlflow.artifacts.load_text(f"runs:/{run_id}/config.yaml")
    except MlflowException as exc:
        raise ConfigError(
            f"resume={run_id}: no such MLflow run (or it has no config.yaml) in {uri}; "
            "check the run id (make ui) or set tracking.uri"
        ) from exc
    if run.info.status == "FINISHED":
        raise ConfigError(f"resume={run_id}: the run already FINISHED; nothing to resume")
    folder = run.data.tags.get("checkpoint_dir")
    if not folder or latest_checkpoint(Path(folder)) is None:
        raise ConfigError(
            f"resume={run_id}: the run left no checkpoint (in {folder or 'no output folder'}); "
            "checkpoints are written every train.checkpoint_freq env steps"
        )
    resumed = OmegaConf.merge(OmegaConf.structured(Config), OmegaConf.create(stored))
    assert isinstance(resumed, DictConfig)
    resumed.resume = run_id
    resumed.tracking.uri = cfg.tracking.uri
    if resumed.train.curriculum:
        raise ConfigError(f"resume={run_id}: resuming a curriculum run is not supported")
    log.info("resuming run %s from %s", run_id, folder)
    return resumed
