"""What a cold numba cache costs: CPU seconds to compile the env and oracle kernels.

Every fresh checkout (CI, a new machine, any edit of a kernel source) compiles the kernels once;
the fast test suite pays it inside its 3-minute budget. Each row runs in a child process with an
empty ``NUMBA_CACHE_DIR`` and times (``time.process_time``) the first use of one entry point,
after the ones above it in the same process (callees already compiled are shared, as in a run):

1. a ``TradingEnv`` (single env) stepping the linear contract, then the inverse one;
2. the native VecEnv (64 envs) with int64 actions (discrete agents), then float32 (SAC);
3. the oracle's dynamic programme on a 300-bar episode.

Run: ``python -m experiments.benchmarks compile``.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

from experiments.benchmarks.readme import write_section

ROOT = Path(__file__).resolve().parents[2]

CHILD = r"""
import json, time
import numpy as np
from experiments.benchmarks.bench_env import synthetic
from cryptotrade.env import EnvFactory, EnvSettings, TradingEnv, WeightedReward
from cryptotrade.evaluation.oracle import solve_oracle

data = synthetic(400, seed=3)
rows = []


def timed(label, fn):
    c0 = time.process_time()
    fn()
    rows.append((label, time.process_time() - c0))


def single(contract):
    cash = 1.0 if contract == "inverse" else 10_000.0
    settings = EnvSettings(window=5, action_mode="discrete3", contract=contract,
                           episode_length=30, initial_cash=cash)
    env = TradingEnv(data, WeightedReward(), settings, evaluation=True)
    env.reset(seed=0)
    for _ in range(5):
        env.step(env.action_space.sample())
    return env


def vec(mode, dtype):
    factory = EnvFactory(window=5, action_mode=mode, episode_length=30, n_envs=64,
                         vectorized=True)
    venv = factory.make_vec(data, WeightedReward(), seed=5)
    venv.reset()
    for _ in range(5):
        venv.step(np.array([venv.action_space.sample() for _ in range(64)]).astype(dtype))


timed("TradingEnv, linear contract", lambda: single("linear"))
timed("TradingEnv, inverse contract (after linear)", lambda: single("inverse"))
timed("native VecEnv, linear, int64 actions", lambda: vec("discrete3", np.int64))
timed("native VecEnv, linear, float32 actions (after int64)", lambda: vec("continuous", np.float32))
oracle_env = TradingEnv(synthetic(300, seed=3), WeightedReward(),
                        EnvSettings(window=5, action_mode="discrete3", episode_length=None),
                        evaluation=True)
oracle_env.reset(seed=0)
timed("oracle DP, 300 bars (after the envs)", lambda: solve_oracle(oracle_env))
print(json.dumps(rows))
"""


def measure() -> list[tuple[str, float]]:
    """Run the child once with an empty numba cache; ``[(row, CPU seconds)]``."""
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache, "PYTHONWARNINGS": "ignore"}
        proc = subprocess.run(
            [sys.executable, "-c", CHILD], cwd=ROOT, env=env, capture_output=True, text=True,
            check=True, timeout=1800,
        )  # fmt: skip
    return [(label, float(cpu)) for label, cpu in json.loads(proc.stdout.splitlines()[-1])]


def main() -> None:
    rows = measure()
    total = sum(cpu for _, cpu in rows)
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; one child process, empty numba cache.",
        "",
        "| first use of | compile CPU-s |",
        "|---|---:|",
        *(f"| {label} | {cpu:.1f} |" for label, cpu in rows),
        f"| **total** | **{total:.1f}** |",
    ]
    write_section("compile", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
