"""The launcher: ``python -m cryptotrade.run [task=...] [group=option ...] [key=value ...]``.

Thin by design: compose the config (Hydra checks it against the typed schemas of
:mod:`cryptotrade.config`, :mod:`cryptotrade.launch.strict` refuses unknown keys and out-of-range
settings before anything runs), look ``task`` up in :data:`cryptotrade.tasks.TASKS`, run it
inside the MLflow run, and return the optimised metric (for Hydra sweepers). Multirun jobs
become children of one sweep run (:mod:`cryptotrade.launch.sweeps`); user errors print as one
line (:mod:`cryptotrade.launch.launcher`).
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from cryptotrade.components import build
from cryptotrade.config import CONF_DIR, register_configs
from cryptotrade.launch import launcher, redaction, strict, sweeps, tracking
from cryptotrade.optimize.derive import ConfigDeriver
from cryptotrade.optimize.objective import seed_everything
from cryptotrade.optimize.search_state import continued_run
from cryptotrade.restore import restore_training_config, resume_config
from cryptotrade.tasks import TASKS, RunContext

log = logging.getLogger("cryptotrade")

register_configs()


def _baseline(overrides: list[str]) -> DictConfig | None:
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
    left RUNNING by killed processes are marked FAILED first (:mod:`cryptotrade.launch.liveness`).

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
        cfg, resumed = resume_config(cfg, _baseline(overrides or []))
    if cfg.task in TASKS and TASKS[cfg.task].restore and cfg.model:
        # the training run's data, features, env ... of model=; the command line on top
        cfg = restore_training_config(cfg, list(overrides or []))
    strict.check_config(cfg, TASKS)  # the task name, unknown keys, out-of-range settings
    task = TASKS[cfg.task]
    redaction.remember(redaction.secret_values(tracking.plain(cfg)))
    # built once, before the run opens (constructors validate their settings); the task gets them
    components = build(cfg, agent=task.agent)
    # what the task gets instead of the config: typed settings, the YAML, the deriver
    configs = ConfigDeriver(cfg)
    context = RunContext.of(configs, output_dir)
    if task.preflight is not None:
        context = dataclasses.replace(context, prepared=task.preflight(components, context))
    choices = dict(choices or {})
    overrides = list(overrides or [])
    seed_everything(cfg.seed, cfg.torch_threads)
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
    # a search resumed with optimizer.resume=true continues in its own parent run
    continued = None if cfg.get("resume") else continued_run(context.prepared, configs)
    resume_run_id = cfg.get("resume") or (continued.run_id if continued else None)
    if continued is not None:
        tags |= continued.tags
        log.info("the resumed search continues in its MLflow run %s", continued.run_id)
    output_dir.mkdir(parents=True, exist_ok=True)
    try:
        tracking.mark_stale_runs(cfg, spare=resume_run_id)
    except Exception as exc:  # never block a run on the clean-up of others
        log.warning("could not check for stale runs: %s", exc)
    parent = sweep.parent_run_id if sweep else None
    with tracking.start_run(
        cfg,
        run_name=name,
        tags=tags,
        parent_run_id=parent,
        resume_run_id=resume_run_id,
        output_dir=output_dir,
    ) as run:
        metrics = dict(task.run(components, context))
        uri = tracking.tracking_uri(cfg.tracking.uri, cfg.paths.root)
        log.info(
            "MLflow run %s (%s) in %s -- browse it with `make ui`",
            run.info.run_name,
            run.info.run_id,
            uri,
        )
        from cryptotrade.evaluation.report import summary_from_metrics

        # every metric in one artifact; the terminal ends with the table and a verdict
        tracking.log_dict({"metrics": dict(sorted(metrics.items()))}, "summary/metrics.json")
        summary = summary_from_metrics(metrics)
        if summary:  # the run's closing table: agent vs each baseline, cost breakdown
            print(summary, flush=True)  # its last line is the verdict
        else:  # tasks without a test backtest: their few metrics, one line each
            for key in sorted(metrics):
                log.info("  %-40s %.6g", key, metrics[key])
    return metrics


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point; returns ``cfg.optimizer.metric`` for sweepers.

    A failed single run exits non-zero (a user error as one line); a failed sweep job is
    recorded and the sweep goes on, its summary names every failed job and the process exits
    non-zero (:func:`cryptotrade.launch.sweeps.exit_code`).
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
    if "--version" in sys.argv[1:]:  # the package's version, not Hydra's (its --version)
        from cryptotrade import __version__

        print(f"cryptotrade {__version__}")
        sys.exit(0)
    launcher.mask_terminal(sys.argv[1:])
    launcher.one_line_config_errors()
    main()
    sys.exit(sweeps.exit_code())
