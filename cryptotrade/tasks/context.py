"""What a task gets beside its components: :class:`RunContext`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptotrade.optimize.derive import ConfigDeriver, RunSettings


@dataclass(frozen=True)
class RunContext:
    """The run a task runs in.

    Attributes:
        settings: The run's typed settings: ``model``, ``walkforward``, ``infer``, ``tracking``
            ... (a task reads its own here).
        config_yaml: The resolved config as YAML (logged beside a run's report and a fold's
            model).
        configs: The one object that derives new configs from the run's: a search's candidates
            and winner, a curriculum's stages, the training seeds.
        output_dir: The job's folder (checkpoints, models, pictures).
        prepared: What the task's preflight built (``task=pipeline``: the optimizer).
    """

    settings: RunSettings
    config_yaml: str
    configs: ConfigDeriver
    output_dir: Path
    prepared: Any = None

    @classmethod
    def of(cls, configs: ConfigDeriver, output_dir: Path, prepared: Any = None) -> RunContext:
        """The context of the run whose config ``configs`` owns."""
        return cls(configs.settings, configs.yaml(), configs, output_dir, prepared)
