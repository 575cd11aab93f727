"""Evaluate a logged run from its model URI alone: check that the model fits the env.

``task=evaluate model=runs:/<id>/model`` runs with the training run's settings (restored by the
launcher, :func:`cryptotrade.restore.restore_training_config`). A change that makes the model
unusable (another feature set or window: another observation shape) is refused by
:func:`check_model_fits` with the cause named, before SB3 fails on a shape.
"""

from __future__ import annotations

from typing import Any

from cryptotrade.errors import ModelError


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
