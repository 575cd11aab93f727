"""What several tasks share: the trained model they load, and the run a ``resume=`` continues."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from cryptotrade.components import Components
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
    trained = tracking.run_class(uri, run_id, "agent")
    if trained and trained != cfg.agent._target_:
        raise ModelError(
            f"model={cfg.model} was trained by {trained} but agent is {cfg.agent._target_}; "
            "choose the matching agent (e.g. agent=dqn) to use it"
        )


def load_model(cfg: DictConfig, components: Components) -> BaseAlgorithm:
    """Load ``cfg.model`` (``runs:/<id>/model``, a folder or a zip) as the configured agent."""
    path = tracking.download_artifact(cfg.model)
    if path.is_dir():
        path = path / "model.zip"
    if not path.exists():
        raise ModelError(f"model={cfg.model} has no model.zip (looked at {path})")
    return components.agent_class.load(path, device="cpu")


# Settings a resumed run may change (the budget and how training reports); any other changed
# setting would make the resumed run a different experiment than the one its params record.
RESUMABLE = frozenset(
    {
        "train.total_timesteps",
        "train.checkpoint_freq",
        "train.log_interval",
        "train.progress_bar",
        "train.tensorboard",
        "torch_threads",
    }
)
# Taken from the command line as they are: where the store is, and the resume itself.
_LOCAL = ("resume", "tracking.", "hydra.")


def _leaves(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict) and node:
        out: dict[str, Any] = {}
        for key, value in node.items():
            out |= _leaves(value, f"{prefix}{key}.")
        return out
    return {prefix.rstrip("."): node}


def resume_changes(
    stored: DictConfig, given: DictConfig, baseline: DictConfig | None
) -> dict[str, tuple[Any, Any]]:
    """The settings the command line of a resume changes: ``{key: (stored, given)}``.

    Args:
        stored: The resumed run's config.
        given: The config composed from the resume's command line.
        baseline: The same composition without the user's overrides (``None``: every setting
            of ``given`` counts as asked for), so defaults that changed since the run started
            are not mistaken for requests.
    """
    new = _leaves(OmegaConf.to_container(given, resolve=True))
    base = _leaves(OmegaConf.to_container(baseline, resolve=True)) if baseline else {}
    old = _leaves(OmegaConf.to_container(stored, resolve=True))
    asked = {k for k, v in new.items() if baseline is None or base.get(k, v) != v or k not in base}
    return {
        k: (old.get(k), new[k])
        for k in sorted(asked)
        if not k.startswith(_LOCAL) and old.get(k) != new[k]
    }


def resume_config(
    cfg: DictConfig, baseline: DictConfig | None = None
) -> tuple[DictConfig, dict[str, tuple[Any, Any]]]:
    """``resume=<run id>``: the config of that (killed) run, to continue it in the same run.

    The stored ``config.yaml`` of the run is the base. Settings of :data:`RESUMABLE` changed on
    the command line (``train.total_timesteps=...``) are applied and logged; any other changed
    setting is refused, naming the keys. ``tracking.*`` and ``resume`` come from the command
    line.

    Args:
        cfg: The config composed from the resume's command line.
        baseline: That composition without the user's overrides (see :func:`resume_changes`).

    Returns:
        The config to continue with, and the applied changes ``{key: (old, new)}``.

    Raises:
        ConfigError: The run does not exist, already finished, or left no checkpoint; or the
            command line changes a setting that cannot change on resume.
    """
    from cryptotrade.agents.checkpoint import latest_checkpoint

    run_id = str(cfg.resume)
    uri = tracking.tracking_uri(cfg.tracking.uri, cfg.paths.root)
    run = tracking.stored_run(uri, run_id)
    if run is None:
        raise ConfigError(
            f"resume={run_id}: no such MLflow run (or it has no config.yaml) in {uri}; "
            "check the run id (make ui) or set tracking.uri"
        )
    if run.status == "FINISHED":
        raise ConfigError(f"resume={run_id}: the run already FINISHED; nothing to resume")
    folder = run.tags.get("checkpoint_dir")
    if not folder or latest_checkpoint(Path(folder)) is None:
        raise ConfigError(
            f"resume={run_id}: the run left no checkpoint (in {folder or 'no output folder'}); "
            "checkpoints are written every train.checkpoint_freq env steps"
        )
    resumed, changes = apply_resume(run.config_yaml, cfg, baseline)
    log.info("resuming run %s from %s", run_id, folder)
    return resumed, changes


def apply_resume(
    stored: str, cfg: DictConfig, baseline: DictConfig | None
) -> tuple[DictConfig, dict[str, tuple[Any, Any]]]:
    """The stored ``config.yaml`` text of run ``cfg.resume`` with the command line's allowed
    changes applied (see :func:`resume_config`)."""
    from cryptotrade.config import Config

    run_id = str(cfg.resume)
    resumed = OmegaConf.merge(OmegaConf.structured(Config), OmegaConf.create(stored))
    assert isinstance(resumed, DictConfig)
    resumed.resume = run_id
    resumed.tracking.uri = cfg.tracking.uri
    if resumed.train.curriculum:
        raise ConfigError(f"resume={run_id}: resuming a curriculum run is not supported")
    changes = resume_changes(resumed, cfg, baseline)
    refused = [k for k in changes if k not in RESUMABLE]
    if refused:
        shown = ", ".join(f"{k} ({changes[k][0]!r} -> {changes[k][1]!r})" for k in refused[:5])
        shown += f" and {len(refused) - 5} more" if len(refused) > 5 else ""
        raise ConfigError(
            f"resume={run_id}: these settings cannot change on resume: {shown}; only "
            f"{', '.join(sorted(RESUMABLE))} can (start a new run to change the others)"
        )
    for key, (old, new) in changes.items():
        OmegaConf.update(resumed, key, new, merge=False)
        log.info("resume: %s changed from %r to %r", key, old, new)
    return resumed, changes
