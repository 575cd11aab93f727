"""The launcher: ``python -m cryptotrade.run [task=...] [group=option ...] [key=value ...]``.

Thin by design: compose the config (Hydra checks it against the typed schemas of
:mod:`cryptotrade.config` before anything runs), open the MLflow run, dispatch ``task`` through
the registry below, and return the optimised metric (for Hydra sweepers).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from cryptotrade import pipeline, tracking
from cryptotrade.config import CONF_DIR, register_configs

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
    """Prepare the data and train the agent; the model is logged to the run."""
    dataset = pipeline.prepare_data(cfg)
    model = pipeline.train(cfg, dataset, output_dir)
    return {"train/total_timesteps": float(model.num_timesteps)}


def task_evaluate(cfg: DictConfig, output_dir: Path) -> dict[str, float]:
    """Backtest ``model=runs:/<run_id>/model`` on the test split of the configured data."""
    model = pipeline.load_model(cfg)
    dataset = pipeline.prepare_data(cfg)
    return pipeline.evaluate(cfg, model, dataset)


class LeakageError(RuntimeError):
    """Features use information from the future (``task=check`` found offending columns)."""


def task_check(cfg: DictConfig, output_dir: Path) -> dict[str, float]:
    """Look-ahead checks of the configured features; fails (non-zero exit) if any column leaks."""
    report = pipeline.check_leakage(cfg)
    if not report.ok:
        raise LeakageError(report.format())
    print(report.format())
    return {"check/columns": float(len(report.columns))}


Task = Callable[[DictConfig, Path], Mapping[str, float]]

TASKS: dict[str, Task] = {
    "pipeline": task_pipeline,
    "data": task_data,
    "train": task_train,
    "evaluate": task_evaluate,
    "check": task_check,
}
# Tasks that build an env and an agent: pipeline.preflight checks those too before the run.
AGENT_TASKS = frozenset({"pipeline", "train", "evaluate"})


def check_task(name: str) -> Task:
    """The task function for ``name``, or a clear error listing the choices."""
    if name not in TASKS:
        raise ValueError(f"task={name} is unknown; choose one of: {', '.join(TASKS)}")
    return TASKS[name]


def execute(
    cfg: DictConfig,
    *,
    output_dir: Path,
    choices: Mapping[str, Any] | None = None,
    overrides: list[str] | None = None,
) -> dict[str, float]:
    """Run ``cfg.task`` inside one MLflow run and return its metrics.

    Args:
        cfg: The composed config.
        output_dir: Where the job writes local files (Hydra's run directory).
        choices: The chosen option of each config group (tags in MLflow).
        overrides: The command-line overrides (a tag in MLflow).
    """
    task = check_task(cfg.task)
    pipeline.preflight(cfg, agent=cfg.task in AGENT_TASKS)
    if cfg.task == "pipeline":
        from cryptotrade import optimize

        optimize.preflight(cfg)  # optimizer settings and search space, before any run
    if cfg.task == "evaluate":
        pipeline.check_model_source(cfg)
    choices = dict(choices or {})
    pipeline.seed_everything(cfg.seed, cfg.torch_threads)
    parts = [cfg.task, choices.get("data"), choices.get("agent"), f"s{cfg.seed}"]
    name = cfg.tracking.run_name or "-".join(str(p) for p in parts if p)
    tags = {
        "task": cfg.task,
        "git_commit": tracking.git_commit(cfg.paths.root),
        "overrides": " ".join(overrides or []),
        **{f"choice/{k}": str(v) for k, v in choices.items() if not k.startswith("hydra")},
    }
    output_dir.mkdir(parents=True, exist_ok=True)
    with tracking.start_run(cfg, run_name=name, tags=tags) as run:
        metrics = dict(task(cfg, output_dir))
        uri = tracking.tracking_uri(cfg.tracking.uri, cfg.paths.root)
        log.info(
            "MLflow run %s (%s) in %s -- browse it with `make ui`",
            run.info.run_name,
            run.info.run_id,
            uri,
        )
        for key in sorted(metrics):
            log.info("  %-40s %.6g", key, metrics[key])
    return metrics


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point; returns ``cfg.optimizer.metric`` for sweepers."""
    hc = HydraConfig.get()
    metrics = execute(
        cfg,
        output_dir=Path(hc.runtime.output_dir),
        choices=OmegaConf.to_container(hc.runtime.choices),  # type: ignore[arg-type]
        overrides=list(hc.overrides.task),
    )
    return metrics.get(cfg.optimizer.metric)


if __name__ == "__main__":
    main()
