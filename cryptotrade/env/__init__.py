"""cryptotrade.env: TradingEnv, the native VecEnv, the weighted reward and EnvFactory.

The env is registered with gymnasium as ``cryptotrade/Trading-v0`` by ``import cryptotrade``:
``gymnasium.make("cryptotrade/Trading-v0", data=market_data, reward=WeightedReward(),
settings=EnvSettings(...))``; without ``data`` it trades the default synthetic market
(:mod:`cryptotrade.env.default_market`).
"""

from cryptotrade import ENV_ID
from cryptotrade.env.actions import ACTION_MODES, check_agent_compatible
from cryptotrade.env.compiled import CompiledMarket
from cryptotrade.env.factory import EnvFactory
from cryptotrade.env.reward import COMPONENTS, WeightedReward
from cryptotrade.env.settings import EnvSettings
from cryptotrade.env.trading_env import TradingEnv

__all__ = [
    "ACTION_MODES",
    "COMPONENTS",
    "ENV_ID",
    "CompiledMarket",
    "EnvFactory",
    "EnvSettings",
    "TradingEnv",
    "WeightedReward",
    "check_agent_compatible",
]
