"""The objective every run, multirun job, Tune trial and GA individual calls.

``objective(cfg) -> dict[str, float]``: data -> env -> train -> evaluate on the test split. The
steps are also exposed one by one (``prepare_data``, ``train``, ``evaluate``) for the launcher's
tasks. This module and the launcher are the only places that read a ``DictConfig``; this is the
one place that calls ``hydra.utils.instantiate``.
"""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from cryptotrade import tracking

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm

    from cryptotrade.data import Dataset
    from cryptotrade.data.leakage import LeakageReport
    from cryptotrade.evaluation.evaluate import Evaluation

log = logging.getLogger(__name__)
DATA_CODE = Path(__file__).resolve().parent / "data"


def seed_everything(seed: int, torch_threads: int) -> None:
    """Seed python, numpy and torch; pin torch's CPU threads (1 is fastest for small nets)."""
    import torch
    from stable_baselines3.common.utils import set_random_seed

    torch.set_num_threads(torch_threads)
    set_random_seed(seed)


def data_fingerprint(cfg: DictConfig) -> str:
    """Hash of what determines the prepared dataset: data + features config and the data code."""
    node = {
        "data": OmegaConf.to_container(cfg.data, resolve=True),
        "features": OmegaConf.to_container(cfg.features, resolve=True),
    }
    digest = hashlib.sha256(OmegaConf.to_yaml(OmegaConf.create(node)).encode())
    # The data layer's code is part of the recipe: editing a generator or an indicator must not
    # silently reuse a dataset cached by the old code.
    for path in sorted(DATA_CODE.rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def prepare_data(cfg: DictConfig) -> Dataset:
    """Load, validate, featurise, split and normalise the configured data (cached)."""
    from cryptotrade.data import build_dataset

    fingerprint = data_fingerprint(cfg)
    spec = instantiate(cfg.data)
    features = instantiate(cfg.features)
    # the config names the data only if the source is reproducible (no open-ended download)
    cacheable = getattr(spec.source, "reproducible", True)
    cache_dir = Path(cfg.paths.data_dir) / "datasets" if cacheable else None
    dataset = build_dataset(spec, features, cache_dir=cache_dir, fingerprint=fingerprint)
    if tracking.active_run_id():
        tracking.set_tags(
            {"data_fingerprint": fingerprint, "data_hash": dataset.meta.get("bars_hash", "")}
        )
        tracking.log_dict(dataset.meta, "data/summary.json")
        tracking.log_dict(dataset.normaliser, "data/normaliser.json")
        tracking.log_metrics({f"data/{k}_rows": len(v) for k, v in dataset.splits.items()})
    return dataset


def check_leakage(cfg: DictConfig) -> LeakageReport:
    """Run the look-ahead checks of the configured features on the configured (validated) bars."""
    from cryptotrade.data import check_features, load_bars

    _, bars, _ = load_bars(instantiate(cfg.data))
    report = check_features(instantiate(cfg.features), bars, seed=cfg.seed)
    failed = {col for cols in report.offending.values() for col in cols}
    tracking.log_metrics(
        {"check/columns": len(report.columns), "check/offending_columns": len(failed)}
    )
    tracking.log_text(report.format(), "check/report.txt")
    return report


def preflight(cfg: DictConfig, *, agent: bool) -> None:
    """Check what can be checked without data, before a run starts or any data is loaded.

    Builds the data spec and feature set (and, with ``agent``, the env factory, reward and agent
    factory): their constructors validate their settings. With ``agent`` it also checks that
    the agent can act in the env's action mode, so a mismatch such as
    ``agent=dqn env.action_mode=continuous`` fails at once with the fix in the message.
    """
    instantiate(cfg.data)
    instantiate(cfg.features)
    if not agent:
        return
    from cryptotrade.agents.builder import agent_class
    from cryptotrade.env import check_agent_compatible

    env_factory, _ = make_env_parts(cfg)
    check_agent_compatible(agent_class(instantiate(cfg.agent)), env_factory.action_mode)


def check_model_source(cfg: DictConfig) -> None:
    """``task=evaluate``: a model is given and, if it comes from an MLflow run, was trained by
    the configured agent class (loading a DQN as PPO would fail deep inside SB3)."""
    if not cfg.model:
        raise ValueError(
            "task=evaluate needs a trained model: add model=runs:/<run_id>/model "
            "(or a path to a saved model.zip)"
        )
    if not str(cfg.model).startswith("runs:/"):
        return
    run_id = str(cfg.model).removeprefix("runs:/").split("/")[0]
    uri = tracking.tracking_uri(cfg.tracking.uri, cfg.paths.root)
    trained = tracking.run_params(uri, run_id).get("agent._target_")
    if trained and trained != cfg.agent._target_:
        raise ValueError(
            f"model={cfg.model} was trained by {trained} but agent is {cfg.agent._target_}; "
            "choose the matching agent (e.g. agent=dqn) to evaluate it"
        )


def make_env_parts(cfg: DictConfig) -> tuple[Any, Any]:
    """The env factory and reward object of the config."""
    return instantiate(cfg.env), instantiate(cfg.reward)


def train(cfg: DictConfig, dataset: Dataset, output_dir: Path) -> BaseAlgorithm:
    """Train the configured agent on the training split and save it under ``output_dir``."""
    from stable_baselines3.common.logger import Logger

    from cryptotrade.agents.builder import build_agent
    from cryptotrade.agents.callbacks import MLflowOutputFormat, RewardComponentsCallback

    env_factory, reward = make_env_parts(cfg)
    agent_factory = instantiate(cfg.agent)
    venv = env_factory.make_vec(dataset.train, reward, seed=cfg.seed)
    extractor = tracking.plain(cfg.extractor)
    model = build_agent(agent_factory, venv, extractor=extractor, seed=cfg.seed)
    model.set_logger(Logger(folder=None, output_formats=[MLflowOutputFormat()]))
    start = time.perf_counter()
    model.learn(
        total_timesteps=cfg.train.total_timesteps,
        callback=RewardComponentsCallback(),
        log_interval=cfg.train.log_interval,
        progress_bar=cfg.train.progress_bar,
    )
    seconds = time.perf_counter() - start
    # SB3 dumps its logger every log_interval rollouts/episodes; flush what the last ones
    # recorded (e.g. DQN's train/loss when no episode has ended yet in a short run).
    model.logger.dump(model.num_timesteps)
    venv.close()
    tracking.log_metrics(
        {"perf/train_seconds": seconds, "perf/train_fps": model.num_timesteps / max(seconds, 1e-9)}
    )
    path = output_dir / "model.zip"
    partial = output_dir / "model.partial.zip"
    try:
        model.save(partial)
        partial.replace(path)  # atomic: an interrupted save never leaves a truncated model.zip
    finally:
        partial.unlink(missing_ok=True)
    if cfg.tracking.log_model:
        tracking.log_artifact(path, "model")
        from cryptotrade.evaluation.policy_model import log_policy_model

        # a registrable MLflow model: the policy with the normaliser and settings it needs
        sections = {k: tracking.plain(cfg[k]) for k in ("data", "features", "env")}
        log_policy_model(path, cfg.agent._target_, normaliser=dataset.normaliser, settings=sections)
    return model


def load_model(cfg: DictConfig) -> BaseAlgorithm:
    """Load ``cfg.model`` (``runs:/<id>/model``, a folder or a zip) as ``cfg.agent``'s class."""
    from cryptotrade.agents.builder import agent_class

    path = tracking.download_artifact(cfg.model)
    if path.is_dir():
        path = path / "model.zip"
    if not path.exists():
        raise FileNotFoundError(f"model={cfg.model} has no model.zip (looked at {path})")
    return agent_class(instantiate(cfg.agent)).load(path, device="cpu")


def evaluate(cfg: DictConfig, model: BaseAlgorithm, dataset: Dataset) -> dict[str, float]:
    """Backtest ``model`` and the baselines on the test split; log metrics, pictures, report.

    The launcher prints the summary table (agent vs each baseline, costs) at the end of the run.
    """
    return evaluate_test(cfg, model, dataset).metrics


def evaluate_test(cfg: DictConfig, model: BaseAlgorithm, dataset: Dataset) -> Evaluation:
    """:func:`evaluate` returning the whole :class:`Evaluation` (backtests, report, ...)."""
    from cryptotrade.evaluation import evaluate_split
    from cryptotrade.evaluation.backtest import model_policy
    from cryptotrade.evaluation.settings import EvaluationSettings

    env_factory, reward = make_env_parts(cfg)
    settings = EvaluationSettings(**tracking.plain(cfg.evaluation))

    def make_env() -> Any:
        return env_factory.make(dataset.test, reward, seed=cfg.seed, evaluation=True)

    if cfg.get("model"):  # task=evaluate: refuse a model that cannot act in this env
        from cryptotrade.evaluation.reload import check_model_fits

        probe = make_env()
        try:
            check_model_fits(model, probe, source=str(cfg.model))
        finally:
            probe.close()
    regimes = cfg.get("regime")
    names = list(regimes.regimes) if regimes is not None and "regimes" in regimes else None
    return evaluate_split(
        model_policy(model),
        make_env,
        prefix="test",
        seed=cfg.seed,
        settings=settings,
        regime_names=names,
        config_yaml=OmegaConf.to_yaml(tracking.plain(cfg)),
    )


def objective(cfg: DictConfig, output_dir: Path) -> dict[str, float]:
    """Data -> train -> evaluate on the test split. Returns ``/``-namespaced metrics.

    With ``evaluation.seeds`` set: one nested run per seed, statistics over seeds in this run.
    """
    dataset = prepare_data(cfg)
    if cfg.evaluation.seeds:
        return objective_seeds(cfg, dataset, output_dir, list(cfg.evaluation.seeds))
    model = train(cfg, dataset, output_dir)
    return evaluate(cfg, model, dataset)


def objective_seeds(
    cfg: DictConfig, dataset: Dataset, output_dir: Path, seeds: list[int]
) -> dict[str, float]:
    """Train and test one nested run per seed; log mean, IQM and bootstrap CI in this run.

    Every child run holds its own full evaluation; this run gets ``test/<m>/{mean,iqm,std,
    ci_low,ci_high}`` (:mod:`cryptotrade.evaluation.seeds`), ``test/<m>`` = the mean, the first
    seed's baselines (seed-independent) and the equity band across seeds.
    """
    from omegaconf import open_dict

    from cryptotrade.evaluation.evaluate import log_files
    from cryptotrade.evaluation.plots import equity_band_plot
    from cryptotrade.evaluation.seeds import aggregate_seeds

    per_seed, curves = [], []
    for seed in seeds:
        seed_cfg = cfg.copy()
        with open_dict(seed_cfg):
            seed_cfg.seed = seed
            seed_cfg.evaluation.seeds = []
        seed_everything(seed, cfg.torch_threads)
        seed_dir = output_dir / f"seed{seed}"
        seed_dir.mkdir(parents=True, exist_ok=True)
        with tracking.nested_run(f"seed{seed}", tags={"seed": str(seed)}, params={"seed": seed}):
            result = evaluate_test(seed_cfg, train(seed_cfg, dataset, seed_dir), dataset)
        per_seed.append(result.metrics)
        curves.append(result.agent)
    metrics = aggregate_seeds(per_seed)
    metrics |= {k: v for k, v in per_seed[0].items() if k.startswith("baseline/")}
    tracking.log_metrics(metrics)
    tracking.set_tags({"seeds": ",".join(map(str, seeds))})
    if cfg.evaluation.plots:
        png = equity_band_plot(curves, seeds, log_scale=cfg.evaluation.log_scale)
        log_files({"equity_band.png": png}, "test/plots")
    return metrics
