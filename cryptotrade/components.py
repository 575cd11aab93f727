"""Build a run's components from its config: the one place that calls ``hydra.utils.instantiate``.

Every task, search and test gets its objects from :func:`build`: the data spec and feature set,
the env factory and reward, the agent factory and the policy kwargs of the extractor group, and
the training settings. Library classes never see a ``DictConfig``.

Building validates: every constructor checks its own settings, and :func:`build` checks what
only the combination can get wrong (an agent that cannot act in the env's action mode, an
off-policy agent that would never take a gradient step within the budget), so a bad config fails
before any data is loaded or any MLflow run starts.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from cryptotrade.config import TrainConfig
from cryptotrade.errors import ConfigError, UserError
from cryptotrade.evaluation.settings import EvaluationSettings

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm
    from stable_baselines3.common.vec_env import VecEnv

    from cryptotrade.agents.policy import PolicySpec
    from cryptotrade.agents.pretrain import PretrainSettings
    from cryptotrade.data import DataSpec, FeatureSet
    from cryptotrade.env import EnvFactory, WeightedReward

DATA_CODE = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True)
class Components:
    """Everything a run is made of, built once from the config.

    Attributes:
        data: The data spec (source, validation policy, split).
        features: The feature set.
        fingerprint: Hash of the data + features config and the data code (names the cache).
        cache_dir: Where prepared datasets are cached; ``None`` for non-reproducible sources.
        env: The env factory (``make`` / ``make_vec``).
        reward: The reward weights.
        agent: The algorithm class partially applied to its hyperparameters (waits for the env,
            seed and policy kwargs); ``None`` when built without an agent.
        policy: The extractor group's feature extractor and policy heads.
        train: Training budget, validation/selection, checkpoint and curriculum settings.
        seed: The run seed.
        torch_threads: Torch CPU threads.
        evaluation: Test-evaluation settings (baselines, oracle, pictures, report, seeds).
        pretrain: ``task=pretrain``'s settings (``None`` when the config has no ``pretrain``).
    """

    data: DataSpec
    features: FeatureSet
    fingerprint: str
    cache_dir: Path | None
    env: EnvFactory
    reward: WeightedReward
    agent: Callable[..., BaseAlgorithm] | None
    policy: PolicySpec | None
    train: TrainConfig
    seed: int
    torch_threads: int
    evaluation: EvaluationSettings = field(default_factory=EvaluationSettings)
    pretrain: PretrainSettings | None = None

    @property
    def agent_class(self) -> type[BaseAlgorithm]:
        """The algorithm class (e.g. ``stable_baselines3.PPO``)."""
        from cryptotrade.agents.builder import agent_class

        if self.agent is None:
            raise RuntimeError("components were built with agent=False")
        return agent_class(self.agent)

    def make_agent(self, env: VecEnv) -> BaseAlgorithm:
        """A new, untrained agent on ``env`` seeded with the run seed."""
        from cryptotrade.agents.builder import build_agent

        if self.agent is None or self.policy is None:
            raise RuntimeError("components were built with agent=False")
        return build_agent(self.agent, env, policy=self.policy, seed=self.seed)


def data_fingerprint(cfg: DictConfig) -> str:
    """Hash of what determines the prepared dataset: data + features config and the data code."""
    node = {
        "data": OmegaConf.to_container(cfg.data, resolve=True),
        "features": OmegaConf.to_container(cfg.features, resolve=True),
    }
    digest = hashlib.sha256(OmegaConf.to_yaml(OmegaConf.create(node)).encode())
    # The data layer's code is part of the recipe: editing a generator or an indicator must not
    # silently reuse a dataset cached by the old code.
    for path in sorted(DATA_CODE.rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def build(cfg: DictConfig, *, agent: bool = True) -> Components:
    """Build the components of ``cfg``.

    The launcher builds them once (:func:`cryptotrade.run.execute`) and hands them to the task;
    a search builds each candidate's, a curriculum each stage's.

    Args:
        cfg: The composed config.
        agent: Also build the agent factory and policy (imports SB3 and torch); tasks that only
            touch data (``task=data``, ``task=check``) pass ``False``.

    Raises:
        ConfigError: (or the ``ValueError`` of a constructor) naming the setting to fix.
    """
    try:
        return _build(cfg, agent=agent)
    except InstantiationException as exc:
        # a constructor refused a setting: its message names it, so the launcher can print
        # that one line instead of Hydra's wrapper (HYDRA_FULL_ERROR=1 still shows both)
        if isinstance(exc.__cause__, UserError):
            raise exc.__cause__ from exc
        raise


T = TypeVar("T")


def build_optimizer(cfg: DictConfig) -> Any:
    """The optimizer of ``cfg.optimizer`` (:mod:`cryptotrade.optimize`: none, ga, tune); its
    constructor checks its settings."""
    return instantiate(cfg.optimizer, _convert_="all")


def typed(schema: type[T], node: Any) -> T:
    """``node`` as an instance of the dataclass ``schema``.

    ``node`` is resolved where it stands first: an interpolation inside it may point anywhere in
    the whole config (``experiment=curriculum``'s stages read ``${train.total_timesteps}``), and
    the merged copy has no root to resolve it against.
    """
    if isinstance(node, DictConfig):
        node = OmegaConf.to_container(node, resolve=True)
    value = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), node))
    assert isinstance(value, schema)
    return value


def _build(cfg: DictConfig, *, agent: bool) -> Components:
    spec = instantiate(cfg.data)
    # typed even when the config was not composed on the schema (a saved best_config.yaml
    # run with --config-name, a config sent to a Ray worker): merging checks every value
    # (train.select_metric defaults to ${optimizer.metric}, outside its node: _typed resolves)
    train = typed(TrainConfig, cfg.train)
    evaluation = typed(EvaluationSettings, cfg.evaluation)  # runs EvaluationSettings' checks
    _check_train(train)
    cacheable = getattr(spec.source, "reproducible", True)  # no open-ended download
    components = Components(
        data=spec,
        features=instantiate(cfg.features),
        fingerprint=data_fingerprint(cfg),
        cache_dir=Path(cfg.paths.data_dir) / "datasets" if cacheable else None,
        env=instantiate(cfg.env),
        reward=instantiate(cfg.reward),
        agent=instantiate(cfg.agent) if agent else None,
        policy=instantiate(cfg.extractor) if agent else None,
        train=train,
        seed=int(cfg.seed),
        torch_threads=int(cfg.torch_threads),
        evaluation=evaluation,
        pretrain=instantiate(cfg.pretrain) if "pretrain" in cfg else None,
    )
    if agent:
        _check_agent(components)
    return components


def _check_train(train: TrainConfig) -> None:
    if train.total_timesteps < 1:
        raise ConfigError(f"train.total_timesteps={train.total_timesteps} must be >= 1")
    if train.select not in ("best", "last"):
        raise ConfigError(f"train.select={train.select!r} must be 'best' or 'last'")
    if not train.select_metric.startswith("val/"):
        raise ConfigError(
            f"train.select_metric={train.select_metric!r} must be a validation metric "
            "(val/<name>, e.g. val/sharpe): model selection never reads the test split"
        )
    if train.stand_aside_t is not None and not math.isfinite(train.stand_aside_t):
        raise ConfigError(
            f"train.stand_aside_t={train.stand_aside_t} must be a finite t-statistic "
            "(e.g. 2.0) or null (never stand aside)"
        )
    for name in ("eval_freq", "checkpoint_freq"):
        if getattr(train, name) < 0:
            raise ConfigError(f"train.{name}={getattr(train, name)} must be >= 0 (0: off)")


def _check_agent(components: Components) -> None:
    """Agent x env x budget checks that no single constructor can make."""
    from cryptotrade.env import check_agent_compatible

    check_agent_compatible(components.agent_class, components.env.action_mode)
    assert components.policy is not None
    components.policy.check(components.env.window)  # extractor settings vs env.window
    keywords = getattr(components.agent, "keywords", {})
    starts = keywords.get("learning_starts")
    budget = components.train.total_timesteps
    if starts is not None and not components.train.curriculum and starts >= budget:
        raise ConfigError(
            f"agent.learning_starts={starts} >= train.total_timesteps={budget}: the agent would "
            f"never take a gradient step; lower agent.learning_starts or raise the budget"
        )
    n_steps = keywords.get("n_steps")  # on-policy: one update per n_steps x n_envs samples
    rollout = n_steps * components.env.n_envs if n_steps is not None else 0
    if rollout > budget and not components.train.curriculum:
        raise ConfigError(
            f"agent.n_steps={n_steps} x env.n_envs={components.env.n_envs} = {rollout} > "
            f"train.total_timesteps={budget}: the agent would never take a gradient step; "
            "lower agent.n_steps or env.n_envs, or raise the budget"
        )
