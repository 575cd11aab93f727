"""Resumable checkpoints: model + optimizer, replay buffer, RNG states, step and selection state.

A checkpoint is a folder ``<output_dir>/checkpoints/step_<n>/`` written under a temporary name
and renamed into place (atomic on one filesystem), then named in ``checkpoints/latest`` (also
replaced atomically); older checkpoints are removed afterwards. A process killed at any moment
leaves either the previous complete checkpoint or the new one, never a half-written one.

The native VecEnv's state (each env's account, episode position, next episode and generator)
and the action space's RNG are checkpointed too, and the model keeps its last observation, so a
resumed run continues the very episodes and equals the uninterrupted run; only a DummyVecEnv
(``env.vectorized=false``) is not checkpointed (its resumed run starts new episodes). For
on-policy agents nothing is lost because checkpoints are taken at rollout boundaries (after an
update, before the next rollout).

:class:`ValidationCheckpoints` hands such a checkpoint (with the best model so far) to a hook
after each validation, in a temporary folder: a Tune trial reports it with its validation score
(``ray.tune.report(..., checkpoint=...)``), and :func:`adopt_checkpoint` puts it back into a
job folder so that ``train(..., resume=True)`` continues from it.
"""

from __future__ import annotations

import os
import pickle
import random
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from cryptotrade.agents.selection import Selection

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm
    from stable_baselines3.common.vec_env import VecEnv

LATEST = "latest"
BEST = "best_model.zip"  # the best model so far, in a job folder and in a handed-out checkpoint
OnCheckpoint = Callable[[int, dict[str, float], Path | None], None]


@dataclass(frozen=True)
class Checkpoint:
    """A complete checkpoint on disk.

    Attributes:
        path: Its folder.
        step: ``num_timesteps`` of the saved model.
        selection: The validation selection state at that step.
    """

    path: Path
    step: int
    selection: Selection


def _rng_state(model: BaseAlgorithm | None = None) -> dict[str, Any]:
    import torch

    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),  # noqa: NPY002  (SB3 seeds the legacy global RNG)
        "torch": torch.get_rng_state(),
    }
    if model is not None:  # DQN's random actions; SB3's load() reseeds it from model.seed
        state["action_space"] = model.action_space.np_random.bit_generator.state
        env = model.get_env()
        if hasattr(env, "get_state"):  # the native VecEnv: accounts, episodes, generators
            state["env"] = env.get_state()  # type: ignore[union-attr]
    return state


def _set_rng_state(state: dict[str, Any], model: BaseAlgorithm | None = None) -> None:
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])  # noqa: NPY002
    torch.set_rng_state(state["torch"])
    if model is not None and "action_space" in state:
        model.action_space.np_random.bit_generator.state = state["action_space"]


def save_checkpoint(model: BaseAlgorithm, output_dir: Path, selection: Selection) -> Path:
    """Write a checkpoint of ``model`` under ``output_dir/checkpoints`` and return its folder."""
    root = output_dir / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    step = int(model.num_timesteps)
    tmp = Path(tempfile.mkdtemp(prefix=f".step_{step}-", dir=root))
    try:
        model.save(tmp / "model.zip")  # policy and optimizer state, step counters, schedules
        if getattr(model, "replay_buffer", None) is not None:
            model.save_replay_buffer(tmp / "replay_buffer.pkl")  # type: ignore[attr-defined]
        with (tmp / "rng.pkl").open("wb") as fh:
            pickle.dump(_rng_state(model), fh)
        (tmp / "selection.json").write_text(selection.to_json())
        final = root / f"step_{step:012d}"
        if final.exists():
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    pointer = root / f".{LATEST}.{os.getpid()}"
    pointer.write_text(final.name)
    os.replace(pointer, root / LATEST)
    for old in root.glob("step_*"):
        if old.name != final.name:
            shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(output_dir: Path) -> Checkpoint | None:
    """The newest complete checkpoint under ``output_dir``, or ``None``."""
    root = output_dir / "checkpoints"
    pointer = root / LATEST
    if not pointer.exists():
        return None
    path = root / pointer.read_text().strip()
    selection = Selection.from_json((path / "selection.json").read_text())
    step = int(path.name.removeprefix("step_"))
    return Checkpoint(path=path, step=step, selection=selection)


def restore(checkpoint: Checkpoint, agent_class: type[BaseAlgorithm], env: VecEnv) -> Any:
    """Load the checkpointed model on ``env`` with its replay buffer and RNG states.

    With the native VecEnv the envs' state is restored too and the model keeps its last
    observation, so training continues the very episodes the killed run was in: the resumed
    run equals the uninterrupted one. Other envs (``env.vectorized=false``) start new episodes.
    """
    with (checkpoint.path / "rng.pkl").open("rb") as fh:
        state = pickle.load(fh)
    exact = "env" in state and hasattr(env, "set_state")
    model = agent_class.load(
        checkpoint.path / "model.zip", env=env, device="cpu", force_reset=not exact
    )
    if exact:
        env.set_state(state["env"])  # type: ignore[attr-defined]
    buffer = checkpoint.path / "replay_buffer.pkl"
    if buffer.exists():
        model.load_replay_buffer(buffer)  # type: ignore[attr-defined]
    _set_rng_state(state, model)
    return model


class CheckpointCallback(BaseCallback):
    """Checkpoint every ``freq`` env steps, at the start of a rollout (after the last update).

    Args:
        output_dir: The job's output folder.
        freq: Env steps between checkpoints.
        selection: The validation selection state, saved alongside.
    """

    def __init__(self, output_dir: Path, freq: int, selection: Selection) -> None:
        super().__init__()
        self.output_dir = output_dir
        self.freq = freq
        self.selection = selection
        self.last = -1

    def _on_training_start(self) -> None:
        self.last = int(self.model.num_timesteps)

    def _on_rollout_start(self) -> None:
        if self.model.num_timesteps - self.last >= self.freq:
            save_checkpoint(self.model, self.output_dir, self.selection)
            self.last = int(self.model.num_timesteps)

    def _on_step(self) -> bool:
        return True


class ValidationCheckpoints(BaseCallback):
    """After each validation, hand a complete checkpoint to ``on_checkpoint``.

    :meth:`notify` (chained to the validation hook) remembers the validation; the checkpoint is
    written at the next rollout boundary, like :class:`CheckpointCallback` (nothing of an
    on-policy rollout is lost), or by :meth:`flush` once training has ended. It goes into a
    fresh temporary folder in the job folder: ``checkpoints/`` as :func:`save_checkpoint` writes
    it, plus the best model so far (``best_model.zip``). ``on_checkpoint(step, metrics,
    folder)`` gets the validation's step and metrics; the folder is removed when it returns, so
    the hook copies what it keeps (``ray.tune.report`` persists it to Tune's storage). The
    validation callback runs at rollout starts, so a validation and its checkpoint normally
    coincide; should several be pending at once, each is handed on in order and only the last
    with the checkpoint (``folder=None`` for the others).

    Args:
        on_checkpoint: The hook.
        selection: The validation selection state, saved in the checkpoint.
        best_path: The job's best model so far.
    """

    def __init__(self, on_checkpoint: OnCheckpoint, selection: Selection, best_path: Path) -> None:
        super().__init__()
        self.on_checkpoint = on_checkpoint
        self.selection = selection
        self.best_path = best_path
        self.pending: list[tuple[int, dict[str, float]]] = []

    def notify(self, step: int, metrics: dict[str, float]) -> None:
        """A validation at ``step`` gave ``metrics``: checkpoint at the next boundary."""
        self.pending.append((step, dict(metrics)))

    def _on_rollout_start(self) -> None:
        self.flush(self.model)

    def _on_step(self) -> bool:
        return True

    def flush(self, model: BaseAlgorithm) -> None:
        """Checkpoint ``model`` now and call the hook, if validations are pending."""
        if not self.pending:
            return
        *earlier, (step, metrics) = self.pending
        self.pending = []
        for early_step, early_metrics in earlier:
            self.on_checkpoint(early_step, early_metrics, None)
        with tempfile.TemporaryDirectory(prefix=".report-", dir=self.best_path.parent) as tmp:
            folder = Path(tmp)
            save_checkpoint(model, folder, self.selection)
            if self.best_path.exists():
                shutil.copy2(self.best_path, folder / BEST)
            self.on_checkpoint(step, metrics, folder)


def adopt_checkpoint(folder: Path, output_dir: Path) -> Checkpoint:
    """Make a checkpoint handed out by :class:`ValidationCheckpoints` the latest of
    ``output_dir``, replacing its checkpoints and best model, for ``train(resume=True)``.

    Raises:
        FileNotFoundError: ``folder`` holds no complete checkpoint.
    """
    source = latest_checkpoint(folder)
    if source is None:
        raise FileNotFoundError(f"{folder} holds no checkpoint (no checkpoints/{LATEST})")
    output_dir.mkdir(parents=True, exist_ok=True)
    root = output_dir / "checkpoints"
    tmp = Path(tempfile.mkdtemp(prefix=".adopt-", dir=output_dir))
    try:
        shutil.copytree(folder / "checkpoints", tmp / "checkpoints")
        if (folder / BEST).exists():
            shutil.copy2(folder / BEST, tmp / BEST)
            os.replace(tmp / BEST, output_dir / BEST)
        shutil.rmtree(root, ignore_errors=True)
        os.replace(tmp / "checkpoints", root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    adopted = latest_checkpoint(output_dir)
    assert adopted is not None and adopted.step == source.step
    return adopted
