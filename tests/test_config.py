"""Every option of every config group composes and instantiates; bad overrides fail fast."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pytest
from conftest import ROOT, run_cli
from hydra import compose, initialize_config_dir
from hydra.utils import get_class, instantiate
from omegaconf import OmegaConf

from cryptotrade.config import CONF_DIR, register_configs

register_configs()
GROUPS_WITH_OPTIONS = [
    "data",
    "regime",
    "features",
    "env",
    "reward",
    "agent",
    "extractor",
    "pretrain",
    "optimizer",
]
OPTIONS = [
    (group, path.stem)
    for group in [*GROUPS_WITH_OPTIONS, "experiment", "debug"]
    for path in sorted((CONF_DIR / group).glob("*.yaml"))
]


def compose_cfg(*overrides: str):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def test_every_group_has_an_option_and_the_default_composes():
    cfg = compose_cfg()
    for group in GROUPS_WITH_OPTIONS:
        assert list((CONF_DIR / group).glob("*.yaml")), f"conf/{group}/ has no option"
        assert cfg[group] is not None
    assert cfg.task == "pipeline"


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_option_composes_and_instantiates(group, option):
    cfg = compose_cfg(f"{group}={option}")
    node = cfg[group] if group in GROUPS_WITH_OPTIONS else None
    if node is None:  # experiment/debug presets patch other groups: all of them must still build
        for name in ("data", "features", "env", "reward"):
            assert instantiate(cfg[name]) is not None
        return
    if group == "extractor":
        assert get_class(node.features_extractor_class)
    elif group == "agent":
        factory = instantiate(node)
        assert callable(factory) and isinstance(factory.func, type)
    elif "_target_" in node:
        assert instantiate(node) is not None
    else:
        assert OmegaConf.to_container(node, resolve=True)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("agent.learning_rate=abc", "could not be converted to Float"),
        ("agnt=ppo", "Could not override 'agnt'"),
        ("agent=nope", "Could not find 'agent/nope'"),
        ("agent.no_such_field=1", "no_such_field"),
        ("seed=one", "could not be converted to Integer"),
    ],
)
def test_bad_override_fails_at_compose_time(override, message):
    with pytest.raises(Exception) as info:
        compose_cfg(override)
    chain, exc = [], info.value
    while exc is not None:  # Hydra wraps OmegaConf's error: search the whole chain
        chain.append(str(exc))
        exc = exc.__cause__ or exc.__context__
    assert message in "\n".join(chain)


def test_cli_bad_override_fails_fast_without_a_run(tmp_path, mlflow_uri):
    proc = run_cli("agent.learning_rate=abc")
    assert proc.returncode != 0
    assert "could not be converted to Float" in proc.stderr
    assert not Path(mlflow_uri.removeprefix("sqlite:///")).exists(), "no MLflow run may start"


def test_cli_unknown_task_fails_with_the_choices(mlflow_uri):
    proc = run_cli("task=trian")
    assert proc.returncode != 0
    choices = "pipeline, data, train, evaluate, check"
    assert f"task=trian is unknown; choose one of: {choices}" in proc.stderr
    assert not Path(mlflow_uri.removeprefix("sqlite:///")).exists()


@pytest.mark.slow
def test_cli_help_lists_groups_and_cfg_job_prints_config():
    proc = run_cli("--help")
    assert proc.returncode == 0
    for group in GROUPS_WITH_OPTIONS:
        assert f"{group}:" in proc.stdout
    proc = run_cli("agent=dqn", "--cfg", "job")
    assert proc.returncode == 0
    assert "_target_: stable_baselines3.DQN" in proc.stdout


def test_paths_resolve_under_the_project_root():
    cfg = compose_cfg()
    assert Path(cfg.paths.root) == ROOT
    assert Path(cfg.paths.data_dir).is_relative_to(ROOT)


@pytest.mark.slow
def test_cli_agent_action_mode_mismatch_fails_before_any_run(mlflow_uri):
    proc = run_cli("agent=dqn", "env.action_mode=continuous")
    assert proc.returncode != 0
    assert (
        "set env.action_mode to one of ['discrete4', 'discrete3', 'buy_sell_hold']" in proc.stderr
    )
    assert not Path(mlflow_uri.removeprefix("sqlite:///")).exists(), "no MLflow run may start"


@pytest.mark.slow
def test_cli_invalid_data_setting_fails_before_any_run(mlflow_uri):
    proc = run_cli("task=data", "data.split.train=0.9")  # fractions no longer add up
    assert proc.returncode != 0
    assert "data.split fractions train=0.9 + val=0.15 + test=0.15" in proc.stderr
    assert not Path(mlflow_uri.removeprefix("sqlite:///")).exists(), "no MLflow run may start"


@pytest.mark.slow
def test_cli_evaluate_without_a_model_fails_before_any_run(mlflow_uri):
    proc = run_cli("task=evaluate")
    assert proc.returncode != 0
    assert "task=evaluate needs a trained model: add model=runs:/<run_id>/model" in proc.stderr
    assert not Path(mlflow_uri.removeprefix("sqlite:///")).exists(), "no MLflow run may start"


class _Target:
    """A stand-in ``_target_`` with every kind of annotation the schema derivation maps."""

    def __init__(
        self,
        data: np.ndarray,  # a runtime argument: left out of the schema
        window: int = 30,
        mode: Literal["a", "b"] = "a",
        levels: Sequence[int] = (1, 2),
        weights: Mapping[str, float] | None = None,
        cap: float | None = None,
    ) -> None:
        pass


def test_schema_from_target_types_config_fields_and_drops_runtime_ones():
    from cryptotrade.config import schema_from_target

    schema = schema_from_target("T", f"{__name__}._Target")
    cfg = OmegaConf.structured(schema)
    assert set(cfg) == {"_target_", "window", "mode", "levels", "weights", "cap"}
    assert cfg.levels == [1, 2] and cfg.weights is None and cfg.cap is None
    with pytest.raises(Exception, match="could not be converted to Integer"):
        cfg.window = "abc"
    cfg.levels.append(3)  # each instance owns its default containers
    assert OmegaConf.structured(schema).levels == [1, 2]


def test_scalar_mappings_are_open_and_other_fields_stay_strict():
    import dataclasses

    from cryptotrade.config import OPEN_MAPPING, _open_mappings, schema_from_target

    schema = schema_from_target("T", f"{__name__}._Target")
    meta = {f.name: bool(f.metadata.get(OPEN_MAPPING)) for f in dataclasses.fields(schema)}
    assert meta["weights"] and not meta["levels"] and not meta["window"]
    cfg = OmegaConf.structured(schema)
    _open_mappings(cfg, schema)
    OmegaConf.set_struct(cfg, True)
    cfg.weights = {"a": 1.0}
    cfg.weights.b = 2.0  # an open mapping takes new keys
    with pytest.raises(Exception, match="Key 'nope' not in"):
        cfg.nope = 1


def test_cached_schemas_equal_the_derived_ones():
    # the JSON cache that spares --help the target imports must rebuild every derived schema
    # field for field: same types, defaults, open mappings and nested schemas
    import dataclasses

    from cryptotrade import config

    def fields(schema):
        return [(f.name, str(f.type), dict(f.metadata)) for f in dataclasses.fields(schema)]

    derived = 0
    for group, option, node in config._option_files(CONF_DIR):
        schema = config.schema_for(group, option, node)
        if schema is None or schema in config.SCHEMAS.values():
            continue
        rebuilt = config._schema_from_spec(config._schema_spec(schema))
        assert fields(rebuilt) == fields(schema), f"{group}/{option}"
        yaml = OmegaConf.to_yaml(OmegaConf.structured(schema))
        assert OmegaConf.to_yaml(OmegaConf.structured(rebuilt)) == yaml, f"{group}/{option}"
        derived += 1
    assert derived > 20


def test_help_and_compose_import_no_heavy_library():
    # --help, --cfg and config errors must not wait for torch & co (issue 19: <= 1.5 s). One
    # subprocess: import the launcher, compose a config that names every heavy option, check it.
    import subprocess
    import sys

    from cryptotrade import config

    config._derived_schemas(CONF_DIR)  # the schema cache a fresh checkout writes on first use
    code = (
        "import sys\n"
        "from hydra import compose, initialize_config_dir\n"
        "import cryptotrade.run as run\n"
        "from cryptotrade.launch import strict\n"
        "with initialize_config_dir(str(run.CONF_DIR), version_base='1.3'):\n"
        "    cfg = compose('config', overrides=['agent=qrdqn', 'extractor=tcn', 'optimizer=ga',"
        " 'data=binance'])\n"
        "strict.check_config(cfg, run.TASKS)\n"
        "heavy = ['torch', 'stable_baselines3', 'sb3_contrib', 'mlflow', 'ray', 'ccxt', 'numba',"
        " 'pandas', 'matplotlib', 'gymnasium', 'deap', 'optuna', 'scipy']\n"
        "print(' '.join(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [], f"loaded at import/compose time: {out.stdout}"


def test_cli_version_is_the_package_version():
    import importlib.metadata

    proc = run_cli("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"cryptotrade {importlib.metadata.version('cryptotrade')}"
