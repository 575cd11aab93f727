"""Environment benchmark: cryptotrade's TradingEnv and native VecEnv vs gym-anytrading and
gym-trading-env on the same synthetic market (100,000 bars, 10 features, window 30, random
actions), plus PPO rollout collection and end-to-end PPO training fps.

Run: ``python -m experiments.benchmarks env`` (needs the ``bench`` extra). Writes the ``env``
section of experiments/benchmarks/README.md.
"""

from __future__ import annotations

import os
import platform
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from cryptotrade.data.market_data import MarketData
from cryptotrade.env import EnvFactory, WeightedReward
from cryptotrade.env.steps import step_single_nb

N_BARS, N_FEATURES, WINDOW = 100_000, 10, 30
SINGLE_STEPS, VEC_STEPS, N_VEC, REPEATS = 20_000, 300, 64, 5


def synthetic(n: int = N_BARS, nf: int = N_FEATURES, seed: int = 0) -> MarketData:
    """A geometric random walk with OHLC, 8-hourly funding and standard-normal features."""
    rng = np.random.default_rng(seed)
    close = 30_000.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    open_ = np.r_[30_000.0, close[:-1]]
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.004, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.004, n))
    funding = np.where(np.arange(n) % 8 == 0, 0.0001, 0.0)
    ts = np.datetime64("2020-01-01", "ns") + np.arange(n) * np.timedelta64(1, "h")
    feats = rng.normal(size=(n, nf)).astype(np.float32)
    names = tuple(f"feature_{i}" for i in range(nf))
    return MarketData("bench", ts, open_, high, low, close, np.ones(n), feats, names, funding)


def frame(md: MarketData) -> pd.DataFrame:
    """The same bars as a DataFrame for the peers (both capitalisations they expect)."""
    df = pd.DataFrame(
        {"open": md.open, "high": md.high, "low": md.low, "close": md.close, "volume": md.volume},
        index=pd.DatetimeIndex(md.timestamps, name="date"),
    )
    for i, name in enumerate(md.feature_names):
        df[name] = md.features[:, i]
    for col in ("Open", "High", "Low", "Close", "Volume"):
        df[col] = df[col.lower()]
    return df


def best_rates(runners: dict[str, Callable[[], int]], repeats: int = REPEATS) -> dict[str, float]:
    """Best-of-``repeats`` items/s of each runner (which returns the items it processed).

    The runners are warmed up once, then timed in turns (A, B, C, A, B, C, ...): the machine's
    speed drifts by up to 2x over minutes here, and interleaving keeps the ratios fair.
    """
    for run in runners.values():
        run()  # warm-up: numba compilation, caches
    best = dict.fromkeys(runners, 0.0)
    for _ in range(repeats):
        for name, run in runners.items():
            t0 = time.perf_counter()
            n = run()
            best[name] = max(best[name], n / (time.perf_counter() - t0))
    return best


def single_env_runner(env: Any, n_actions: int, steps: int = SINGLE_STEPS) -> Callable[[], int]:
    actions = np.random.default_rng(0).integers(0, n_actions, steps)
    env.reset(seed=0)

    def run() -> int:
        for a in actions:
            out = env.step(int(a))
            if out[2] or out[3]:
                env.reset()
        return steps

    return run


class FloorEnv:
    """Does nothing but what any step with our API must: copy the observation, build the info.

    Its rate is the ceiling for a Python ``TradingEnv.step`` with this observation and the
    15-key info of the pipeline contract, however fast the market kernel.
    """

    def __init__(self, size: int) -> None:
        from cryptotrade.env.trading_env import STEP_KEYS

        self._keys = STEP_KEYS
        self._obs = np.zeros(size, dtype=np.float32)
        self._vec = np.zeros(len(STEP_KEYS))

    def reset(self, seed: int | None = None) -> tuple[np.ndarray, dict[str, float]]:
        return self._obs.copy(), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, float]]:
        info = dict(zip(self._keys, self._vec.tolist(), strict=True))
        return self._obs.copy(), 0.0, False, False, info


def peers(md: MarketData) -> dict[str, Any]:
    """The peer envs on the same data; missing packages are reported, not fatal."""
    df = frame(md)
    cols = list(md.feature_names)
    out: dict[str, Any] = {}
    try:
        from gym_anytrading.envs import StocksEnv

        class AnyTradingStocks(StocksEnv):  # the stocks env, fed our 10 features
            def _process_data(self):  # type: ignore[override]
                lo, hi = self.frame_bound[0] - self.window_size, self.frame_bound[1]
                prices = self.df["Close"].to_numpy()[lo:hi].astype(np.float32)
                return prices, self.df[cols].to_numpy()[lo:hi].astype(np.float32)

        out["gym-anytrading"] = (
            AnyTradingStocks,
            dict(df=df, window_size=WINDOW, frame_bound=(WINDOW, len(df))),
            2,
        )
    except ImportError as exc:  # pragma: no cover - depends on the bench extra
        out["gym-anytrading"] = exc
    try:
        saved = list(warnings.filters)  # gym_trading_env turns every warning into an error
        try:
            from gym_trading_env.environments import TradingEnv as GTETradingEnv
        finally:
            warnings.filters[:] = saved
        out["gym-trading-env"] = (
            GTETradingEnv,
            dict(df=df, positions=[-1, 0, 1], windows=WINDOW, trading_fees=0.0004, verbose=0),
            3,
        )
    except ImportError as exc:  # pragma: no cover
        out["gym-trading-env"] = exc
    return out


def kernel_runners(md: MarketData, reward: WeightedReward) -> dict[str, Callable[[], int]]:
    """The numba kernels alone (no Gymnasium/SB3 Python around them)."""
    env = EnvFactory(window=WINDOW, episode_length=None).make(md, reward, seed=0)
    env.reset(seed=0)
    actions = np.random.default_rng(0).integers(0, 3, SINGLE_STEPS).astype(np.float64)
    args = env._step_args

    def single() -> int:
        env.reset(seed=0)
        for a in actions:
            step_single_nb(a, *args)
        return SINGLE_STEPS

    venv = EnvFactory(window=WINDOW, episode_length=720, n_envs=N_VEC, vectorized=True).make_vec(
        md, reward, seed=0
    )
    venv.reset()
    vec_actions = np.random.default_rng(0).integers(0, 3, (VEC_STEPS, N_VEC))
    step_vec = venv._step_kernel

    def vec() -> int:
        for a in vec_actions:
            step_vec(a, *venv._kernel_args)
        return VEC_STEPS * N_VEC

    return {"kernel single": single, "kernel vec": vec}


def vec_runner(venv: Any, steps: int = VEC_STEPS) -> Callable[[], int]:
    venv.reset()
    rng = np.random.default_rng(0)
    actions = rng.integers(0, venv.action_space.n, (steps, venv.num_envs))

    def run() -> int:
        for a in actions:
            venv.step(a)
        return steps * venv.num_envs

    return run


def ppo_rollout_seconds(venv: Any, n_steps: int) -> float:
    """Best time of PPO's ``collect_rollouts`` (policy forward + env steps) over ``venv``."""
    from stable_baselines3 import PPO

    model = PPO("MlpPolicy", venv, n_steps=n_steps, batch_size=512, seed=0, device="cpu")
    _, callback = model._setup_learn(10**9, None)
    callback.on_training_start(locals(), globals())
    best = np.inf
    for _ in range(REPEATS + 1):
        t0 = time.perf_counter()
        model.collect_rollouts(model.env, callback, model.rollout_buffer, n_rollout_steps=n_steps)
        best = min(best, time.perf_counter() - t0)
    return float(best)


def ppo_fps(venv: Any, timesteps: int, **kwargs: Any) -> float:
    """End-to-end ``PPO.learn`` timesteps per second."""
    from stable_baselines3 import PPO

    model = PPO("MlpPolicy", venv, seed=0, device="cpu", **kwargs)
    t0 = time.perf_counter()
    model.learn(total_timesteps=timesteps)
    return model.num_timesteps / (time.perf_counter() - t0)


def main() -> None:
    import torch
    from stable_baselines3.common.env_util import make_vec_env

    torch.set_num_threads(1)  # faster than two for these small MLPs on this machine
    md = synthetic()
    reward = WeightedReward()
    factory = EnvFactory(window=WINDOW, episode_length=720, n_envs=N_VEC, vectorized=False)
    rows: list[str] = []

    # ---- single env steps/s
    runners = {
        "cryptotrade TradingEnv (discrete3)": single_env_runner(
            factory.make(md, reward, seed=0), 3
        ),
        "floor: obs copy + 15-key info dict, no market": single_env_runner(
            FloorEnv(WINDOW * N_FEATURES + 4), 3
        ),
    }
    peer_envs = peers(md)
    notes = []
    for name, spec in peer_envs.items():
        if isinstance(spec, Exception):
            notes.append(f"{name} not installed ({spec}); `pip install -e '.[bench]'`")
            continue
        cls, kwargs, n_actions = spec
        runners[name] = single_env_runner(cls(**kwargs), n_actions)
    single = best_rates(runners)
    ours = single["cryptotrade TradingEnv (discrete3)"]
    targets = {"gym-anytrading": 2.0, "gym-trading-env": 20.0}
    rows.append("| env | steps/s | cryptotrade is x faster | target | met |")
    rows.append("|---|---:|---:|---:|---|")
    for name, rate in single.items():
        if name in targets:
            ratio = ours / rate
            met = "yes" if ratio >= targets[name] else "no"
            rows.append(f"| {name} | {rate:,.0f} | {ratio:.1f}x | {targets[name]:.0f}x | {met} |")
        else:
            rows.append(f"| {name} | {rate:,.0f} | - | - | - |")
    single_table = "\n".join(rows)

    # ---- vectorised env-steps/s
    native = EnvFactory(window=WINDOW, episode_length=720, n_envs=N_VEC, vectorized=True)
    vec = best_rates(
        {
            "native": vec_runner(native.make_vec(md, reward, seed=0)),
            "dummy": vec_runner(factory.make_vec(md, reward, seed=0)),
            **kernel_runners(md, reward),
        }
    )
    native_rate, dummy_rate = vec["native"], vec["dummy"]
    kernel_single, kernel_vec = vec["kernel single"], vec["kernel vec"]
    vec_table = "\n".join(
        [
            "| vectorisation (64 envs) | env-steps/s | target |",
            "|---|---:|---|",
            f"| native numba VecEnv | {native_rate:,.0f} | 5,000,000 "
            f"({'met' if native_rate >= 5e6 else 'not met'}) |",
            f"| SB3 DummyVecEnv of Monitor(TradingEnv) | {dummy_rate:,.0f} | - |",
            f"| ratio native / Dummy | {native_rate / dummy_rate:.1f}x | - |",
            f"| numba kernel alone, 64 envs (no Python around it) | {kernel_vec:,.0f} | - |",
            f"| numba kernel alone, single env | {kernel_single:,.0f} | - |",
        ]
    )

    # ---- PPO rollout collection, 64 envs x 64 steps
    t_native = ppo_rollout_seconds(native.make_vec(md, reward, seed=0), 64)
    t_dummy = ppo_rollout_seconds(factory.make_vec(md, reward, seed=0), 64)
    samples = 64 * N_VEC
    ratio = t_dummy / t_native
    rollout_table = "\n".join(
        [
            "| PPO rollout collection (64 envs x 64 steps, MLP) | seconds | samples/s |",
            "|---|---:|---:|",
            f"| native VecEnv | {t_native:.3f} | {samples / t_native:,.0f} |",
            f"| DummyVecEnv | {t_dummy:.3f} | {samples / t_dummy:,.0f} |",
            f"| speed-up (target 2x) | {ratio:.1f}x ({'met' if ratio >= 2 else 'not met'}) | |",
        ]
    )

    # ---- end-to-end PPO training fps
    train_rows = [
        "| PPO training | n_envs | n_steps | batch_size | fps |",
        "|---|---:|---:|---:|---:|",
    ]
    if not isinstance(peer_envs.get("gym-anytrading"), Exception):
        cls, kwargs, _ = peer_envs["gym-anytrading"]
        venv = make_vec_env(cls, n_envs=1, env_kwargs={**kwargs, "render_mode": None})
        fps = ppo_fps(venv, 4096)
        train_rows.append(f"| gym-anytrading stocks, SB3 defaults | 1 | 2048 | 64 | {fps:,.0f} |")
    del peer_envs
    one = EnvFactory(window=WINDOW, episode_length=720, n_envs=1, vectorized=False)
    fps = ppo_fps(one.make_vec(md, reward, seed=0), 4096)
    train_rows.append(f"| cryptotrade DummyVecEnv, SB3 defaults | 1 | 2048 | 64 | {fps:,.0f} |")
    configs = [
        (False, N_VEC, 64, 512),
        (True, N_VEC, 64, 64),
        (True, N_VEC, 64, 512),
        (True, N_VEC, 64, 2048),
        (True, 8, 256, 64),
        (True, 8, 256, 256),
    ]
    train_fps: dict[tuple[bool, int, int, int], float] = {}
    for vectorized, n_envs, n_steps, batch in configs:
        fac = EnvFactory(window=WINDOW, episode_length=720, n_envs=n_envs, vectorized=vectorized)
        fps = ppo_fps(
            fac.make_vec(md, reward, seed=0),
            2 * n_steps * n_envs,
            n_steps=n_steps,
            batch_size=batch,
        )
        train_fps[(vectorized, n_envs, n_steps, batch)] = fps
        kind = "native VecEnv" if vectorized else "DummyVecEnv"
        train_rows.append(f"| cryptotrade {kind} | {n_envs} | {n_steps} | {batch} | {fps:,.0f} |")
    train_table = "\n".join(train_rows)

    machine = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, numpy {np.__version__}, "
        f"torch {torch.__version__} (1 thread)"
    )
    anytrading = single.get("gym-anytrading", float("nan"))
    floor = single["floor: obs copy + 15-key info dict, no market"]
    gte = single.get("gym-trading-env", float("nan"))
    best_cfg = max(train_fps, key=lambda k: train_fps[k])
    verdict = "met" if ours / anytrading >= 2 else "not met; the gap is that dict and copy"
    default_fps = train_fps[(True, 8, 256, 256)]  # conf/env + conf/agent/ppo.yaml defaults
    small_batch_fps = train_fps[(True, 8, 256, 64)]
    markdown = f"""
Machine: {machine}. Data: {N_BARS:,} synthetic bars, {N_FEATURES} features, window {WINDOW},
random actions; best of {REPEATS} interleaved runs after a warm-up (this VM's speed drifts by up to
2x within minutes, so compare ratios from one run, not absolute numbers across runs). Single env:
{SINGLE_STEPS:,} steps; vectorised: {VEC_STEPS} steps x {N_VEC} envs. cryptotrade runs its full
market model (fills at the next open with slippage, fees, funding, liquidation checks, 10 reward
components, trade log); the peers fill at the close they have just shown the agent. The peers
get the same bars and features (gym-anytrading's stocks env is fed the 10 features instead of
its two price columns).

{single_table}

{vec_table}

{rollout_table}

{train_table}

**Single env.** The step itself is one numba call: alone it runs {kernel_single:,.0f} steps/s,
{kernel_single / anytrading:.1f}x gym-anytrading's whole step and {kernel_single / gte:.0f}x
gym-trading-env's. The rest of `TradingEnv.step` is CPython work the Gymnasium API and our info
contract require: building the 15-key info dict (equity, position, units, price, inventory and
the 10 `reward/<component>` values) and copying the observation out of the kernel's buffer. A
step that does only that and no market at all (the "floor" row) runs {floor:,.0f} steps/s, just
{floor / anytrading:.1f}x gym-anytrading, which returns a view of its feature array and a 3-key
info. So the 2x target is {verdict}. The 20x over gym-trading-env would need
{1e6 / (20 * gte):.2f} us per step, below that floor ({1e6 / floor:.2f} us); we are
{ours / gte:.1f}x.

**Native VecEnv.** All {N_VEC} envs step in one numba call ({kernel_vec:,.0f} env-steps/s for the
kernel alone, {"meeting" if kernel_vec >= 5e6 else "short of"} the 5M target on this run);
`VecEnv.step` adds SB3's per-step Python (copies of obs/rewards/dones, the infos list), giving
{native_rate:,.0f}. The kernels run without numba's reference counting and the per-env step is
inlined into the loop over envs (`cryptotrade.market.jit`); each of the two made them 2-5x
faster. It is {native_rate / dummy_rate:.0f}x SB3's DummyVecEnv over the same TradingEnvs and
{ratio:.1f}x faster in PPO rollout collection (target 2x).

**Defaults chosen from this table.** At 1 env PPO spends almost all its time in gradient steps,
so the env is a few percent of training time and our env and gym-anytrading train at the same
fps. Many envs pay off only with large batches: the best here is native VecEnv, n_envs
{best_cfg[1]}, n_steps {best_cfg[2]}, batch_size {best_cfg[3]} ({train_fps[best_cfg]:,.0f} fps).
`conf/env/*.yaml` therefore default to `vectorized: true` with `n_envs: 8`, and
`conf/agent/ppo.yaml` to n_steps 256 and batch_size 256 ({default_fps:,.0f} fps above,
{default_fps / small_batch_fps:.1f}x the same rollouts with batch 64): 2,048 samples per
update in 8 minibatches, so the default run does many updates within its short budget.
For throughput use `env.n_envs=64 agent.n_steps=64 agent.batch_size=2048` (4,096 samples per
update).

{" ".join(notes)}
""".strip()
    print(markdown)
    from experiments.benchmarks.readme import write_section

    write_section("env", markdown)


if __name__ == "__main__":
    main()
