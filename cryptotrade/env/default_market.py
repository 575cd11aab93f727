"""The market ``gymnasium.make("cryptotrade/Trading-v0")`` trades when given no ``data``.

Gymnasium users expect ``gym.make(env_id)`` to work with no arguments. The default is the
training split of the project's default synthetic market (``conf/data/synthetic.yaml``: 20,000
15-minute bars of the default regime model with funding, seed 0) with the small ``minimal``
feature set (``conf/features/minimal.yaml``), normalised on that split. The launcher never uses
it: a run always builds its data from the config.
"""

from __future__ import annotations

from functools import lru_cache

from cryptotrade.data.market_data import MarketData

# conf/features/minimal.yaml's indicators
MINIMAL_INDICATORS = {
    "ret_1": {"kind": "log_return", "lag": 1},
    "ret_4": {"kind": "log_return", "lag": 4},
    "vol": {"kind": "volatility", "window": 20},
    "rsi": {"kind": "rsi", "period": 14},
}


@lru_cache(maxsize=1)
def default_market_data() -> MarketData:
    """The training split of the default synthetic market (built once per process)."""
    from cryptotrade.data import DataSpec, build_dataset
    from cryptotrade.data.features import FeatureSet
    from cryptotrade.data.splits import ChronoSplit
    from cryptotrade.data.synthetic import SyntheticSource
    from cryptotrade.data.validation import ValidationPolicy

    spec = DataSpec(
        source=SyntheticSource(funding=True),
        validation=ValidationPolicy(),
        split=ChronoSplit(),
    )
    features = FeatureSet(indicators=MINIMAL_INDICATORS)
    return build_dataset(spec, features, cache_dir=None, fingerprint="default-synthetic").train
