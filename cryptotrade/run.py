"""The launcher: ``python -m cryptotrade.run [task=...] [group=option ...] [key=value ...]``.

Thin by design: compose the config (Hydra checks it against the typed schemas of
:mod:`cryptotrade.config`, :mod:`cryptotrade.strict` refuses unknown keys and out-of-range
settings before anything runs), open the MLflow run, dispatch ``task`` through the registry
below, and return the optimised metric (for Hydra sweepers). Multirun jobs become children of
one sweep run (:mod:`cryptotrade.sweeps`); user errors print as one line
(:mod:`cryptotrade.launcher`).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from cryptotrade import launcher, pipeline, redaction, strict, sweeps, tracking
from cryptotrade.config import CONF_DIR, register_configs
from cryptotrade.errors import ConfigError

log = logging.getLogger("cryptotrade")

register_configs()


def task_pipeline(cfg: DictConfig, output_dir: Path) -> dict[str, float]:
    """Data -> train -> evaluate on the test split, or a search around it (``optimizer=``)."""
    from cryptotrade import optimize

    return optimize.run(cfg, output_dir)


def task_data(cfg: DictConfig, output_dir: Path) -> dict[str, float]:
    """Prepare (and cache) the dataset, then print its summary."""
    from rich.console import Console
    from rich.pretty import Pretty

    dataset = pipeline.prepare_data(cfg)
    Console().print(Pretty(dataset.meta))
    return {f"data/{name}_rows": float(len(split)) for name, split in dataset.splits.items()}


def task_train(cfg: DictConfig, output_dir: Path) -> dict[str, float]:
    """Train (selecting on validation; ``model=...`` continues that model); no test backtest."""
    model = pipeline.load_model(cfg) if cfg.model else None
    result, _ = pipeline.train(cfg, output_dir, model=model)
    return {**result.val_metrics, "train/total_timesteps": float(result.num_timesteps)}


def task_evaluate(cfg: DictConfig, output_dir: Path) -> dict[str, float]:
    """Backtest ``model=runs:/<run_id>/model`` on the test split of the configured data."""
    components = pipeline.build(cfg)
    model = pipeline.load_model(cfg, components)
    dataset = pipeline.prepare_data(components)
    config_yaml = OmegaConf.to_yaml(cfg, resolve=True)
    return pipeline.evaluate(
        components, model, dataset, source=str(cfg.model), config_yaml=config_yaml
    )


class LeakageError(RuntimeError):
    """Features use information from the future (``task=check`` found offending columns)."""


def task_check(cfg: DictConfig, output_dir: Path) -> dict[str, float]:
    """Look-ahead checks of the configured features; fails (non-zero exit) if any column leaks."""
    report = pipeline.check_leakage(cfg)
    if not report.ok:
        raise LeakageError(report.format())
    print(report.format())
    return {"check/columns": float(len(report.columns))}


def task_pretrain(cfg: DictConfig, output_dir: Path) -> dict[str, float]:
    """Pretrain the extractor's encoder on the training split (cryptotrade.agents.pretrain)."""
    from cryptotrade.agents import pretrain

    return pretrain.task(cfg, output_dir)


def task_walkforward(cfg: DictConfig, output_dir: Path) -> dict[str, float]:
    """Walk-forward: per fold train, select on its validation, test once (nested runs)."""
    from cryptotrade.evaluation.walkforward import run_walkforward

    return run_walkforward(cfg, output_dir)


def task_infer(cfg: DictConfig, output_dir: Path) -> dict[str, float]:
    """The policy's action on the latest closed bar; ``infer.paper=true`` paper-trades."""
    from cryptotrade.live.infer import run_infer

    return run_infer(cfg, output_dir)


Task = Callable[[DictConfig, Path], Mapping[str, float]]

TASKS: dict[str, Task] = {
    "pipeline": task_pipeline,
    "data": task_data,
    "train": task_train,
    "evaluate": task_evaluate,
    "check": task_check,
    "pretrain": task_pretrain,
    "walkforward": task_walkforward,
    "infer": task_infer,
}
if not OmegaConf.has_resolver("cryptotrade_tasks"):  # the task list in --help
    OmegaConf.register_new_resolver("cryptotrade_tasks", lambda: "|".join(TASKS))
# Tasks that build an env and an agent: pipeline.preflight checks those too before the run.
# (pretrain builds the extractor spec and env the agent would use, so it is checked the same way)
AGENT_TASKS = frozenset({"pipeline", "train", "evaluate", "pretrain", "walkforward", "infer"})


def check_task(name: str) -> Task:
    """The task function for ``name``, or a clear error listing the choices."""
    if name not in TASKS:
        raise ConfigError(f"task={name} is unknown; choose one of: {', '.join(TASKS)}")
    return TASKS[name]


def _baseline(cfg: DictConfig, overrides: list[str]) -> DictConfig | None:
    """The config without the user's overrides (a resume's command line is compared with it),
    or ``None`` outside a Hydra app (then every setting counts as given)."""
    from hydra import compose
    from hydra.core.global_hydra import GlobalHydra

    if not GlobalHydra.instance().is_initialized():
        return None
    kept = [o for o in overrides if o.lstrip("+~").startswith(("resume=", "tracking.", "hydra."))]
    name = HydraConfig.get().job.config_name if HydraConfig.initialized() else "config"
    return compose(config_name=name or "config", overrides=kept)


def execute(
    cfg: DictConfig,
    *,
    output_dir: Path,
    choices: Mapping[str, Any] | None = None,
    overrides: list[str] | None = None,
    sweep: sweeps.Sweep | None = None,
    job_num: int | None = None,
) -> dict[str, float]:
    """Run ``cfg.task`` inside one MLflow run and return its metrics.

    Everything that can be checked without data is checked before the run opens. Dead runs
    left RUNNING by killed processes are marked FAILED first (:mod:`cryptotrade.liveness`).

    Args:
        cfg: The composed config.
        output_dir: Where the job writes local files (Hydra's run directory, one per job).
        choices: The chosen option of each config group (tags in MLflow).
        overrides: The command-line overrides (a tag in MLflow, secrets redacted).
        sweep: The multirun this job belongs to: its run becomes a child of the sweep's run.
        job_num: The job's number in the sweep.
    """
    resumed: dict[str, tuple[Any, Any]] = {}
    if cfg.get("resume"):
        # continue the killed run with its own config; the budget may change, nothing else
        cfg, resumed = pipeline.resume_config(cfg, _baseline(cfg, overrides or []))
    task = check_task(cfg.task)
    if cfg.task in ("evaluate", "infer") and cfg.model:
        from cryptotrade.evaluation.reload import restore_training_config

        # the training run's data, features, env ...; command-line overrides on top
        cfg = restore_training_config(cfg, overrides or [])
    strict.check_config(cfg, TASKS)
    redaction.remember(redaction.secret_values(tracking.plain(cfg)))
    pipeline.preflight(cfg, agent=cfg.task in AGENT_TASKS)
    if cfg.task == "pipeline":
        from cryptotrade import optimize

        optimize.preflight(cfg)  # optimizer settings and search space, before any run
    if cfg.task in ("evaluate", "infer") or (cfg.task == "train" and cfg.model):
        pipeline.check_model_source(cfg)
    if cfg.task == "pretrain":
        from cryptotrade.agents import pretrain

        pretrain.check(cfg)
    choices = dict(choices or {})
    overrides = list(overrides or [])
    pipeline.seed_everything(cfg.seed, cfg.torch_threads)
    name = launcher.run_name(cfg, choices, overrides, sweep, job_num)
    tags = {
        "task": cfg.task,
        "git_commit": tracking.git_commit(cfg.paths.root),
        "overrides": " ".join(overrides),
        **{f"choice/{k}": str(v) for k, v in choices.items() if not k.startswith("hydra")},
    }
    if sweep is not None:
        tags |= {"sweep_id": sweep.sweep_id, "job": str(job_num)}
    # what a resume changed: the params keep the values the run started with
    tags |= {f"resume/{k}": f"{old} -> {new}" for k, (old, new) in resumed.items()}
    output_dir.mkdir(parents=True, exist_ok=True)
    try:
        tracking.mark_stale_runs(cfg, spare=cfg.get("resume"))
    except Exception as exc:  # never block a run on the clean-up of others
        log.warning("could not check for stale runs: %s", exc)
    parent = sweep.parent_run_id if sweep else None
    with tracking.start_run(
        cfg,
        run_name=name,
        tags=tags,
        parent_run_id=parent,
        resume_run_id=cfg.get("resume"),
        output_dir=output_dir,
    ) as run:
        metrics = dict(task(cfg, output_dir))
        uri = tracking.tracking_uri(cfg.tracking.uri, cfg.paths.root)
        log.info(
            "MLflow run %s (%s) in %s -- browse it with `make ui`",
            run.info.run_name,
            run.info.run_id,
            uri,
        )
        for key in sorted(metrics):
            if not key.startswith("baseline/"):  # the baselines are in the table below
                log.info("  %-40s %.6g", key, metrics[key])
        from cryptotrade.evaluation.report import summary_from_metrics

        summary = summary_from_metrics(metrics)
        if summary:  # the run's closing table: agent vs each baseline, cost breakdown
            print(summary, flush=True)
    return metrics


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point; returns ``cfg.optimizer.metric`` for sweepers.

    A failed single run exits non-zero (a user error as one line); a failed sweep job is
    recorded and the sweep goes on, its summary names every failed job and the process exits
    non-zero (:func:`cryptotrade.sweeps.exit_code`).
    """
    hc = HydraConfig.get()
    output_dir = Path(hc.runtime.output_dir)
    overrides = list(hc.overrides.task)
    sweep = sweeps.load(hc.sweep.dir) if hc.mode == RunMode.MULTIRUN else None
    job_num = int(hc.job.num) if sweep else None
    fields = {}
    if sweep is not None:
        name = sweeps.job_name(job_num or 0, overrides, sweep)
        fields = sweeps.job_fields(job_num or 0, name, overrides, output_dir)
    try:
        metrics = execute(
            cfg,
            output_dir=output_dir,
            choices=OmegaConf.to_container(hc.runtime.choices),  # type: ignore[arg-type]
            overrides=overrides,
            sweep=sweep,
            job_num=job_num,
        )
    except Exception as exc:
        if sweep is None:
            launcher.fail_single_run(exc, output_dir, cfg.paths.output_dir)
        launcher.fail_sweep_job(exc, output_dir, fields)
        return None
    if sweep is not None:
        run_id = (output_dir / "run_id").read_text().strip()
        sweeps.record_job(output_dir, **fields, status="FINISHED", run_id=run_id)
    return metrics.get(cfg.optimizer.metric)


if __name__ == "__main__":
    launcher.mask_terminal(sys.argv[1:])
    launcher.one_line_config_errors()
    main()
    sys.exit(sweeps.exit_code())
