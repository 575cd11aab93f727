"""``optimizer=tune`` settings and the interrupted-search check (no Ray run: fast)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from cryptotrade.errors import ConfigError
from cryptotrade.optimize.tune import TuneSearch, _raise_if_interrupted


def test_negative_checkpoints_to_keep_is_a_config_error():
    with pytest.raises(ConfigError, match="checkpoints_to_keep >= 0"):
        TuneSearch(checkpoints_to_keep=-1)
    assert TuneSearch(checkpoints_to_keep=0).checkpoints_to_keep == 0


def _results(*trials: tuple[str, dict | None]):
    trials_ = [SimpleNamespace(status=status, last_result=last) for status, last in trials]
    return SimpleNamespace(_experiment_analysis=SimpleNamespace(trials=trials_))


def test_a_search_with_unfinished_trials_was_interrupted():
    done = ("TERMINATED", {"done": True, "score": 1.0})
    errored = ("ERROR", {"score": 0.5})
    _raise_if_interrupted(_results(done, errored), Path("x"))  # finished: a winner is picked
    # Tune marks interrupted trials TERMINATED when it cleans up; their last result is not done
    for unfinished in (("TERMINATED", {"score": 1.0}), ("PENDING", None)):
        with pytest.raises(KeyboardInterrupt, match="1 unfinished trials"):
            _raise_if_interrupted(_results(done, unfinished), Path("x"))


def test_a_resumed_trial_run_moves_under_the_new_parent_and_loses_the_stale_note(mlflow_store):
    import mlflow

    from cryptotrade.launch.liveness import NOTE, PREFIX
    from cryptotrade.optimize.tune_trial import TAG_RESUMED, _adopt_run

    client = mlflow.MlflowClient(mlflow_store)
    experiment = client.create_experiment("adopt")
    old, new = (client.create_run(experiment).info.run_id for _ in range(2))
    child = client.create_run(experiment, tags={"mlflow.parentRunId": old}).info.run_id
    client.set_tag(child, NOTE, "Marked FAILED by the launcher: its parent run ended KILLED")
    client.set_tag(child, f"{PREFIX}stale", "its parent run ended KILLED")
    client.set_terminated(child, "FAILED")

    _adopt_run(child, (new, experiment), mlflow_store, 512)

    tags = client.get_run(child).data.tags
    assert tags["mlflow.parentRunId"] == new and tags["search/previous_parent"] == old
    assert tags[TAG_RESUMED] == "512"
    assert NOTE not in tags and f"{PREFIX}stale" not in tags


def test_only_the_schedulers_stops_with_training_left_are_early_stops(mlflow_store):
    import mlflow
    from ray.tune.schedulers import TrialScheduler

    from cryptotrade.optimize.tune_scheduler import BUDGET, RUN_ID, TAG_EARLY, EarlyStopASHA

    client = mlflow.MlflowClient(mlflow_store)
    experiment = client.create_experiment("asha")
    asha = EarlyStopASHA(
        time_attr="training_iteration", metric="score", mode="max", grace_period=1, max_t=2
    )
    runs = {}
    for name in ("cut", "trained"):
        runs[name] = client.create_run(experiment).info.run_id
        asha.on_trial_add(None, SimpleNamespace(trial_id=name))

    def result(name: str, steps: int) -> dict:
        return {"training_iteration": 2, "score": 1.0, "timesteps": steps, BUDGET: 2048,
                RUN_ID: runs[name]}  # fmt: skip

    # at max_t: ASHA stops both; one still had training left, the other had trained to its end
    assert asha.on_trial_result(None, SimpleNamespace(trial_id="cut"), result("cut", 1024)) == (
        TrialScheduler.STOP
    )
    trained = SimpleNamespace(trial_id="trained")
    assert asha.on_trial_result(None, trained, result("trained", 2048)) == (
        TrialScheduler.CONTINUE
    ), "a fully trained trial finishes its final selection"
    assert client.get_run(runs["cut"]).data.tags.get(TAG_EARLY) == "true"
    assert TAG_EARLY not in client.get_run(runs["trained"]).data.tags


def test_a_tune_search_whose_trials_all_fail_ends_with_one_line():
    from cryptotrade.errors import SearchError
    from cryptotrade.optimize.tune import _raise_if_all_failed

    trace = "Traceback (most recent call last):\n  File 'x', line 1\nValueError: bad window"
    failed = SimpleNamespace(metrics={}, error=RuntimeError(trace))
    with pytest.raises(SearchError) as caught:
        _raise_if_all_failed([failed, SimpleNamespace(metrics=None, error=RuntimeError("x"))])
    assert str(caught.value).startswith("optimizer=tune: all 2 trials failed")
    assert "the first error: ValueError: bad window (" in str(caught.value)
    _raise_if_all_failed([failed, SimpleNamespace(metrics={"score": 0.1}, error=None)])


def test_a_tune_search_resumes_in_its_parent_only_with_a_stored_experiment(tmp_path):
    from hydra import compose, initialize_config_dir

    from cryptotrade.config import CONF_DIR, register_configs
    from cryptotrade.optimize.derive import ConfigDeriver
    from cryptotrade.optimize.search_state import search_fingerprint

    register_configs()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", ["optimizer=tune", f"optimizer.storage_dir={tmp_path}"])
    configs = ConfigDeriver(cfg)
    search = TuneSearch(storage_dir=str(tmp_path), resume=True)
    assert search.resume_stem(configs) is None, "nothing to restore: a new parent run"
    path = tmp_path / f"tune-{search_fingerprint(configs, 'tune')}"
    path.mkdir()
    (path / "experiment_state-2026-12-07_01-00-00.json").write_text("{}")
    assert search.resume_stem(configs) == path
