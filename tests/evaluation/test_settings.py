"""The ``evaluation`` config node composes, is typed, and builds EvaluationSettings."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from cryptotrade.config import CONF_DIR, register_configs
from cryptotrade.evaluation.settings import EvaluationSettings

register_configs()


def _compose(*overrides: str):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def test_defaults_and_presets_build_settings():
    default = EvaluationSettings(**OmegaConf.to_container(_compose().evaluation))
    assert default == EvaluationSettings()
    debug = EvaluationSettings(**OmegaConf.to_container(_compose("debug=default").evaluation))
    assert debug.random_seeds == [0, 1]  # the preset wins over the dataclass defaults
    seeds = _compose("evaluation.seeds=[0,1,2]", "evaluation.oracle_max_hold=null").evaluation
    assert list(seeds.seeds) == [0, 1, 2] and seeds.oracle_max_hold is None


def test_typed_node_rejects_bad_values_at_compose_time():
    with pytest.raises(Exception, match="plots"):
        _compose("evaluation.plots=maybe")
    with pytest.raises(ValueError, match="oracle_frontier"):
        EvaluationSettings(oracle_frontier=0)
