"""RegimeModel()'s default market is conf/regime/default.yaml's (one source, no copy in code)."""

from __future__ import annotations

import numpy as np
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from cryptotrade.config import CONF_DIR, register_configs
from cryptotrade.data.synthetic import RegimeModel

register_configs()


def test_code_default_is_the_composed_regime_preset():
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        composed = instantiate(compose("config", overrides=["regime=default"]).regime)
    default = RegimeModel()
    assert (
        default.names
        == composed.names
        == (
            "uptrend",
            "downtrend",
            "ranging",
            "expansion",
            "contraction",
        )
    )
    assert default.params == composed.params
    np.testing.assert_array_equal(default.matrix, composed.matrix)
    assert default.params["ranging"]["mean_reversion"] == 30.0  # the YAML's value
    # the same market, bar for bar
    a, b = default.simulate(500, 15 / 525600, seed=3), composed.simulate(500, 15 / 525600, seed=3)
    np.testing.assert_array_equal(a.close, b.close)


def test_default_copies_are_independent():
    RegimeModel().params["uptrend"]["drift"] = 99.0
    assert RegimeModel().params["uptrend"]["drift"] == 0.8
