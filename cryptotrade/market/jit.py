"""The numba decorators of the hot kernels.

``kernel`` is ``numba.njit(cache=True)`` with Numba's reference-counting runtime (NRT) switched
off (``_nrt=False``). The kernels never allocate: they only read and write arrays passed in. With
NRT on, every call that passes an array to a function numba does not inline performs atomic
increments/decrements of the array's refcount; measured here that cost 20-50 ns per call and
made a full env step 5x slower. Without NRT those updates disappear. A kernel that needs to
allocate an array must use plain ``numba.njit(cache=True)`` instead (numba refuses to compile
an allocation without NRT, so a mistake fails loudly at compile time).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numba

F = TypeVar("F", bound=Callable[..., Any])


def kernel(fn: F) -> F:
    """Compile ``fn`` as a cached, allocation-free numba kernel (see the module docstring)."""
    # `_nrt` is a real numba option that its type stubs do not list
    njit: Any = numba.njit
    compiled: F = njit(cache=True, _nrt=False)(fn)
    return compiled


def inlined_kernel(fn: F) -> F:
    """A :func:`kernel` that numba inlines into its numba callers (``inline="always"``).

    For the per-env step called in the vectorised loop: a call that is not inlined passes
    every array argument as seven scalars, which cost more than the step's arithmetic.
    """
    njit: Any = numba.njit
    compiled: F = njit(cache=True, _nrt=False, inline="always")(fn)
    return compiled
