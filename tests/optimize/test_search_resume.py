"""One story per search: a search resumed with ``optimizer.resume=true`` continues in its
original parent run (RUNNING again, ``search/resumed`` counts the resumes), whether the first
launcher was interrupted (Ctrl-C: KILLED) or SIGKILLed (left RUNNING by a dead process); a
search whose candidates all fail ends with one ``SearchError`` line.

Through :func:`cryptotrade.run.execute` (the launcher), with the GA scoring candidates by a cheap
function in the driver, so this checks the run bookkeeping, not training.
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path
from types import SimpleNamespace

import mlflow
import pytest
from optimize.test_ga import Recorder, compose_ga

from cryptotrade import optimize, run
from cryptotrade.errors import ConfigError, SearchError
from cryptotrade.launch.liveness import PREFIX, identity
from cryptotrade.optimize import ga as ga_module
from cryptotrade.optimize.derive import ConfigDeriver
from cryptotrade.optimize.ga import GeneticSearch
from cryptotrade.optimize.runner import CandidateRunner
from cryptotrade.optimize.search_state import (
    TAG_RESUMED,
    TAG_RESUMED_AT,
    continued_run,
    record_parent,
    save_pickle,
    search_fingerprint,
)
from cryptotrade.optimize.space import parse_space
from cryptotrade.optimize.trial import TAG_HOST
from cryptotrade.optimize.workers import InlinePool
from cryptotrade.run import execute


def _dead_pid() -> str:
    """The pid of a process that has ended (and been reaped)."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return str(proc.pid)


@pytest.fixture(autouse=True)
def _light(monkeypatch):
    """No fitness plot, trial table or Optuna study, and no components (data, agent, env: the
    fake search below uses none): their cost is not what these tests check."""
    monkeypatch.setattr(CandidateRunner, "log_plot", lambda runner, logbook: None)
    monkeypatch.setattr(ga_module, "log_search_trials", lambda *args, **kwargs: None)
    monkeypatch.setattr(run, "build", lambda cfg, agent: SimpleNamespace(train=cfg.train))


def _fake_run(evaluate):
    """``GeneticSearch.run`` without Ray and without the winner's final training."""

    def run(self, configs, output_dir, *, components=None):
        hof, _ = self.search(configs, parse_space(self.space, configs), InlinePool(), output_dir,
                             evaluate=evaluate)  # fmt: skip
        return {"search/best_fitness": hof[0].fitness.values[0]}

    return run


def _ga(tmp_path: Path, *overrides: str):
    return compose_ga(
        tmp_path, "optimizer.generations=2", "optimizer.population=2",
        f"paths.root={tmp_path}", f"paths.output_dir={tmp_path / 'out'}", *overrides,
    )  # fmt: skip


def _top_level_runs(uri: str) -> list:
    client = mlflow.MlflowClient(uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments)
    return [r for r in runs if "mlflow.parentRunId" not in r.data.tags]


# the Ctrl-C case is the SIGKILL one up to the rewind of the parent's status: slow suite only
@pytest.mark.parametrize("how", [pytest.param("ctrl-c", marks=pytest.mark.slow), "sigkill"])
def test_a_resumed_search_continues_in_its_parent_run(tmp_path, mlflow_store, monkeypatch, how):
    calls = tmp_path / "calls.txt"
    monkeypatch.setattr(GeneticSearch, "run", _fake_run(Recorder(calls, kill_at=3)))
    with pytest.raises(KeyboardInterrupt):  # the 3rd training: generation 1
        execute(_ga(tmp_path), output_dir=tmp_path / "job1")
    (first,) = _top_level_runs(mlflow_store)
    client = mlflow.MlflowClient(mlflow_store)
    assert first.info.status == "KILLED"
    if how == "sigkill":  # as if the process had died: RUNNING, its pid gone, a child cut off
        client.update_run(first.info.run_id, "RUNNING")
        client.set_tag(first.info.run_id, f"{PREFIX}pid", _dead_pid())
        cut = client.create_run(
            first.info.experiment_id, tags={"mlflow.parentRunId": first.info.run_id}
        )

    monkeypatch.setattr(GeneticSearch, "run", _fake_run(Recorder(calls)))
    execute(_ga(tmp_path, "optimizer.resume=true"), output_dir=tmp_path / "job2")
    (parent,) = _top_level_runs(mlflow_store)  # one story: no second parent
    assert parent.info.run_id == first.info.run_id
    assert parent.info.status == "FINISHED"
    assert parent.data.tags[TAG_RESUMED] == "1" and parent.data.tags[TAG_RESUMED_AT]
    assert parent.data.tags["resume/optimizer.resume"] == "False -> True"
    assert f"{PREFIX}stale" not in parent.data.tags, "not marked FAILED by the stale sweep"
    history = client.get_metric_history(parent.info.run_id, "ga/fitness_max")
    assert [m.step for m in history] == [0, 1], "each generation logged once"
    children = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'",
    )
    trained = calls.read_text().count("\n")
    assert len([c for c in children if c.info.status == "FINISHED"]) == trained
    assert all(c.info.status != "RUNNING" for c in children)
    finished = [c for c in children if c.info.status == "FINISHED"]
    assert {c.data.tags[TAG_HOST] for c in finished} == {socket.gethostname()}, "where it ran"
    if how == "sigkill":
        assert client.get_run(cut.info.run_id).info.status == "FAILED"


def _recorded_search(tmp_path: Path, uri: str, status: str, **tags: str):
    """A GA config with resume=true, a checkpoint and a recorded parent run in ``status``."""
    cfg = _ga(tmp_path, "optimizer.resume=true")
    ga = optimize.build(ConfigDeriver(cfg))
    stem = Path(cfg.optimizer.checkpoint_dir) / f"ga-{search_fingerprint(ConfigDeriver(cfg), 'ga')}"
    save_pickle({}, stem.with_name(stem.name + ".scores.pkl"))
    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name("e") or client.get_experiment(
        client.create_experiment("e")
    )
    run = client.create_run(experiment.experiment_id, tags=tags)
    client.set_terminated(run.info.run_id, status) if status != "RUNNING" else None
    record_parent(stem, run.info.run_id, uri)
    return ga, cfg, run.info.run_id


def test_a_search_still_running_elsewhere_is_not_resumed_twice(tmp_path, mlflow_store):
    alive = identity()  # this process: alive
    ga, cfg, run_id = _recorded_search(tmp_path, mlflow_store, "RUNNING", **alive)
    with pytest.raises(ConfigError, match=f"still running in MLflow run {run_id}"):
        continued_run(ga, ConfigDeriver(cfg))


def test_a_finished_search_or_another_store_gets_a_new_parent(tmp_path, mlflow_store):
    ga, cfg, _ = _recorded_search(tmp_path, mlflow_store, "FINISHED")
    assert continued_run(ga, ConfigDeriver(cfg)) is None
    ga, cfg, run_id = _recorded_search(tmp_path / "b", mlflow_store, "KILLED")
    assert continued_run(ga, ConfigDeriver(cfg)).run_id == run_id
    cfg.tracking.uri = f"sqlite:///{tmp_path / 'other.db'}"
    assert continued_run(ga, ConfigDeriver(cfg)) is None


def test_a_search_whose_candidates_all_fail_ends_with_one_line(tmp_path, mlflow_store, monkeypatch):
    def broken(spec):
        raise ValueError("agent.learning_rate out of range\nsecond line")

    monkeypatch.setattr(GeneticSearch, "run", _fake_run(broken))
    with pytest.raises(SearchError) as caught:
        execute(_ga(tmp_path), output_dir=tmp_path / "job1")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("optimizer=ga: all 2 candidates failed")
    assert "the first error: ValueError: agent.learning_rate out of range second line" in message
    assert "error/traceback.txt" in message
    (parent,) = _top_level_runs(mlflow_store)
    assert parent.info.status == "FAILED"
