"""The search-space parser: syntax, ranges, config paths, gene decoding and Tune domains."""

from __future__ import annotations

import math

import pytest
from hydra import compose, initialize_config_dir

from cryptotrade.config import CONF_DIR, register_configs
from cryptotrade.errors import ConfigError
from cryptotrade.optimize.derive import ConfigDeriver
from cryptotrade.optimize.space import parse_domain, parse_space

register_configs()


@pytest.fixture(scope="module")
def cfg():
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=["debug=default"])


@pytest.mark.parametrize(
    ("text", "kind", "values"),
    [
        ("int(5, 30)", "int", (5, 30)),
        ("int(3,3)", "int", (3, 3)),
        ("float(0.9, 0.999)", "float", (0.9, 0.999)),
        ("log(1e-5, 1e-3)", "log", (1e-5, 1e-3)),
        ("choice(16, 32, 64)", "choice", (16, 32, 64)),
        ("choice(tanh, 'relu')", "choice", ("tanh", "relu")),
        ("choice([64, 64], [128])", "choice", ([64, 64], [128])),
        ("  log ( 1 , 10 ) ", "log", (1.0, 10.0)),
    ],
)
def test_domains_parse(text, kind, values):
    domain = parse_domain("x", text)
    assert (domain.kind, domain.values) == (kind, values)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("int(30, 5)", "is empty (hi < lo)"),
        ("float(1, 1)", "is empty (needs lo < hi)"),
        ("log(0, 1)", "needs lo > 0"),
        ("int(1.5, 3)", "needs integer bounds"),
        ("choice()", "at least one value"),
        ("uniform(0, 1)", "is not a domain"),
        ("float(a, 1)", "'a' is not a number"),
        ("int(1, 2, 3)", "takes (lo, hi)"),
        (7, "is not a domain"),
    ],
)
def test_bad_domains_fail_naming_the_path(text, message):
    with pytest.raises(ConfigError, match=r"optimizer\.space\.x") as info:
        parse_domain("x", text)
    assert message in str(info.value)


def test_genes_decode_into_the_domain_uniformly():
    ints = parse_domain("x", "int(1, 4)")
    assert [ints.decode(u) for u in (0.0, 0.24, 0.25, 0.5, 0.99, 1.0)] == [1, 1, 2, 3, 4, 4]
    log = parse_domain("x", "log(1e-4, 1e-2)")
    assert log.decode(0.5) == pytest.approx(1e-3)
    assert log.decode(0.0) == pytest.approx(1e-4) and log.decode(1.0) == pytest.approx(1e-2)
    flt = parse_domain("x", "float(0.9, 1.0)")
    assert flt.decode(0.5) == pytest.approx(0.95)
    assert flt.decode(-3) == pytest.approx(0.9)  # clipped
    choice = parse_domain("x", "choice(a, b, c)")
    assert [choice.decode(u) for u in (0.0, 0.34, 0.67, 1.0)] == ["a", "b", "c", "c"]


def test_space_checks_paths_and_values_against_the_config(cfg):
    space = parse_space(
        {
            "features.indicators.rsi.period": "int(5, 30)",
            "agent": {"learning_rate": "log(1e-5, 1e-3)", "gamma": "float(0.9, 0.999)"},
            "env.window": "choice(16, 32)",
        },
        ConfigDeriver(cfg),
    )
    assert space.paths == [
        "features.indicators.rsi.period",
        "agent.learning_rate",
        "agent.gamma",
        "env.window",
    ]
    point = space.decode([0.0, 1.0, 0.5, 0.9])
    assert point["features.indicators.rsi.period"] == 5
    assert math.isclose(point["agent.learning_rate"], 1e-3)
    out = ConfigDeriver(cfg).with_point(point).config
    assert out.env.window == 32 and out.features.indicators.rsi.period == 5
    assert cfg.env.window == 30, "the base config is not modified"


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"agent.lerning_rate": "log(1e-5, 1e-3)"}, "no such config path; agent has:"),
        ({"features.indicators.nope.period": "int(2, 3)"}, "no such config path"),
        ({"agent": "float(0, 1)"}, "names a whole config node"),
        ({"env.window": "float(10, 20)"}, "cannot be set"),  # an int field
        ({"optimizer.population": "int(2, 4)"}, "cannot change optimizer.population"),
        ({}, "optimizer.space is empty"),
    ],
)
def test_bad_space_fails_before_training(cfg, space, message):
    with pytest.raises(ConfigError) as info:
        parse_space(space, ConfigDeriver(cfg))
    assert message in str(info.value)


def test_tune_domains_match_the_genes():
    from ray import tune

    space = parse_space({"a": "int(1, 3)", "b": "log(1e-3, 1e-1)", "c": "choice(x, y)"})
    domains = space.to_tune()
    assert isinstance(domains["a"], tune.search.sample.Integer)
    assert (domains["a"].lower, domains["a"].upper) == (1, 4)  # Tune's upper is exclusive
    assert isinstance(domains["b"].sampler, tune.search.sample.LogUniform)
    assert domains["c"].categories == ["x", "y"]
    grid = parse_space({"a": "int(1, 3)", "c": "choice(x, y)"}).to_tune(grid=True)
    assert grid["a"] == {"grid_search": [1, 2, 3]}
    with pytest.raises(ConfigError, match="grid search needs"):
        parse_space({"b": "float(0, 1)"}).to_tune(grid=True)


@pytest.mark.slow
def test_cli_bad_space_fails_before_any_run(mlflow_uri):
    from pathlib import Path

    from conftest import run_cli

    # quoted: unquoted int(...)/choice(...) are Hydra's own override functions
    proc = run_cli("optimizer=ga", "+optimizer.space.agent.lerning_rate='log(1e-5,1e-3)'")
    assert proc.returncode != 0
    assert "optimizer.space.agent.lerning_rate: no such config path" in proc.stderr
    assert not Path(mlflow_uri.removeprefix("sqlite:///")).exists(), "no MLflow run may start"
    proc = run_cli("optimizer=tune", "optimizer.space={env.window:'int(30,10)'}")
    assert proc.returncode != 0
    assert "int(30, 10) is empty" in proc.stderr


def test_no_search_selects_on_validation():
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        for option in ("none", "ga", "tune"):
            cfg = compose("config", overrides=[f"optimizer={option}"])
            assert cfg.optimizer.metric.startswith("val/"), option
