"""Action modes: their gymnasium spaces, baseline actions, and the agent compatibility check."""

from __future__ import annotations

import ast
import inspect
import textwrap
from typing import Any

import numpy as np
from gymnasium import spaces

from cryptotrade.env.core import MODE_BSH, MODE_CONTINUOUS, MODE_DISCRETE3, MODE_DISCRETE4
from cryptotrade.errors import ConfigError

# one registry beside its values: mode name -> (kernel code, meaning of the actions)
ACTION_MODES: dict[str, tuple[int, str]] = {
    "discrete4": (MODE_DISCRETE4, "0 hold, 1 long, 2 short (from flat only), 3 close"),
    "discrete3": (MODE_DISCRETE3, "target side: 0 short, 1 flat, 2 long"),
    "buy_sell_hold": (MODE_BSH, "0 hold, 1 buy one inventory level, 2 sell one level"),
    "continuous": (MODE_CONTINUOUS, "Box(-1, 1): target exposure x leverage"),
}


def mode_code(action_mode: str) -> int:
    """Kernel code of ``action_mode``; raises naming the valid modes."""
    if action_mode not in ACTION_MODES:
        raise ConfigError(
            f"env.action_mode={action_mode!r} is not one of {sorted(ACTION_MODES)}; "
            "set env.action_mode to one of them"
        )
    return ACTION_MODES[action_mode][0]


def action_space_for(action_mode: str) -> spaces.Space:
    """The gymnasium action space of ``action_mode``."""
    code = mode_code(action_mode)
    if code == MODE_CONTINUOUS:
        return spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
    return spaces.Discrete(4 if code == MODE_DISCRETE4 else 3)


def action_for_target(
    action_mode: str, target: float, units: float, level: float, levels: int
) -> Any:
    """The action that moves the position toward ``target`` exposure (-1, 0 or +1).

    Args:
        action_mode: The env's action mode.
        target: Desired exposure: -1 short, 0 flat, +1 long (continuous: any value in [-1, 1]).
        units: Current signed position.
        level: Current inventory level (``buy_sell_hold``).
        levels: Number of inventory levels per side (``buy_sell_hold``).

    Returns:
        An element of the action space; repeated calls reach the target (discrete4 needs a close
        before reversing, buy_sell_hold one call per level).
    """
    code = mode_code(action_mode)
    side = float(np.sign(target))
    current = float(np.sign(units))
    if code == MODE_CONTINUOUS:
        return np.array([float(np.clip(target, -1.0, 1.0))], dtype=np.float32)
    if code == MODE_DISCRETE3:
        return int(side) + 1
    if code == MODE_BSH:
        goal = round(float(np.clip(target, -1.0, 1.0)) * levels)
        return 0 if goal == level else (1 if goal > level else 2)
    if side == current:
        return 0
    if current != 0.0:
        return 3
    return 1 if side > 0 else 2


def supported_action_spaces(agent_class: type) -> tuple[type[spaces.Space], ...] | None:
    """The action-space classes an SB3 algorithm declares, without instantiating it.

    SB3 algorithms pass ``supported_action_spaces=(spaces.Box, ...)`` from their ``__init__`` to
    ``BaseAlgorithm.__init__`` rather than storing a class attribute, so the tuple is read from
    the constructor source of the first class in the MRO that passes it (a class attribute of
    that name, if one is defined, wins).
    """
    declared = getattr(agent_class, "supported_action_spaces", None)
    if declared is not None:
        return tuple(declared)
    for klass in agent_class.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(init)))
        except (OSError, TypeError, SyntaxError):
            continue
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.keyword)
                and node.arg == "supported_action_spaces"
                and isinstance(node.value, ast.Tuple)
            ):
                names = [getattr(e, "attr", getattr(e, "id", "")) for e in node.value.elts]
                return tuple(getattr(spaces, n) for n in names if hasattr(spaces, n))
    return None


def check_agent_compatible(agent_class: type, action_mode: str) -> None:
    """Fail before training when an SB3 agent cannot act in ``action_mode``'s action space.

    Args:
        agent_class: An SB3 / sb3-contrib algorithm class (see :func:`supported_action_spaces`).
        action_mode: The env's ``action_mode``.

    Raises:
        ConfigError: Naming the ``env.action_mode`` values the agent supports.
    """
    supported = supported_action_spaces(agent_class)
    if not supported:
        return  # not an SB3 algorithm with a declared contract: nothing to check
    space = action_space_for(action_mode)
    if isinstance(space, supported):
        return
    fits = [m for m in ACTION_MODES if isinstance(action_space_for(m), supported)]
    raise ConfigError(
        f"{agent_class.__name__} supports {[s.__name__ for s in supported]} action spaces but "
        f"env.action_mode={action_mode!r} has a {type(space).__name__} space; "
        f"set env.action_mode to one of {fits} (or pick an agent that supports {action_mode})"
    )
