"""Pretrained encoder weights: save them (``task=pretrain``), load them into an agent's sequence
extractors (``extractor.pretrained``) and keep them frozen for a while (``extractor.freeze_steps``).

The saved file (``encoder.pt``, ``torch.save`` of plain types and tensors, loaded with
``weights_only=True``) records the extractor class, the observation layout and the extractor's
hyperparameters next to the encoder's ``state_dict``, so a mismatch is reported by name instead
of as a tensor-shape error deep inside torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch as th
from stable_baselines3.common.callbacks import BaseCallback

from cryptotrade.agents.extractors import SequenceExtractor
from cryptotrade.errors import ConfigError, ModelError
from cryptotrade.io import atomic_write

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm
    from torch import nn

FORMAT = 1


def sequence_extractors(policy: nn.Module) -> list[SequenceExtractor]:
    """Every distinct sequence extractor of a policy (actor, critic, target networks ...)."""
    return [m for m in policy.modules() if isinstance(m, SequenceExtractor)]


def _path_of(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def encoder_payload(extractor: SequenceExtractor) -> dict[str, Any]:
    """What :func:`save_encoder` writes: the encoder's weights and what they were trained for."""
    return {
        "format": FORMAT,
        "extractor": _path_of(type(extractor)),
        "window": extractor.window,
        "num_features": extractor.num_features,
        "hyperparameters": dict(extractor.hyperparameters),
        "state_dict": {k: v.detach().cpu() for k, v in extractor.encoder.state_dict().items()},
    }


def save_encoder(extractor: SequenceExtractor, path: Path) -> Path:
    """Write the encoder of ``extractor`` to ``path`` atomically (never a truncated file)."""
    with atomic_write(path) as fh:
        th.save(encoder_payload(extractor), fh)
    return path


def read_encoder(source: str) -> dict[str, Any]:
    """Load a saved encoder from ``runs:/<run_id>/<path>`` or a local file."""
    from cryptotrade.launch import tracking

    try:
        path = tracking.download_artifact(source)
    except Exception as err:  # mlflow raises several types for a missing run or artifact
        raise ModelError(
            f"extractor.pretrained={source} could not be downloaded ({err}); give the "
            "runs:/<run_id>/pretrain/encoder.pt that task=pretrain printed, or a local file"
        ) from err
    if path.is_dir():
        path = path / "encoder.pt"
    if not path.is_file():
        raise ModelError(
            f"extractor.pretrained={source} is not a file (looked at {path}); give the "
            "runs:/<run_id>/pretrain/encoder.pt that task=pretrain printed, or a local file"
        )
    try:
        payload = th.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ModelError(f"extractor.pretrained={source} is not a saved encoder: {err}") from err
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelError(f"extractor.pretrained={source} is not an encoder saved by task=pretrain")
    return payload


def _describe(spec: dict[str, Any]) -> str:
    args = ", ".join(f"{k}={v}" for k, v in spec.items() if k != "extractor")
    return f"{str(spec['extractor']).rsplit('.', 1)[-1]}({args})"


def check_compatible(payload: dict[str, Any], extractor: SequenceExtractor, source: str) -> None:
    """Raise :class:`ModelError` naming what differs between saved weights and ``extractor``."""
    mine = {
        "extractor": _path_of(type(extractor)),
        "window": extractor.window,
        "num_features": extractor.num_features,
        **extractor.hyperparameters,
    }
    saved = {
        "extractor": payload["extractor"],
        "window": payload["window"],
        "num_features": payload["num_features"],
        **payload["hyperparameters"],
    }
    # dropout does not change the weights; everything else must match
    differ = [k for k in mine if k != "dropout" and saved.get(k) != mine[k]]
    if differ:
        diffs = ", ".join(f"{k} {saved.get(k)} vs {mine[k]}" for k in differ)
        raise ModelError(
            f"extractor.pretrained={source} was trained as {_describe(saved)} but this agent's "
            f"extractor is {_describe(mine)} ({diffs}); pretrain again with this extractor, "
            "env.window and features, or change them to match"
        )


def load_encoder(model: BaseAlgorithm, source: str) -> int:
    """Copy saved encoder weights into every sequence extractor of ``model``'s policy.

    Target networks get them too, so a DQN/SAC target starts equal to its online network.

    Returns:
        How many extractors were loaded.
    """
    extractors = sequence_extractors(model.policy)
    if not extractors:
        raise ConfigError(
            f"extractor.pretrained={source} needs a sequence extractor (extractor=lstm, "
            f"lstm_gru or tcn) but the policy uses {model.policy.features_extractor_class.__name__}"
        )
    payload = read_encoder(source)
    for extractor in extractors:
        check_compatible(payload, extractor, source)
        try:
            extractor.encoder.load_state_dict(payload["state_dict"])
        except RuntimeError as err:
            raise ModelError(f"extractor.pretrained={source} does not fit: {err}") from err
    return len(extractors)


class FreezeEncoderCallback(BaseCallback):
    """Keep the policy's sequence encoders frozen for the first ``steps`` env steps.

    Frozen parameters get no gradient, so the optimiser leaves them as loaded; from the first
    rollout/update after ``steps`` they train with the rest of the network. Logs
    ``train/encoder_frozen`` (1 while frozen).

    Args:
        steps: Env steps (``model.num_timesteps``) to keep the encoders frozen.
    """

    def __init__(self, steps: int) -> None:
        super().__init__()
        if steps < 0:
            raise ConfigError(f"extractor.freeze_steps={steps} must be >= 0")
        self.steps = steps
        self.frozen = False

    def _set(self, trainable: bool) -> None:
        for extractor in sequence_extractors(self.model.policy):
            extractor.encoder.requires_grad_(trainable)
        self.frozen = not trainable
        self.logger.record("train/encoder_frozen", float(self.frozen))

    def _on_training_start(self) -> None:
        if self.num_timesteps < self.steps:
            self._set(trainable=False)

    def _on_step(self) -> bool:
        if self.frozen and self.num_timesteps >= self.steps:
            self._set(trainable=True)
        return True


def prepare_extractor(
    model: BaseAlgorithm, pretrained: str | None, freeze_steps: int, *, load: bool = True
) -> list[BaseCallback]:
    """Load ``pretrained`` encoder weights into ``model``; the callbacks its training needs.

    Args:
        model: The agent about to train.
        pretrained: ``extractor.pretrained`` (``runs:/...`` or a file), or ``None``.
        freeze_steps: ``extractor.freeze_steps``; needs ``pretrained`` when > 0.
        load: Load the weights (a new model); ``False`` for a model that already holds trained
            weights (a resumed checkpoint), which only gets the freeze callback.

    Returns:
        ``[FreezeEncoderCallback]`` when ``freeze_steps > 0``, else ``[]``.
    """
    if freeze_steps and not pretrained:
        raise ConfigError(
            f"extractor.freeze_steps={freeze_steps} freezes pretrained weights; set "
            "extractor.pretrained=runs:/<run_id>/pretrain/encoder.pt or freeze_steps=0"
        )
    if not pretrained:
        return []
    if load:
        load_encoder(model, pretrained)
    return [FreezeEncoderCallback(freeze_steps)] if freeze_steps > 0 else []
