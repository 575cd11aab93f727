"""EnvFactory: the ``_target_`` of ``conf/env/*.yaml``; builds single and vectorised envs."""

from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING

from cryptotrade.data.market_data import MarketData
from cryptotrade.env.compiled import CompiledMarket
from cryptotrade.env.reward import WeightedReward
from cryptotrade.env.settings import EnvSettings
from cryptotrade.env.trading_env import TradingEnv

if TYPE_CHECKING:
    from stable_baselines3.common.vec_env import VecEnv


@dataclass(frozen=True)
class EnvFactory(EnvSettings):
    """Market/episode settings plus how to vectorise (see :class:`EnvSettings` for the rest).

    Args:
        n_envs: Number of parallel envs in :meth:`make_vec`.
        vectorized: ``True``: the native numba :class:`~cryptotrade.env.vec_env.NativeVecEnv`;
            ``False``: SB3's ``DummyVecEnv`` of ``Monitor``-wrapped :class:`TradingEnv`.
    """

    n_envs: int = 8
    vectorized: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_envs < 1:
            raise ValueError(f"env.n_envs={self.n_envs} must be >= 1")

    @property
    def settings(self) -> EnvSettings:
        """The market/episode settings without the vectorisation fields."""
        names = {f.name for f in fields(EnvSettings)}
        return EnvSettings(**{k: v for k, v in asdict(self).items() if k in names})

    def make(
        self,
        data: MarketData,
        reward: WeightedReward | None = None,
        *,
        seed: int | None = None,
        evaluation: bool = False,
    ) -> TradingEnv:
        """One :class:`TradingEnv` over ``data``.

        Args:
            data: The split to trade.
            reward: Reward weights (``instantiate(cfg.reward)``); default: pnl only.
            seed: Seeds the env's generator (``reset(seed=seed)`` still re-seeds it).
            evaluation: Whole split from the first full window to the last bar, no random start.
        """
        env = TradingEnv(data, reward, self.settings, evaluation=evaluation)
        if seed is not None:
            env.reset(seed=seed)
        return env

    def make_vec(
        self, data: MarketData, reward: WeightedReward | None = None, *, seed: int | None = None
    ) -> "VecEnv":
        """``n_envs`` training envs as an SB3 VecEnv; env ``i`` is seeded with ``seed + i``."""
        if self.vectorized:
            from cryptotrade.env.vec_env import NativeVecEnv

            venv: VecEnv = NativeVecEnv(data, reward, self.settings, n_envs=self.n_envs)
        else:
            from stable_baselines3.common.monitor import Monitor
            from stable_baselines3.common.vec_env import DummyVecEnv

            market = CompiledMarket.build(data, reward, self.settings)  # one copy for all envs

            def thunk() -> Monitor:
                return Monitor(TradingEnv(market=market))

            venv = DummyVecEnv([thunk] * self.n_envs)
        venv.seed(seed)
        return venv
