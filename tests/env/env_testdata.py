"""Tiny hand-made MarketData for the env tests (imported by the tests in this folder)."""

from __future__ import annotations

import numpy as np

from cryptotrade.data.market_data import MarketData


def bars(
    open_: list[float],
    close: list[float],
    high: list[float] | None = None,
    low: list[float] | None = None,
    funding: list[float] | None = None,
    features: np.ndarray | None = None,
) -> MarketData:
    """MarketData from explicit prices; high/low default to max/min of open and close."""
    o = np.asarray(open_, dtype=np.float64)
    c = np.asarray(close, dtype=np.float64)
    n = len(o)
    h = np.maximum(o, c) if high is None else np.asarray(high, dtype=np.float64)
    lo = np.minimum(o, c) if low is None else np.asarray(low, dtype=np.float64)
    f = np.zeros(n) if funding is None else np.asarray(funding, dtype=np.float64)
    feats = np.zeros((n, 1), dtype=np.float32) if features is None else features
    ts = np.datetime64("2024-01-01T00:00", "ns") + np.arange(n) * np.timedelta64(1, "h")
    names = tuple(f"f{i}" for i in range(feats.shape[1]))
    return MarketData("test", ts, o, h, lo, c, np.ones(n), feats.astype(np.float32), names, f)


def random_walk(n: int = 400, n_features: int = 3, seed: int = 0) -> MarketData:
    """A geometric random walk with funding every 8 bars and random features."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    open_ = np.r_[100.0, close[:-1]] * np.exp(rng.normal(0.0, 0.001, n))
    high = np.maximum(open_, close) * (1.0 + rng.uniform(0.0, 0.005, n))
    low = np.minimum(open_, close) * (1.0 - rng.uniform(0.0, 0.005, n))
    funding = np.where(np.arange(n) % 8 == 0, rng.normal(0.0001, 0.0001, n), 0.0)
    feats = rng.normal(size=(n, n_features)).astype(np.float32)
    return bars(list(open_), list(close), list(high), list(low), list(funding), feats)
