"""The objective every run, multirun job, Tune trial and GA individual calls.

``objective(configs, output_dir, *, test, on_validation)``: data -> train with periodic validation
-> the selected model's ``val/`` metrics, plus (only with ``test=True``) one backtest on the test
split and the baselines. The steps are also exposed one by one (``prepare_data``, ``train``,
``evaluate``) for the tasks (:mod:`cryptotrade.tasks`). ``configs`` is the run's
:class:`~cryptotrade.optimize.derive.ConfigDeriver`: its typed settings say what to log and
whether to resume, and it derives each training seed's config. Objects come from
:func:`cryptotrade.components.build`, the one place that calls ``hydra.utils.instantiate``;
training lives in :mod:`cryptotrade.agents.training`. A curriculum is trained by the
``trainer`` the curriculum tasks hand in (:func:`cryptotrade.tasks.curriculum.train_curriculum`):
this module sits below the tasks and never imports them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from cryptotrade.components import Components, build, data_fingerprint
from cryptotrade.errors import ConfigError
from cryptotrade.launch import tracking
from cryptotrade.optimize.derive import ConfigDeriver, RunSettings

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm

    from cryptotrade.agents.checkpoint import OnCheckpoint
    from cryptotrade.data import Dataset
    from cryptotrade.evaluation.evaluate import Evaluation

log = logging.getLogger(__name__)
__all__ = ["Trainer", "build", "data_fingerprint", "objective"]


def seed_everything(seed: int, torch_threads: int) -> None:
    """Seed python, numpy and torch; pin torch's CPU threads (1 is fastest for small nets)."""
    import torch
    from stable_baselines3.common.utils import set_random_seed

    torch.set_num_threads(torch_threads)
    set_random_seed(seed)


def prepare_data(comps: Components) -> Dataset:
    """Load, validate, featurise, split and normalise the data of ``comps`` (cached)."""
    from cryptotrade.data import build_dataset

    start = time.perf_counter()
    dataset = build_dataset(
        comps.data, comps.features, cache_dir=comps.cache_dir, fingerprint=comps.fingerprint
    )
    log.info(
        "loading data: %.1f s (%s rows)",
        time.perf_counter() - start,
        ", ".join(f"{k} {len(v)}" for k, v in dataset.splits.items()),
    )
    if tracking.recording("the dataset's summary"):
        tracking.set_tags(
            {"data_fingerprint": comps.fingerprint, "data_hash": dataset.meta.get("bars_hash", "")}
        )
        tracking.log_dict(dataset.meta, "data/summary.json")
        tracking.log_dict(dataset.normaliser, "data/normaliser.json")
        tracking.log_metrics({f"data/{k}_rows": len(v) for k, v in dataset.splits.items()})
    return dataset


def evaluate(
    components: Components,
    model: BaseAlgorithm,
    dataset: Dataset,
    *,
    source: str = "the selected model",
    config_yaml: str = "",
) -> dict[str, float]:
    """Backtest ``model`` and the baselines on the TEST split; log metrics, pictures, report.

    Call it once per run, for the final (selected) model: nothing may be selected on it. The
    launcher prints the summary table (agent vs each baseline, costs) at the end of the run.
    """
    return evaluate_test(components, model, dataset, source=source, config_yaml=config_yaml).metrics


def evaluate_test(
    components: Components,
    model: BaseAlgorithm,
    dataset: Dataset,
    *,
    source: str = "the selected model",
    config_yaml: str = "",
) -> Evaluation:
    """:func:`evaluate` returning the whole :class:`Evaluation` (backtests, report, ...)."""
    from cryptotrade.evaluation import evaluate_split
    from cryptotrade.evaluation.backtest import model_policy
    from cryptotrade.evaluation.reload import check_model_fits

    # one compiled test market for the probe, the agent and every baseline
    market = components.env.compile(dataset.test, components.reward)
    probe = components.env.make(market, seed=components.seed, evaluation=True)
    try:  # refuse a model that cannot see this env's observations, by name
        check_model_fits(model, probe, source=source)
    finally:
        probe.close()
    regime = getattr(components.data.source, "regime", None)
    start = time.perf_counter()
    result = evaluate_split(
        model_policy(model),
        market,
        prefix="test",
        seed=components.seed,
        settings=components.evaluation,
        regime_names=getattr(regime, "names", None),
        config_yaml=config_yaml,
    )
    log.info("evaluating on test: %.1f s", time.perf_counter() - start)
    return result


def _resume_dir(settings: RunSettings) -> Path:
    uri = tracking.tracking_uri(settings.tracking.uri, settings.paths.root)
    return Path(tracking.run_tags(uri, str(settings.resume))["checkpoint_dir"])


class Trainer(Protocol):
    """What trains a run: :func:`train` (one stage) or a curriculum's trainer."""

    def __call__(
        self,
        configs: ConfigDeriver,
        output_dir: Path,
        *,
        components: Components | None = None,
        on_validation: Callable[[int, dict[str, float]], None] | None = None,
        dataset: Dataset | None = None,
        model: BaseAlgorithm | None = None,
        on_checkpoint: OnCheckpoint | None = None,
        resume: bool = False,
    ) -> tuple[Any, Dataset]: ...


def train(
    configs: ConfigDeriver,
    output_dir: Path,
    *,
    components: Components | None = None,
    on_validation: Callable[[int, dict[str, float]], None] | None = None,
    dataset: Dataset | None = None,
    model: BaseAlgorithm | None = None,
    on_checkpoint: OnCheckpoint | None = None,
    resume: bool = False,
) -> tuple[Any, Dataset]:
    """Data -> train -> the :class:`~cryptotrade.agents.training.TrainResult` and dataset (one
    stage; see :class:`Trainer`).

    ``components`` are those of the config of ``configs`` when the caller built them (built
    here otherwise).
    ``on_checkpoint`` and ``resume`` (continue from the latest checkpoint in ``output_dir``, as
    a search trial does) are passed to :func:`cryptotrade.agents.training.train`. Logs the
    selected model to the MLflow run when ``tracking.log_model``.

    Raises:
        ConfigError: ``train.curriculum`` is set (its stages are trained by
            :func:`cryptotrade.tasks.curriculum.train_curriculum`).
    """
    from cryptotrade.agents.training import train as train_agent

    comps = components or configs.build()
    if comps.train.curriculum:
        raise ConfigError(
            "train.curriculum runs with task=pipeline or task=train and optimizer=none "
            "(a search trains each candidate in one stage); drop train.curriculum to search"
        )
    resumed = configs.settings.resume
    if resumed:
        output_dir = _resume_dir(configs.settings)  # where the killed run left its checkpoints
    else:
        # the folder of the checkpoints (the launcher's output_dir tag moves with a resume)
        tracking.set_tags({"checkpoint_dir": str(output_dir.resolve())})
    dataset = dataset or prepare_data(comps)
    result = train_agent(
        comps,
        dataset,
        output_dir,
        on_validation=on_validation,
        on_checkpoint=on_checkpoint,
        model=model,
        resume=bool(resumed) or resume,
    )
    log_trained_model(configs, result.path, dataset)
    return result, dataset


def log_trained_model(configs: ConfigDeriver, path: Path, dataset: Dataset) -> None:
    """Log the selected model (``path``) to the run, when ``tracking.log_model``: the SB3 zip
    and a registrable MLflow model carrying the normaliser and settings it needs."""
    settings = configs.settings
    if not settings.tracking.log_model:
        return
    tracking.log_artifact(path, "model")
    from cryptotrade.evaluation.policy_model import log_policy_model

    sections = {k: configs.section(k) for k in ("data", "features", "env")}
    log_policy_model(path, settings.agent_target, normaliser=dataset.normaliser, settings=sections)


def objective(
    configs: ConfigDeriver,
    output_dir: Path,
    *,
    components: Components | None = None,
    test: bool = True,
    on_validation: Callable[[int, dict[str, float]], None] | None = None,
    on_checkpoint: OnCheckpoint | None = None,
    resume: bool = False,
    trainer: Trainer = train,
) -> dict[str, float]:
    """Data -> train with validation-based selection -> metrics of the selected model.

    Args:
        configs: The run's config (:class:`~cryptotrade.optimize.derive.ConfigDeriver`).
        output_dir: The job's folder (checkpoints, models, TensorBoard files).
        components: The components of that config when the caller built them (the launcher
            does); built here otherwise.
        test: Also backtest the selected model once on the test split and the baselines
            (plain runs). Search trials pass ``False``: a search never sees the test split.
        on_validation: Called after every validation as ``(num_timesteps, val_metrics)``.
        on_checkpoint: Called after every validation with a complete checkpoint, as
            ``(num_timesteps, val_metrics, folder)`` (a Tune trial reports it).
        resume: Continue from the latest checkpoint in ``output_dir`` (a resumed trial).
        trainer: Trains the run: :func:`train`, or a curriculum's trainer.

    Returns:
        ``val/...`` of the selected model; with ``test`` also ``test/...`` and
        ``baseline/<name>/...``.
    """
    seeds = configs.settings.evaluation.seeds
    if test and seeds:
        return objective_seeds(configs, output_dir, list(seeds), trainer=trainer)
    comps = components or configs.build()
    result, dataset = trainer(
        configs,
        output_dir,
        components=comps,
        on_validation=on_validation,
        on_checkpoint=on_checkpoint,
        resume=resume,
    )
    metrics = dict(result.val_metrics)
    if test:
        metrics |= evaluate(comps, result.model, dataset, config_yaml=configs.yaml())
    return metrics


def objective_seeds(
    configs: ConfigDeriver, output_dir: Path, seeds: list[int], *, trainer: Trainer = train
) -> dict[str, float]:
    """Train, select and test one nested run per seed; log mean, IQM and a 95 % CI here.

    Every child run holds its own full evaluation; this run gets ``test/<m>/{mean,iqm,std,
    ci_low,ci_high}`` (:mod:`cryptotrade.evaluation.seeds`: Student t below 10 seeds, bootstrap
    from 10, named by the ``seeds/ci_method`` tag and ``test/seeds.txt``), ``test/<m>`` = the
    mean, the ``val/`` means, the first seed's baselines (seed-independent) and the equity band.
    """
    from cryptotrade.evaluation.evaluate import log_files
    from cryptotrade.evaluation.plots import equity_band_plot
    from cryptotrade.evaluation.seeds import aggregate_seeds, ci_method, describe

    note = describe(len(seeds))  # warns now, before training, when there are too few seeds
    per_seed, curves = [], []
    dataset = None
    for seed in seeds:
        seed_configs = configs.with_point({"seed": seed, "evaluation.seeds": []})
        seed_everything(seed, configs.settings.torch_threads)
        seed_dir = output_dir / f"seed{seed}"
        seed_dir.mkdir(parents=True, exist_ok=True)
        with tracking.nested_run(f"seed{seed}", tags={"seed": str(seed)}, params={"seed": seed}):
            # the seed reaches the agent, envs and sampling
            seed_components = seed_configs.build()
            result, dataset = trainer(
                seed_configs, seed_dir, components=seed_components, dataset=dataset
            )
            evaluation = evaluate_test(
                seed_components, result.model, dataset, config_yaml=seed_configs.yaml()
            )
        per_seed.append(dict(result.val_metrics) | evaluation.metrics)
        curves.append(evaluation.agent)
    metrics = aggregate_seeds(per_seed, "test") | aggregate_seeds(per_seed, "val")
    metrics |= {k: v for k, v in per_seed[0].items() if k.startswith("baseline/")}
    metrics["seeds/n"] = float(len(per_seed))
    tracking.log_metrics(metrics)
    method = ci_method(len(seeds))
    tracking.set_tags({"seeds": ",".join(map(str, seeds)), "seeds/ci_method": method})
    tracking.log_text(note + "\n", "test/seeds.txt")
    evaluation_settings = configs.settings.evaluation
    if evaluation_settings.plots:
        png = equity_band_plot(curves, seeds, log_scale=evaluation_settings.log_scale)
        log_files({"equity_band.png": png}, "test/plots")
    return metrics
