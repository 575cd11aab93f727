"""MLflow tracking: store location, param flattening, and honest run status."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
from omegaconf import OmegaConf

from cryptotrade.launch import tracking


def _cfg(tmp_path: Path, uri: str | None = None):
    return OmegaConf.create(
        {
            "paths": {"root": str(tmp_path)},
            "tracking": {"uri": uri, "experiment": "unit"},
            "agent": {"learning_rate": 0.001, "policy_kwargs": {"net_arch": [64, 64]}},
            "features": {"custom": "y" * 7000},
        }
    )


def _runs(uri: str):
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name("unit")
    return client.search_runs([exp.experiment_id])


def test_default_store_is_absolute_sqlite_at_project_root(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    uri = tracking.tracking_uri(None, "relative/root")
    assert uri == f"sqlite:///{(tmp_path / 'relative/root').resolve() / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////elsewhere.db")
    assert tracking.tracking_uri(None, tmp_path) == "sqlite:////elsewhere.db"
    assert tracking.tracking_uri("file:///x", tmp_path) == "file:///x"


def test_flatten_params_makes_valid_keys_and_long_values_go_to_artifacts():
    params = tracking.flatten_params(
        {"a": {"b": 1, "c": [1, 2]}, "we!rd key": "x" * 7000, "empty": {}}
    )
    assert params["a.b"] == "1"
    assert params["a.c"] == "[1, 2]"
    assert params["empty"] == "{}"
    short, long = tracking.split_long_params(params)
    assert long == {"we_rd key": "x" * 7000}
    assert "artifact params/we_rd key.txt" in short["we_rd key"]
    assert all(len(v) <= tracking.MAX_PARAM_VALUE for v in short.values())


def test_run_finished_logs_config_and_params(tmp_path, mlflow_store):
    with tracking.start_run(_cfg(tmp_path), run_name="ok", tags={"task": "unit"}):
        tracking.log_metrics({"test/x": 1.5})
    (run,) = _runs(mlflow_store)
    assert run.info.status == "FINISHED"
    assert run.data.params["agent.learning_rate"] == "0.001"
    assert run.data.metrics["test/x"] == 1.5
    assert run.data.tags["task"] == "unit"
    client = mlflow.MlflowClient(mlflow_store)
    files = [f.path for f in client.list_artifacts(run.info.run_id)]
    assert "config.yaml" in files
    assert [f.path for f in client.list_artifacts(run.info.run_id, "params")] == [
        "params/features.custom.txt"
    ]
    assert "params/features.custom.txt" in run.data.params["features.custom"]


def test_run_that_raises_ends_failed_with_traceback(tmp_path, mlflow_store):
    with (
        pytest.raises(RuntimeError, match="boom"),
        tracking.start_run(_cfg(tmp_path), run_name="bad", tags={}),
    ):
        raise RuntimeError("boom")
    (run,) = _runs(mlflow_store)
    assert run.info.status == "FAILED"
    client = mlflow.MlflowClient(mlflow_store)
    text = Path(client.download_artifacts(run.info.run_id, "error/traceback.txt", str(tmp_path)))
    assert "RuntimeError: boom" in text.read_text()


@pytest.mark.parametrize("exc", [KeyboardInterrupt, tracking.Terminated])
def test_interrupted_run_ends_killed(tmp_path, mlflow_store, exc):
    with pytest.raises(exc), tracking.start_run(_cfg(tmp_path), run_name="int", tags={}):
        raise exc()
    (run,) = _runs(mlflow_store)
    assert run.info.status == "KILLED"


@pytest.mark.parametrize(("code", "status"), [(0, "FINISHED"), (None, "FINISHED"), (2, "FAILED")])
def test_sys_exit_inside_a_run_ends_by_its_code(tmp_path, mlflow_store, code, status):
    """``sys.exit(0)`` is a clean end (it was recorded FAILED); a non-zero code is a failure."""
    with pytest.raises(SystemExit), tracking.start_run(_cfg(tmp_path), run_name="x", tags={}):
        raise SystemExit(code)
    (run,) = _runs(mlflow_store)
    assert run.info.status == status


NO_RUN_LOGS = {
    "metrics val/sharpe": lambda: tracking.log_metrics({"val/sharpe": 1.0}),
    "tags search/kind": lambda: tracking.set_tags({"search/kind": "ga"}),
    "artifact val/equity.csv": lambda: tracking.log_text("t", "val/equity.csv"),
    "artifact data/splits.json": lambda: tracking.log_dict({"a": 1}, "data/splits.json"),
    "artifact model/test_tracking.py": lambda: tracking.log_artifact(__file__, "model"),
    "table ga/hall_of_fame.json": lambda: tracking.log_table({"a": [1]}, "ga/hall_of_fame.json"),
    "model policy": lambda: tracking.log_pyfunc_model(
        "policy", object(), artifacts={}, pip_requirements=[]
    ),
}


@pytest.mark.run_required
@pytest.mark.parametrize("what", NO_RUN_LOGS)
def test_logging_without_a_run_raises_naming_the_value(what):
    with pytest.raises(tracking.NoActiveRunError, match=f"cannot log {what}: no MLflow run is"):
        NO_RUN_LOGS[what]()
    assert mlflow.active_run() is None  # and MLflow did not open a stray run either


@pytest.mark.run_required
def test_run_optional_drops_values_without_a_run_and_logs_with_one(tmp_path, mlflow_store):
    with tracking.run_optional():
        for log in NO_RUN_LOGS.values():
            log()
        assert mlflow.active_run() is None
        with tracking.start_run(_cfg(tmp_path), run_name="x", tags={}):
            tracking.log_metrics({"val/sharpe": 2.0})
    (run,) = _runs(mlflow_store)
    assert run.data.metrics == {"val/sharpe": 2.0}
    with pytest.raises(tracking.NoActiveRunError):  # the switch ends with its block
        tracking.log_metrics({"val/sharpe": 1.0})


@pytest.mark.run_required
def test_a_search_without_a_run_refuses_candidates_unless_it_runs_untracked():
    """The driver cannot open a child run with no run of its own; an untracked search's
    workers (no run id) run their candidates under run_optional, whatever logs inside."""
    from cryptotrade.optimize.trial import TrialSpec, open_child_run, run_trial

    with pytest.raises(tracking.NoActiveRunError, match="the child run g0-0"):
        open_child_run("g0-0", {}, {"agent.gamma": 0.9})
    with tracking.run_optional():
        assert open_child_run("g0-0", {}, {"agent.gamma": 0.9}) is None

    def candidate(spec: TrialSpec) -> dict[str, float]:
        tracking.log_metrics({"val/sharpe": 1.5})
        return {"val/sharpe": 1.5}

    outcome = run_trial(candidate, TrialSpec(config={}, point={}, output_dir="."))
    assert outcome.error is None and outcome.metrics == {"val/sharpe": 1.5}


def test_nested_run_is_a_child_with_honest_status(tmp_path, mlflow_store):
    """A child run records its parent; an exception marks only the child FAILED and re-raises."""
    cfg = _cfg(tmp_path, mlflow_store)
    with tracking.start_run(cfg, run_name="parent", tags={}) as parent:
        with tracking.nested_run("ok", params={"a": {"b": 1}}) as child:
            tracking.log_metrics({"val/x": 1.0})
        with pytest.raises(ZeroDivisionError), tracking.nested_run("bad"):
            raise ZeroDivisionError("planted")
        assert tracking.active_run_id() == parent.info.run_id
    client = mlflow.MlflowClient(cfg.tracking.uri)
    ok = client.get_run(child.info.run_id)
    assert ok.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert ok.info.experiment_id == parent.info.experiment_id  # not "Default"
    assert ok.data.params["a.b"] == "1" and ok.info.status == "FINISHED"
    runs = client.search_runs([ok.info.experiment_id], "attributes.run_name = 'bad'")
    assert runs[0].info.status == "FAILED"
    assert client.get_run(parent.info.run_id).info.status == "FINISHED"


def test_path_like_and_colliding_keys_get_distinct_valid_names(tmp_path, mlflow_store):
    """``a//b`` would make MLflow reject the params; ``a b!`` and ``a b?`` both become ``a b_``."""
    params = tracking.flatten_params({"a//b": 1, "a/b": 2, "x": {"./y": 3}, "a b!": 4, "a b?": 5})
    assert params == {"a/b": "1", "a/b_2": "2", "x../y": "3", "a b_": "4", "a b__2": "5"}
    cfg = _cfg(tmp_path)
    cfg.features = {"a//b": 1, "a/b": 2, "/lead": 3, "..": 4}
    with tracking.start_run(cfg, run_name="keys", tags={}):
        pass
    (run,) = _runs(mlflow_store)
    assert run.info.status == "FINISHED"
    values = {k: v for k, v in run.data.params.items() if k.startswith("features.")}
    assert sorted(values.values()) == ["1", "2", "3", "4"]  # nothing dropped


def test_secrets_are_redacted_in_params_tags_and_config(tmp_path, mlflow_store):
    cfg = _cfg(tmp_path)
    cfg.features = {"options": {"apiKey": "SEKRET-1"}, "db": "postgresql://me:SEKRET-2@h/db"}
    tags = {"overrides": "+data.source.options.apiKey=SEKRET-1 seed=1"}
    with tracking.start_run(cfg, run_name="s", tags=tags):
        tracking.log_text("echo SEKRET-1", "t.txt")
    (run,) = _runs(mlflow_store)
    assert run.data.params["features.options.apiKey"] == "***"
    assert run.data.params["features.db"] == "postgresql://me:***@h/db"
    assert run.data.tags["overrides"] == "+data.source.options.apiKey=*** seed=1"
    client = mlflow.MlflowClient(mlflow_store)
    for name in ("config.yaml", "t.txt"):
        text = Path(client.download_artifacts(run.info.run_id, name, str(tmp_path))).read_text()
        assert "SEKRET" not in text, name


@pytest.mark.slow
def test_concurrent_first_writers_on_a_fresh_store_all_succeed(tmp_path):
    """Four processes open runs at once on a store that does not exist yet: MLflow's table
    creation and the experiment creation must not race (``_alembic_tmp_tags already exists``)."""
    import subprocess
    import sys

    uri = f"sqlite:///{tmp_path / 'fresh.db'}"
    code = (
        "import sys; from omegaconf import OmegaConf; from cryptotrade.launch import tracking\n"
        "cfg = OmegaConf.create({'paths': {'root': sys.argv[1]}, "
        "'tracking': {'uri': sys.argv[2], 'experiment': 'race-' + sys.argv[3]}})\n"
        "with tracking.start_run(cfg, run_name=sys.argv[3], tags={}):\n"
        "    tracking.log_metrics({'x': 1.0})\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path), uri, str(i % 2)], stderr=subprocess.PIPE
        )
        for i in range(4)
    ]
    errors = [p.communicate(timeout=300)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, errors
    client = mlflow.MlflowClient(uri)
    experiments = {e.name: e.experiment_id for e in client.search_experiments()}
    assert {"race-0", "race-1"} <= set(experiments)
    runs = client.search_runs([experiments["race-0"], experiments["race-1"]])
    assert len(runs) == 4 and {r.info.status for r in runs} == {"FINISHED"}


def test_retry_repeats_locked_writes_only():
    from cryptotrade.launch import store

    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("(sqlite3.OperationalError) database is locked")
        return "ok"

    assert store.retry(flaky) == "ok" and len(calls) == 3
    with pytest.raises(ValueError, match="other"):
        store.retry(lambda: (_ for _ in ()).throw(ValueError("other")))


def test_hydra_keys_are_tags_not_params_and_the_experiment_says_what_to_show(
    tmp_path, mlflow_store
):
    cfg = _cfg(tmp_path)
    cfg.agent.merge_with(
        {"_target_": "stable_baselines3.PPO", "_partial_": True, "_convert_": "partial"}
    )
    cfg.data = {"source": {"_target_": "cryptotrade.data.sources.FileSource", "path": "x"}}
    with tracking.start_run(cfg, run_name="tidy", tags={"task": "unit"}):
        pass
    (run,) = _runs(mlflow_store)
    assert not [k for k in run.data.params if k.rsplit(".", 1)[-1] in tracking.HYDRA_KEYS]
    assert run.data.params["data.source.path"] == "x"
    assert run.data.tags["class/agent"] == "stable_baselines3.PPO"
    assert run.data.tags["class/data.source"] == "cryptotrade.data.sources.FileSource"
    assert tracking.run_class(mlflow_store, run.info.run_id, "agent") == "stable_baselines3.PPO"
    client = mlflow.MlflowClient(mlflow_store)
    note = client.get_experiment(run.info.experiment_id).tags["mlflow.note.content"]
    assert "Model training" in note and "val/sharpe" in note
    # a run logged before the tag existed: the class comes from its old _target_ param
    with mlflow.start_run(experiment_id=run.info.experiment_id) as old:
        mlflow.log_param("agent._target_", "stable_baselines3.DQN")
    assert tracking.run_class(mlflow_store, old.info.run_id, "agent") == "stable_baselines3.DQN"


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (None, "FINISHED"),
        (SystemExit, "KILLED"),
        (KeyboardInterrupt, "KILLED"),
        (ValueError, "FAILED"),
    ],
)
def test_attached_run_ends_by_how_its_block_ends(mlflow_store, exc, status):
    """A worker's attached run: Tune's SystemExit stop is KILLED, not FAILED or FINISHED."""
    client = mlflow.MlflowClient(mlflow_store)
    run_id = client.create_run(client.create_experiment("attached")).info.run_id
    if exc is None:
        with tracking.attached_run(run_id, mlflow_store):
            pass
    else:
        with pytest.raises(exc), tracking.attached_run(run_id, mlflow_store):
            raise exc()
    assert client.get_run(run_id).info.status == status


@pytest.mark.parametrize(("given", "expected"), [(None, "true"), ("false", "false")])
def test_importing_cryptotrade_turns_mlflow_telemetry_off_unless_the_user_chose(given, expected):
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_DISABLE_TELEMETRY"}
    if given is not None:
        env["MLFLOW_DISABLE_TELEMETRY"] = given
    code = "import os, cryptotrade; print(os.environ['MLFLOW_DISABLE_TELEMETRY'])"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == expected
