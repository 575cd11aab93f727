"""Strict overrides: every typo is refused before a run opens.

Hydra's struct mode already refuses ``agent.no_such_field=1``, but ``+key=value`` deliberately
adds keys, so ``+trainr.lr=1`` or ``+agent.learning_rat=0.5`` would compose and run. After
composition :func:`check_config` walks the config: a node typed by a schema dataclass
(:mod:`cryptotrade.config`) may only hold that dataclass's fields.

Open mappings are the nodes a schema types as a mapping (``dict[str, Any]``, from a
``Mapping``/``dict`` annotation of the target's parameter): their keys are names the user
chooses (indicators, regimes, column renames) or keyword arguments passed on to a library that
checks them itself (ccxt exchange options, SB3 ``policy_kwargs``, extractor kwargs). Any key
may be added there with ``+``. Mappings of names to plain values (fields marked
:data:`cryptotrade.config.OPEN_MAPPING`) are not in struct mode, so they also take new keys
without ``+`` (``data.source.columns={homeNotional:volume}``). :func:`open_mappings` lists them;
the README shows the list for the shipped options.

:data:`RULES` refuse hyperparameters that SB3 or the env would reject only after data is loaded
(``learning_rate<=0``, ``gamma`` outside [0, 1], NaN reward weights, ``total_timesteps<=0``,
``seed`` outside numpy's range). A rule accepts what the agents accept: SB3 and sb3-contrib
check none of these themselves, so each range is the one their updates are defined on
(``gamma=0``: the one-step reward is the whole action value, a valid DQN/QR-DQN/SAC/PPO target;
``gamma=1``: undiscounted, fine on the env's bounded episodes). :func:`missing_groups` refuses
a config group removed with ``~agent`` (or a settings node removed with ``~train``), which
would fail later with an OmegaConf trace.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

from omegaconf import MISSING, DictConfig, ListConfig

from cryptotrade.errors import ConfigError


def _walk(node: DictConfig, path: str) -> Iterator[tuple[str, DictConfig, type | None]]:
    """``(path, node, schema)`` for every mapping node under declared keys, not inside an open
    mapping (``schema`` is ``None`` for an open mapping)."""
    schema = node._metadata.object_type
    schema = schema if dataclasses.is_dataclass(schema) else None
    yield path, node, schema
    if schema is None and path:
        return  # an open mapping: nothing below it is checked
    declared = {f.name for f in dataclasses.fields(schema)} if schema else {str(k) for k in node}
    for key in map(str, node):
        if key not in declared or (path == "" and key == "hydra"):
            continue
        child = node._get_node(key)
        if isinstance(child, DictConfig) and not child._is_none() and not child._is_missing():
            yield from _walk(child, f"{path}.{key}" if path else str(key))


def unknown_keys(cfg: DictConfig) -> list[str]:
    """``path.key (did you mean ...)`` for every key no schema declares."""
    found = []
    for path, node, schema in _walk(cfg, ""):
        if schema is None:
            continue
        fields = [f.name for f in dataclasses.fields(schema)]
        for key in map(str, node):
            if key in fields or (path == "" and key == "hydra"):
                continue
            name = f"{path}.{key}" if path else str(key)
            close = difflib.get_close_matches(str(key), fields, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            found.append(f"{name}{hint}")
    return found


def open_mappings(cfg: DictConfig) -> list[str]:
    """Paths of the open mappings of ``cfg`` (any key may be added below them)."""
    return [path for path, _, schema in _walk(cfg, "") if schema is None and path]


class Rule(NamedTuple):
    """A range check of one setting: ``path`` must satisfy ``test``, explained by ``text``."""

    path: str
    test: Callable[[float], bool]
    text: str


def _positive(x: float) -> bool:
    return x > 0


def _seed(x: float) -> bool:
    return x == int(x) and 0 <= x < 2**32


RULES = [
    Rule("seed", _seed, "must be an integer in [0, 2**32 - 1] (numpy's seed range)"),
    Rule("torch_threads", _positive, "must be >= 1"),
    Rule("agent.learning_rate", _positive, "must be > 0"),
    Rule("agent.gamma", lambda x: 0 <= x <= 1, "must be in [0, 1]"),
    Rule("agent.gae_lambda", lambda x: 0 <= x <= 1, "must be in [0, 1]"),
    Rule("agent.batch_size", _positive, "must be > 0"),
    Rule("agent.n_steps", _positive, "must be > 0"),
    Rule("agent.n_epochs", _positive, "must be > 0"),
    Rule("agent.buffer_size", _positive, "must be > 0"),
    Rule("agent.exploration_fraction", lambda x: 0 <= x <= 1, "must be in [0, 1]"),
    Rule("train.total_timesteps", _positive, "must be > 0"),
    Rule(
        "ray.object_store_memory",
        lambda x: x >= 75 * 1024 * 1024,
        "must be >= 78643200 bytes (Ray's 75 MB minimum), or null for Ray's default",
    ),
]


def _numbers(node: Any, path: str) -> Iterator[tuple[str, Any]]:
    if isinstance(node, DictConfig):
        for key in map(str, node):
            yield from _numbers(node._get_node(key), f"{path}.{key}")
    elif isinstance(node, ListConfig):
        for i in range(len(node)):
            yield from _numbers(node._get_node(i), f"{path}[{i}]")
    else:
        value = node._value() if hasattr(node, "_value") else node
        if isinstance(value, float):
            yield path, value


def bad_values(cfg: DictConfig) -> list[str]:
    """``path=value must ...`` for every setting outside its range, and every NaN/inf reward
    weight or agent setting."""
    found = []
    for rule in RULES:
        head, _, field = rule.path.rpartition(".")
        node = cfg.get(head) if head else cfg
        value = node.get(field) if isinstance(node, DictConfig) else None
        if not isinstance(value, int | float) or isinstance(value, bool):
            continue
        if not (math.isfinite(value) and rule.test(value)):
            found.append(f"{rule.path}={value} {rule.text}")
    for group in ("reward", "agent"):
        node = cfg.get(group)
        if isinstance(node, DictConfig):
            for path, value in _numbers(node, group):
                if math.isnan(value) or (group == "reward" and math.isinf(value)):
                    found.append(f"{path}={value} must be a finite number")
    return found


def missing_groups(cfg: DictConfig) -> list[str]:
    """The config groups (``data``, ``agent`` ...) and settings nodes (``train``, ``paths`` ...)
    of the root schema that the config lacks, as ``name (choose name=<option>)`` hints."""
    schema = cfg._metadata.object_type
    if not dataclasses.is_dataclass(schema):
        return []
    found = []
    for f in dataclasses.fields(schema):
        group = f.default == MISSING  # a config group: must hold an option (_target_)
        node = cfg._get_node(f.name) if f.name in cfg else None
        if not group and f.default_factory is dataclasses.MISSING:
            continue  # a plain setting (seed, model ...): typed, checked by Hydra
        if node is None or node._is_missing() or node._is_none():
            absent = True
        else:
            absent = group and (not isinstance(node, DictConfig) or "_target_" not in node)
        if absent:
            found.append(f"{f.name} (choose {f.name}=<option>)" if group else f.name)
    return found


def check_config(cfg: DictConfig, tasks: Iterable[str]) -> None:
    """Refuse an unknown task, unknown keys and out-of-range settings, before any run opens.

    Raises:
        ConfigError: Naming every offending key and how to fix it.
    """
    names = list(tasks)
    if cfg.get("task") not in names:
        raise ConfigError(f"task={cfg.get('task')} is unknown; choose one of: {', '.join(names)}")
    missing = missing_groups(cfg)
    if missing:
        raise ConfigError(
            f"the config lacks {', '.join(missing)}; every run needs each config group and "
            "settings node (was it removed with ~name on the command line?); "
            "`python -m cryptotrade.run --help` lists the options"
        )
    unknown = unknown_keys(cfg)
    if unknown:
        raise ConfigError(
            f"unknown config key{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}; "
            "check the spelling (`python -m cryptotrade.run --cfg job` prints every key). "
            "Only open mappings take new keys: " + ", ".join(open_mappings(cfg))
        )
    bad = bad_values(cfg)
    if bad:
        raise ConfigError("; ".join(bad))
