"""The run's config and the configs derived from it: :class:`ConfigDeriver`, :class:`RunSettings`.

The launcher composes and checks one config and builds its components once
(:func:`cryptotrade.components.build`). Tasks and searches never hold that ``DictConfig``: they
get its typed values (:class:`RunSettings`) and, where they must make new configurations, one
:class:`ConfigDeriver`, the only object below the launcher that owns a config. It derives:

* a search candidate: the base config with a point of the space set (:meth:`~ConfigDeriver.
  with_point`), sent to a worker as a plain container (:meth:`~ConfigDeriver.container`) and
  typed again there (:meth:`~ConfigDeriver.from_container`);
* the search's winner (:meth:`~ConfigDeriver.with_optimizer`, :meth:`~ConfigDeriver.redacted`),
  written as a ready-to-run YAML;
* a curriculum stage: ``conf/config.yaml`` composed again with the run's and the stage's
  overrides (:meth:`~ConfigDeriver.compose`);
* a training seed (``evaluation.seeds``): the same config with another ``seed``.

and turns each into :class:`~cryptotrade.components.Components` (:meth:`~ConfigDeriver.build`).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from cryptotrade.config import (
    Config,
    InferConfig,
    PathsConfig,
    RayConfig,
    TrackingConfig,
    TrainConfig,
    WalkForwardConfig,
)
from cryptotrade.errors import ConfigError
from cryptotrade.evaluation.settings import EvaluationSettings

if TYPE_CHECKING:
    from cryptotrade.components import Components

_MISSING = object()


@dataclass(frozen=True)
class RunSettings:
    """The typed top-level settings of a run (what its components do not carry).

    Attributes:
        task: The task's name (``pipeline``, ``walkforward`` ...).
        seed: The run seed.
        torch_threads: Torch CPU threads.
        model: ``model=``: ``runs:/<run_id>/model`` or a path; ``None`` when not given.
        resume: ``resume=``: the MLflow run id a killed run continues; ``None`` otherwise.
        agent_target: The agent's class path (``stable_baselines3.PPO``; logged with a model).
        metric: ``optimizer.metric``, the metric returned to Hydra sweepers.
        paths: Project, data and output folders.
        tracking: MLflow store, experiment and what is logged.
        ray: The Ray cluster a search runs on.
        walkforward: ``task=walkforward``'s folds.
        infer: ``task=infer``'s paper account.
        evaluation: The test-split settings (also the components'; read here where a config's
            seeds decide how it runs before any component is built).
    """

    # the defaults are the run config's own (Config), not restated
    task: str = Config.task
    seed: int = Config.seed
    torch_threads: int = Config.torch_threads
    model: str | None = Config.model
    resume: str | None = Config.resume
    agent_target: str = ""
    metric: str = "val/sharpe"
    paths: PathsConfig = field(default_factory=PathsConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    ray: RayConfig = field(default_factory=RayConfig)
    walkforward: WalkForwardConfig = field(default_factory=WalkForwardConfig)
    infer: InferConfig = field(default_factory=InferConfig)
    evaluation: EvaluationSettings = field(default_factory=EvaluationSettings)


class ConfigDeriver:
    """Owns a run's base config; derives candidate, winner, stage and seed configs from it and
    builds their components (see the module docstring).

    Derivations return new objects (the base is never changed), so one deriver can be handed
    to every task and search of a run.

    Args:
        cfg: The composed (and checked) config.
    """

    def __init__(self, cfg: DictConfig) -> None:
        self._cfg = cfg

    # ---- making one ---------------------------------------------------------------------------
    @classmethod
    def from_container(cls, container: Mapping[str, Any]) -> ConfigDeriver:
        """A config container (from another process) typed again by the top-level schema, so
        ``train``, ``tracking``, ``paths`` and ``ray`` are the structured nodes they were."""
        from cryptotrade.config import Config

        cfg = OmegaConf.merge(OmegaConf.structured(Config), dict(container))
        assert isinstance(cfg, DictConfig)
        return cls(cfg)

    @classmethod
    def compose(cls, overrides: Sequence[str]) -> ConfigDeriver:
        """``conf/config.yaml`` composed with ``overrides`` (inside a Hydra app or outside one)."""
        from hydra import compose, initialize_config_dir
        from hydra.core.global_hydra import GlobalHydra

        from cryptotrade.config import CONF_DIR

        if GlobalHydra.instance().is_initialized():
            return cls(compose(config_name="config", overrides=list(overrides)))
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            return cls(compose(config_name="config", overrides=list(overrides)))

    # ---- deriving -----------------------------------------------------------------------------
    def with_point(self, point: Mapping[str, Any]) -> ConfigDeriver:
        """A copy with each ``path: value`` of ``point`` set (typed nodes type-check the value).

        Raises:
            Exception: OmegaConf's error when a value does not fit its field.
        """
        out = copy.deepcopy(self._cfg)
        for path, value in point.items():
            OmegaConf.update(out, path, value, merge=False)
        return ConfigDeriver(out)

    def with_optimizer(self, node: Mapping[str, Any]) -> ConfigDeriver:
        """A copy whose ``optimizer`` node is ``node`` (the winner's: no search around it)."""
        out = copy.deepcopy(self._cfg)
        with contextlib.suppress(Exception):  # a config without struct flag has none to drop
            OmegaConf.set_struct(out, False)
        out.optimizer = OmegaConf.create(dict(node))
        return ConfigDeriver(out)

    def with_column_cache(self, folder: str) -> ConfigDeriver:
        """A copy whose features are built by
        :class:`~cryptotrade.optimize.columns.CachedFeatureSet` caching into ``folder`` (a
        features node with another target than the plain feature set is left alone)."""
        from cryptotrade.optimize.columns import CACHED_TARGET, PLAIN_TARGET

        if self._cfg.features.get("_target_") != PLAIN_TARGET:
            return self
        out = copy.deepcopy(self._cfg)
        node = OmegaConf.to_container(out.features, resolve=False)
        assert isinstance(node, dict)
        # a plain node: the features' typed schema has no column_cache field
        out.features = OmegaConf.create({**node, "_target_": CACHED_TARGET, "column_cache": folder})
        return ConfigDeriver(out)

    def without(
        self, keys: Sequence[str], nested: Mapping[str, Sequence[str]] | None = None
    ) -> ConfigDeriver:
        """A resolved copy without the top-level ``keys`` and, for each ``node: names`` of
        ``nested``, without those keys of that node (what a search's fingerprint leaves out)."""
        node = self.container()
        for key in keys:
            node.pop(key, None)
        for parent, names in (nested or {}).items():
            for key in names:
                node.get(parent, {}).pop(key, None)
        return ConfigDeriver(OmegaConf.create(node))

    def redacted(self) -> ConfigDeriver:
        """A resolved copy with credentials masked (:func:`cryptotrade.launch.redaction.redact`),
        for the configs a search writes (child runs, the winner's YAML)."""
        from cryptotrade.launch.redaction import redact

        return ConfigDeriver(OmegaConf.create(redact(self.container())))

    # ---- building -----------------------------------------------------------------------------
    def build(self, *, agent: bool = True) -> Components:
        """The components of this config (:func:`cryptotrade.components.build`)."""
        from cryptotrade.components import build

        return build(self._cfg, agent=agent)

    def build_optimizer(self) -> Any:
        """The optimizer of ``optimizer`` (:func:`cryptotrade.components.build_optimizer`)."""
        from cryptotrade.components import build_optimizer

        return build_optimizer(self._cfg)

    # ---- reading ------------------------------------------------------------------------------
    @cached_property
    def settings(self) -> RunSettings:
        """The typed top-level settings (schema defaults where a node is absent)."""
        from cryptotrade.components import typed

        cfg = self._cfg

        def node(schema: type, key: str) -> Any:
            value = cfg.get(key)
            return typed(schema, value) if value is not None else schema()

        default = RunSettings
        return RunSettings(
            task=str(cfg.get("task") or default.task),
            seed=int(cfg.get("seed") or default.seed),
            torch_threads=int(cfg.get("torch_threads") or default.torch_threads),
            model=str(cfg.model) if cfg.get("model") else None,
            resume=str(cfg.resume) if cfg.get("resume") else None,
            agent_target=str((cfg.get("agent") or {}).get("_target_") or default.agent_target),
            metric=str((cfg.get("optimizer") or {}).get("metric") or default.metric),
            paths=node(PathsConfig, "paths"),
            tracking=node(TrackingConfig, "tracking"),
            ray=node(RayConfig, "ray"),
            walkforward=node(WalkForwardConfig, "walkforward"),
            infer=node(InferConfig, "infer"),
            evaluation=node(EvaluationSettings, "evaluation"),
        )

    def yaml(self, *, resolve: bool = True) -> str:
        """The config as YAML, resolved unless ``resolve=False`` (logged beside a run's report,
        written for a winner)."""
        return OmegaConf.to_yaml(self._cfg, resolve=resolve)

    def container(self, *, resolve: bool = True) -> dict[str, Any]:
        """The config as plain containers (picklable: what a search sends to its workers).

        ``resolve=False`` keeps interpolations, so a worker that sets a searched value sees
        it in every value that reads it."""
        container = OmegaConf.to_container(self._cfg, resolve=resolve)
        assert isinstance(container, dict)
        return {str(k): v for k, v in container.items()}

    def section(self, key: str) -> dict[str, Any]:
        """The resolved top-level node ``key`` as a plain ``dict`` (e.g. ``data``)."""
        node = OmegaConf.to_container(self._cfg[key], resolve=True)
        assert isinstance(node, dict)
        return {str(k): v for k, v in node.items()}

    def train_settings(self) -> TrainConfig:
        """The typed ``train`` node (budget, selection, ``curriculum`` ...), as the components
        will hold it, without building them."""
        from cryptotrade.components import typed

        return typed(TrainConfig, self._cfg.train)

    def check_settable(self, path: str, values: Sequence[Any], *, domain: str) -> None:
        """Refuse a searched ``path`` that names no leaf setting, or a value of its ``domain``
        (the searched range, as the error shows it) that the setting cannot take.

        Raises:
            ConfigError: Naming the path (and the settings beside it) or the value.
        """
        current = OmegaConf.select(self._cfg, path, default=_MISSING)
        if current is _MISSING:
            parent = path.rpartition(".")[0]
            node = OmegaConf.select(self._cfg, parent, default=None) if parent else self._cfg
            known = sorted(map(str, node.keys())) if isinstance(node, DictConfig) else []
            hint = f"; {parent or 'the config'} has: {', '.join(known)}" if known else ""
            raise ConfigError(f"optimizer.space.{path}: no such config path{hint}")
        if isinstance(current, DictConfig) or OmegaConf.is_list(current):
            raise ConfigError(
                f"optimizer.space.{path} names a whole config node; search one of its values"
            )
        for value in values:
            try:
                self.with_point({path: value})
            except Exception as err:
                raise ConfigError(
                    f"optimizer.space.{path}: value {value!r} of {domain} cannot be set: {err}"
                ) from err

    @property
    def config(self) -> DictConfig:
        """The config itself, for the launcher's plumbing and tests (tasks and searches read
        :attr:`settings` and derive through the methods above)."""
        return self._cfg


__all__ = ["ConfigDeriver", "RunSettings"]
