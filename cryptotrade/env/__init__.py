"""cryptotrade.env: TradingEnv, the native VecEnv, the weighted reward and EnvFactory.

The env is registered with gymnasium as ``cryptotrade/Trading-v0``:
``gymnasium.make("cryptotrade/Trading-v0", data=market_data, reward=WeightedReward(),
settings=EnvSettings(...))``.
"""

import gymnasium

from cryptotrade.env.actions import ACTION_MODES, check_agent_compatible
from cryptotrade.env.factory import EnvFactory
from cryptotrade.env.reward import COMPONENTS, WeightedReward
from cryptotrade.env.settings import EnvSettings
from cryptotrade.env.trading_env import TradingEnv

ENV_ID = "cryptotrade/Trading-v0"
if ENV_ID not in gymnasium.registry:
    gymnasium.register(id=ENV_ID, entry_point="cryptotrade.env.trading_env:TradingEnv")

__all__ = [
    "ACTION_MODES",
    "COMPONENTS",
    "ENV_ID",
    "EnvFactory",
    "EnvSettings",
    "TradingEnv",
    "WeightedReward",
    "check_agent_compatible",
]
