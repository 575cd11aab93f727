"""The six ``funding_*`` settings of the file and tick sources: one FundingFile, checked once."""

from __future__ import annotations

import inspect

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from cryptotrade.config import CONF_DIR, register_configs
from cryptotrade.data.sources import FileSource, TickSource
from cryptotrade.data.sources.funding import FundingFile
from cryptotrade.errors import ConfigError

register_configs()
FUNDING = (
    "funding_path",
    "funding_symbol",
    "funding_time_column",
    "funding_rate_column",
    "funding_rate_interval",
    "funding_coverage",
)


def _source(*overrides: str):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return instantiate(compose("config", overrides=list(overrides)).data.source)


@pytest.mark.parametrize("option", ["file", "ticks"])
def test_composed_settings_become_one_funding_file(option):
    source = _source(
        f"data={option}",
        "data.source.funding_path=rates.csv",
        "data.source.funding_rate_interval=8h",
        "data.source.funding_coverage=warn",
        "data.source.symbol=XBTUSD",
    )
    assert source.funding == FundingFile(
        path="rates.csv", symbol="XBTUSD", rate_interval="8h", coverage="warn"
    )
    assert _source(f"data={option}", "data.source.funding_path=null").funding is None


def test_both_sources_take_the_same_six_arguments_with_the_same_defaults():
    params = [inspect.signature(cls).parameters for cls in (FileSource, TickSource)]
    defaults = [{name: p[name].default for name in FUNDING} for p in params]
    assert defaults[0] == defaults[1]
    assert defaults[0]["funding_coverage"] == FundingFile.coverage == "reject"


@pytest.mark.parametrize("cls", [FileSource, TickSource])
def test_bad_funding_settings_fail_at_construction_naming_the_setting(cls):
    with pytest.raises(ConfigError, match=r"data\.source\.funding_coverage='maybe'"):
        cls("bars.csv", funding_coverage="maybe")
    with pytest.raises(ConfigError, match=r"data\.source\.funding_rate_interval"):
        cls("bars.csv", funding_path="rates.csv", funding_rate_interval="eight hours")
