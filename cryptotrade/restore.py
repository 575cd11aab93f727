"""The config a run really runs with, from a stored run: ``resume=`` and ``model=``.

The launcher (:func:`cryptotrade.run.execute`) calls these before the config is checked and the
components are built; nothing below it holds a ``DictConfig`` (tasks get
:class:`~cryptotrade.tasks.context.RunContext`).

* ``resume=<run id>``: the stored ``config.yaml`` of that killed run, with the few settings a
  resume may change (:data:`RESUMABLE`) taken from the command line (:func:`resume_config`).
* ``model=runs:/<id>/model`` (``task=evaluate``, ``task=infer``): the training run's data,
  regime, features, env, reward, agent and extractor settings from its logged ``config.yaml``; a
  command-line override of a section (``env.taker_fee=0.001``, ``data=binance``) applies on top
  (:func:`restore_training_config`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from cryptotrade.errors import ConfigError, ModelError
from cryptotrade.launch import tracking

log = logging.getLogger(__name__)


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


# what the training run decided and a model depends on
RESTORED = ("data", "regime", "features", "env", "reward", "agent", "extractor")


def run_id_of(model: str) -> str | None:
    """The run id of ``runs:/<id>/...``; ``None`` for a local path."""
    if not str(model).startswith("runs:/"):
        return None
    return str(model).removeprefix("runs:/").split("/")[0]


def _touched(overrides: Sequence[str]) -> set[str]:
    """Top-level config sections that command-line overrides change."""
    return {o.lstrip("+~").split("=")[0].split(".")[0].split("@")[0] for o in overrides}


def restore_training_config(cfg: DictConfig, overrides: Sequence[str]) -> DictConfig:
    """``cfg`` with the training run's sections, except those ``overrides`` touch.

    Args:
        cfg: The composed config of ``task=evaluate`` (``cfg.model`` names the run).
        overrides: The command-line overrides; the sections they name keep the composed values.

    Returns:
        A copy of ``cfg``; unchanged when the model is a local file.

    Raises:
        ModelError: When the run has no ``config.yaml`` to restore from.
    """
    run_id = run_id_of(cfg.model or "")
    if run_id is None:
        return cfg
    uri = tracking.tracking_uri(cfg.tracking.uri, cfg.paths.root)
    try:
        text = tracking.load_run_text(run_id, "config.yaml", uri)
    except Exception as exc:  # MlflowException or OSError: the artifact is missing
        raise ModelError(
            f"model={cfg.model}: run {run_id} has no config.yaml to restore the data, "
            f"features and env from ({exc.__class__.__name__}); evaluate a run logged by "
            "cryptotrade, or pass a model.zip path with the matching settings"
        ) from exc
    logged = OmegaConf.create(text)
    if not isinstance(logged, DictConfig):
        raise ModelError(f"model={cfg.model}: run {run_id}'s config.yaml is not a mapping")
    out = cfg.copy()
    touched = _touched(overrides)
    with open_dict(out):
        for section in RESTORED:
            if section in logged and section not in touched:
                out[section] = logged[section]
    return out
