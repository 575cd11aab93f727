"""The market ``gymnasium.make("cryptotrade/Trading-v0")`` trades when given no ``data``.

Gymnasium users expect ``gym.make(env_id)`` to work with no arguments. The default is the
training split of the project's default synthetic market (``conf/data/synthetic.yaml``: 20,000
15-minute bars of the default regime model with funding, seed 0) with the small ``minimal``
feature set (``conf/features/minimal.yaml``), normalised on that split. The launcher never uses
it: a run always builds its data from the config.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptotrade.data.market_data import MarketData

# the one definition of the minimal feature set; read, never copied
MINIMAL_FEATURES = Path(__file__).resolve().parents[2] / "conf" / "features" / "minimal.yaml"
FEATURE_SET = "cryptotrade.data.features.FeatureSet"


def minimal_features(path: Path = MINIMAL_FEATURES) -> dict[str, Any]:
    """The arguments of :class:`~cryptotrade.data.features.FeatureSet` that
    ``conf/features/minimal.yaml`` sets (its Hydra keys aside).

    Raises:
        ValueError: If the file does not configure a ``FeatureSet``.
    """
    from omegaconf import OmegaConf

    node = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    if not isinstance(node, dict) or node.get("_target_") != FEATURE_SET:
        raise ValueError(f"{path} does not configure {FEATURE_SET} (its _target_)")
    return {str(k): v for k, v in node.items() if k not in ("defaults", "_target_")}


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
    features = FeatureSet(**minimal_features())
    return build_dataset(spec, features, cache_dir=None, fingerprint="default-synthetic").train
