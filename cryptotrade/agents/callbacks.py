"""SB3 logging into MLflow: the logger's key/values and the per-episode reward components."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import KVWriter

from cryptotrade.launch import tracking


class MLflowOutputFormat(KVWriter):
    """An SB3 logger output that sends every numeric record to the active MLflow run.

    Metric names are SB3's own (``rollout/ep_rew_mean``, ``train/value_loss``, ``time/fps``),
    the same as in its stdout table and TensorBoard files.
    """

    def write(
        self,
        key_values: dict[str, Any],
        key_excluded: dict[str, tuple[str, ...]],
        step: int = 0,
    ) -> None:
        """Log the numeric values of one logger dump at ``step`` (the env-step count)."""
        metrics = {}
        for key, value in key_values.items():
            excluded = key_excluded.get(key) or ()
            if "mlflow" in excluded or isinstance(value, str | bool):
                continue
            if isinstance(value, int | float | np.integer | np.floating):
                metrics[key] = float(value)
        if metrics:
            tracking.log_metrics(metrics, step=step)

    def close(self) -> None:
        """Nothing to release: MLflow owns the run."""


class RewardComponentsCallback(BaseCallback):
    """Log the mean episode total of each reward component at the end of every rollout.

    The reward is a weighted sum of named components; logging each one's episode total makes
    reward hacking visible (e.g. a trade penalty that dominates the portfolio term). Both VecEnvs
    put ``episode/reward/<name>`` (the finished episode's sum) into the info of the step that
    ends an episode; they become ``train/episode_reward/<name>``.
    """

    def __init__(self, verbose: int = 0) -> None:
        super().__init__(verbose)
        self._totals: dict[str, list[float]] = defaultdict(list)

    def _on_step(self) -> bool:
        infos = self.locals.get("infos", ())
        dones = self.locals.get("dones", ())
        for info, done in zip(infos, dones, strict=False):
            if done:
                for key, value in info.items():
                    if key.startswith("episode/reward/"):
                        self._totals[key.removeprefix("episode/")].append(float(value))
        return True

    def _on_rollout_end(self) -> None:
        for key, totals in self._totals.items():
            self.logger.record(f"train/episode_{key}", float(np.mean(totals)))
        self._totals.clear()
