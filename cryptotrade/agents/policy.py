"""PolicySpec: the ``_target_`` of ``conf/extractor/*.yaml`` (feature extractor + policy heads).

Torch-free at import: composing a config derives the extractor schema from this signature
without loading torch; the classes named by dotted path are resolved only when the agent is built.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class PolicySpec:
    """An SB3 ``BaseFeaturesExtractor`` and the policy/value heads on top of it.

    Adding an extractor is one class (a ``BaseFeaturesExtractor`` subclass) and one YAML in
    ``conf/extractor/`` naming it in ``features_extractor_class``.

    Args:
        features_extractor_class: Dotted path of the extractor class.
        features_extractor_kwargs: Keyword arguments of the extractor class (besides the
            observation space, which SB3 passes).
        net_arch: Hidden layers of the heads: a list shared by policy and value, or a mapping
            ``{pi: [...], vf: [...]}`` (``{pi, qf}`` for SAC); ``None``: SB3's default.
        activation_fn: Dotted path of the activation class (e.g. ``torch.nn.Tanh``).
        pretrained: Encoder weights from ``task=pretrain`` (``runs:/<run_id>/pretrain/encoder.pt``
            or a file) loaded into a sequence extractor before training
            (:mod:`cryptotrade.agents.encoder_weights`).
        freeze_steps: With ``pretrained``: env steps during which the loaded encoder stays frozen.
    """

    features_extractor_class: str
    features_extractor_kwargs: dict[str, Any] = field(default_factory=dict)
    net_arch: Any = None
    activation_fn: str | None = None
    pretrained: str | None = None
    freeze_steps: int = 0

    def check(self, window: int) -> None:
        """Errors that show before any data is loaded (imports the extractor class).

        Refuses ``features_extractor_kwargs`` the class does not take, calls the class's
        ``check_window(window, **features_extractor_kwargs)`` if it has one (a TCN whose
        receptive field cannot cover ``env.window``) and checks that ``freeze_steps`` comes with
        ``pretrained`` weights.
        """
        import inspect

        from hydra.utils import get_class

        from cryptotrade.errors import ConfigError

        cls = get_class(self.features_extractor_class)
        kwargs = dict(self.features_extractor_kwargs or {})
        known = [p for p in inspect.signature(cls).parameters if p != "observation_space"]
        unknown = sorted(set(kwargs) - set(known))
        if unknown:
            raise ConfigError(
                f"extractor.features_extractor_kwargs has {', '.join(unknown)}, which "
                f"{cls.__name__} does not take; its settings: {', '.join(known) or 'none'}"
            )
        check = getattr(cls, "check_window", None)
        if check is not None:
            check(window, **kwargs)
        if self.freeze_steps < 0 or (self.freeze_steps and not self.pretrained):
            raise ConfigError(
                f"extractor.freeze_steps={self.freeze_steps} must be >= 0 and freezes pretrained "
                "weights only; set extractor.pretrained=runs:/<run_id>/pretrain/encoder.pt or "
                "freeze_steps=0"
            )

    def policy_kwargs(self, base: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """SB3 ``policy_kwargs``: ``base`` (the agent's own) plus this spec, classes resolved.

        Class-valued settings are dotted paths in YAML, resolved with ``hydra.utils.get_class``
        (``activation_fn`` may also name a function).
        """
        from hydra.utils import get_class, get_method

        kwargs = dict(base or {})
        kwargs["features_extractor_class"] = get_class(self.features_extractor_class)
        kwargs["features_extractor_kwargs"] = dict(self.features_extractor_kwargs or {})
        if self.net_arch is not None:
            arch = self.net_arch
            kwargs["net_arch"] = (
                {k: list(v) for k, v in arch.items()} if isinstance(arch, Mapping) else list(arch)
            )
        if self.activation_fn:
            try:
                kwargs["activation_fn"] = get_class(self.activation_fn)
            except ValueError:
                kwargs["activation_fn"] = get_method(self.activation_fn)
        return kwargs
