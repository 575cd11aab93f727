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
