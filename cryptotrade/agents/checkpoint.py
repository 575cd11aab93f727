"""Resumable checkpoints: model + optimizer, replay buffer, RNG states, step and selection state.

A checkpoint is a folder ``<output_dir>/checkpoints/step_<n>/`` written under a temporary name
and renamed into place (atomic on one filesystem), then named in ``checkpoints/latest`` (also
replaced atomically); older checkpoints are removed afterwards. A process killed at any moment
leaves either the previous complete checkpoint or the new one, never a half-written one.

What is not checkpointed: the training envs' episode state (a resumed run starts new
episodes) and, for on-policy agents, nothing is lost because checkpoints are taken at rollout
boundaries (after an update, before the next rollout).
"""

from __future__ import annotations

import os
import pickle
import random
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from cryptotrade.agents.validation import Selection

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm
    from stable_baselines3.common.vec_env import VecEnv

LATEST = "latest"


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


def _rng_state() -> dict[str, Any]:
    import torch

    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),  # noqa: NPY002  (SB3 seeds the legacy global RNG)
        "torch": torch.get_rng_state(),
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])  # noqa: NPY002
    torch.set_rng_state(state["torch"])


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
            pickle.dump(_rng_state(), fh)
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
    """Load the checkpointed model on ``env`` with its replay buffer and RNG states."""
    model = agent_class.load(checkpoint.path / "model.zip", env=env, device="cpu")
    buffer = checkpoint.path / "replay_buffer.pkl"
    if buffer.exists():
        model.load_replay_buffer(buffer)  # type: ignore[attr-defined]
    with (checkpoint.path / "rng.pkl").open("rb") as fh:
        _set_rng_state(pickle.load(fh))
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
