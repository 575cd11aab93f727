"""Env and reward presets inherit their group's default by the defaults list: one source each."""

from __future__ import annotations

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from cryptotrade.config import CONF_DIR, register_configs

register_configs()

# what each preset changes relative to its group's default.yaml (everything else is inherited)
OVERRIDES = {
    ("env", "perpetual"): {"leverage": 3.0},
    ("reward", "pnl"): {"drawdown": 0.0, "liquidation": 0.0},
    ("reward", "risk_averse"): {
        "drawdown": 0.01,
        "fees": 1.0,
        "trade": 0.0005,
        "funding": 1.0,
        "liquidation": 10.0,
    },
    ("reward", "sharpe"): {"pnl": 0.1, "drawdown": 0.0, "sharpe": 0.01, "sharpe_window": 48},
}


def _node(group: str, option: str) -> dict:
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[f"{group}={option}"])
    return OmegaConf.to_container(cfg[group])  # type: ignore[return-value]


@pytest.mark.parametrize(("group", "option"), list(OVERRIDES))
def test_preset_is_its_default_plus_its_overrides(group, option):
    default = _node(group, "default")
    assert _node(group, option) == default | OVERRIDES[(group, option)]
    for key, value in OVERRIDES[(group, option)].items():
        assert default[key] != value, f"{group}/{option}.{key} restates the default"


@pytest.mark.parametrize(("group", "option"), list(OVERRIDES))
def test_preset_file_sets_only_what_differs(group, option):
    text = yaml.safe_load((CONF_DIR / group / f"{option}.yaml").read_text())
    assert text["defaults"] == ["default", "_self_"]
    assert set(text) - {"defaults"} == set(OVERRIDES[(group, option)])


def test_presets_build_their_objects():
    from cryptotrade.env import EnvFactory, WeightedReward

    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["env=perpetual", "reward=sharpe"])
    from hydra.utils import instantiate

    env, reward = instantiate(cfg.env), instantiate(cfg.reward)
    assert isinstance(env, EnvFactory) and env.leverage == 3.0 and env.allow_short
    assert isinstance(reward, WeightedReward) and reward.sharpe_window == 48
