"""Compile the suite's numba kernels into numba's on-disk cache (``warm_kernels.py GROUP``).

``tests/conftest.py`` starts one process per group when the suite runs on several xdist workers
and the cache is cold (a clean checkout): the kernels then compile once, on both cores, while the
workers import and collect, instead of in whichever tests call them first, where two workers
may compile the same kernel at the same time. The groups take about the same CPU time. Run
alone, it only fills the cache (``cache=True`` kernels; the folder is ``NUMBA_CACHE_DIR``, set
by ``import cryptotrade``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

GROUPS = ("env", "vec")


def _data(n: int = 200):
    """A small random walk with funding, as the env tests build it."""
    sys.path.insert(0, str(Path(__file__).resolve().parent / "env"))
    from env_testdata import random_walk

    return random_walk(n, seed=3)


def warm_env() -> None:
    """The single-env step of both contract types and the oracle's dynamic programme."""
    from cryptotrade.env import EnvSettings, TradingEnv, WeightedReward
    from cryptotrade.evaluation.oracle import solve_oracle

    data = _data()
    for contract in ("linear", "inverse"):
        settings = EnvSettings(window=5, contract=contract, episode_length=30)
        env = TradingEnv(data, WeightedReward(), settings, evaluation=True)
        env.reset(seed=0)
        env.step(env.action_space.sample())
    solve_oracle(env)


def warm_vec() -> None:
    """The native VecEnv step of both contract types, the synthetic market, every shipped
    feature set and the outlier scan."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from cryptotrade.config import CONF_DIR, schema_from_target
    from cryptotrade.data.outliers import find_jumps
    from cryptotrade.data.synthetic import SyntheticSource
    from cryptotrade.env import EnvFactory, WeightedReward

    data = _data()
    for contract in ("linear", "inverse"):
        venv = EnvFactory(window=5, contract=contract, episode_length=30, n_envs=2).make_vec(
            data, WeightedReward(), seed=0
        )
        venv.reset()
        venv.step(np.array([venv.action_space.sample() for _ in range(2)]))
    bars = SyntheticSource(num_samples=1500, timeframe="15m", seed=7, funding=True).load()
    for path in sorted((CONF_DIR / "features").glob("*.yaml")):
        node = OmegaConf.load(path)
        node.pop("defaults", None)
        schema = schema_from_target("F", node._target_, given=OmegaConf.to_container(node))
        features = instantiate(OmegaConf.merge(OmegaConf.structured(schema), node))
        features.compute(bars)
    find_jumps(bars[["open", "high", "low", "close"]].to_numpy(), 8.0)


if __name__ == "__main__":
    for group in sys.argv[1:]:
        {"env": warm_env, "vec": warm_vec}[group]()
