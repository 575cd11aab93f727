"""Training: build or restore the agent, learn with validation and checkpoints, save the model.

:func:`train` is the one training loop of every task: ``task=pipeline`` / ``task=train``, a
resumed run, each curriculum stage and every search trial.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptotrade.agents.checkpoint import (
    BEST,
    CheckpointCallback,
    OnCheckpoint,
    ValidationCheckpoints,
    latest_checkpoint,
    restore,
)
from cryptotrade.agents.selection import (
    OnValidation,
    Selection,
    ValidationCallback,
    clear_stand_aside,
    gate,
    log_curve,
    log_selected,
    save_atomic,
    updates,
)
from cryptotrade.errors import ModelError
from cryptotrade.launch import tracking

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm
    from stable_baselines3.common.logger import Logger

    from cryptotrade.components import Components
    from cryptotrade.data import Dataset
    from cryptotrade.env.compiled import CompiledMarket

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` produced.

    Attributes:
        model: The selected model (best on validation, or the last with ``train.select=last``).
        val_metrics: ``val/...`` metrics of the selected model.
        selected_step: Env step at which the selected model was saved.
        num_timesteps: Env steps trained in total.
        path: The saved ``model.zip``.
    """

    model: BaseAlgorithm
    val_metrics: dict[str, float]
    selected_step: int
    num_timesteps: int
    path: Path


def make_logger(output_dir: Path, *, verbose: int, tensorboard: bool) -> Logger:
    """SB3 logger: MLflow (SB3's own metric names), stdout table, TensorBoard event files."""
    from stable_baselines3.common.logger import HumanOutputFormat, KVWriter, Logger

    from cryptotrade.agents.callbacks import MLflowOutputFormat

    formats: list[KVWriter] = [MLflowOutputFormat()]
    if verbose >= 1:
        formats.append(HumanOutputFormat(sys.stdout))
    if tensorboard:
        try:
            from stable_baselines3.common.logger import TensorBoardOutputFormat

            formats.append(TensorBoardOutputFormat(str(output_dir / "tensorboard")))
        except ImportError:  # SB3 writes TensorBoard files only with the tensorboard package
            log.warning("tensorboard is not installed: no TensorBoard event files")
    return Logger(folder=str(output_dir), output_formats=formats)


_learn_started_at: float | None = None


def _mark_learn_start() -> None:
    global _learn_started_at
    _learn_started_at = time.time()


def last_learn_start() -> float | None:
    """Wall-clock time (``time.time()``) at which this process's latest :func:`train` reached
    ``model.learn``, or ``None``: a search measures its candidates' start-up with it
    (:func:`cryptotrade.optimize.warm.candidate_timing`)."""
    return _learn_started_at


def warm_up(components: Components, market: CompiledMarket) -> float:
    """Compile (or load from numba's cache) the market kernels on a throwaway env; seconds.

    ``market`` is a compiled split (the validation one): the env shares it, nothing is rebuilt.
    """
    start = time.perf_counter()
    env = components.env.make(market, seed=components.seed, evaluation=True)
    try:
        env.reset(seed=components.seed)
        env.step(env.action_for_target(0.0))
    finally:
        env.close()
    return time.perf_counter() - start


def train(
    components: Components,
    dataset: Dataset,
    output_dir: Path,
    *,
    on_validation: OnValidation | None = None,
    on_checkpoint: OnCheckpoint | None = None,
    model: BaseAlgorithm | None = None,
    resume: bool = False,
    total_timesteps: int | None = None,
) -> TrainResult:
    """Train on the training split, select on validation, save ``output_dir/model.zip``.

    Args:
        components: The run's components.
        dataset: The prepared dataset (train and validation splits are read, never test).
        output_dir: The job's folder: checkpoints, best model, TensorBoard files, model.zip.
        on_validation: Called after each validation as ``(num_timesteps, val_metrics)``.
        on_checkpoint: Called after each validation, at the next rollout boundary, as
            ``(num_timesteps, val_metrics, folder)`` with a complete checkpoint in ``folder``
            (see :class:`~cryptotrade.agents.checkpoint.ValidationCheckpoints`).
        model: Continue training this model (``task=train model=...``, curriculum stages)
            instead of building a new one; its step count carries on.
        resume: Continue from the latest checkpoint under ``output_dir`` (a killed run).
        total_timesteps: The budget; default ``components.train.total_timesteps``. With
            ``model`` or ``resume`` it counts the model's steps so far.

    Returns:
        The selected model and its validation metrics.
    """
    settings = components.train
    total = total_timesteps or settings.total_timesteps
    output_dir.mkdir(parents=True, exist_ok=True)
    # one compiled market per split, shared by the warm-up env, the training VecEnv and
    # every validation
    train_market = components.env.compile(dataset.train, components.reward)
    val_market = components.env.compile(dataset.val, components.reward)
    seconds = warm_up(components, val_market)
    log.info("compiling kernels: %.1f s", seconds)

    venv = components.env.make_vec(train_market, seed=components.seed)
    selection = Selection(metric=settings.select_metric)
    checkpoint = latest_checkpoint(output_dir) if resume else None
    if resume and checkpoint is None:
        log.warning("no checkpoint in %s: training from the start", output_dir)
    from cryptotrade.agents.encoder_weights import prepare_extractor

    policy = components.policy
    assert policy is not None
    fresh = checkpoint is None and model is None
    if checkpoint is not None:
        model = restore(checkpoint, components.agent_class, venv)
        selection = checkpoint.selection
        log.info("resumed from %s at step %d", checkpoint.path, checkpoint.step)
    elif model is not None:
        clear_stand_aside(model)  # a model training on (the next curriculum stage) decides anew
        model.set_env(venv)
        total += int(model.num_timesteps) if total_timesteps is None else 0
    else:
        model = components.make_agent(venv)
    # a new model gets the extractor.pretrained encoder; a callback keeps it frozen for
    # extractor.freeze_steps (also when a killed run resumes within them)
    encoder_callbacks = prepare_extractor(model, policy.pretrained, policy.freeze_steps, load=fresh)
    verbose = int(getattr(model, "verbose", 0))
    model.set_logger(make_logger(output_dir, verbose=verbose, tensorboard=settings.tensorboard))

    from stable_baselines3.common.callbacks import CallbackList

    from cryptotrade.agents.callbacks import RewardComponentsCallback

    best_path = output_dir / BEST
    reporter = ValidationCheckpoints(on_checkpoint, selection, best_path) if on_checkpoint else None
    validation = ValidationCallback(
        components,
        val_market,
        selection,
        best_path=best_path,
        eval_freq=settings.eval_freq,
        on_validation=_chain(on_validation, reporter.notify if reporter else None),
        total_steps=total,
    )
    callbacks: list[Any] = [RewardComponentsCallback(), validation, *encoder_callbacks]
    if reporter is not None:
        callbacks.append(reporter)
    if settings.checkpoint_freq:
        callbacks.append(CheckpointCallback(output_dir, settings.checkpoint_freq, selection))
    progress = settings.progress_bar if settings.progress_bar is not None else sys.stdout.isatty()
    remaining = total - int(model.num_timesteps)
    start_steps = int(model.num_timesteps)
    log.info("training %s for %d env steps", type(model).__name__, max(remaining, 0))
    start = time.perf_counter()
    _mark_learn_start()
    if remaining > 0:
        model.learn(
            total_timesteps=remaining,
            callback=CallbackList(callbacks),
            log_interval=settings.log_interval,
            progress_bar=progress,
            reset_num_timesteps=False,
        )
    seconds = time.perf_counter() - start
    # SB3 dumps its logger every log_interval rollouts/episodes; flush what the last ones
    # recorded (e.g. DQN's train/loss when no episode has ended yet in a short run).
    model.logger.dump(model.num_timesteps)
    venv.close()
    trained = int(model.num_timesteps) - start_steps
    log.info(
        "training: %.1f s, %d env steps (%.0f steps/s)",
        seconds,
        trained,
        trained / max(seconds, 1e-9),
    )
    tracking.log_metrics(
        {"perf/train_seconds": seconds, "perf/train_fps": trained / max(seconds, 1e-9)},
        step=int(model.num_timesteps),
    )

    start = time.perf_counter()
    if selection.last_step != model.num_timesteps:
        validation.validate(model)  # every run ends with a validation of its final model
    if reporter is not None:  # the last validation's checkpoint, now that training has ended
        reporter.flush(model)
    log.info("evaluating on validation: %.1f s", time.perf_counter() - start)
    if updates(model) == 0:
        raise ModelError(
            f"{type(model).__name__} took no gradient step in {int(model.num_timesteps)} env "
            "steps, so there is no trained model to select; raise train.total_timesteps (an "
            "on-policy agent updates every agent.n_steps x env.n_envs steps, an off-policy one "
            "after agent.learning_starts)"
        )
    # the final model is trained and validated; best_step < 0: every score was NaN
    if settings.select == "best" and 0 <= selection.best_step != model.num_timesteps:
        final = components.agent_class.load(best_path, device="cpu")
        metrics, step = selection.best_metrics, selection.best_step
    else:
        final, metrics, step = model, selection.last_metrics, int(model.num_timesteps)
    log.info(
        "selected the model of step %d (%s=%.4g)", step, selection.metric, metrics[selection.metric]
    )
    metrics, curve = gate(
        components, final, metrics, validation.curve(step, final), val_market,
        settings.stand_aside_t,
    )  # fmt: skip
    log_selected(metrics, step, num_timesteps=int(model.num_timesteps))
    log_curve(curve)
    path = output_dir / "model.zip"
    save_atomic(final, path)
    return TrainResult(
        model=final,
        val_metrics=dict(metrics),
        selected_step=step,
        num_timesteps=int(model.num_timesteps),
        path=path,
    )


def _chain(*hooks: OnValidation | None) -> OnValidation | None:
    """One validation hook calling each of ``hooks`` in turn (``None`` if there are none)."""
    chained = [hook for hook in hooks if hook is not None]
    if len(chained) <= 1:
        return chained[0] if chained else None

    def call(step: int, metrics: dict[str, float]) -> None:
        for hook in chained:
            hook(step, dict(metrics))

    return call
