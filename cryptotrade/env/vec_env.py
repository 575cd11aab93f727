"""A native SB3 VecEnv that steps all envs in one numba call."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvStepReturn

from cryptotrade.data.market_data import MarketData
from cryptotrade.env.compiled import CompiledMarket
from cryptotrade.env.core import N_STATE, build_obs_nb, reset_env_nb
from cryptotrade.env.reward import COMPONENTS, N_COMPONENTS, WeightedReward
from cryptotrade.env.settings import EnvSettings
from cryptotrade.env.steps import STEP_VEC
from cryptotrade.env.trading_env import EPISODE_KEYS
from cryptotrade.market.account import MAX_TRADES_PER_STEP, N_TRADE_FIELDS

_EMPTY_INFO: Mapping[str, Any] = MappingProxyType({})


class NativeVecEnv(VecEnv):
    """``n_envs`` :class:`~cryptotrade.env.trading_env.TradingEnv` s stepped together by one numba
    call (``step_vec_nb``).

    Env ``i`` follows exactly the trajectory of ``TradingEnv(data, reward, settings)`` reset with
    ``seed + i`` (the same kernel, and episode starts drawn from the same per-env generator),
    so it is a drop-in replacement for ``DummyVecEnv`` over Monitor-wrapped TradingEnvs:
    auto-reset, ``terminal_observation`` and ``TimeLimit.truncated`` in the infos, and
    ``info["episode"] = {"r", "l", "t"}`` plus ``episode/reward/<component>`` sums at episode end.
    Per-step component values are not put in infos (it would cost more than the step); use a
    single :class:`~cryptotrade.env.trading_env.TradingEnv` to inspect them. The info of an env
    whose episode did not end is a shared, read-only empty mapping (``info.get`` and ``in`` work;
    assigning raises).

    Args:
        data: The split to trade.
        reward: Reward weights; default pnl only.
        settings: Market/episode settings.
        n_envs: Number of envs.
        market: An already compiled market (instead of ``data``, ``reward``, ``settings``),
            e.g. one shared with evaluation envs.
    """

    def __init__(
        self,
        data: MarketData | None = None,
        reward: WeightedReward | None = None,
        settings: EnvSettings | None = None,
        n_envs: int = 8,
        *,
        market: CompiledMarket | None = None,
    ) -> None:
        if market is None:
            if data is None:
                raise TypeError("NativeVecEnv needs data (or a compiled market=)")
            market = CompiledMarket.build(data, reward, settings)
        elif data is not None or reward is not None or settings is not None:
            raise TypeError("pass either market= or data/reward/settings, not both")
        else:
            market.settings.check_data(market.data, evaluation=False)
        self.market = market
        self.render_mode = None
        super().__init__(n_envs, market.observation_space, market.action_space)
        self.window, self.num_features = market.window, market.num_features
        self.account_size, self.initial_cash = market.account_size, market.initial_cash
        self._continuous = isinstance(market.action_space, spaces.Box)
        size = market.obs_size
        self._states = np.zeros((n_envs, N_STATE))
        self._ret_bufs = np.zeros((n_envs, market.reward.sharpe_window))
        self._comps = np.zeros((n_envs, N_COMPONENTS))
        self._comp_sums = np.zeros((n_envs, N_COMPONENTS))
        self._trades = np.zeros((n_envs, MAX_TRADES_PER_STEP, N_TRADE_FIELDS))
        self._obs = np.zeros((n_envs, size), dtype=np.float32)
        self._term_obs = np.zeros((n_envs, size), dtype=np.float32)
        self._rewards = np.zeros(n_envs, dtype=np.float32)
        self._dones = np.zeros(n_envs, dtype=np.bool_)
        self._truncated = np.zeros(n_envs, dtype=np.bool_)
        self._ep_returns = np.zeros(n_envs)
        self._ep_lengths = np.zeros(n_envs)
        self._next_start = np.zeros(n_envs, dtype=np.int64)
        self._next_end = np.zeros(n_envs, dtype=np.int64)
        self._rngs: list[np.random.Generator] = [seeding.np_random(None)[0] for _ in range(n_envs)]
        for i in range(n_envs):  # an unseeded reset() starts each env at its drawn next start
            self._draw_next(i)
        self._actions: np.ndarray = np.zeros(n_envs)
        self._t0 = np.full(n_envs, time.perf_counter())
        # envs whose episode did not end get a shared read-only empty mapping instead of a fresh
        # dict each (64 dicts cost ~1.5 us per step, a tenth of the whole step); writing into it
        # raises, so a wrapper that mutates infos cannot leak values between envs
        self._no_infos: list[Any] = [_EMPTY_INFO] * n_envs
        self._kernel_args = (
            self._states,
            self._ret_bufs,
            self._comps,
            self._comp_sums,
            market.params,
            market.weights,
            market.prices,
            market.features,
            self._next_start,
            self._next_end,
            self._trades,
            self._obs,
            self._rewards,
            self._dones,
            self._truncated,
            self._term_obs,
            self._ep_returns,
            self._ep_lengths,
        )
        self._step_kernel = STEP_VEC[market.inverse]

    # ------------------------------------------------------------------ episode starts
    def _draw_next(self, i: int) -> None:
        """Draw env ``i``'s next episode from its generator, as TradingEnv.reset would."""
        self._next_start[i], self._next_end[i] = self.market.episode_bounds(self._rngs[i], False)

    def reset(self) -> np.ndarray:
        market = self.market
        for i in range(self.num_envs):
            if self._seeds[i] is not None:
                self._rngs[i] = seeding.np_random(self._seeds[i])[0]
                self._draw_next(i)
            # unseeded: the start drawn after the last reset is the draw TradingEnv.reset()
            # would make now; drawing again would skip one and leave env i's sequence
            reset_env_nb(
                self._states,
                self._ret_bufs,
                i,
                market.params,
                int(self._next_start[i]),
                int(self._next_end[i]),
            )
            build_obs_nb(
                self._obs,
                i,
                self._states,
                i,
                market.params,
                market.features,
                market.close,
                market.inverse,
            )
            self._draw_next(i)  # the start the kernel uses when this env next auto-resets
        self._comp_sums[:] = 0.0
        self._t0[:] = time.perf_counter()
        self._reset_seeds()
        self._reset_options()
        return self._obs.copy()

    # ------------------------------------------------------------------ checkpoints
    _STATE_ARRAYS = (
        "_states", "_ret_bufs", "_comps", "_comp_sums", "_obs", "_term_obs", "_rewards",
        "_dones", "_truncated", "_ep_returns", "_ep_lengths", "_next_start", "_next_end",
    )  # fmt: skip

    def get_state(self) -> dict[str, Any]:
        """Everything that decides the envs' next steps: each env's account and episode
        position, its next episode's bounds and its generator (saved in a checkpoint, so a
        resumed run continues these episodes instead of starting new ones)."""
        arrays = {name: getattr(self, name).copy() for name in self._STATE_ARRAYS}
        rngs = [rng.bit_generator.state for rng in self._rngs]
        return {"arrays": arrays, "rngs": rngs}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_state` (in place: the kernel holds these arrays)."""
        for name, value in state["arrays"].items():
            getattr(self, name)[...] = value
        for rng, rng_state in zip(self._rngs, state["rngs"], strict=True):
            rng.bit_generator.state = rng_state

    # ------------------------------------------------------------------ stepping
    def step_async(self, actions: np.ndarray) -> None:
        # kept in SB3's dtype (int64 / float32): the kernel is compiled for each, no conversion
        actions = np.asarray(actions)
        self._actions = actions.reshape(self.num_envs) if actions.ndim != 1 else actions

    def step_wait(self) -> VecEnvStepReturn:
        n_done = self._step_kernel(self._actions, *self._kernel_args)
        if n_done < 0:  # nothing was stepped
            i = -1 - n_done
            raise ValueError(
                f"action {self._actions[i].tolist()!r} of env {i} is outside the action space "
                f"{self.action_space}"
            )
        if not n_done:
            return self._obs.copy(), self._rewards.copy(), self._dones.copy(), list(self._no_infos)
        infos: list[Any] = list(self._no_infos)
        now = time.perf_counter()
        for i in np.flatnonzero(self._dones).tolist():
            info = infos[i] = {}
            info["terminal_observation"] = self._term_obs[i].copy()
            info["TimeLimit.truncated"] = bool(self._truncated[i])
            info["episode"] = {
                "r": round(float(self._ep_returns[i]), 6),  # as Monitor rounds it
                "l": int(self._ep_lengths[i]),
                "t": round(now - self._t0[i], 6),
            }
            info.update(zip(EPISODE_KEYS, self._comp_sums[i].tolist(), strict=True))
            self._t0[i] = now
            self._draw_next(i)
        return self._obs.copy(), self._rewards.copy(), self._dones.copy(), infos

    # ------------------------------------------------------------------ VecEnv plumbing
    def close(self) -> None:
        return None

    def _indices(self, indices: VecEnvIndices) -> Iterable[int]:
        if indices is None:
            return range(self.num_envs)
        if isinstance(indices, int):
            return [indices]
        return indices

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        if attr_name == "render_mode":
            return [None for _ in self._indices(indices)]
        # every env shares one configuration: its attributes are this object's or the market's
        owner = self if hasattr(self, attr_name) else self.market
        value = getattr(owner, attr_name)
        return [value for _ in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        raise AttributeError(f"NativeVecEnv shares one configuration; cannot set {attr_name!r}")

    def env_method(
        self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **kwargs: Any
    ) -> list[Any]:
        raise AttributeError(f"NativeVecEnv has no per-env objects to call {method_name!r} on")

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        # episode statistics are reported as a Monitor would, so SB3 treats it as monitored
        from stable_baselines3.common.monitor import Monitor

        return [wrapper_class is Monitor for _ in self._indices(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [None for _ in range(self.num_envs)]


__all__ = ["COMPONENTS", "NativeVecEnv"]
