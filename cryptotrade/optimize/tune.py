"""``optimizer=tune``: Ray Tune over ``optimizer.space``, each trial scored on validation.

Search algorithms: ``random`` (Tune's variant generator, seeded), ``grid`` (every value of the
``int()``/``choice()`` dimensions) and ``tpe`` (Optuna's TPE through ``OptunaSearch``, seeded).
With ``scheduler=asha`` the ASHA scheduler stops bad trials early: each trial reports its
validation score from inside training (the pipeline's ``on_checkpoint`` hook, called after each
periodic validation evaluation), so ASHA compares trials on partial training.

Trial actors are reused for the next trial (``reuse_actors``) and every new one warms up when
its process starts (:mod:`~cryptotrade.optimize.warm`: the ``worker_process_setup_hook`` of the
Ray session); each trial logs ``time/setup_s`` (its start -> ``model.learn``).

Every trial is an MLflow child run of the launcher's run (``search/kind=tune``); a trial stopped
by ASHA before its budget ends KILLED with ``search/early_stopped=true`` (only those: not a
trial that trained to its end, nor one interrupted by Ctrl-C;
:mod:`~cryptotrade.optimize.tune_scheduler`), a failed one FAILED. Each validation
report carries a Ray checkpoint of the agent (``checkpoints_to_keep`` kept per trial), so a failed
trial retried ``max_failures`` times continues from its last report in the same child run
(:mod:`cryptotrade.optimize.tune_trial`). The experiment state lives in
``<storage_dir>/tune-<fingerprint>``; ``resume=true`` continues it with ``Tuner.restore``:
finished trials are kept, unfinished and errored ones continue from their last checkpoint. A
search interrupted by Ctrl-C (Tune saves its state) raises ``KeyboardInterrupt`` instead of
picking a winner from unfinished trials. The winner's config is written as a ready-to-run YAML
and evaluated once on the test split in the parent run. The parent also logs every trial as the
table ``tune/trials.json``, the parameter importance and an Optuna study of the trials
(:mod:`~cryptotrade.optimize.importance`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from cryptotrade.errors import ConfigError
from cryptotrade.optimize.importance import TrialRecord, log_search_trials
from cryptotrade.optimize.runner import report_winner
from cryptotrade.optimize.search_state import record_parent, search_fingerprint
from cryptotrade.optimize.space import parse_space
from cryptotrade.optimize.tune_trial import RUN_ID, SCORE, tune_trial
from cryptotrade.optimize.workers import ray_session

if TYPE_CHECKING:
    from cryptotrade.components import Components
    from cryptotrade.optimize.derive import ConfigDeriver

log = logging.getLogger(__name__)


class TuneSearch:
    """Ray Tune over the pipeline objective (see the module docstring).

    Args:
        metric: The ``val/`` metric maximised.
        space: ``{config path: domain}`` (see :mod:`cryptotrade.optimize.space`).
        search: ``random``, ``grid`` or ``tpe`` (Optuna).
        num_samples: Trials (``grid``: repetitions of the whole grid).
        max_concurrent: Trials running at once.
        cpus_per_trial: CPUs Ray reserves per trial.
        max_failures: Retries of a failed trial (each continues from the trial's last
            checkpoint, if it reported one).
        scheduler: ``asha`` (early stopping on intermediate validation scores) or ``fifo``.
        grace_period: ASHA: reports a trial makes before it can be stopped.
        reduction_factor: ASHA: 1/reduction_factor of the trials continue at each rung.
        max_t: ASHA: most reports (validation evaluations) of a trial.
        penalty: Score reported for a NaN validation metric.
        resume: Continue the stored Tune experiment of this same config, if there is one.
        storage_dir: Folder of the Tune experiments.
        column_cache: Folder where trials share indicator columns computed once per
            (indicator, parameters, bars); ``null`` computes every column per trial.
        checkpoints_to_keep: Checkpoints Tune keeps per trial (the newest; one is written with
            every validation report); 0: none, a retried or restored trial starts over.
    """

    def __init__(
        self,
        metric: str = "val/sharpe",
        space: dict[str, Any] | None = None,
        search: Literal["random", "grid", "tpe"] = "random",
        num_samples: int = 4,
        max_concurrent: int = 2,
        cpus_per_trial: float = 1.0,
        max_failures: int = 1,
        scheduler: Literal["asha", "fifo"] = "asha",
        grace_period: int = 1,
        reduction_factor: int = 2,
        max_t: int = 100,
        penalty: float = -1.0e9,
        resume: bool = False,
        storage_dir: str = ".cache/search",
        column_cache: str | None = None,
        checkpoints_to_keep: int = 1,
    ) -> None:
        if not metric.startswith("val/"):
            raise ConfigError(
                f"optimizer.metric={metric}: a search selects on the validation split; "
                "use a val/ metric (val/sharpe, val/total_return, ...)"
            )
        if search not in ("random", "grid", "tpe"):
            raise ConfigError(f"optimizer.search={search}: use random, grid or tpe")
        if scheduler not in ("asha", "fifo"):
            raise ConfigError(f"optimizer.scheduler={scheduler}: use asha or fifo")
        for name, value in {
            "num_samples": num_samples,
            "max_concurrent": max_concurrent,
            "grace_period": grace_period,
            "max_t": max_t,
        }.items():
            if value < 1:
                raise ConfigError(f"optimizer.{name}={value} must be >= 1")
        if (
            reduction_factor < 2
            or min(max_failures, checkpoints_to_keep) < 0
            or cpus_per_trial <= 0
        ):
            raise ConfigError(
                "optimizer.reduction_factor must be >= 2, max_failures >= 0, "
                "checkpoints_to_keep >= 0, cpus_per_trial > 0"
            )
        self.metric = metric
        self.space = dict(space or {})
        self.search = search
        self.num_samples = num_samples
        self.max_concurrent = max_concurrent
        self.cpus_per_trial = cpus_per_trial
        self.max_failures = max_failures
        self.scheduler = scheduler
        self.asha: dict[str, Any] = {
            "grace_period": grace_period, "reduction_factor": reduction_factor, "max_t": max_t,
        }  # fmt: skip
        self.penalty = penalty
        self.resume = resume
        self.storage_dir = storage_dir
        self.column_cache = column_cache
        self.checkpoints_to_keep = checkpoints_to_keep

    def resume_stem(self, configs: ConfigDeriver) -> Path | None:
        """``<storage_dir>/tune-<fingerprint>`` when Tune's experiment state is there to
        restore, else ``None`` (:func:`~cryptotrade.optimize.search_state.continued_run`)."""
        path = Path(self.storage_dir).resolve() / f"tune-{search_fingerprint(configs, 'tune')}"
        return path if any(path.glob("experiment_state*.json")) else None

    def check(self, configs: ConfigDeriver) -> None:
        """Settings that need the whole config (the launcher calls this before any run)."""
        if not configs.settings.ray.enabled:
            raise ConfigError("optimizer=tune runs on Ray: set ray.enabled=true")

    def run(
        self, configs: ConfigDeriver, output_dir: Path, *, components: Components | None = None
    ) -> dict[str, float]:
        """Tune, then evaluate the winner on the test split once, in the parent run.

        ``components`` (those of the base config) are not used: every candidate and the winner
        are built from their own configs, derived by ``configs``.
        """
        from ray import tune

        from cryptotrade.launch import tracking

        space = parse_space(self.space, configs)
        self.check(configs)
        # the trials' child runs hang under the launcher's run; none only in an untracked search
        parent = tracking.active_run_ref() if tracking.recording("the Tune trials") else None
        trainable = tune.with_parameters(
            tune_trial,
            base=(
                configs.with_column_cache(self.column_cache) if self.column_cache else configs
            ).container(resolve=False),
            metric=self.metric,
            penalty=self.penalty,
            parent=(parent.run_id, parent.experiment_id) if parent else None,
            uri=parent.uri if parent else None,
            output_root=str(output_dir / "trials"),
            checkpoints=self.checkpoints_to_keep > 0,
        )
        trainable = tune.with_resources(trainable, {"cpu": self.cpus_per_trial})
        path = Path(self.storage_dir).resolve() / f"tune-{search_fingerprint(configs, 'tune')}"
        if parent is not None:  # a resumed search continues in this run (search_state)
            record_parent(path, parent.run_id, parent.uri)
        ray = configs.settings.ray
        with ray_session(str(ray.address or ""), ray.num_cpus, ray.object_store_memory):
            grid = self.search == "grid"
            tuner = self._tuner(trainable, space.to_tune(grid=grid), path, configs.settings.seed)
            with legacy_output():  # Tune's new output ignores a chosen reporter
                results = tuner.fit()
            _raise_if_interrupted(results, path)
            _raise_if_all_failed(results)
            best = results.get_best_result(metric=SCORE, mode="max", scope="all")
        tracking.log_metrics({"tune/trials": len(results), "tune/errored": results.num_errors})
        log_search_trials(
            "tune", space, trial_records(results, space.paths, self.penalty), self.metric
        )
        point = {p: best.config[p] for p in space.paths}
        fitness = float(best.metrics_dataframe[SCORE].max())
        return report_winner(configs, point, fitness, output_dir, kind="tune")

    def _tuner(self, trainable: Any, param_space: dict, path: Path, seed: int) -> Any:
        from ray import tune

        if self.resume and tune.Tuner.can_restore(str(path)):
            log.info("resuming the Tune experiment at %s", path)
            return tune.Tuner.restore(
                str(path), trainable, resume_unfinished=True, resume_errored=True
            )
        if path.exists():  # a fresh search of the same config replaces the old state
            shutil.rmtree(path)
        if self.search == "tpe":
            from ray.tune.search.optuna import OptunaSearch

            searcher: Any = OptunaSearch(seed=seed)
        else:
            from ray.tune.search import BasicVariantGenerator

            # Tune applies max_concurrent_trials only to a Searcher; the generator limits itself
            searcher = BasicVariantGenerator(random_state=seed, max_concurrent=self.max_concurrent)
        from cryptotrade.optimize.tune_scheduler import EarlyStopASHA

        scheduler = (
            EarlyStopASHA(time_attr="training_iteration", **self.asha)
            if self.scheduler == "asha"
            else tune.schedulers.FIFOScheduler()
        )
        return tune.Tuner(
            trainable,
            param_space=param_space,
            tune_config=tune.TuneConfig(
                metric=SCORE,
                mode="max",
                num_samples=self.num_samples,
                max_concurrent_trials=self.max_concurrent if self.search == "tpe" else None,
                search_alg=searcher,
                scheduler=scheduler,
                # a trial actor runs the next trial: its imports and kernels stay warm
                reuse_actors=True,
            ),
            run_config=tune.RunConfig(
                name=path.name,
                storage_path=str(path.parent),
                failure_config=tune.FailureConfig(max_failures=self.max_failures),
                checkpoint_config=tune.CheckpointConfig(
                    num_to_keep=self.checkpoints_to_keep or None
                ),
                callbacks=self._callbacks(),
                progress_reporter=reporter(list(param_space), self.metric),
                verbose=1,
            ),
        )

    def _callbacks(self) -> list[Any]:
        """The Tune callbacks of a new experiment (a restored one keeps its own)."""
        return [CloseRuns()]


def trial_records(results: Any, paths: list[str], penalty: float) -> list[TrialRecord]:
    """Every trial of a Tune ``ResultGrid`` for the trial table and the Optuna study: its fitness
    is its best reported score (as the winner's), failed when it reported none (or only the
    penalty); the table adds the trial id, child run, reports, steps and error."""
    import math

    records = []
    for result in results:
        frame = result.metrics_dataframe
        scores = frame[SCORE] if frame is not None and SCORE in frame else None
        fitness = float(scores.max()) if scores is not None and len(scores) else float("nan")
        metrics = result.metrics or {}
        error = str(result.error).strip().splitlines() if result.error else []
        extra = {
            "trial_id": metrics.get("trial_id", ""),
            "run_id": metrics.get(RUN_ID, ""),
            "reports": 0 if scores is None else len(scores),
            "timesteps": metrics.get("timesteps"),
            "error": error[-1][:200] if error else "",
        }
        failed = not (math.isfinite(fitness) and fitness > penalty)
        point = {p: result.config.get(p) for p in paths}
        records.append(TrialRecord(point, fitness, failed, extra))
    return records


def reporter(paths: list[str], metric: str) -> Any:
    """Tune's status table with a few columns: the score, steps, time and the searched values
    (named by their shortest distinct key tail), best trials first, at most every 30 s (plain
    text, so it reads the same in a pipe or a CI log)."""
    from ray.tune import CLIReporter

    from cryptotrade.optimize.trial import short_keys

    return CLIReporter(
        metric_columns={SCORE: metric, "timesteps": "steps", "time_total_s": "seconds"},
        parameter_columns=short_keys(list(paths)),
        max_report_frequency=30,
        max_progress_rows=10,
        sort_by_metric=True,  # by the TuneConfig's metric and mode (set there, not twice)
    )


@contextlib.contextmanager
def legacy_output() -> Iterator[None]:
    """``RAY_AIR_NEW_OUTPUT=0`` for the driver while it fits: Ray's new console output ignores
    ``progress_reporter`` (its own columns: every parameter and metric, ~30 wide)."""
    before = os.environ.get("RAY_AIR_NEW_OUTPUT")
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("RAY_AIR_NEW_OUTPUT", None)
        else:
            os.environ["RAY_AIR_NEW_OUTPUT"] = before


def _raise_if_interrupted(results: Any, path: Path) -> None:
    """After ``fit``: unfinished trials mean Ctrl-C stopped Tune (which saved its state) -- end
    the run KILLED rather than pick a winner among half-trained trials.

    A trial that ran to its end or was stopped by the scheduler has ``done`` in its last
    result; Tune marks interrupted trials TERMINATED too when it cleans up, so the status alone
    cannot tell them apart.
    """
    from ray.tune.experiment import Trial

    trials = results._experiment_analysis.trials  # ResultGrid keeps no trial objects
    unfinished = [
        t for t in trials if t.status != Trial.ERROR and not (t.last_result or {}).get("done")
    ]
    if unfinished:
        message = (
            f"the search was interrupted with {len(unfinished)} unfinished trials; "
            f"optimizer.resume=true continues them from their checkpoints ({path})"
        )
        log.warning(message)
        raise KeyboardInterrupt(message)


def _raise_if_all_failed(results: Any) -> None:
    """No trial reported a score (every one failed before its first report): the project's
    one-line :class:`~cryptotrade.errors.SearchError` instead of Ray's "No best trial found"."""
    if any(SCORE in (r.metrics or {}) for r in results):
        return
    from cryptotrade.errors import SearchError
    from cryptotrade.optimize.runner import all_failed_message

    errors = [str(r.error) for r in results if r.error]
    raise SearchError(all_failed_message("tune", len(results), errors[0] if errors else None))


class CloseRuns:
    """Tune callback (driver side): a trial's child run still RUNNING when Tune is done with
    the trial (its actor was stopped or died before it could end the run) ends honestly: KILLED
    when the trial completed (the scheduler stopped it: ``search/early_stopped=true`` is set
    by :class:`~cryptotrade.optimize.tune_scheduler.EarlyStopASHA` when it did), FAILED after an
    error."""

    def __new__(cls) -> Any:
        from ray import tune

        class _Close(tune.Callback):
            def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any):
                _close(trial, "KILLED")

            def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any):
                _close(trial, "FAILED")

        return _Close()


def _close(trial: Any, status: str) -> None:
    from cryptotrade.launch import tracking

    run_id = (trial.last_result or {}).get(RUN_ID)
    if not run_id:
        return
    with contextlib.suppress(Exception):
        tracking.end_run(run_id, status, only_if_running=True)
