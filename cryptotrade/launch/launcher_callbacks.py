"""Hydra callbacks of the launcher (``hydra.callbacks.launcher`` in ``conf/config.yaml``).

* ``on_run_start`` / ``on_multirun_start``: refuse an unknown task, unknown keys and
  out-of-range settings (:mod:`cryptotrade.launch.strict`) before Hydra creates any folder, as one
  line; remember the secrets of the config so every later log line masks them.
* ``on_multirun_start`` / ``on_multirun_end``: open and close the sweep's parent MLflow run
  (:mod:`cryptotrade.launch.sweeps`); at the end the ``compare`` function logs the children's
  comparison to it.
* ``on_job_start``: write ``.hydra/config.yaml``, ``hydra.yaml`` and ``overrides.yaml`` with
  secrets redacted (``hydra.output_subdir`` is null, so Hydra writes none itself), and redact the
  sweep's ``multirun.yaml``, which Hydra's sweeper writes unredacted.
* ``on_job_end``: redact the overrides Hydra prints beside a failed job's error.
"""

from __future__ import annotations

import contextlib
import traceback
from pathlib import Path
from typing import Any

import yaml
from hydra.core.utils import JobReturn
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from cryptotrade.errors import ConfigError
from cryptotrade.launch import launcher, redaction, strict, sweeps

HYDRA_SUBDIR = ".hydra"


def _remember_secrets(config: DictConfig) -> None:
    redaction.remember(redaction.secret_values(list(config.hydra.overrides.task)))
    task = OmegaConf.masked_copy(config, [str(k) for k in config if k != "hydra"])
    with contextlib.suppress(Exception):  # unresolvable interpolations: checked later
        redaction.remember(redaction.secret_values(OmegaConf.to_container(task, resolve=True)))


def _validate(config: DictConfig, tasks: list[str]) -> None:
    """Exit with one line if the config is invalid (Hydra's callbacks swallow exceptions)."""
    try:
        strict.check_config(config, tasks)
    except ConfigError as exc:
        if launcher.full_error():
            traceback.print_exc()
        launcher.print_error(exc)
        raise SystemExit(1) from None


def _dump(data: Any, path: Path) -> None:
    path.write_text(yaml.safe_dump(redaction.redact(data), sort_keys=False))


def _redact_file(path: Path) -> None:
    if path.is_file():
        text = path.read_text()
        masked = redaction.redact_text(text)
        if masked != text:
            path.write_text(masked)


class LauncherCallback(Callback):
    """Validation, secret redaction and sweep grouping around Hydra's runs and jobs.

    Args:
        tasks: The task names, ``|``-separated (``conf/config.yaml`` passes
            ``${cryptotrade_tasks:}``, the names of :data:`cryptotrade.tasks.TASKS`): the
            launch layer checks ``task=`` without importing the tasks above it.
        compare: Dotted path of the function that logs a finished sweep's comparison to its
            parent run (``conf/config.yaml``:
            ``cryptotrade.optimize.compare.log_sweep_comparison``); empty: none. A path, for
            the same reason: the launch layer imports nothing above it.
    """

    def __init__(self, tasks: str = "", compare: str = "") -> None:
        self.tasks = [name for name in tasks.split("|") if name]
        self.compare = compare

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Refuse a bad config before the run folder exists."""
        _remember_secrets(config)
        _validate(config, self.tasks)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Refuse a bad config before any job; open the sweep's parent run."""
        _remember_secrets(config)
        _validate(config, self.tasks)
        overrides = list(config.hydra.overrides.task)
        sweeps.start(Path(config.hydra.sweep.dir), overrides, config)

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Write Hydra's job files, secrets redacted."""
        _remember_secrets(config)
        folder = Path(config.hydra.runtime.output_dir) / HYDRA_SUBDIR
        folder.mkdir(parents=True, exist_ok=True)
        task = OmegaConf.masked_copy(config, [str(k) for k in config if k != "hydra"])
        _dump(OmegaConf.to_container(task, resolve=False, enum_to_str=True), folder / "config.yaml")
        hydra_node = OmegaConf.to_container(config.hydra, resolve=False, enum_to_str=True)
        _dump({"hydra": hydra_node}, folder / "hydra.yaml")
        _dump(list(config.hydra.overrides.task), folder / "overrides.yaml")
        if config.hydra.mode == RunMode.MULTIRUN:
            _redact_file(Path(config.hydra.sweep.dir) / "multirun.yaml")

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        """Redact the overrides Hydra prints with a failed job's error."""
        job_return.overrides = [redaction.redact_text(o) for o in job_return.overrides or []]

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """Summarise the jobs to the parent run and the terminal."""
        _redact_file(Path(config.hydra.sweep.dir) / "multirun.yaml")
        compare = None
        if self.compare:
            from hydra.utils import get_method

            compare = get_method(self.compare)
        sweeps.finish(Path(config.hydra.sweep.dir), config, compare)
