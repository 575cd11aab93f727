"""Checkpoints handed out with each validation (what a Tune trial reports), and a job that
resumes from one: its step count, selection state and best model carry on."""

from __future__ import annotations

import shutil

import pytest
from hydra import compose, initialize_config_dir

from cryptotrade.agents.checkpoint import BEST, adopt_checkpoint, latest_checkpoint
from cryptotrade.agents.training import train
from cryptotrade.components import build
from cryptotrade.config import CONF_DIR, register_configs
from cryptotrade.optimize import objective

register_configs()
# PPO rollouts of 64 x 8 envs = 512 steps, a validation every 256: two validations per rollout
SMALL = (
    "agent.n_steps=64", "agent.batch_size=128", "agent.n_epochs=1", "train.checkpoint_freq=0",
    "train.total_timesteps=1024", "train.eval_freq=256",
)  # fmt: skip


def compose_cfg(*overrides: str):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=["debug=default", *SMALL, *overrides])


def test_each_validation_hands_out_a_checkpoint_that_a_job_resumes_from(tmp_path):
    components = build(compose_cfg())
    dataset = objective.prepare_data(components)
    handed = []

    def keep(step, metrics, folder):
        if folder is not None:
            assert latest_checkpoint(folder).step == step  # complete before the hook sees it
            shutil.copytree(folder, tmp_path / f"handed{step}")
        handed.append((step, metrics, folder is not None))

    validated = []
    first = train(
        components, dataset, tmp_path / "a",
        on_validation=lambda step, metrics: validated.append((step, metrics)), on_checkpoint=keep,
    )  # fmt: skip
    # every validation is handed on, in order; the last one of each rollout with the checkpoint
    # taken at the rollout's end
    assert [(step, saved) for step, _, saved in handed] == [
        (256, False), (512, True), (768, False), (1024, True),
    ]  # fmt: skip
    assert [(step, m) for step, m, _ in handed] == validated
    assert first.num_timesteps == 1024
    assert not list((tmp_path / "a").glob(".report-*")), "the temporary folders are removed"
    assert (tmp_path / "handed512" / BEST).exists()

    checkpoint = adopt_checkpoint(tmp_path / "handed512", tmp_path / "b")
    assert checkpoint.step == 512 and checkpoint.selection.last_step == 512
    assert (tmp_path / "b" / BEST).exists()
    steps = []
    resumed = train(
        components, dataset, tmp_path / "b", resume=True,
        on_validation=lambda step, metrics: steps.append(step),
    )  # fmt: skip
    assert steps == [768, 1024], "continues after the checkpoint's step, not from 0"
    assert resumed.num_timesteps == 1024
    # the selection state came with the checkpoint: the best may still be an early model
    assert resumed.selected_step in (256, 512, 768, 1024)


def test_adopting_a_folder_without_a_checkpoint_fails_and_changes_nothing(tmp_path):
    (tmp_path / "job" / "checkpoints").mkdir(parents=True)
    (tmp_path / "job" / "checkpoints" / "keep").write_text("x")
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        adopt_checkpoint(tmp_path / "empty", tmp_path / "job")
    assert (tmp_path / "job" / "checkpoints" / "keep").exists()
