"""The launcher refuses typos before any run or folder exists, and prints user errors as one
line; open mappings take new keys."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ROOT, run_cli
from hydra import compose, initialize_config_dir

from cryptotrade.config import CONF_DIR, register_configs
from cryptotrade.errors import ConfigError
from cryptotrade.launch import strict
from cryptotrade.run import TASKS

register_configs()


def compose_cfg(*overrides: str):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("+trainr.lr=1", "unknown config key: trainr (did you mean train?)"),
        ("+agent.learning_rat=0.5", "agent.learning_rat (did you mean learning_rate?)"),
        ("+data.split.tain=0.5", "data.split.tain (did you mean train?)"),
        ("task=dat", "task=dat is unknown; choose one of: pipeline, data, train, evaluate"),
        ("agent.learning_rate=0", "agent.learning_rate=0.0 must be > 0"),
        ("agent.gamma=1.5", "agent.gamma=1.5 must be in [0, 1]"),
        ("agent.gamma=-0.1", "agent.gamma=-0.1 must be in [0, 1]"),
        ("train.total_timesteps=0", "train.total_timesteps=0 must be > 0"),
        ("reward.pnl=nan", "reward.pnl=nan must be a finite number"),
        ("seed=-1", "seed=-1 must be an integer in [0, 2**32 - 1]"),
        ("seed=4294967296", "seed=4294967296 must be an integer in [0, 2**32 - 1]"),
        ("torch_threads=0", "torch_threads=0 must be >= 1"),
        ("~data", "the config lacks data (choose data=<option>)"),  # debug's max_bars is left
        ("~train", "the config lacks train;"),
    ],
)
def test_check_config_refuses_typos_and_out_of_range_settings(override, message):
    cfg = compose_cfg(override)
    with pytest.raises(ConfigError) as info:
        strict.check_config(cfg, TASKS)
    assert message in str(info.value)


def test_removing_the_agent_group_fails_at_composition():
    """``~agent`` cannot compose: the primary defaults list picks the debug preset's per-agent
    file by ``${agent}`` (the launcher's hook prints Hydra's error as one line)."""
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException, match=r"\$\{agent\}"):
        compose_cfg("~agent")


def test_open_mappings_take_new_keys_with_or_without_plus():
    cfg = compose_cfg(
        "data=binance",
        "data.source.options={apiKey: x, defaultType: spot}",
        "+data.source.options.adjustForTimeDifference=true",
        "agent.policy_kwargs={ortho_init: false}",
        "+features.indicators.ret_8={kind: log_return, lag: 8}",
    )
    strict.check_config(cfg, TASKS)
    assert cfg.data.source.options == {
        "apiKey": "x",
        "defaultType": "spot",
        "adjustForTimeDifference": True,
    }
    assert cfg.agent.policy_kwargs == {"ortho_init": False}
    cfg = compose_cfg("data=file", "data.source.columns={homeNotional: volume}")
    strict.check_config(cfg, TASKS)
    assert cfg.data.source.columns == {"homeNotional": "volume"}


def test_readme_lists_the_open_mappings_of_the_shipped_options():
    readme = (ROOT / "README.md").read_text()
    found = set()
    for option in sorted(p.stem for p in (CONF_DIR / "data").glob("*.yaml")):
        found |= set(strict.open_mappings(compose_cfg(f"data={option}")))
    missing = sorted(path for path in found if f"`{path}`" not in readme)
    assert not missing, f"README.md does not document the open mappings {missing}"


@pytest.mark.parametrize("override", ["+typo.key=1", "task=dat"])
def test_cli_typo_fails_as_one_line_before_any_run_or_folder(tmp_path, mlflow_uri, override):
    out = tmp_path / "out"
    proc = run_cli(override, f"paths.output_dir={out}")
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("Error: ")
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not out.exists(), "no output folder may be created"
    assert not Path(mlflow_uri.removeprefix("sqlite:///")).exists(), "no MLflow run may start"


def test_one_line_hook_turns_hydra_composition_errors_into_one_line(monkeypatch, capsys):
    """Hydra reports composition errors itself (several lines, or a trace); the launcher's
    hook makes them one ``Error:`` line and exit code 1, HYDRA_FULL_ERROR=1 keeps Hydra's."""
    import hydra._internal.utils as hydra_utils
    from hydra.errors import ConfigCompositionException

    from cryptotrade.launch import launcher

    monkeypatch.setattr(hydra_utils, "run_and_report", hydra_utils.run_and_report)  # restored
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    launcher.one_line_config_errors()
    launcher.one_line_config_errors()  # idempotent: wrapped once

    def compose_bad():
        compose_cfg("train=3")

    with pytest.raises(SystemExit) as exit_info:
        hydra_utils.run_and_report(compose_bad)
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "Error: Error merging override train=3 Invalid type assigned: int is not a subclass of "
        "TrainConfig. value: 3 full_key: train"
    ]

    def unexpected():
        raise RuntimeError("a bug")

    with pytest.raises(SystemExit):  # Hydra's own report, trace included
        hydra_utils.run_and_report(unexpected)
    assert "RuntimeError: a bug" in capsys.readouterr().err
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    with pytest.raises(ConfigCompositionException):
        hydra_utils.run_and_report(compose_bad)


@pytest.mark.slow
@pytest.mark.parametrize("override", ["seed=-1", "~agent", "~data", "train=3", "agent=nope"])
def test_cli_config_errors_are_one_line(tmp_path, mlflow_uri, override):
    out = tmp_path / "out"
    proc = run_cli("debug=default", override, f"paths.output_dir={out}")
    assert proc.returncode == 1
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith("Error: ") and "Traceback" not in proc.stderr
    assert not list(out.rglob("*")), "no output folder is left behind"


@pytest.mark.slow
def test_cli_user_error_in_preflight_is_one_line_and_full_error_shows_the_trace(
    tmp_path, mlflow_uri
):
    out = tmp_path / "out"
    proc = run_cli("task=evaluate", f"paths.output_dir={out}")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "Error: task=evaluate needs a trained model: add model=runs:/<run_id>/model "
        "(or a path to a saved model.zip)"
    ]
    assert not list(out.rglob("*")), "a job that fails its preflight leaves no folder behind"
    proc = run_cli("task=evaluate", f"paths.output_dir={out}", env={"HYDRA_FULL_ERROR": "1"})
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "ConfigError" in proc.stderr
    assert not Path(mlflow_uri.removeprefix("sqlite:///")).exists()
