"""Agent/extractor options: schema fields match the real SB3 constructors, YAML holds every
value, composing never imports torch, and every agent x extractor builds."""

from __future__ import annotations

import dataclasses
import inspect
import json
import subprocess
import sys
import typing

import pytest
from conftest import ROOT
from hydra import compose, initialize_config_dir
from hydra.utils import get_class
from omegaconf import OmegaConf

from cryptotrade.config import CONF_DIR, SCHEMAS, register_configs, schema_for

register_configs()
AGENTS = sorted(p.stem for p in (CONF_DIR / "agent").glob("*.yaml"))
EXTRACTORS = sorted(p.stem for p in (CONF_DIR / "extractor").glob("*.yaml"))


def compose_cfg(*overrides: str):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def test_the_issue_names_six_agents():
    assert {"dqn", "ppo", "a2c", "sac", "qrdqn", "recurrent_ppo"} <= set(AGENTS)


@pytest.mark.parametrize("target", sorted(SCHEMAS))
def test_every_schema_field_is_a_constructor_argument_of_its_target(target):
    """A misspelt or invented field fails here, against the real SB3 signature."""
    params = inspect.signature(get_class(target)).parameters
    schema = SCHEMAS[target]
    for f in dataclasses.fields(schema):
        if f.name.startswith("_"):
            continue
        assert f.name in params, f"{schema.__name__}.{f.name} is not an argument of {target}"
        # types only, no defaults: the option YAML is the one source of values
        assert f.default is dataclasses.MISSING or str(f.default) == "???", f.name
        assert f.default_factory is dataclasses.MISSING, f.name


@pytest.mark.parametrize("agent", AGENTS)
def test_agent_yaml_sets_every_field_and_its_schema_is_found_by_target(agent):
    cfg = compose_cfg(f"agent={agent}")
    assert OmegaConf.missing_keys(cfg.agent) == set(), "the YAML must set every schema field"
    node = OmegaConf.to_container(cfg.agent)
    assert node["_partial_"] is True and node["_convert_"] == "partial"
    assert schema_for("agent", agent, node) is SCHEMAS.get(node["_target_"], None) or (
        node["_target_"] not in SCHEMAS
    )
    params = inspect.signature(get_class(node["_target_"])).parameters
    for key in node:
        assert key.startswith("_") or key in params, f"agent/{agent}.yaml: {key} is misspelt"


def test_schema_of_a_new_target_is_derived_from_its_signature():
    """Adding an option for an unknown target needs no schema code: one YAML file."""
    node = {"_target_": "cryptotrade.agents.policy.PolicySpec", "features_extractor_class": "x"}
    schema = schema_for("extractor", "new_one", node)
    names = {f.name for f in dataclasses.fields(schema)}
    assert {"features_extractor_class", "net_arch", "activation_fn"} <= names
    hints = typing.get_type_hints(schema)
    assert hints["features_extractor_kwargs"] == dict[str, typing.Any]


def test_a_wrong_type_in_an_agent_field_fails_at_compose_time():
    with pytest.raises(Exception, match="n_steps"):
        compose_cfg("agent=a2c", "agent.n_steps=many")


def test_sac_brings_the_continuous_action_mode():
    cfg = compose_cfg("agent=sac")
    assert cfg.env.action_mode == "continuous"
    assert compose_cfg("agent=ppo").env.action_mode != "continuous"


COMPOSE_ALL = """
import json, sys
from hydra import compose, initialize_config_dir
from cryptotrade.config import CONF_DIR, register_configs
register_configs()
agents, extractors = json.loads(sys.argv[1])
with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
    for a in agents:
        for e in extractors:
            cfg = compose("config", overrides=[f"agent={a}", f"extractor={e}"])
            assert cfg.agent._target_
print("torch" in sys.modules, "stable_baselines3" in sys.modules)
"""


@pytest.mark.slow
def test_composing_every_agent_and_extractor_does_not_import_torch():
    proc = subprocess.run(
        [sys.executable, "-c", COMPOSE_ALL, json.dumps([AGENTS, EXTRACTORS])],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["False", "False"]


@pytest.mark.slow
def test_help_does_not_import_torch():
    code = (
        "import sys, runpy; sys.argv=['cryptotrade.run', '--help']\n"
        "try:\n    runpy.run_module('cryptotrade.run', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "agent: a2c, dqn, ppo, qrdqn, recurrent_ppo, sac" in proc.stdout
    assert proc.stdout.strip().endswith("NO-TORCH")


@pytest.mark.parametrize("agent", AGENTS)
@pytest.mark.parametrize("extractor", EXTRACTORS)
def test_every_agent_and_extractor_builds(agent, extractor):
    from cryptotrade.components import build
    from cryptotrade.env import EnvFactory

    cfg = compose_cfg(f"agent={agent}", f"extractor={extractor}", "debug=default")
    components = build(cfg)
    assert isinstance(components.env, EnvFactory)
    kwargs = components.policy.policy_kwargs()
    assert isinstance(kwargs["features_extractor_class"], type)
    assert components.agent_class.__name__.lower().replace("_", "") == agent.replace("_", "")
