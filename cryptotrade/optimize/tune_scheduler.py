"""ASHA that tells which trials it stopped early (``optimizer.scheduler=asha``).

A trial is tagged ``search/early_stopped=true`` only here, in the driver, when the scheduler
decides to stop it with training left (``timesteps`` below the trial's ``budget``, both in every
report of :func:`~cryptotrade.optimize.tune_trial.tune_trial`). Tune stops a trial by raising
``SystemExit`` in its worker, and it does so for every reason (this scheduler, the end of a
search, Ctrl-C), so the worker cannot tell; a trial interrupted by Ctrl-C is not tagged.

A trial whose LAST report the scheduler would stop (its training is over) is let finish instead:
it only has its final selection left, and stopping it then would lose its ``search/fitness``
and leave a fully trained trial KILLED.

Imported only when Tune runs (it imports Ray); the class is importable by name because Tune
pickles the scheduler with the experiment state and ``Tuner.restore`` loads it back.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from ray.tune.schedulers import ASHAScheduler, TrialScheduler

log = logging.getLogger(__name__)
TAG_EARLY = "search/early_stopped"
BUDGET = "budget"  # reported by every trial: its train.total_timesteps
RUN_ID = "mlflow_run_id"  # == tune_trial.RUN_ID (not imported: that module imports the pipeline)


def stops_early(result: dict[str, Any]) -> bool:
    """Whether a trial stopped at ``result`` would leave training undone."""
    budget = result.get(BUDGET)
    return budget is None or int(result.get("timesteps", 0)) < int(budget)


class EarlyStopASHA(ASHAScheduler):
    """Ray's ASHA scheduler; its stops before a trial's budget tag the trial's MLflow child run
    ``search/early_stopped=true`` (see the module docstring)."""

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        """ASHA's decision, with a stop at a trial's last report turned into CONTINUE and a stop
        before it recorded in the trial's child run."""
        action = super().on_trial_result(tune_controller, trial, result)
        if action != TrialScheduler.STOP:
            return str(action)
        if not stops_early(result):
            return str(TrialScheduler.CONTINUE)  # trained to the end: let it finish
        run_id = result.get(RUN_ID)
        if run_id:
            from cryptotrade.launch import tracking

            with contextlib.suppress(Exception):  # a tag must never stop the search
                tracking.set_tags({TAG_EARLY: "true"}, run_id=run_id)
        log.info("ASHA stops trial %s at %s steps", trial.trial_id, result.get("timesteps"))
        return str(action)
