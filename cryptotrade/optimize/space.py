"""The search space: ``optimizer.space`` parsed once, for DEAP genes and Ray Tune domains alike.

``optimizer.space`` maps config paths to domains written as strings::

    space:
      features.indicators.rsi.period: int(5, 30)      # integers lo..hi, both included
      agent.gamma: float(0.9, 0.999)                  # uniform on [lo, hi]
      agent.learning_rate: log(1e-5, 1e-3)            # log-uniform on [lo, hi], lo > 0
      env.window: choice(16, 32, 64)                  # one of the listed values

Nested mappings are flattened with dots, so ``{agent: {gamma: float(0.9, 0.999)}}`` is the same
space. Command-line overrides merge into the configured space; quote the domain (Hydra's
override grammar has its own ``int()``/``float()``/``choice()``): add a dimension with
``"+optimizer.space.agent.gamma='float(0.9,0.99)'"``, change one with
``"optimizer.space={env.window:'choice(16,32)'}"``, drop one with
``"optimizer.space={env.window:null}"``.

A point of the space is ``{path: value}``;
:meth:`~cryptotrade.optimize.derive.ConfigDeriver.with_point` writes it into a config. The GA
encodes every dimension as a gene in ``[0, 1]`` (:meth:`Domain.decode` maps a gene to a value:
uniform for ``int``/``float``/``choice``, uniform in log space for ``log``), so DEAP's bounded
crossover and mutation operators work on every kind of dimension; Ray Tune gets the matching
native domains from :meth:`Domain.to_tune`.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cryptotrade.errors import ConfigError

if TYPE_CHECKING:
    from cryptotrade.optimize.derive import ConfigDeriver

Point = dict[str, Any]
_DOMAIN = re.compile(r"^\s*(int|float|log|choice)\s*\((.*)\)\s*$", re.S)


@dataclass(frozen=True)
class Domain:
    """One dimension of the space.

    Attributes:
        path: The dotted config path it sets (``agent.learning_rate``).
        kind: ``int``, ``float``, ``log`` or ``choice``.
        values: ``(lo, hi)`` for ranges, the options for ``choice``.
    """

    path: str
    kind: str
    values: tuple[Any, ...]

    def decode(self, gene: float) -> Any:
        """The value of a gene in ``[0, 1]`` (clipped): each value gets an equal share of it."""
        u = min(max(float(gene), 0.0), 1.0)
        if self.kind == "choice":
            return self.values[min(int(u * len(self.values)), len(self.values) - 1)]
        lo, hi = self.values
        if self.kind == "int":
            return int(lo + min(int(u * (hi - lo + 1)), hi - lo))
        if self.kind == "log":
            return float(math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo))))
        return float(lo + u * (hi - lo))

    def to_tune(self, *, grid: bool = False) -> Any:
        """The Ray Tune domain (``grid``: ``tune.grid_search`` over every value of the domain)."""
        from ray import tune

        if grid:
            if self.kind == "choice":
                return tune.grid_search(list(self.values))
            if self.kind == "int":
                return tune.grid_search(list(range(self.values[0], self.values[1] + 1)))
            raise ConfigError(
                f"optimizer.space.{self.path}: {self.kind}() has no grid; grid search needs "
                "int() or choice() dimensions (or use optimizer.search=random|tpe)"
            )
        if self.kind == "choice":
            return tune.choice(list(self.values))
        lo, hi = self.values
        if self.kind == "int":
            return tune.randint(lo, hi + 1)  # Tune's upper bound is exclusive
        if self.kind == "log":
            return tune.loguniform(lo, hi)
        return tune.uniform(lo, hi)

    def __str__(self) -> str:
        return f"{self.kind}({', '.join(map(repr, self.values))})"


def _number(text: str, path: str) -> float:
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        value = None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"optimizer.space.{path}: {text.strip()!r} is not a number")
    return value


def _options(inner: str) -> tuple[Any, ...]:
    """``choice`` arguments: Python literals; bare words (``tanh``) are strings."""
    try:
        value = ast.literal_eval(f"[{inner}]")
        return tuple(value)
    except (ValueError, SyntaxError):
        pass
    out: list[Any] = []
    for item in inner.split(","):
        item = item.strip()
        try:
            out.append(ast.literal_eval(item))
        except (ValueError, SyntaxError):
            out.append(item.strip("'\""))
    return tuple(out)


def parse_domain(path: str, text: Any) -> Domain:
    """Parse one ``int(lo, hi)`` / ``float(lo, hi)`` / ``log(lo, hi)`` / ``choice(a, ...)``.

    Raises:
        ConfigError: On bad syntax, an empty range, ``log`` with ``lo <= 0``, an empty choice.
    """
    match = _DOMAIN.match(str(text)) if isinstance(text, str) else None
    if match is None:
        raise ConfigError(
            f"optimizer.space.{path}={text!r} is not a domain; write int(lo, hi), "
            "float(lo, hi), log(lo, hi) or choice(a, b, ...)"
        )
    kind, inner = match.groups()
    if kind == "choice":
        options = _options(inner) if inner.strip() else ()
        if not options:
            raise ConfigError(f"optimizer.space.{path}: choice() needs at least one value")
        return Domain(path, kind, options)
    args = [a for a in inner.split(",") if a.strip()]
    if len(args) != 2:
        raise ConfigError(f"optimizer.space.{path}: {kind}() takes (lo, hi), got {text!r}")
    lo, hi = (_number(a, path) for a in args)
    if kind == "int":
        if int(lo) != lo or int(hi) != hi:
            raise ConfigError(f"optimizer.space.{path}: int({lo}, {hi}) needs integer bounds")
        lo, hi = int(lo), int(hi)
        if hi < lo:
            raise ConfigError(f"optimizer.space.{path}: int({lo}, {hi}) is empty (hi < lo)")
    elif hi <= lo:
        raise ConfigError(f"optimizer.space.{path}: {kind}({lo}, {hi}) is empty (needs lo < hi)")
    if kind == "log" and lo <= 0:
        raise ConfigError(f"optimizer.space.{path}: log({lo}, {hi}) needs lo > 0")
    return Domain(path, kind, (lo, hi) if kind == "int" else (float(lo), float(hi)))


def _flatten(node: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in node.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{path}."))
        elif value is not None:  # null drops a dimension (overrides merge into the space)
            out[path] = value
    return out


@dataclass(frozen=True)
class SearchSpace:
    """The parsed, validated space: an ordered tuple of domains (the gene order)."""

    domains: tuple[Domain, ...]

    @property
    def paths(self) -> list[str]:
        """The config paths, in gene order."""
        return [d.path for d in self.domains]

    def decode(self, genes: Sequence[float]) -> Point:
        """The point ``{path: value}`` of a genome."""
        return {d.path: d.decode(g) for d, g in zip(self.domains, genes, strict=True)}

    def to_tune(self, *, grid: bool = False) -> dict[str, Any]:
        """``param_space`` for ``ray.tune.Tuner``: ``{path: domain}``."""
        return {d.path: d.to_tune(grid=grid) for d in self.domains}

    def __len__(self) -> int:
        return len(self.domains)


def parse_space(space: Mapping[str, Any], configs: ConfigDeriver | None = None) -> SearchSpace:
    """Parse ``optimizer.space`` and, given the run's ``configs``, check every path against it.

    Every path must name an existing leaf value of the config (a typo would otherwise search a
    setting nothing reads), and both ends of every domain must be assignable to it (a
    ``float()`` domain on an integer field fails here, not in the first trial).

    Raises:
        ConfigError: Naming the offending path and how to fix it, before any training.
    """
    flat = _flatten(space or {})
    if not flat:
        raise ConfigError(
            "optimizer.space is empty; map config paths to domains, e.g. "
            "optimizer.space.agent.learning_rate='log(1e-5,1e-3)'"
        )
    parsed = SearchSpace(tuple(parse_domain(p, t) for p, t in flat.items()))
    if configs is not None:
        for domain in parsed.domains:
            _check_path(configs, domain)
    return parsed


def _check_path(configs: ConfigDeriver, domain: Domain) -> None:
    path = domain.path
    if path.split(".")[0] in ("optimizer", "ray", "tracking", "paths", "hydra"):
        raise ConfigError(f"optimizer.space.{path}: the search cannot change {path}")
    ends = domain.values if domain.kind == "choice" else (domain.decode(0.0), domain.decode(1.0))
    configs.check_settable(path, ends, domain=str(domain))
