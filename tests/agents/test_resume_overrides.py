"""``resume=<id>`` with other overrides: the budget may change (applied, logged, tagged by the
launcher); any other changed setting is refused in one line naming the keys.
``tests/agents/test_resume.py`` runs the same through the launcher on a killed run (slow)."""

from __future__ import annotations

import logging

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from cryptotrade import restore
from cryptotrade.config import CONF_DIR, register_configs
from cryptotrade.errors import ConfigError

register_configs()
RUN = "0123456789abcdef"


@pytest.fixture(scope="module")
def configs():
    """The killed run's stored config (``debug=default``) and a resume's compositions."""
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        stored = OmegaConf.to_yaml(compose("config", overrides=["debug=default"]), resolve=True)
        baseline = compose("config", overrides=[f"resume={RUN}"])

        def given(*overrides: str):
            return compose("config", overrides=["debug=default", f"resume={RUN}", *overrides])

        yield stored, baseline, given


def test_a_new_budget_is_applied_and_reported(configs, caplog):
    stored, baseline, given = configs
    with caplog.at_level(logging.INFO):
        cfg, changes = restore.apply_resume(stored, given("train.total_timesteps=6144"), baseline)
    assert cfg.train.total_timesteps == 6144 and cfg.resume == RUN
    assert changes == {"train.total_timesteps": (2048, 6144)}
    assert "resume: train.total_timesteps changed from 2048 to 6144" in caplog.text
    same, none = restore.apply_resume(stored, given("train.total_timesteps=2048"), baseline)
    assert none == {} and same.train.total_timesteps == 2048  # the same value is no change


def test_any_other_changed_setting_is_refused_naming_the_keys(configs):
    stored, baseline, given = configs
    asked = given("train.total_timesteps=6144", "agent.learning_rate=0.001", "seed=3")
    with pytest.raises(ConfigError) as err:
        restore.apply_resume(stored, asked, baseline)
    message = str(err.value)
    assert "\n" not in message
    assert "cannot change on resume: agent.learning_rate (0.0003 -> 0.001), seed (0 -> 3)" in (
        message
    )
    assert "train.total_timesteps (" not in message  # allowed, so not named as refused


def test_a_group_choice_is_a_change_too(configs):
    stored, baseline, given = configs
    with pytest.raises(ConfigError, match=r"cannot change on resume: agent\._target_ "):
        restore.apply_resume(stored, given("agent=dqn"), baseline)
