"""What a task gets beside its components: :class:`RunContext`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf


@dataclass(frozen=True)
class RunContext:
    """The run a task runs in.

    Attributes:
        cfg: The checked config. Tasks read their own settings from it (``model``,
            ``walkforward``, ``infer``); a search derives each candidate's config from it and a
            curriculum each stage's.
        output_dir: The job's folder (checkpoints, models, pictures).
        prepared: What the task's preflight built (``task=pipeline``: the optimizer).
    """

    cfg: DictConfig
    output_dir: Path
    prepared: Any = None

    @property
    def config_yaml(self) -> str:
        """The resolved config as YAML (logged beside a run's report)."""
        return OmegaConf.to_yaml(self.cfg, resolve=True)
