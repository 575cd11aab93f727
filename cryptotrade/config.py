"""Typed schemas for every config group, registered in Hydra's ConfigStore.

Every option file ``conf/<group>/<option>.yaml`` starts with
``defaults: [/schema/<group>/<option>@_here_, _self_]``, so Hydra checks it against a typed
schema at compose time: ``agent.learning_rate=abc`` or ``env.fee=oops`` fail before any data
is touched, with Hydra's own message naming the key and the expected type.

A file's schema is found by its ``_target_`` (:func:`schema_for`), never by its file name:

* Hand-written dataclasses for SB3 / sb3-contrib targets (:data:`SCHEMAS`): types and docs only,
  every value lives in the option YAML, and composing a config does not import torch.
  ``tests/agents`` checks every field against the real constructor signature.
* Schemas derived from the signature of our own ``_target_`` classes and functions
  (:func:`schema_from_target`): the typed constructor is the single source of truth for an
  option's fields. Parameters whose annotation is not a config type (``MarketData``, a reward
  object, arrays) are supplied at run time and left out of the schema.

:func:`register_configs` discovers the option files under ``conf/`` and stores one schema per file.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import enum
import functools
import hashlib
import importlib
import inspect
import json
import os
import sys
import types
import typing
from collections import abc
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from hydra.core.config_store import ConfigNode, ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from cryptotrade.evaluation.settings import EvaluationSettings

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONF_DIR = PROJECT_ROOT / "conf"

# Annotations OmegaConf types as they are.
_SCALARS = (int, float, str, bool)

# Field metadata key of an open mapping: a dict of user-chosen keys to scalar values
# ({file column: bars column}, exchange options). Overrides may add keys to it without `+`
# (data.source.columns={homeNotional:volume}); every other node keeps refusing unknown keys.
OPEN_MAPPING = "open_mapping"


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
    run_name: str | None = None  # default: "<task>-<data>-<agent>-s<seed> <overrides>"
    log_model: bool = True  # upload the trained model as an artifact
    heartbeat_s: float = 60.0  # how often a running run refreshes its heartbeat tag; 0 = never
    stale_after_s: float = 600.0  # a run of another host without heartbeat this long is dead


@dataclass
class TrainConfig:
    """Training budget, validation-based model selection, checkpoints and curriculum.

    Typed by :func:`cryptotrade.components.build` (``Components.train``), read by
    :func:`cryptotrade.agents.training.train`.
    """

    total_timesteps: int = 200_000  # env steps (all envs together); ~40 s with PPO on 2 cores
    log_interval: int = 1  # SB3 logger interval (on-policy: rollouts, off-policy: episodes)
    progress_bar: bool | None = None  # null: a progress bar when stdout is a terminal
    # env steps between validation backtests; 0: only at the end. 10k, not 25k: DQN's validation
    # peaks within its first 25k steps and then decays while its training return keeps rising
    # (experiments/learnability/README.md, "Transfer"), so selection needs a finer grid
    eval_freq: int = 10_000
    # validation metric that picks the best checkpoint (higher wins); by default the search's
    # fitness (optimizer.metric), so a search ranks candidates by what selected their models
    select_metric: str = "${optimizer.metric}"
    select: str = "best"  # best: the best-on-validation model is kept; last: the final model
    # Stand-aside gate: the selected model trades only if it beats flat on validation with a
    # t-statistic of its per-bar log returns >= this (val/edge_t); otherwise the run holds no
    # position (val/stand_aside=1). 2.0 lies between the selected models on the weak-edge
    # market W (t 2.8 PPO, 4.2 DQN) and on the random walk N (t 0.7, 0.3) where the defaults
    # were chosen, experiments/learnability/README.md ("The stand-aside gate"); null: never
    # stand aside.
    stand_aside_t: float | None = 2.0
    checkpoint_freq: int = 50_000  # env steps between resumable checkpoints; 0: none
    tensorboard: bool = True  # TensorBoard event files under <output_dir>/tensorboard
    # Stages trained one after another, the model carried over; each stage is a mapping with
    # `name`, `total_timesteps` and `overrides` (a list of key=value strings). See
    # conf/experiment/curriculum.yaml. Empty: one plain training run.
    curriculum: list[Any] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# Agents (stable-baselines3 / sb3-contrib): types and docs only. The option YAML holds every
# value (one source of truth); tests/agents check each field against the real constructor.
# --------------------------------------------------------------------------------------------
@dataclass
class AgentConfig:
    """Fields every SB3 algorithm takes. ``_partial_``: the env is supplied at run time."""

    _target_: str = MISSING
    _partial_: bool = MISSING
    _convert_: str = MISSING
    policy: str = MISSING  # MlpPolicy (MlpLstmPolicy for RecurrentPPO)
    learning_rate: float = MISSING
    gamma: float = MISSING  # discount
    verbose: int = MISSING  # 1: SB3's table of training metrics on stdout
    device: str = MISSING
    # an open mapping (SB3 checks its keys), merged with the extractor group's policy kwargs
    policy_kwargs: dict[str, Any] = field(default=MISSING, metadata={OPEN_MAPPING: True})


@dataclass
class OnPolicyConfig(AgentConfig):
    """A2C / PPO family: rollouts of ``n_steps`` per env, then updates."""

    n_steps: int = MISSING  # rollout length per env; samples per update = n_steps * n_envs
    gae_lambda: float = MISSING
    ent_coef: float = MISSING  # entropy bonus; > 0 keeps the policy exploring
    vf_coef: float = MISSING  # value-loss weight
    max_grad_norm: float = MISSING
    normalize_advantage: bool = MISSING


@dataclass
class PPOConfig(OnPolicyConfig):
    """:class:`stable_baselines3.PPO` and :class:`sb3_contrib.RecurrentPPO`."""

    batch_size: int = MISSING  # minibatch size
    n_epochs: int = MISSING  # optimisation epochs per rollout
    clip_range: float = MISSING
    target_kl: float | None = MISSING


@dataclass
class A2CConfig(OnPolicyConfig):
    """:class:`stable_baselines3.A2C`."""

    use_rms_prop: bool = MISSING


@dataclass
class OffPolicyConfig(AgentConfig):
    """DQN / QR-DQN / SAC: a replay buffer and gradient steps every ``train_freq`` env steps."""

    buffer_size: int = MISSING  # replay buffer transitions
    learning_starts: int = MISSING  # env steps (all envs) before the first gradient step
    batch_size: int = MISSING
    tau: float = MISSING  # target-network soft update (1.0 = hard copy)
    train_freq: int = MISSING  # vectorised env steps between updates
    gradient_steps: int = MISSING
    target_update_interval: int = MISSING


@dataclass
class DQNConfig(OffPolicyConfig):
    """:class:`stable_baselines3.DQN` and :class:`sb3_contrib.QRDQN`."""

    exploration_fraction: float = MISSING  # share of training over which epsilon decays
    exploration_initial_eps: float = MISSING
    exploration_final_eps: float = MISSING
    max_grad_norm: float = MISSING


@dataclass
class SACConfig(OffPolicyConfig):
    """:class:`stable_baselines3.SAC` (continuous actions)."""

    ent_coef: str = MISSING  # "auto" (learned), "auto_0.1" (learned, initial 0.1) or a number
    target_entropy: str = MISSING  # "auto" = -dim(action space), or a number


@dataclass
class RayConfig:
    """Where searches run their evaluations (``optimizer=ga|tune``).

    ``address`` empty starts a new, private local Ray sized to ``num_cpus`` (null: every core),
    even when a Ray head runs on this machine; ``auto`` (the Ray on this machine) or the head's GCS
    address ``<head>:6379`` joins an existing cluster with the same command, without resource
    arguments. A Ray Client address (``ray://...``) is refused before the run opens (README:
    cluster, also for Ray's token authentication).
    ``enabled=false`` evaluates GA candidates in a local process pool instead (Tune needs Ray).
    ``object_store_memory`` caps a local Ray's shared-memory object store (bytes; Ray's own
    default is 30 % of RAM, more than a small ``/dev/shm`` of a container holds); null leaves
    Ray's default. A cluster sizes its own store.
    """

    address: str = ""
    enabled: bool = True
    num_cpus: int | None = None
    object_store_memory: int | None = 1_000_000_000  # candidates pass configs and small models


# Schemas of third-party targets, found by an option file's `_target_`: composing a config
# must not import torch (which every SB3 class does). Any other `_target_` gets a schema derived
# from its signature (schema_from_target), so a new option is one YAML file.
SCHEMAS: dict[str, type] = {
    "stable_baselines3.PPO": PPOConfig,
    "sb3_contrib.RecurrentPPO": PPOConfig,
    "stable_baselines3.A2C": A2CConfig,
    "stable_baselines3.DQN": DQNConfig,
    "sb3_contrib.QRDQN": DQNConfig,
    "stable_baselines3.SAC": SACConfig,
}
# Option files without a `_target_` (plain settings) keyed by group. (Every optimizer option
# names its class, so its schema comes from the class's signature.)
UNTARGETED: dict[str, type] = {}


@dataclass
class WalkForwardConfig:
    """``task=walkforward``: the folds of :class:`cryptotrade.data.splits.WalkForward`.

    Fold ``k`` tests on the ``k``-th of ``folds`` blocks of ``test`` bars at the end of the data;
    its ``val`` bars before that select the model, and the training window precedes them.
    """

    folds: int = 4  # number of folds (nested MLflow runs)
    test: int = 1000  # bars in each fold's test block
    val: int = 500  # bars in each fold's validation block (model selection)
    train: int | None = None  # bars in each training window; null: expanding from the first bar
    embargo: int = 0  # bars dropped between train and val and between val and test


@dataclass
class InferConfig:
    """``task=infer``: act on the latest closed bar of ``data.source``; optionally paper-trade.

    The data, features and env settings are the training run's (restored from the model's run);
    the observation is normalised with the training split's saved statistics.
    """

    paper: bool = False  # step a paper account over every bar after the last processed one
    state_dir: str = "${paths.root}/paper"  # paper account state (state.json) and trades.csv
    start: str | None = None  # paper: ISO time of the first bar to trade; null: the latest bar


@dataclass
class Config:
    """The composed run config. Group nodes are typed by their own schemas."""

    task: str = "pipeline"  # a name in cryptotrade.tasks.TASKS (pipeline, walkforward, infer ...)
    seed: int = 0  # seeds python, numpy, torch and the env
    torch_threads: int = 1  # one thread is faster than two for small networks on CPU
    model: str | None = None  # evaluate/train: runs:/<run_id>/model or a .zip to load
    resume: str | None = None  # an MLflow run id: continue that killed run from its checkpoint
    paths: PathsConfig = field(default_factory=PathsConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    evaluation: EvaluationSettings = field(default_factory=EvaluationSettings)
    walkforward: WalkForwardConfig = field(default_factory=WalkForwardConfig)
    infer: InferConfig = field(default_factory=InferConfig)
    ray: RayConfig = field(default_factory=RayConfig)
    data: Any = MISSING
    regime: Any = None
    features: Any = MISSING
    env: Any = MISSING
    reward: Any = MISSING
    agent: Any = MISSING
    extractor: Any = MISSING
    pretrain: Any = None  # task=pretrain settings (conf/pretrain/)
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
    factories = {
        f.name: f.default_factory
        for f in (dataclasses.fields(obj) if dataclasses.is_dataclass(obj) else ())
        if f.default_factory is not dataclasses.MISSING
    }
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
        if pname in factories:  # a dataclass field with a default_factory
            default = _default(factories[pname]())
        if not isinstance(default, dataclasses.Field):
            default = field(default=default)
        if _open_mapping(hints.get(pname, param.annotation)):
            default.metadata = types.MappingProxyType({OPEN_MAPPING: True})
        fields.append((pname, ctype, default))
    return dataclasses.make_dataclass(name, fields)


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: 10x faster


def _option_files(conf_dir: Path) -> list[tuple[str, str, dict[str, Any]]]:
    """``(group, option, node)`` for every option file under ``conf_dir``.

    A file packaged ``_global_`` (it also sets keys of other groups, e.g. ``agent/sac`` sets
    ``env.action_mode``) contributes its own group's node.
    """
    found = []
    for path in sorted(conf_dir.glob("*/*.yaml")):
        text = path.read_text()
        node = yaml.load(text, Loader=_YAML_LOADER) or {}
        if text.startswith("# @package _global_"):
            node = node.get(path.parent.name) or {}
        found.append((path.parent.name, path.stem, node))
    return found


def schema_for(group: str, option: str, node: dict[str, Any]) -> type | None:
    """The schema of one option file: by its ``_target_`` (see :data:`SCHEMAS`), else derived
    from the target's signature; ``None`` for files that are not typed by a schema."""
    target = node.get("_target_")
    if target is None:
        return UNTARGETED.get(group)
    if target in SCHEMAS:
        return SCHEMAS[target]
    return schema_from_target(
        f"{group.title()}{option.title().replace('_', '')}Config",
        target,
        partial=bool(node.get("_partial_", False)),
        given=node,
    )


def group_listing(conf_dir: Path = CONF_DIR) -> str:
    """``group: option, option`` lines for ``--help`` (without the internal ``schema/`` groups)."""
    lines = []
    for group in sorted(p for p in conf_dir.iterdir() if p.is_dir()):
        options = ", ".join(sorted(p.stem for p in group.glob("*.yaml")))
        lines.append(f"{group.name}: {options}")
    return "\n".join(lines)


def _share_config_store_on_copy() -> None:
    """Let deep copies of Hydra's repository share the one ConfigStore instead of copying it.

    Hydra 1.3 deep-copies its config repository, and with it every schema in the ConfigStore,
    each time it builds a caching repository: once per compose and once per config group that
    ``--help`` lists (156 copies of ~50 schemas, ~6 s on 2 cores). ``ConfigStore.load`` already
    returns a deep copy of the node it serves, so sharing the store is safe; Hydra's own fix
    (facebookresearch/hydra#2928, not in a 1.3 release) makes the copied source read the live
    singleton the same way.
    """
    if "__deepcopy__" not in vars(ConfigStore):
        setattr(ConfigStore, "__deepcopy__", lambda self, memo: self)  # noqa: B010 (mypy)


# --------------------------------------------------------------------------------------------
# Schema cache: deriving a schema imports its target, and the targets import the compiled
# kernels, pandas and gymnasium (~1.5 s), which --help, --cfg and a typo should not wait for.
# The derived schemas are stored as JSON keyed by a hash of every option file and every module
# of the package, so any edit re-derives them once.
# --------------------------------------------------------------------------------------------
SCHEMA_CACHE_FORMAT = 1
_TYPE_NAMES: dict[Any, str] = {int: "int", float: "float", str: "str", bool: "bool", Any: "any"}
_TYPE_NAMES |= {list[Any]: "list", dict[str, Any]: "dict"}
_TYPES = {name: t for t, name in _TYPE_NAMES.items()}


def _schema_spec(schema: type) -> dict[str, Any]:
    """A JSON-able description of a derived schema dataclass (see :func:`_schema_from_spec`).

    Raises:
        TypeError: A field type or default that the JSON form cannot hold.
    """
    fields = []
    for f in dataclasses.fields(schema):
        kind: Any = f.type
        optional = typing.get_origin(kind) is typing.Union
        if optional:
            kind = next(a for a in typing.get_args(kind) if a is not type(None))
        entry: dict[str, Any] = {"name": f.name, "optional": optional}
        if dataclasses.is_dataclass(kind) and isinstance(kind, type):
            entry["schema"] = _schema_spec(kind)
        else:
            if kind not in _TYPE_NAMES:
                raise TypeError(f"{schema.__name__}.{f.name}: type {kind!r} is not cacheable")
            entry["type"] = _TYPE_NAMES[kind]
            if f.default_factory is not dataclasses.MISSING:
                entry["default"] = f.default_factory()
            elif f.default is not MISSING and f.default is not dataclasses.MISSING:
                entry["default"] = f.default
            entry["open"] = bool(f.metadata.get(OPEN_MAPPING))
        fields.append(entry)
    spec = {"name": schema.__name__, "fields": fields}
    json.dumps(spec, allow_nan=True)  # TypeError on a default JSON cannot hold
    return spec


def _schema_from_spec(spec: dict[str, Any]) -> type:
    """Rebuild the dataclass :func:`_schema_spec` described, without importing its target."""
    fields: list[tuple[str, Any, Any]] = []
    for entry in spec["fields"]:
        if "schema" in entry:
            sub = _schema_from_spec(entry["schema"])
            kind: Any = sub
            default = field(default_factory=sub)
        else:
            kind = _TYPES[entry["type"]]
            default = _default(entry["default"]) if "default" in entry else MISSING
            if not isinstance(default, dataclasses.Field):
                default = field(default=default)
            if entry["open"]:
                default.metadata = types.MappingProxyType({OPEN_MAPPING: True})
        if entry["optional"]:
            kind = typing.Optional[kind]  # noqa: UP045  (OmegaConf 2.3 reads typing.Optional)
        fields.append((entry["name"], kind, default))
    return dataclasses.make_dataclass(spec["name"], fields)


def _sources_key(conf_dir: Path) -> str:
    """A hash of every option file under ``conf_dir`` and every module of the package."""
    digest = hashlib.sha256(f"{SCHEMA_CACHE_FORMAT} {sys.version}".encode())
    package = Path(__file__).resolve().parent
    for path in [*sorted(conf_dir.glob("*/*.yaml")), *sorted(package.rglob("*.py"))]:
        digest.update(str(path).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:24]


def _derived_schemas(conf_dir: Path) -> list[tuple[str, str, type]]:
    """``(group, option, schema)`` for every typed option file: from the cache when the sources
    are unchanged, else derived (importing the targets) and cached for the next process.

    Memoised per process on the same key: rebuilding the spec dataclasses costs ~60 ms, which
    every :func:`register_configs` after the first (one per test module) would pay again.
    """
    cache = PROJECT_ROOT / ".cache" / "schemas" / f"{_sources_key(conf_dir)}.json"
    if cache in _DERIVED:
        return list(_DERIVED[cache])
    found: list[tuple[str, str, type]] = []
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):  # absent or damaged
        for group, option, kind, value in json.loads(cache.read_text()):
            cached = _schema_from_spec(value) if kind == "spec" else _NAMED[kind][value]
            found.append((group, option, cached))
        _DERIVED[cache] = list(found)
        return found
    found, entries = [], []
    cacheable = True
    for group, option, node in _option_files(conf_dir):
        schema = schema_for(group, option, node)
        if schema is None:
            continue
        found.append((group, option, schema))
        if schema is SCHEMAS.get(node.get("_target_", "")):
            entries.append((group, option, "target", node["_target_"]))
        elif node.get("_target_") is None:
            entries.append((group, option, "group", group))
        else:
            try:
                entries.append((group, option, "spec", _schema_spec(schema)))
            except TypeError:
                cacheable = False
    if cacheable:
        with contextlib.suppress(OSError):  # a read-only install: derive every time
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(entries))
            tmp.replace(cache)  # atomic: parallel launchers never read half a file
    _DERIVED[cache] = list(found)
    return found


_DERIVED: dict[Path, list[tuple[str, str, type]]] = {}  # _derived_schemas, by cache file


_NAMED: dict[str, dict[str, type]] = {"target": SCHEMAS, "group": UNTARGETED}


class _LazyNode(ConfigNode):
    """A ConfigStore entry whose node is built from its schema on first use.

    Hydra reads only the schemas of the options a config chooses; building all ~50 typed nodes
    up front cost ~0.3 s of every start. ``ConfigStore.load`` still deep-copies what it serves.
    """

    def __init__(self, name: str, group: str, schema: type) -> None:
        self._schema: type = schema
        self._node: DictConfig | None = None
        empty: Any = None  # built on first read of .node
        super().__init__(name=name, node=empty, group=group, package=None, provider=None)

    @property
    def node(self) -> DictConfig:
        """The typed node (open mappings unlocked), built once."""
        if self._node is None:
            stored = OmegaConf.structured(self._schema)
            _open_mappings(stored, self._schema)
            self._node = stored
        return self._node

    @node.setter
    def node(self, value: DictConfig | None) -> None:
        self._node = value


def _store_lazily(cs: ConfigStore, group: str, option: str, schema: type) -> None:
    """``cs.store(group=group, name=option, node=<schema's node>)``, built on first load."""
    folder = cs.repo
    for part in group.split("/"):
        folder = folder.setdefault(part, {})
    folder[f"{option}.yaml"] = _LazyNode(f"{option}.yaml", group, schema)


def register_configs(conf_dir: Path = CONF_DIR) -> None:
    """Store the top-level schema and one schema per option file in Hydra's ConfigStore."""
    if not OmegaConf.has_resolver("cryptotrade_folder"):
        from cryptotrade.io import claim_folder

        # the job's output folder, created by an exclusive mkdir (never shared with another
        # launcher); cached like Hydra's `now`, so sweep jobs (whose configs Hydra composes
        # anew, copying the resolver cache, possibly in other processes) get the same folder
        OmegaConf.register_new_resolver("cryptotrade_folder", claim_folder, use_cache=True)
    if not OmegaConf.has_resolver("cryptotrade_groups"):
        OmegaConf.register_new_resolver("cryptotrade_groups", lambda: group_listing(conf_dir))
    _share_config_store_on_copy()
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)
    for group, option, schema in _derived_schemas(conf_dir):
        _store_lazily(cs, f"schema/{group}", option, schema)
