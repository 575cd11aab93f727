"""The observation space that carries its own layout (window x features, then account).

Sequence feature extractors need to know how the flat observation splits into a
``(window, num_features)`` block and the account features. The feature count depends on the
data, so the layout travels with the space rather than the config: :class:`WindowedBox` is a
plain float32 :class:`gymnasium.spaces.Box` (``MlpPolicy`` and every SB3 wrapper treat it as
one) with three more attributes. It pickles with a saved SB3 model (the class is referenced by
its module path) and survives ``Monitor``, ``DummyVecEnv`` and ``model.load``, which keep the
space object they are given.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces


class WindowedBox(spaces.Box):
    """A flat observation ``[window x num_features feature rows, account_size account values]``.

    Args:
        window: Feature rows per observation (oldest first).
        num_features: Features per row.
        account_size: Account values after the rows.
        seed: Seeds the space's sampler.
    """

    def __init__(
        self, window: int, num_features: int, account_size: int, seed: int | None = None
    ) -> None:
        # finite bounds: gymnasium's checker flags infinite ones; values are never near them
        big = float(np.finfo(np.float32).max)
        size = window * num_features + account_size
        super().__init__(-big, big, shape=(size,), dtype=np.float32, seed=seed)
        self.window = int(window)
        self.num_features = int(num_features)
        self.account_size = int(account_size)

    @property
    def layout(self) -> tuple[int, int, int]:
        """``(window, num_features, account_size)``."""
        return self.window, self.num_features, self.account_size

    def __eq__(self, other: Any, /) -> bool:
        # two windowed spaces of equal size but different layout are different observations
        same_layout = not isinstance(other, WindowedBox) or other.layout == self.layout
        return super().__eq__(other) and same_layout

    __hash__ = None  # type: ignore[assignment]  # mutable, like Box

    def __repr__(self) -> str:
        return (
            f"WindowedBox(window={self.window}, num_features={self.num_features}, "
            f"account_size={self.account_size})"
        )
