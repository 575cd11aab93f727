"""Evaluate a logged run from its model URI alone: restore its settings, check the model fits.

``task=evaluate model=runs:/<id>/model`` takes the training run's data, regime, features, env,
reward, agent and extractor settings from the run's logged ``config.yaml``; a command-line
override of a section (``env.taker_fee=0.001``, ``data=binance``) applies on top of it. A change
that makes the model unusable (another feature set or window: another observation shape) is
refused by :func:`check_model_fits` with the cause named, before SB3 fails on a shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from cryptotrade.errors import ModelError
from cryptotrade.launch import tracking

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


def check_model_fits(model: Any, env: Any, *, source: str) -> None:
    """Refuse a model whose observation or action space differs from the env's.

    Raises:
        ModelError: Naming both shapes and the settings that determine them.
    """
    base = env.unwrapped
    want, got = model.observation_space.shape, base.observation_space.shape
    if want != got:
        raise ModelError(
            f"model={source} expects observations of shape {want} but this config gives {got} "
            f"(env.window={base.window} x {base.num_features} features "
            f"[{', '.join(base.data.feature_names[:6])}{', ...' if base.num_features > 6 else ''}]"
            f" + {base.account_size} account values); the feature set, window or account "
            "settings differ from the training run's: drop those overrides"
        )
    if type(model.action_space) is not type(base.action_space) or getattr(
        model.action_space, "n", None
    ) != getattr(base.action_space, "n", None):
        raise ModelError(
            f"model={source} acts in {model.action_space} but env.action_mode="
            f"{base.settings.action_mode} has {base.action_space}; use the training run's "
            "env.action_mode"
        )
