"""The objective every run, multirun job, Tune trial and GA individual calls.

``objective(cfg, output_dir, *, test, on_validation)``: data -> train with periodic validation
-> the selected model's ``val/`` metrics, plus (only with ``test=True``) one backtest on the test
split and the baselines. The steps are also exposed one by one (``prepare_data``, ``evaluate``)
for the launcher's tasks. Objects come from :func:`cryptotrade.components.build`, the one
place that calls ``hydra.utils.instantiate``; training lives in
:mod:`cryptotrade.agents.training`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from cryptotrade import tracking
from cryptotrade.components import Components, build, data_fingerprint
from cryptotrade.errors import ConfigError, ModelError

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm

    from cryptotrade.agents.checkpoint import OnCheckpoint
    from cryptotrade.data import Dataset
    from cryptotrade.data.leakage import LeakageReport
    from cryptotrade.evaluation.evaluate import Evaluation

log = logging.getLogger(__name__)
__all__ = ["build", "data_fingerprint", "objective"]


def seed_everything(seed: int, torch_threads: int) -> None:
    """Seed python, numpy and torch; pin torch's CPU threads (1 is fastest for small nets)."""
    import torch
    from stable_baselines3.common.utils import set_random_seed

    torch.set_num_threads(torch_threads)
    set_random_seed(seed)


def prepare_data(cfg_or_components: DictConfig | Components) -> Dataset:
    """Load, validate, featurise, split and normalise the configured data (cached)."""
    from cryptotrade.data import build_dataset

    comps = _components(cfg_or_components, agent=False)
    start = time.perf_counter()
    dataset = build_dataset(
        comps.data, comps.features, cache_dir=comps.cache_dir, fingerprint=comps.fingerprint
    )
    log.info(
        "loading data: %.1f s (%s rows)",
        time.perf_counter() - start,
        ", ".join(f"{k} {len(v)}" for k, v in dataset.splits.items()),
    )
    if tracking.active_run_id():
        tracking.set_tags(
            {"data_fingerprint": comps.fingerprint, "data_hash": dataset.meta.get("bars_hash", "")}
        )
        tracking.log_dict(dataset.meta, "data/summary.json")
        tracking.log_dict(dataset.normaliser, "data/normaliser.json")
        tracking.log_metrics({f"data/{k}_rows": len(v) for k, v in dataset.splits.items()})
    return dataset


def _components(obj: DictConfig | Components, *, agent: bool) -> Components:
    return obj if isinstance(obj, Components) else build(obj, agent=agent)


def check_leakage(cfg: DictConfig) -> LeakageReport:
    """Run the look-ahead checks of the configured features on the configured (validated) bars."""
    from cryptotrade.data import check_features, load_bars

    comps = build(cfg, agent=False)
    _, bars, _ = load_bars(comps.data)
    report = check_features(comps.features, bars, seed=cfg.seed)
    failed = {col for cols in report.offending.values() for col in cols}
    tracking.log_metrics(
        {"check/columns": len(report.columns), "check/offending_columns": len(failed)}
    )
    tracking.log_text(report.format(), "check/report.txt")
    return report


def preflight(cfg: DictConfig, *, agent: bool) -> Components:
    """Check what can be checked without data, before a run starts or any data is loaded.

    Builds the run's components (:func:`cryptotrade.components.build`): constructors validate
    their settings, and with ``agent`` the agent/env/budget combination is checked too, so
    ``agent=dqn env.action_mode=continuous`` fails at once with the fix in the message. The
    task that runs next gets the very same components (``build`` returns them again).
    """
    return build(cfg, agent=agent)


def check_model_source(cfg: DictConfig) -> None:
    """``model=...``: a model is given and, if it comes from an MLflow run, was trained by the
    configured agent class (loading a DQN as PPO would fail deep inside SB3)."""
    if not cfg.model:
        raise ConfigError(
            f"task={cfg.task} needs a trained model: add model=runs:/<run_id>/model "
            "(or a path to a saved model.zip)"
        )
    if not str(cfg.model).startswith("runs:/"):
        return
    run_id = str(cfg.model).removeprefix("runs:/").split("/")[0]
    uri = tracking.tracking_uri(cfg.tracking.uri, cfg.paths.root)
    trained = tracking.run_params(uri, run_id).get("agent._target_")
    if trained and trained != cfg.agent._target_:
        raise ModelError(
            f"model={cfg.model} was trained by {trained} but agent is {cfg.agent._target_}; "
            "choose the matching agent (e.g. agent=dqn) to use it"
        )


def load_model(cfg: DictConfig, components: Components | None = None) -> BaseAlgorithm:
    """Load ``cfg.model`` (``runs:/<id>/model``, a folder or a zip) as the configured agent."""
    comps = components or build(cfg)
    path = tracking.download_artifact(cfg.model)
    if path.is_dir():
        path = path / "model.zip"
    if not path.exists():
        raise ModelError(f"model={cfg.model} has no model.zip (looked at {path})")
    return comps.agent_class.load(path, device="cpu")


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

    def make_env() -> Any:
        return components.env.make(
            dataset.test, components.reward, seed=components.seed, evaluation=True
        )

    probe = make_env()  # refuse a model that cannot see this env's observations, by name
    try:
        check_model_fits(model, probe, source=source)
    finally:
        probe.close()
    regime = getattr(components.data.source, "regime", None)
    start = time.perf_counter()
    result = evaluate_split(
        model_policy(model),
        make_env,
        prefix="test",
        seed=components.seed,
        settings=components.evaluation,
        regime_names=getattr(regime, "names", None),
        config_yaml=config_yaml,
    )
    log.info("evaluating on test: %.1f s", time.perf_counter() - start)
    return result


# Settings a resumed run may change (the budget and how training reports); any other changed
# setting would make the resumed run a different experiment than the one its params record.
RESUMABLE = frozenset(
    {
        "train.total_timesteps",
        "train.checkpoint_freq",
        "train.log_interval",
        "train.progress_bar",
        "train.tensorboard",
        "torch_threads",
    }
)
# Taken from the command line as they are: where the store is, and the resume itself.
_LOCAL = ("resume", "tracking.", "hydra.")


def _leaves(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict) and node:
        out: dict[str, Any] = {}
        for key, value in node.items():
            out |= _leaves(value, f"{prefix}{key}.")
        return out
    return {prefix.rstrip("."): node}


def resume_changes(
    stored: DictConfig, given: DictConfig, baseline: DictConfig | None
) -> dict[str, tuple[Any, Any]]:
    """The settings the command line of a resume changes: ``{key: (stored, given)}``.

    Args:
        stored: The resumed run's config.
        given: The config composed from the resume's command line.
        baseline: The same composition without the user's overrides (``None``: every setting
            of ``given`` counts as asked for), so defaults that changed since the run started
            are not mistaken for requests.
    """
    new = _leaves(OmegaConf.to_container(given, resolve=True))
    base = _leaves(OmegaConf.to_container(baseline, resolve=True)) if baseline else {}
    old = _leaves(OmegaConf.to_container(stored, resolve=True))
    asked = {k for k, v in new.items() if baseline is None or base.get(k, v) != v or k not in base}
    return {
        k: (old.get(k), new[k])
        for k in sorted(asked)
        if not k.startswith(_LOCAL) and old.get(k) != new[k]
    }


def resume_config(
    cfg: DictConfig, baseline: DictConfig | None = None
) -> tuple[DictConfig, dict[str, tuple[Any, Any]]]:
    """``resume=<run id>``: the config of that (killed) run, to continue it in the same run.

    The stored ``config.yaml`` of the run is the base. Settings of :data:`RESUMABLE` changed on
    the command line (``train.total_timesteps=...``) are applied and logged; any other changed
    setting is refused, naming the keys. ``tracking.*`` and ``resume`` come from the command
    line.

    Args:
        cfg: The config composed from the resume's command line.
        baseline: That composition without the user's overrides (see :func:`resume_changes`).

    Returns:
        The config to continue with, and the applied changes ``{key: (old, new)}``.

    Raises:
        ConfigError: The run does not exist, already finished, or left no checkpoint; or the
            command line changes a setting that cannot change on resume.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    from cryptotrade.agents.checkpoint import latest_checkpoint

    run_id = str(cfg.resume)
    uri = tracking.tracking_uri(cfg.tracking.uri, cfg.paths.root)
    mlflow.set_tracking_uri(uri)
    try:
        run = mlflow.MlflowClient(uri).get_run(run_id)
        stored = mlflow.artifacts.load_text(f"runs:/{run_id}/config.yaml")
    except MlflowException as exc:
        raise ConfigError(
            f"resume={run_id}: no such MLflow run (or it has no config.yaml) in {uri}; "
            "check the run id (make ui) or set tracking.uri"
        ) from exc
    if run.info.status == "FINISHED":
        raise ConfigError(f"resume={run_id}: the run already FINISHED; nothing to resume")
    folder = run.data.tags.get("checkpoint_dir")
    if not folder or latest_checkpoint(Path(folder)) is None:
        raise ConfigError(
            f"resume={run_id}: the run left no checkpoint (in {folder or 'no output folder'}); "
            "checkpoints are written every train.checkpoint_freq env steps"
        )
    resumed, changes = apply_resume(stored, cfg, baseline)
    log.info("resuming run %s from %s", run_id, folder)
    return resumed, changes


def apply_resume(
    stored: str, cfg: DictConfig, baseline: DictConfig | None
) -> tuple[DictConfig, dict[str, tuple[Any, Any]]]:
    """The stored ``config.yaml`` text of run ``cfg.resume`` with the command line's allowed
    changes applied (see :func:`resume_config`)."""
    from cryptotrade.config import Config

    run_id = str(cfg.resume)
    resumed = OmegaConf.merge(OmegaConf.structured(Config), OmegaConf.create(stored))
    assert isinstance(resumed, DictConfig)
    resumed.resume = run_id
    resumed.tracking.uri = cfg.tracking.uri
    if resumed.train.curriculum:
        raise ConfigError(f"resume={run_id}: resuming a curriculum run is not supported")
    changes = resume_changes(resumed, cfg, baseline)
    refused = [k for k in changes if k not in RESUMABLE]
    if refused:
        shown = ", ".join(f"{k} ({changes[k][0]!r} -> {changes[k][1]!r})" for k in refused[:5])
        shown += f" and {len(refused) - 5} more" if len(refused) > 5 else ""
        raise ConfigError(
            f"resume={run_id}: these settings cannot change on resume: {shown}; only "
            f"{', '.join(sorted(RESUMABLE))} can (start a new run to change the others)"
        )
    for key, (old, new) in changes.items():
        OmegaConf.update(resumed, key, new, merge=False)
        log.info("resume: %s changed from %r to %r", key, old, new)
    return resumed, changes


def _resume_dir(cfg: DictConfig) -> Path:
    import mlflow

    uri = tracking.tracking_uri(cfg.tracking.uri, cfg.paths.root)
    tags = mlflow.MlflowClient(uri).get_run(str(cfg.resume)).data.tags
    return Path(tags["checkpoint_dir"])


def train(
    cfg: DictConfig,
    output_dir: Path,
    *,
    on_validation: Callable[[int, dict[str, float]], None] | None = None,
    dataset: Dataset | None = None,
    model: BaseAlgorithm | None = None,
    on_checkpoint: OnCheckpoint | None = None,
    resume: bool = False,
) -> tuple[Any, Dataset]:
    """Data -> train (curriculum stages if configured) -> the :class:`TrainResult` and dataset.

    ``on_checkpoint`` and ``resume`` (continue from the latest checkpoint in ``output_dir``, as
    a search trial does) are passed to :func:`cryptotrade.agents.training.train`; a curriculum
    supports neither. Logs the selected model to the MLflow run when ``tracking.log_model``.
    """
    from cryptotrade.agents.training import train as train_agent

    comps = build(cfg)
    if cfg.get("resume"):
        output_dir = _resume_dir(cfg)  # where the killed run left its checkpoints
    else:
        # the folder of the checkpoints (the launcher's output_dir tag moves with a resume)
        tracking.set_tags({"checkpoint_dir": str(output_dir.resolve())})
    if comps.train.curriculum:
        from cryptotrade.agents.curriculum import train_curriculum

        if on_checkpoint is not None or resume:
            raise ConfigError("a train.curriculum run cannot hand out or resume checkpoints")

        result, dataset = train_curriculum(cfg, output_dir, on_validation=on_validation)
    else:
        dataset = dataset or prepare_data(comps)
        result = train_agent(
            comps,
            dataset,
            output_dir,
            on_validation=on_validation,
            on_checkpoint=on_checkpoint,
            model=model,
            resume=bool(cfg.get("resume")) or resume,
        )
    if cfg.tracking.log_model:
        tracking.log_artifact(result.path, "model")
        from cryptotrade.evaluation.policy_model import log_policy_model

        # a registrable MLflow model: the policy with the normaliser and settings it needs
        sections = {k: tracking.plain(cfg[k]) for k in ("data", "features", "env")}
        log_policy_model(
            result.path, cfg.agent._target_, normaliser=dataset.normaliser, settings=sections
        )
    return result, dataset


def objective(
    cfg: DictConfig,
    output_dir: Path,
    *,
    test: bool = True,
    on_validation: Callable[[int, dict[str, float]], None] | None = None,
    on_checkpoint: OnCheckpoint | None = None,
    resume: bool = False,
) -> dict[str, float]:
    """Data -> train with validation-based selection -> metrics of the selected model.

    Args:
        cfg: The composed config.
        output_dir: The job's folder (checkpoints, models, TensorBoard files).
        test: Also backtest the selected model once on the test split and the baselines
            (plain runs). Search trials pass ``False``: a search never sees the test split.
        on_validation: Called after every validation as ``(num_timesteps, val_metrics)``.
        on_checkpoint: Called after every validation with a complete checkpoint, as
            ``(num_timesteps, val_metrics, folder)`` (a Tune trial reports it).
        resume: Continue from the latest checkpoint in ``output_dir`` (a resumed trial).

    Returns:
        ``val/...`` of the selected model; with ``test`` also ``test/...`` and
        ``baseline/<name>/...``.
    """
    if test and cfg.evaluation.seeds:
        return objective_seeds(cfg, output_dir, list(cfg.evaluation.seeds))
    result, dataset = train(
        cfg, output_dir, on_validation=on_validation, on_checkpoint=on_checkpoint, resume=resume
    )
    metrics = dict(result.val_metrics)
    if test:
        metrics |= evaluate(build(cfg), result.model, dataset, config_yaml=_config_yaml(cfg))
    return metrics


def _config_yaml(cfg: DictConfig) -> str:
    return OmegaConf.to_yaml(cfg, resolve=True)


def objective_seeds(cfg: DictConfig, output_dir: Path, seeds: list[int]) -> dict[str, float]:
    """Train, select and test one nested run per seed; log mean, IQM and bootstrap CI here.

    Every child run holds its own full evaluation; this run gets ``test/<m>/{mean,iqm,std,
    ci_low,ci_high}`` (:mod:`cryptotrade.evaluation.seeds`), ``test/<m>`` = the mean, the
    ``val/`` means, the first seed's baselines (seed-independent) and the equity band.
    """
    from omegaconf import open_dict

    from cryptotrade.evaluation.evaluate import log_files
    from cryptotrade.evaluation.plots import equity_band_plot
    from cryptotrade.evaluation.seeds import aggregate_seeds

    per_seed, curves = [], []
    dataset = None
    for seed in seeds:
        seed_cfg = cfg.copy()
        with open_dict(seed_cfg):
            seed_cfg.seed = seed
            seed_cfg.evaluation.seeds = []
        seed_everything(seed, cfg.torch_threads)
        seed_dir = output_dir / f"seed{seed}"
        seed_dir.mkdir(parents=True, exist_ok=True)
        with tracking.nested_run(f"seed{seed}", tags={"seed": str(seed)}, params={"seed": seed}):
            result, dataset = train(seed_cfg, seed_dir, dataset=dataset)
            evaluation = evaluate_test(
                build(seed_cfg), result.model, dataset, config_yaml=_config_yaml(seed_cfg)
            )
        per_seed.append(dict(result.val_metrics) | evaluation.metrics)
        curves.append(evaluation.agent)
    metrics = aggregate_seeds(per_seed, "test") | aggregate_seeds(per_seed, "val")
    metrics |= {k: v for k, v in per_seed[0].items() if k.startswith("baseline/")}
    tracking.log_metrics(metrics)
    tracking.set_tags({"seeds": ",".join(map(str, seeds))})
    if cfg.evaluation.plots:
        png = equity_band_plot(curves, seeds, log_scale=cfg.evaluation.log_scale)
        log_files({"equity_band.png": png}, "test/plots")
    return metrics
