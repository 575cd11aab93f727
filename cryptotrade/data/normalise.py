"""Feature normalisation fit on the training split only.

``minmax`` maps the training range to [0, 1], ``zscore`` subtracts the training mean and divides by
the training standard deviation, ``robust`` subtracts the median and divides by the inter-quartile
range. Statistics come from the training rows alone and are applied unchanged to val/test, so a
later split never informs an earlier one. Columns named in ``keep_raw`` pass through untouched
(e.g. an RSI already in [0, 100] you want as is, or a funding rate). A constant training column gets
scale 1 so it maps to 0 instead of dividing by zero. The fitted statistics are plain floats
(:meth:`Normaliser.state` is JSON-serialisable) and are saved with the dataset.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

METHODS = ("minmax", "zscore", "robust", "none")


class Normaliser:
    """Per-column affine normalisation ``(x - shift) / scale`` with statistics from train.

    Args:
        method: ``minmax``, ``zscore``, ``robust`` (median/IQR) or ``none``.
        keep_raw: Column names left unnormalised.
        clip: Clip normalised values to ``[-clip, clip]`` (``None`` = no clipping); outliers in
            val/test then cannot blow up a network's inputs.
    """

    def __init__(
        self,
        method: Literal["minmax", "zscore", "robust", "none"] = "zscore",
        keep_raw: list[str] | tuple[str, ...] = (),
        clip: float | None = None,
    ) -> None:
        if method not in METHODS:
            raise ValueError(f"features.normalise={method!r} is not one of {METHODS}")
        if clip is not None and clip <= 0:
            raise ValueError(f"features.clip={clip} must be > 0 or null")
        self.method = method
        self.keep_raw = tuple(keep_raw)
        self.clip = clip
        self.columns: tuple[str, ...] = ()
        self.shift = np.zeros(0)
        self.scale = np.ones(0)

    @property
    def fitted(self) -> bool:
        """Whether :meth:`fit` (or :meth:`from_state`) has run."""
        return len(self.columns) > 0

    def fit(self, train: np.ndarray, columns: list[str] | tuple[str, ...]) -> Normaliser:
        """Fit the statistics on the training rows ``train`` of shape ``(T, F)``."""
        train = np.asarray(train, dtype=np.float64)
        if train.ndim != 2 or train.shape[1] != len(columns) or train.shape[0] == 0:
            raise ValueError(
                f"Normaliser.fit got shape {train.shape} for {len(columns)} columns; "
                "need (T > 0, F)"
            )
        unknown = [c for c in self.keep_raw if c not in columns]
        if unknown:
            raise ValueError(f"features.keep_raw names unknown columns {unknown}; have {columns}")
        f = train.shape[1]
        shift, scale = np.zeros(f), np.ones(f)
        if self.method == "zscore":
            shift, scale = train.mean(axis=0), train.std(axis=0)
        elif self.method == "minmax":
            shift, scale = train.min(axis=0), train.max(axis=0) - train.min(axis=0)
        elif self.method == "robust":
            q25, q50, q75 = np.percentile(train, [25, 50, 75], axis=0)
            shift, scale = q50, q75 - q25
        scale = np.where(scale > 1e-12 * np.maximum(1.0, np.abs(shift)), scale, 1.0)
        raw = np.isin(np.asarray(columns), self.keep_raw)
        self.shift = np.where(raw, 0.0, shift)
        self.scale = np.where(raw, 1.0, scale)
        self.columns = tuple(columns)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Normalise rows ``x`` (``(T, F)``, same columns as fit) to float32."""
        if not self.fitted:
            raise RuntimeError("Normaliser.transform before fit(); fit on the training split")
        out = (np.asarray(x, dtype=np.float64) - self.shift) / self.scale
        if self.clip is not None:
            raw = np.isin(np.asarray(self.columns), self.keep_raw)
            out[:, ~raw] = np.clip(out[:, ~raw], -self.clip, self.clip)
        return out.astype(np.float32)

    def state(self) -> dict[str, Any]:
        """The fitted statistics as plain JSON types (saved with the dataset and to MLflow)."""
        return {
            "method": self.method,
            "clip": self.clip,
            "keep_raw": list(self.keep_raw),
            "columns": list(self.columns),
            "shift": [float(v) for v in self.shift],
            "scale": [float(v) for v in self.scale],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Normaliser:
        """Rebuild a fitted normaliser from :meth:`state`."""
        norm = cls(state["method"], state["keep_raw"], state["clip"])
        norm.columns = tuple(state["columns"])
        norm.shift = np.asarray(state["shift"], dtype=np.float64)
        norm.scale = np.asarray(state["scale"], dtype=np.float64)
        return norm
