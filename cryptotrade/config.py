"""Typed schemas for every config group, registered in Hydra's ConfigStore.

Every option file ``conf/<group>/<option>.yaml`` starts with
``defaults: [/schema/<group>/<option>@_here_, _self_]``, so Hydra checks it against a typed
schema at compose time: ``agent.learning_rate=abc`` or ``env.fee=oops`` fail before any data
is touched, with Hydra's own message naming the key and the expected type.

Two kinds of schema:

* Hand-written dataclasses for third-party targets (SB3 agents, extractors), so their fields are
  documented where they are declared and composing a config does not import torch.
* Schemas derived from the signature of our own ``_target_`` classes and functions
  (:func:`schema_from_target`): the typed constructor is the single source of truth for an
  option's fields. Parameters whose annotation is not a config type (``MarketData``, a reward
  object, arrays) are supplied at run time and left out of the schema.

:func:`register_configs` discovers the option files under ``conf/`` and stores one schema per file.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import functools
import importlib
import inspect
import types
import typing
from collections import abc
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONF_DIR = PROJECT_ROOT / "conf"

# Annotations OmegaConf types as they are.
_SCALARS = (int, float, str, bool)


# --------------------------------------------------------------------------------------------
# Top-level settings
# --------------------------------------------------------------------------------------------
@dataclass
class PathsConfig:
    """Where things live; relative paths resolve against the project root."""

    root: str = str(PROJECT_ROOT)
    data_dir: str = "${paths.root}/.cache/data"  # downloaded bars and prepared datasets
    output_dir: str = "${paths.root}/outputs"  # Hydra run directories (logs, saved model.zip)


@dataclass
class TrackingConfig:
    """MLflow settings. ``uri=null`` means ``$MLFLOW_TRACKING_URI`` or ``sqlite:///<root>/mlflow.db``."""

    uri: str | None = None
    experiment: str = "cryptotrade"
    run_name: str | None = None  # default: "<task>-<agent>-<seed>"
    log_model: bool = True  # upload the trained model as an artifact


@dataclass
class TrainConfig:
    """Training budget shared by every agent."""

    total_timesteps: int = 200_000  # ~40 s with the default PPO on 2 cores
    log_interval: int = 1  # SB3 logger interval (PPO: rollouts, DQN: episodes)
    progress_bar: bool = False


# --------------------------------------------------------------------------------------------
# Agents (stable-baselines3 / sb3-contrib). `_partial_`: the env is supplied at run time.
# --------------------------------------------------------------------------------------------
@dataclass
class AgentConfig:
    """Fields every SB3 algorithm takes."""

    _target_: str = MISSING
    _partial_: bool = True
    _convert_: str = "partial"
    policy: str = "MlpPolicy"
    learning_rate: float = 3e-4
    gamma: float = 0.99
    verbose: int = 0
    device: str = "cpu"
    policy_kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class PPOConfig(AgentConfig):
    """:class:`stable_baselines3.PPO` (https://arxiv.org/abs/1707.06347)."""

    _target_: str = "stable_baselines3.PPO"
    n_steps: int = 2048  # rollout length per env; batch = n_steps * n_envs
    batch_size: int = 64  # minibatch size
    n_epochs: int = 10  # optimisation epochs per rollout
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    ent_coef: float = 0.0  # entropy bonus; > 0 keeps the policy exploring
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5


@dataclass
class DQNConfig(AgentConfig):
    """:class:`stable_baselines3.DQN` (https://arxiv.org/abs/1312.5602)."""

    _target_: str = "stable_baselines3.DQN"
    learning_rate: float = 1e-4
    buffer_size: int = 100_000
    learning_starts: int = 1_000  # random steps before the first update
    batch_size: int = 64
    tau: float = 1.0  # 1.0 = hard target update
    train_freq: int = 4
    gradient_steps: int = 1
    target_update_interval: int = 1_000
    exploration_fraction: float = 0.2  # share of training over which epsilon decays
    exploration_initial_eps: float = 1.0
    exploration_final_eps: float = 0.05


# --------------------------------------------------------------------------------------------
# Feature extractors: merged into the agent's policy_kwargs by the pipeline.
# --------------------------------------------------------------------------------------------
@dataclass
class ExtractorConfig:
    """An SB3 ``BaseFeaturesExtractor`` and the policy/value heads on top of it."""

    features_extractor_class: str = "stable_baselines3.common.torch_layers.FlattenExtractor"
    features_extractor_kwargs: dict[str, Any] = field(default_factory=dict)
    net_arch: list[int] = field(default_factory=lambda: [64, 64])  # hidden layers of the heads
    activation_fn: str = "torch.nn.Tanh"


@dataclass
class RayConfig:
    """Where searches run their evaluations (``optimizer=ga|tune``).

    ``address`` empty starts a local Ray sized to ``num_cpus`` (null: every core); ``auto`` or
    ``ray://<head>:10001`` joins an existing cluster with the same command (README: cluster).
    ``enabled=false`` evaluates GA candidates in a local process pool instead (Tune needs Ray).
    """

    address: str = ""
    enabled: bool = True
    num_cpus: int | None = None


HAND_WRITTEN: dict[str, type] = {
    "agent/ppo": PPOConfig,
    "agent/dqn": DQNConfig,
    "extractor/mlp": ExtractorConfig,
}


@dataclass
class Config:
    """The composed run config. Group nodes are typed by their own schemas."""

    task: str = "pipeline"  # pipeline | data | train | evaluate (see cryptotrade.run.TASKS)
    seed: int = 0  # seeds python, numpy, torch and the env
    torch_threads: int = 1  # one thread is faster than two for small networks on CPU
    model: str | None = None  # task=evaluate: runs:/<run_id>/model or a local .zip
    paths: PathsConfig = field(default_factory=PathsConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    ray: RayConfig = field(default_factory=RayConfig)
    data: Any = MISSING
    regime: Any = None
    features: Any = MISSING
    env: Any = MISSING
    reward: Any = MISSING
    agent: Any = MISSING
    extractor: Any = MISSING
    optimizer: Any = MISSING


# --------------------------------------------------------------------------------------------
# Schemas derived from our own targets
# --------------------------------------------------------------------------------------------
def _config_type(annotation: Any) -> Any | None:
    """Map a Python annotation to an OmegaConf-compatible one, or ``None`` if it is not config."""
    if annotation is inspect.Parameter.empty or annotation is Any:
        return Any
    if annotation in _SCALARS or (
        inspect.isclass(annotation) and issubclass(annotation, enum.Enum)
    ):
        return annotation
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        kinds = {type(a) for a in args}
        return kinds.pop() if len(kinds) == 1 and kinds <= set(_SCALARS) else Any
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            inner = _config_type(rest[0])
            if inner is None or inner is Any:
                return inner
            return typing.Optional[inner]  # noqa: UP045  (OmegaConf 2.3 reads typing.Optional)
        return Any if all(_config_type(a) is not None for a in rest) else None
    # typing.get_origin gives the runtime class: Sequence[int] -> collections.abc.Sequence
    if origin in (list, tuple, abc.Sequence) or annotation in (list, tuple):
        return list[Any]
    if origin in (dict, abc.Mapping) or annotation is dict:
        return dict[str, Any]
    return None


# Field metadata key of an open mapping: a dict of user-chosen keys to scalar values
# ({file column: bars column}, exchange options). Overrides may add keys to it without `+`
# (data.source.columns={homeNotional:volume}); every other node keeps refusing unknown keys.
OPEN_MAPPING = "open_mapping"


def _open_mapping(annotation: Any) -> bool:
    """Whether a parameter annotation is ``dict[str, <scalar or Any>]`` (optionally ``| None``)."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        return len(rest) == 1 and _open_mapping(rest[0])
    if typing.get_origin(annotation) not in (dict, abc.Mapping) or len(args) != 2:
        return False
    return args[0] is str and (args[1] in _SCALARS or args[1] is Any)


def _open_mappings(node: Any, schema: type) -> None:
    """Lift the struct flag from every open-mapping field of ``schema`` in ``node`` (recursive)."""
    for f in dataclasses.fields(schema):
        if f.metadata.get(OPEN_MAPPING):
            OmegaConf.set_struct(node._get_node(f.name), False)
        elif dataclasses.is_dataclass(f.type) and isinstance(f.type, type):
            _open_mappings(node._get_node(f.name), f.type)


def _default(value: Any) -> Any:
    """A dataclass default: containers get a factory (a fresh copy per instance)."""
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(value, list | dict):
        return field(default_factory=functools.partial(copy.deepcopy, value))
    return value


def _import(path: str) -> Callable[..., Any]:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def schema_from_target(
    name: str, target: str, *, partial: bool = False, given: dict[str, Any] | None = None
) -> type:
    """Build a schema dataclass from the signature of ``target``.

    Args:
        name: Name of the generated dataclass (shown in Hydra's error messages).
        target: Dotted path of a class or function with typed parameters.
        partial: Whether the option is ``_partial_: true`` (runtime arguments supplied later).
        given: The option file's node. A parameter given as a nested ``_target_`` node gets a
            nested schema from that target; one whose annotation is not a config type but which
            the file sets anyway (an interpolation such as ``${regime}``) is typed ``Any``.

    Returns:
        A dataclass whose fields are the target's config-typed parameters with their defaults.
        Parameters typed as runtime objects (data, reward, arrays) are left out.
    """
    given = given or {}
    obj = _import(target)
    func = obj.__init__ if inspect.isclass(obj) else obj
    hints = typing.get_type_hints(func)
    fields: list[tuple[str, Any, Any]] = [("_target_", str, field(default=target))]
    if partial:
        fields.append(("_partial_", bool, field(default=True)))
    for pname, param in inspect.signature(obj).parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        ctype = _config_type(hints.get(pname, param.annotation))
        value = given.get(pname)
        if isinstance(value, dict) and "_target_" in value:
            # a nested object built at instantiate time: typed by its own target's signature
            sub = schema_from_target(
                f"{name}_{pname}",
                value["_target_"],
                partial=bool(value.get("_partial_", False)),
                given=value,
            )
            fields.append((pname, sub, field(default_factory=sub)))
            continue
        if ctype is None and pname in given:
            ctype = Any  # an interpolation such as ${regime}, resolved and built at run time
        if ctype is None:
            continue  # a runtime argument: MarketData, reward object, array ...
        default = MISSING if param.default is param.empty else _default(param.default)
        if not isinstance(default, dataclasses.Field):
            default = field(default=default)
        if _open_mapping(hints.get(pname, param.annotation)):
            default.metadata = types.MappingProxyType({OPEN_MAPPING: True})
        fields.append((pname, ctype, default))
    return dataclasses.make_dataclass(name, fields)


def _option_files(conf_dir: Path) -> list[tuple[str, str, dict[str, Any]]]:
    """``(group, option, yaml)`` for every option file under ``conf_dir``."""
    found = []
    for path in sorted(conf_dir.glob("*/*.yaml")):
        with path.open() as fh:
            node = yaml.safe_load(fh) or {}
        found.append((path.parent.name, path.stem, node))
    return found


def group_listing(conf_dir: Path = CONF_DIR) -> str:
    """``group: option, option`` lines for ``--help`` (without the internal ``schema/`` groups)."""
    lines = []
    for group in sorted(p for p in conf_dir.iterdir() if p.is_dir()):
        options = ", ".join(sorted(p.stem for p in group.glob("*.yaml")))
        lines.append(f"{group.name}: {options}")
    return "\n".join(lines)


def register_configs(conf_dir: Path = CONF_DIR) -> None:
    """Store the top-level schema and one schema per option file in Hydra's ConfigStore."""
    if not OmegaConf.has_resolver("cryptotrade_groups"):
        OmegaConf.register_new_resolver("cryptotrade_groups", lambda: group_listing(conf_dir))
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)
    for key, schema in HAND_WRITTEN.items():
        group, option = key.split("/")
        cs.store(group=f"schema/{group}", name=option, node=schema)
    for group, option, node in _option_files(conf_dir):
        key = f"{group}/{option}"
        if key in HAND_WRITTEN or "_target_" not in node:
            continue
        schema = schema_from_target(
            f"{group.title()}{option.title().replace('_', '')}Config",
            node["_target_"],
            partial=bool(node.get("_partial_", False)),
            given=node,
        )
        stored = OmegaConf.structured(schema)
        _open_mappings(stored, schema)
        cs.store(group=f"schema/{group}", name=option, node=stored)
