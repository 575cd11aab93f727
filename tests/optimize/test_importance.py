"""Search parents' trial tables, Optuna studies and parameter importance, on synthetic trials."""

from __future__ import annotations

import json
import random
from pathlib import Path

import mlflow
import optuna
import pytest

from cryptotrade.optimize.importance import (
    TrialRecord,
    build_study,
    distributions,
    log_search_trials,
    new_sqlite_storage,
    param_importances,
    trial_table,
)
from cryptotrade.optimize.space import parse_space

SPACE = parse_space(
    {
        "agent.gamma": "float(0.9, 0.999)",
        "agent.learning_rate": "log(1e-5, 1e-3)",
        "env.window": "choice(16, 32)",
        "agent.n_epochs": "int(1, 10)",
    }
)


def _trials(n: int = 24) -> list[TrialRecord]:
    """Fitness driven by gamma alone (plus a little noise); the last trial failed."""
    rng = random.Random(0)
    out = []
    for i in range(n):
        point = SPACE.decode([rng.random() for _ in SPACE.paths])
        fitness = 10 * point["agent.gamma"] + 0.001 * rng.random()
        out.append(TrialRecord(point, fitness, extra={"generation": i // 6, "run_id": f"r{i}"}))
    out.append(TrialRecord(point, -1e9, failed=True, extra={"run_id": "failed"}))
    return out


def test_distributions_follow_the_search_space():
    dists = distributions(SPACE)
    assert dists["agent.gamma"] == optuna.distributions.FloatDistribution(0.9, 0.999)
    assert dists["agent.learning_rate"] == optuna.distributions.FloatDistribution(
        1e-5, 1e-3, log=True
    )
    assert dists["env.window"] == optuna.distributions.CategoricalDistribution([16, 32])
    assert dists["agent.n_epochs"] == optuna.distributions.IntDistribution(1, 10)


def test_the_study_holds_the_trials_and_fanova_finds_the_parameter_that_matters():
    trials = _trials()
    study = build_study(SPACE, trials, metric="val/sharpe")
    states = [t.state for t in study.trials]
    assert states.count(optuna.trial.TrialState.COMPLETE) == 24
    assert states.count(optuna.trial.TrialState.FAIL) == 1
    assert study.best_value == pytest.approx(max(t.fitness for t in trials[:-1]))
    assert study.trials[0].user_attrs == {"generation": 0, "run_id": "r0"}
    importances = param_importances(study)
    assert next(iter(importances)) == "agent.gamma"
    assert importances["agent.gamma"] > 0.8
    assert sum(importances.values()) == pytest.approx(1.0)


def test_no_importance_from_one_trial_and_points_outside_the_space_are_left_out():
    (first, *_), outside = _trials(2), TrialRecord({"agent.gamma": 5.0}, 1.0)
    study = build_study(SPACE, [first, outside], metric="val/sharpe")
    assert len(study.trials) == 1
    assert param_importances(study) == {}


def test_each_new_sqlite_storage_is_its_own_empty_study_file_that_optuna_checks_clean(tmp_path):
    first = build_study(SPACE, _trials(3), metric="m", storage=new_sqlite_storage(tmp_path / "a"))
    second = build_study(SPACE, _trials(2), metric="m", storage=new_sqlite_storage(tmp_path / "b"))
    assert (len(first.trials), len(second.trials)) == (4, 3)  # one file each, none shared
    for name, count in (("a", 4), ("b", 3)):
        # Optuna's own schema-version check (Alembic) passes on the copied storage
        storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / name}")
        assert len(optuna.load_study(study_name="search", storage=storage).trials) == count
        storage.engine.dispose()


def test_a_vanished_template_still_gives_a_new_storage(tmp_path, monkeypatch):
    from cryptotrade.optimize import importance

    def vanished(src, dst):
        raise FileNotFoundError(src)

    monkeypatch.setattr(importance.shutil, "copyfile", vanished)
    study = build_study(SPACE, _trials(1), metric="m", storage=new_sqlite_storage(tmp_path / "c"))
    assert len(study.trials) == 2


def test_trial_table_is_best_first_with_failed_last():
    trials = _trials(4)
    table = trial_table(trials, "val/sharpe")
    assert table["state"] == ["COMPLETE"] * 4 + ["FAIL"]
    assert table["val/sharpe"][:4] == sorted((t.fitness for t in trials[:4]), reverse=True)
    assert set(table) >= {"generation", "run_id", "agent.gamma", "env.window"}


def test_parent_run_gets_table_study_and_pictures(tmp_path: Path, mlflow_store):
    with mlflow.start_run() as run:
        importances = log_search_trials("ga", SPACE, _trials(), "val/sharpe")
    assert next(iter(importances)) == "agent.gamma"
    folder = Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="ga",
                                                      dst_path=str(tmp_path)))  # fmt: skip
    assert sorted(p.name for p in folder.iterdir()) == [
        "importance.json", "importance.png", "optuna.db", "parallel_coordinates.png", "trials.json",
    ]  # fmt: skip
    table = json.loads((folder / "trials.json").read_text())
    assert len(table["data"]) == 25
    assert json.loads((folder / "importance.json").read_text())["evaluator"] == "fanova"
    # what optuna-dashboard opens: the SQLite study, read back by Optuna itself
    storage = f"sqlite:///{folder / 'optuna.db'}"
    (name,) = optuna.get_all_study_names(storage)
    assert name == f"ga-{run.info.run_id}"
    study = optuna.load_study(study_name=name, storage=storage)
    assert len(study.trials) == 25 and study.metric_names == ["val/sharpe"]
    assert set(study.best_params) == set(SPACE.paths)


def test_tune_results_become_trials_scored_by_their_best_report():
    from types import SimpleNamespace

    import pandas as pd

    from cryptotrade.optimize.tune import trial_records
    from cryptotrade.optimize.tune_trial import RUN_ID, SCORE

    point = SPACE.decode([0.5] * len(SPACE.paths))

    def result(scores, error=None):
        frame = pd.DataFrame({SCORE: scores}) if scores else None
        metrics = {"trial_id": "t", RUN_ID: "run", "timesteps": 2048} if scores else {}
        return SimpleNamespace(config=point | {"other": 1}, metrics_dataframe=frame,
                               metrics=metrics, error=error)  # fmt: skip

    done, penalised, errored = trial_records(
        [result([0.1, 0.4, 0.2]), result([-1e9]), result([], RuntimeError("boom\nlast line"))],
        SPACE.paths,
        penalty=-1e9,
    )
    assert (done.fitness, done.failed, done.point) == (0.4, False, point)
    assert done.extra == {"trial_id": "t", "run_id": "run", "reports": 3, "timesteps": 2048,
                          "error": ""}  # fmt: skip
    assert penalised.failed and errored.failed and errored.extra["error"] == "last line"
