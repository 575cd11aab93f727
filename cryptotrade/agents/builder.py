"""Build an SB3 / sb3-contrib agent from its config, the extractor config and an env."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from hydra.utils import get_class, get_method

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm
    from stable_baselines3.common.vec_env import VecEnv


def agent_class(agent_factory: Callable[..., BaseAlgorithm]) -> type[BaseAlgorithm]:
    """The algorithm class behind ``instantiate(cfg.agent)`` (a ``functools.partial``)."""
    func = agent_factory.func if isinstance(agent_factory, functools.partial) else agent_factory
    assert isinstance(func, type), f"agent config must target an SB3 algorithm class, got {func!r}"
    return func


def policy_kwargs(base: Mapping[str, Any], extractor: Mapping[str, Any]) -> dict[str, Any]:
    """Merge the extractor config into the agent's ``policy_kwargs``.

    Class-valued settings are given as dotted paths in YAML and resolved here with
    ``hydra.utils.get_class`` (``activation_fn`` may also be a function path).
    """
    kwargs = dict(base)
    kwargs["features_extractor_class"] = get_class(extractor["features_extractor_class"])
    kwargs["features_extractor_kwargs"] = dict(extractor.get("features_extractor_kwargs") or {})
    if extractor.get("net_arch") is not None:
        kwargs["net_arch"] = list(extractor["net_arch"])
    if extractor.get("activation_fn"):
        path = extractor["activation_fn"]
        try:
            kwargs["activation_fn"] = get_class(path)
        except ValueError:
            kwargs["activation_fn"] = get_method(path)
    return kwargs


def check_extractor(extractor: Mapping[str, Any], window: int) -> None:
    """Errors in the extractor config that show before any data is loaded.

    Refuses ``features_extractor_kwargs`` the class does not take, calls the class's
    ``check_window(window, **features_extractor_kwargs)`` if it has one (a TCN whose receptive
    field cannot cover ``env.window``) and checks that ``freeze_steps`` comes with
    ``pretrained`` weights.
    """
    import inspect

    from cryptotrade.errors import ConfigError

    cls = get_class(extractor["features_extractor_class"])
    kwargs = dict(extractor.get("features_extractor_kwargs") or {})
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
    freeze = extractor.get("freeze_steps") or 0
    if freeze < 0 or (freeze and not extractor.get("pretrained")):
        raise ConfigError(
            f"extractor.freeze_steps={freeze} must be >= 0 and freezes pretrained weights only; "
            "set extractor.pretrained=runs:/<run_id>/pretrain/encoder.pt or freeze_steps=0"
        )


def build_agent(
    agent_factory: Callable[..., BaseAlgorithm],
    env: VecEnv,
    *,
    extractor: Mapping[str, Any],
    seed: int,
) -> BaseAlgorithm:
    """Create the agent on ``env``.

    Args:
        agent_factory: ``instantiate(cfg.agent)``: the algorithm class partially applied to its
            hyperparameters (``_partial_: true``), waiting for the env.
        env: The training VecEnv.
        extractor: The extractor config (``features_extractor_class`` etc.), merged into
            ``policy_kwargs``.
        seed: Seeds the algorithm (its RNGs, the action space and the env).

    Returns:
        The untrained algorithm.
    """
    keywords = getattr(agent_factory, "keywords", {})
    base = keywords.get("policy_kwargs") or {}
    return agent_factory(env=env, seed=seed, policy_kwargs=policy_kwargs(base, extractor))
