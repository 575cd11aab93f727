"""``optimizer=tune``: Ray Tune over ``optimizer.space``, each trial scored on validation.

Search algorithms: ``random`` (Tune's variant generator, seeded), ``grid`` (every value of the
``int()``/``choice()`` dimensions) and ``tpe`` (Optuna's TPE through ``OptunaSearch``, seeded).
With ``scheduler=asha`` the ASHA scheduler stops bad trials early: each trial reports its
validation score from inside training (the pipeline's ``on_validation`` hook, called after each
periodic validation evaluation), so ASHA compares trials on partial training.

Every trial is an MLflow child run of the launcher's run (``search/kind=tune``); a trial stopped
by ASHA ends KILLED with ``search/early_stopped=true``, a failed one FAILED; a failed trial is
retried ``max_failures`` times (each attempt its own child run). The experiment state lives in
``<storage_dir>/tune-<fingerprint>``; ``resume=true`` continues it with ``Tuner.restore`` (finished
trials are kept, unfinished and errored ones run again). The winner's config is written as a
ready-to-run YAML and evaluated once on the test split in the parent run.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import shutil
from pathlib import Path
from typing import Any, Literal

from omegaconf import DictConfig, OmegaConf

from cryptotrade.errors import ConfigError
from cryptotrade.optimize.checkpoint import search_fingerprint
from cryptotrade.optimize.runner import report_winner
from cryptotrade.optimize.space import parse_space
from cryptotrade.optimize.trial import (
    TAG_KIND,
    TrialSpec,
    attached_run,
    evaluate_candidate,
    point_key,
    score_of,
)
from cryptotrade.optimize.workers import ray_session

log = logging.getLogger(__name__)
SCORE = "score"  # the reported key Tune optimises: optimizer.metric, or the penalty if NaN
RUN_ID = "mlflow_run_id"


class TuneSearch:
    """Ray Tune over the pipeline objective (see the module docstring).

    Args:
        metric: The ``val/`` metric maximised.
        space: ``{config path: domain}`` (see :mod:`cryptotrade.optimize.space`).
        search: ``random``, ``grid`` or ``tpe`` (Optuna).
        num_samples: Trials (``grid``: repetitions of the whole grid).
        max_concurrent: Trials running at once.
        cpus_per_trial: CPUs Ray reserves per trial.
        max_failures: Retries of a failed trial.
        scheduler: ``asha`` (early stopping on intermediate validation scores) or ``fifo``.
        grace_period: ASHA: reports a trial makes before it can be stopped.
        reduction_factor: ASHA: 1/reduction_factor of the trials continue at each rung.
        max_t: ASHA: most reports (validation evaluations) of a trial.
        penalty: Score reported for a NaN validation metric.
        resume: Continue the stored Tune experiment of this same config, if there is one.
        storage_dir: Folder of the Tune experiments.
        column_cache: Folder where trials share indicator columns computed once per
            (indicator, parameters, bars); ``null`` computes every column per trial.
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
        if reduction_factor < 2 or max_failures < 0 or cpus_per_trial <= 0:
            raise ConfigError(
                "optimizer.reduction_factor must be >= 2, max_failures >= 0, cpus_per_trial > 0"
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

    def check(self, cfg: DictConfig) -> None:
        """Settings that need the whole config (the launcher calls this before any run)."""
        if not cfg.ray.enabled:
            raise ConfigError("optimizer=tune runs on Ray: set ray.enabled=true")

    def run(self, cfg: DictConfig, output_dir: Path) -> dict[str, float]:
        """Tune, then evaluate the winner on the test split once, in the parent run."""
        import mlflow
        from ray import tune

        from cryptotrade.optimize.columns import with_column_cache

        space = parse_space(self.space, cfg)
        self.check(cfg)
        parent = mlflow.active_run()
        trainable = tune.with_parameters(
            _trainable,
            base=OmegaConf.to_container(
                with_column_cache(copy.deepcopy(cfg), self.column_cache)
                if self.column_cache
                else cfg,
                resolve=False,
            ),
            metric=self.metric,
            penalty=self.penalty,
            parent=(parent.info.run_id, parent.info.experiment_id) if parent else None,
            uri=mlflow.get_tracking_uri() if parent else None,
            output_root=str(output_dir / "trials"),
        )
        trainable = tune.with_resources(trainable, {"cpu": self.cpus_per_trial})
        path = Path(self.storage_dir).resolve() / f"tune-{search_fingerprint(cfg, 'tune')}"
        with ray_session(str(cfg.ray.address or ""), cfg.ray.num_cpus):
            tuner = self._tuner(trainable, space.to_tune(grid=self.search == "grid"), path, cfg)
            results = tuner.fit()
            best = results.get_best_result(metric=SCORE, mode="max", scope="all")
        if best is None or best.metrics is None or SCORE not in best.metrics:
            errors = [str(r.error)[-500:] for r in results if r.error]
            raise RuntimeError(f"no Tune trial reported a score; errors: {errors}")
        from cryptotrade import tracking

        tracking.log_metrics({"tune/trials": len(results), "tune/errored": results.num_errors})
        point = {p: best.config[p] for p in space.paths}
        fitness = float(best.metrics_dataframe[SCORE].max())
        return report_winner(cfg, point, fitness, output_dir, kind="tune")

    def _tuner(self, trainable: Any, param_space: dict, path: Path, cfg: DictConfig) -> Any:
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

            searcher: Any = OptunaSearch(seed=int(cfg.seed))
        else:
            from ray.tune.search import BasicVariantGenerator

            searcher = BasicVariantGenerator(random_state=int(cfg.seed))
        scheduler = (
            tune.schedulers.ASHAScheduler(time_attr="training_iteration", **self.asha)
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
                max_concurrent_trials=self.max_concurrent,
                search_alg=searcher,
                scheduler=scheduler,
            ),
            run_config=tune.RunConfig(
                name=path.name,
                storage_path=str(path.parent),
                failure_config=tune.FailureConfig(max_failures=self.max_failures),
                callbacks=[CloseRuns()],
                verbose=1,
            ),
        )


def _trainable(
    config: dict[str, Any],
    *,
    base: dict[str, Any],
    metric: str,
    penalty: float,
    parent: tuple[str, str] | None,
    uri: str | None,
    output_root: str,
) -> None:
    """One Tune trial: the candidate's pipeline run on validation, reporting as it trains."""
    import mlflow
    from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID
    from ray import tune

    from cryptotrade.config import register_configs
    from cryptotrade.optimize.space import apply_point
    from cryptotrade.optimize.trial import TAG_GENOME, point_hash, typed_config

    register_configs()  # the resolvers the config's interpolations may use
    point = dict(config)
    cfg = apply_point(typed_config(base), point)
    container = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(container, dict)
    resolved = {str(k): v for k, v in container.items()}
    trial_id = tune.get_context().get_trial_id()
    run_id = None
    if parent is not None:
        client = mlflow.MlflowClient(uri)
        run = client.create_run(
            parent[1],
            run_name=f"tune-{trial_id}",
            tags={
                MLFLOW_PARENT_RUN_ID: parent[0],
                TAG_KIND: "tune",
                TAG_GENOME: point_key(point),
                "search/trial_id": trial_id,
            },
        )
        run_id = run.info.run_id
        for key, value in point.items():
            client.log_param(run_id, key, value)
    spec = TrialSpec(resolved, point, f"{output_root}/{trial_id}-{point_hash(point)}", run_id, uri)

    reports = []

    def report(steps: int, metrics: dict[str, float]) -> None:
        score = score_of(metrics, metric, penalty)
        values = {k: float(v) for k, v in metrics.items() if math.isfinite(float(v))}
        reports.append(steps)
        tune.report({SCORE: score, "timesteps": steps, RUN_ID: run_id or "", **values})

    try:
        with attached_run(run_id, uri):
            final = evaluate_candidate(spec, on_validation=report)
            if not reports:  # no intermediate validation: report the final score once
                report(int(cfg.train.total_timesteps), final)
    except SystemExit:  # Tune stops a trial the scheduler dropped by raising SystemExit here
        if run_id is not None:
            with contextlib.suppress(Exception):
                mlflow.MlflowClient(uri).set_tag(run_id, "search/early_stopped", "true")
        raise


class CloseRuns:
    """Tune callback (driver side): a trial's child run still RUNNING when Tune is done with
    the trial (its actor was stopped by the scheduler or died) ends honestly: KILLED with
    ``search/early_stopped=true`` after an early stop, FAILED after an error."""

    def __new__(cls) -> Any:
        from ray import tune

        class _Close(tune.Callback):
            def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any):
                _close(trial, "KILLED", early=True)

            def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any):
                _close(trial, "FAILED", early=False)

        return _Close()


def _close(trial: Any, status: str, *, early: bool) -> None:
    import mlflow

    run_id = (trial.last_result or {}).get(RUN_ID)
    if not run_id:
        return
    client = mlflow.MlflowClient()
    with contextlib.suppress(Exception):
        if client.get_run(run_id).info.status == "RUNNING":
            if early:
                client.set_tag(run_id, "search/early_stopped", "true")
            client.set_terminated(run_id, status)
