"""cryptotrade: config-driven, leak-free reinforcement-learning experiments on crypto markets."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def _key_numba_cache_by_source() -> None:
    """Point numba's on-disk cache at a folder named by a hash of every module that uses numba.

    ``@njit(cache=True)`` invalidates a cached kernel only when *its own* file changes, not when
    a kernel it calls in another module does (editing ``market/account.py`` would leave the old
    code compiled into ``env/core.py``'s cached kernels). A folder per source hash makes any
    kernel edit recompile everything once. ``NUMBA_CACHE_DIR`` set by the user wins.
    """
    if "NUMBA_CACHE_DIR" in os.environ:
        return
    package = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        text = path.read_bytes()
        if b"numba" in text:
            digest.update(path.relative_to(package).as_posix().encode() + b"\0" + text)
    os.environ["NUMBA_CACHE_DIR"] = str(
        package.parent / ".cache" / "numba" / digest.hexdigest()[:16]
    )


_key_numba_cache_by_source()

ENV_ID = "cryptotrade/Trading-v0"


def register_envs() -> None:
    """Register :class:`~cryptotrade.env.TradingEnv` with gymnasium as ``cryptotrade/Trading-v0``.

    Runs at ``import cryptotrade``, so ``gymnasium.make("cryptotrade/Trading-v0")`` works after
    it (with no ``data`` the env trades the default synthetic market). The entry point is a
    string: the env module and its numba kernels load only when an env is made.
    """
    import gymnasium

    if ENV_ID not in gymnasium.registry:
        gymnasium.register(id=ENV_ID, entry_point="cryptotrade.env.trading_env:TradingEnv")


register_envs()
