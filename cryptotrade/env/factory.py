"""EnvFactory: the ``_target_`` of ``conf/env/*.yaml``; builds single and vectorised envs.

One compiled market per split: :meth:`EnvFactory.compile` builds a split's
:class:`~cryptotrade.env.compiled.CompiledMarket` once, and :meth:`~EnvFactory.make` /
:meth:`~EnvFactory.make_vec` given that market (instead of the split's ``MarketData``) build
their envs on it without compiling again, so a run's warm-up env, training VecEnv, validation
envs and test envs (agent, probe and every baseline) share one market per split.
"""

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

    def compile(self, data: MarketData, reward: WeightedReward | None = None) -> CompiledMarket:
        """The split ``data`` compiled once for every env on it (training and evaluation).

        Checked for whole-split evaluation episodes; a training env built on it checks again
        that ``episode_length`` fits in the split.

        Args:
            data: The split to trade.
            reward: Reward weights (``instantiate(cfg.reward)``); default: pnl only.
        """
        return CompiledMarket.build(data, reward, self.settings, evaluation=True)

    def _market(
        self, data: MarketData | CompiledMarket, reward: WeightedReward | None
    ) -> CompiledMarket:
        """``data`` itself if already compiled (by this factory's settings), else compiled."""
        if not isinstance(data, CompiledMarket):
            return self.compile(data, reward)  # a training env checks its episode length
        if reward is not None and reward is not data.reward:
            raise ValueError("a compiled market carries its reward; pass reward=None with it")
        if data.settings != self.settings:
            raise ValueError(
                "the compiled market was built with other env settings than this factory's; "
                "compile it with the factory that makes the envs (EnvFactory.compile)"
            )
        return data

    def make(
        self,
        data: MarketData | CompiledMarket,
        reward: WeightedReward | None = None,
        *,
        seed: int | None = None,
        evaluation: bool = False,
    ) -> TradingEnv:
        """One :class:`TradingEnv` over ``data``.

        Args:
            data: The split to trade, or its market from :meth:`compile` (shared, not rebuilt).
            reward: Reward weights (``instantiate(cfg.reward)``); default: pnl only. ``None``
                with a compiled market (it carries its own).
            seed: Seeds the env's generator (``reset(seed=seed)`` still re-seeds it).
            evaluation: Whole split from the first full window to the last bar, no random start.
        """
        env = TradingEnv(market=self._market(data, reward), evaluation=evaluation)
        if seed is not None:
            env.reset(seed=seed)
        return env

    def make_vec(
        self,
        data: MarketData | CompiledMarket,
        reward: WeightedReward | None = None,
        *,
        seed: int | None = None,
    ) -> "VecEnv":
        """``n_envs`` training envs as an SB3 VecEnv; env ``i`` is seeded with ``seed + i``.

        ``data`` is the training split or its market from :meth:`compile` (shared by all envs).
        """
        market = self._market(data, reward)  # one copy for all envs
        if self.vectorized:
            from cryptotrade.env.vec_env import NativeVecEnv

            venv: VecEnv = NativeVecEnv(market=market, n_envs=self.n_envs)
        else:
            from stable_baselines3.common.monitor import Monitor
            from stable_baselines3.common.vec_env import DummyVecEnv

            def thunk() -> Monitor:
                return Monitor(TradingEnv(market=market))

            venv = DummyVecEnv([thunk] * self.n_envs)
        venv.seed(seed)
        return venv
