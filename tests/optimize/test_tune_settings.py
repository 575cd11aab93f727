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
