"""One Ray Tune trial of ``optimizer=tune``: a candidate trained, scored on validation, resumable.

The trial runs the pipeline objective on the VALIDATION split (never the test split) inside its
MLflow child run and reports each periodic validation score to Tune, so ASHA can stop it early.

With checkpoints on (``optimizer.checkpoints_to_keep > 0``), every report carries a Ray
``Checkpoint``: the agent's resumable checkpoint (model and optimizer, replay buffer, RNG
states, step count, validation selection; :mod:`cryptotrade.agents.checkpoint`), the best model
so far and ``trial.json`` naming the trial's MLflow child run. A trial that starts with a
checkpoint (``ray.tune.get_checkpoint()``: a retry after a failure, ``max_failures`` times, or
an unfinished trial of a search continued with ``Tuner.restore``) puts it back into its folder
and continues training from that step (learning-rate schedule and replay buffer included) in the
SAME child run, tagged ``search/resumed_from_step`` (a resumed search continues in its own
parent run; should the parent differ, e.g. another store, the child moves under the new one). An
attempt that fails before its first report has nothing to resume: it starts over in a new child
run, and the one it left RUNNING is marked FAILED. A ``train.curriculum`` trial reports without
checkpoints (a curriculum cannot resume) and restarts from the first step. With checkpoints on,
``train.checkpoint_freq`` is off in a trial: the reported checkpoints are the same files, and an
off-policy agent's replay buffer makes each one large (~560 MB for DQN's 100,000 transitions at
the default window).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptotrade.launch import tracking
from cryptotrade.optimize.trial import (
    TAG_KIND,
    TrialSpec,
    evaluate_candidate,
    score_of,
    tag_where_it_runs,
)

log = logging.getLogger(__name__)
SCORE = "score"  # the reported key Tune optimises: optimizer.metric, or the penalty if NaN
RUN_ID = "mlflow_run_id"
BUDGET = "budget"  # every report's train.total_timesteps (optimize.tune_scheduler reads it)
STATE = "trial.json"  # in every Tune checkpoint: {"run_id": ..., "step": ...}
TAG_TRIAL = "search/trial_id"
TAG_RESUMED = "search/resumed_from_step"
FITNESS = "search/fitness"  # logged in every finished trial's child run, as in a GA child


@dataclass(frozen=True)
class Resumed:
    """What a trial continues from: its MLflow child run and the checkpoint's env step."""

    run_id: str | None
    step: int


def tune_trial(
    config: dict[str, Any],
    *,
    base: dict[str, Any],
    metric: str,
    penalty: float,
    parent: tuple[str, str] | None,
    uri: str | None,
    output_root: str,
    checkpoints: bool = True,
) -> None:
    """One Tune trial (the function trainable; Tune binds the keywords with ``with_parameters``).

    Args:
        config: The point Tune sampled, ``{config path: value}``.
        base: The search's base config (a plain container).
        metric: The ``val/`` metric reported as the score.
        penalty: The score of a NaN metric.
        parent: ``(run id, experiment id)`` of the launcher's run; ``None`` when the search
            runs untracked (the trial then runs inside ``tracking.run_optional``).
        uri: The MLflow tracking URI.
        output_root: Folder of the trials' folders.
        checkpoints: Report a checkpoint with every validation score, and resume from one.
    """
    import time

    from ray import tune

    from cryptotrade.config import register_configs
    from cryptotrade.optimize import warm
    from cryptotrade.optimize.derive import ConfigDeriver
    from cryptotrade.optimize.trial import point_hash

    started_at = time.time()
    fresh = warm.begin_task()  # the actor's first trial (Tune reuses actors: reuse_actors)
    register_configs()  # the resolvers the config's interpolations may use
    point = dict(config)
    configs = ConfigDeriver.from_container(base).with_point(point)
    train = configs.train_settings()
    checkpoints = checkpoints and not train.curriculum
    if checkpoints:  # the reported checkpoints replace the periodic ones (same files, on disk)
        configs = configs.with_point({"train.checkpoint_freq": 0})
    resolved = configs.container()
    trial_id = tune.get_context().get_trial_id()
    output_dir = Path(output_root) / f"{trial_id}-{point_hash(point)}"
    resumed = _restore(output_dir) if checkpoints else None
    previous = resumed.run_id if resumed is not None else None
    if resumed is not None and previous is not None and tracking.run_exists(previous, uri):
        run_id: str | None = previous
        _adopt_run(previous, parent, uri, resumed.step)
        log.info("trial %s resumes run %s at step %d", trial_id, run_id, resumed.step)
    else:
        run_id = _open_run(parent, uri, trial_id, point) if parent is not None else None
    spec = TrialSpec(resolved, point, str(output_dir), run_id, uri)
    reports: list[int] = []
    budget = train.total_timesteps  # the scheduler's stops before it are early stops

    def payload(steps: int, metrics: dict[str, float]) -> dict[str, Any]:
        score = score_of(metrics, metric, penalty)
        values = {k: float(v) for k, v in metrics.items() if math.isfinite(float(v))}
        if not reports:  # the start-up, once training ran (Tune may stop the trial later)
            # Tune does not tell a trial when it was scheduled: from the trial's start
            timing = warm.candidate_timing(None, started_at, warm.learn_started_at(), fresh)
            warm.log_timing(run_id, uri, timing, fresh)
        reports.append(steps)
        return {SCORE: score, "timesteps": steps, BUDGET: budget, RUN_ID: run_id or "", **values}

    def report(steps: int, metrics: dict[str, float]) -> None:
        tune.report(payload(steps, metrics))

    def report_checkpoint(steps: int, metrics: dict[str, float], folder: Path | None) -> None:
        if folder is None:  # a validation followed by another one within the same rollout
            report(steps, metrics)
            return
        (folder / STATE).write_text(json.dumps({"run_id": run_id, "step": steps}))
        tune.report(payload(steps, metrics), checkpoint=tune.Checkpoint.from_directory(folder))

    # Tune stops a trial by raising SystemExit in a report (the run then ends KILLED); only the
    # driver knows why, and tags the scheduler's early stops (optimize.tune_scheduler)
    with tracking.attached_run(run_id, uri):
        tag_where_it_runs(run_id, uri)
        final = evaluate_candidate(
            spec,
            on_validation=None if checkpoints else report,
            on_checkpoint=report_checkpoint if checkpoints else None,
            resume=resumed is not None,
        )
        if not reports:  # no validation in this attempt: report the final score once
            report(budget, final)
        # the trial's fitness: the SELECTED model's metric, as a GA child logs it
        tracking.log_metrics({FITNESS: score_of(final, metric, penalty)})


def _restore(output_dir: Path) -> Resumed | None:
    """Put the trial's Tune checkpoint (if it has one) into ``output_dir`` to resume from."""
    from ray import tune

    from cryptotrade.agents.checkpoint import adopt_checkpoint

    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as folder:
        state = json.loads((Path(folder) / STATE).read_text())
        adopted = adopt_checkpoint(Path(folder), output_dir)
    return Resumed(run_id=state.get("run_id"), step=adopted.step)


def _adopt_run(run_id: str, parent: tuple[str, str] | None, uri: str | None, step: int) -> None:
    """Tag the resumed run; after ``Tuner.restore`` in a new launcher run, move it under the
    new parent run (the search's parent now), noting the old one. The note of a stale-run sweep
    that marked it FAILED meanwhile (its driver died) is removed: the run lives again."""
    from cryptotrade.launch.liveness import NOTE, PREFIX

    tracking.set_tags({TAG_RESUMED: step}, run_id=run_id, uri=uri)
    tags = tracking.run_tags(uri, run_id)
    if f"{PREFIX}stale" in tags:
        tracking.delete_tags(run_id, [f"{PREFIX}stale", NOTE], uri)
    old = tags.get(tracking.PARENT_TAG)
    if parent is not None and old != parent[0]:
        moved = {"search/previous_parent": str(old), tracking.PARENT_TAG: parent[0]}
        tracking.set_tags(moved, run_id=run_id, uri=uri)


def _open_run(parent: tuple[str, str], uri: str | None, trial_id: str, point: dict) -> str:
    """A new child run of ``parent`` for this trial; an earlier attempt's run of the same trial
    that was left RUNNING (its worker was killed before any checkpoint) is marked FAILED."""
    from cryptotrade.optimize.trial import TAG_GENOME, point_key, point_label

    ref = tracking.RunRef(parent[0], parent[1], uri)
    stale = tracking.child_runs(ref, {TAG_TRIAL: trial_id}, running=True)
    for run_id in stale:
        error = {"search/error": "the trial's worker died; retried"}
        tracking.end_run(run_id, "FAILED", uri=uri, tags=error)
    return tracking.create_run(
        uri,
        parent[1],
        f"{trial_id} {point_label(point)}",
        tags={TAG_KIND: "tune", TAG_GENOME: point_key(point), TAG_TRIAL: trial_id},
        params=point,
        parent=ref,
    )
