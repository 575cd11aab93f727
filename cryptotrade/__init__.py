"""cryptotrade: config-driven, leak-free reinforcement-learning experiments on crypto markets."""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.util
import os
import re
import sys
import types
from pathlib import Path
from typing import Any


def _key_numba_cache_by_source() -> None:
    """Point numba's on-disk cache at a folder named by a hash of every module that compiles
    kernels (:func:`_compiles_kernels`).

    ``@njit(cache=True)`` invalidates a cached kernel only when *its own* file changes, not when
    a kernel it calls in another module does (editing ``market/account.py`` would leave the old
    code compiled into ``env/core.py``'s cached kernels). A folder per source hash makes any
    kernel edit recompile everything once; an edit to a module that only calls kernels from
    Python does not. ``NUMBA_CACHE_DIR`` set by the user wins.
    """
    if "NUMBA_CACHE_DIR" in os.environ:
        return
    package = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        text = path.read_bytes()
        if _compiles_kernels(text):
            digest.update(path.relative_to(package).as_posix().encode() + b"\0" + text)
    os.environ["NUMBA_CACHE_DIR"] = str(
        package.parent / ".cache" / "numba" / digest.hexdigest()[:16]
    )


def _compiles_kernels(source: bytes) -> bool:
    """Whether a module's source imports numba or the project's kernel decorators
    (:mod:`cryptotrade.market.jit`): every module that defines a kernel must, to decorate it."""
    return re.search(_KERNEL_IMPORT, source) is not None


_KERNEL_IMPORT = re.compile(
    rb"^[ \t]*(?:import numba|from numba\b|from cryptotrade\.market\.jit import)", re.M
)


_key_numba_cache_by_source()

# MLflow 3 sends usage telemetry to MLflow's servers from every process that imports it (the
# runs, each search worker, `make ui`). An experiment framework should not phone home on its
# users' behalf: off unless the user set it (MLFLOW_DISABLE_TELEMETRY=false turns it back on).
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def __getattr__(name: str) -> Any:
    """``cryptotrade.__version__``: the installed distribution's version (``pyproject.toml``),
    looked up on first use (importlib.metadata costs ~40 ms that ``--help`` need not pay)."""
    if name != "__version__":
        raise AttributeError(f"module 'cryptotrade' has no attribute {name!r}")
    from importlib import metadata

    try:
        return metadata.version("cryptotrade")
    except metadata.PackageNotFoundError:
        return "0+unknown"


ENV_ID = "cryptotrade/Trading-v0"


def register_envs() -> None:
    """Register :class:`~cryptotrade.env.TradingEnv` with gymnasium as ``cryptotrade/Trading-v0``.

    Runs when both ``cryptotrade`` and ``gymnasium`` are imported, in either order, so
    ``gymnasium.make("cryptotrade/Trading-v0")`` works after them (with no ``data`` the env
    trades the default synthetic market). The entry point is a string: the env module and its
    numba kernels load only when an env is made.
    """
    import gymnasium

    if ENV_ID not in gymnasium.registry:
        gymnasium.register(id=ENV_ID, entry_point="cryptotrade.env.trading_env:TradingEnv")


class _RegisterWhenGymnasiumLoads(importlib.abc.MetaPathFinder):
    """Registers the env right after ``gymnasium`` is first imported.

    Importing gymnasium (and numpy with it) costs ~0.2 s, which ``--help``, ``--cfg`` and config
    errors would pay for nothing if ``import cryptotrade`` imported it to register the id.
    """

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        """Find gymnasium's real spec and make its loader register the env after loading."""
        if name != "gymnasium":
            return None
        sys.meta_path.remove(self)  # one shot; the lookup below must not find this finder
        spec = importlib.util.find_spec(name)
        loader = spec.loader if spec is not None else None
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        load = loader.exec_module

        def exec_module(module: types.ModuleType) -> None:
            load(module)
            register_envs()

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


if "gymnasium" in sys.modules:
    register_envs()
else:
    sys.meta_path.insert(0, _RegisterWhenGymnasiumLoads())
