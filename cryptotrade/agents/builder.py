"""Build an SB3 / sb3-contrib agent from its factory, the extractor group's spec and an env."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm
    from stable_baselines3.common.vec_env import VecEnv

    from cryptotrade.agents.policy import PolicySpec


def agent_class(agent_factory: Callable[..., BaseAlgorithm]) -> type[BaseAlgorithm]:
    """The algorithm class behind ``instantiate(cfg.agent)`` (a ``functools.partial``)."""
    func = agent_factory.func if isinstance(agent_factory, functools.partial) else agent_factory
    assert isinstance(func, type), f"agent config must target an SB3 algorithm class, got {func!r}"
    return func


def build_agent(
    agent_factory: Callable[..., BaseAlgorithm],
    env: VecEnv,
    *,
    policy: PolicySpec,
    seed: int,
) -> BaseAlgorithm:
    """Create the agent on ``env``.

    Args:
        agent_factory: ``instantiate(cfg.agent)``: the algorithm class partially applied to its
            hyperparameters (``_partial_: true``), waiting for the env.
        env: The training VecEnv.
        policy: The extractor group's spec, merged into the agent's own ``policy_kwargs``.
        seed: Seeds the algorithm (its RNGs, the action space and the env).

    Returns:
        The untrained algorithm.
    """
    keywords = getattr(agent_factory, "keywords", {})
    base = keywords.get("policy_kwargs") or {}
    return agent_factory(env=env, seed=seed, policy_kwargs=policy.policy_kwargs(base))
