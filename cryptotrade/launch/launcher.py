"""Launcher helpers: run names, one-line errors, and what a failed job leaves behind.

An error in the user's input (:class:`cryptotrade.errors.UserError`: a file, a setting, a
missing model) is printed as one line, ``Error: <what is wrong and how to fix it>``; its stack
goes to the job's ``run.log`` and ``error/traceback.txt`` (and the MLflow run's), and
``HYDRA_FULL_ERROR=1`` shows it on the terminal as well. Any other exception is unexpected and
keeps its trace. A single run that fails before its MLflow run opens removes its output folder.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from cryptotrade.errors import UserError
from cryptotrade.launch import redaction, sweeps

log = logging.getLogger("cryptotrade")
SHOWN_IN_NAME = ("task", "data", "agent", "seed")  # already in the name's first part
# Hydra flags that print the config (or parts of it) and exit without running a job: no
# launcher callback runs, so the terminal itself is masked (see mask_terminal).
PRINTING_FLAGS = ("--cfg", "-c", "--info", "-i", "--help", "-h", "--hydra-help", "--resolve")


class RedactingStream:
    """A text stream that masks secrets (:func:`cryptotrade.launch.redaction.redact_text`) in every
    write and delegates everything else (``isatty``, ``fileno``, ``encoding``) to ``stream``."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        """Write ``text`` with its secrets masked."""
        return self._stream.write(redaction.redact_text(text))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def mask_terminal(argv: Sequence[str]) -> None:
    """Mask the secrets of the command line wherever they would reach the terminal.

    The values of credential-like overrides (``+data.source.options.apiKey=...``) are
    remembered, so every later log line and error masks them; and when Hydra is asked to print
    the config (``--cfg job``, ``--info``, ``--help``), which it does with ``print`` before any
    callback, stdout is wrapped in a :class:`RedactingStream`.
    """
    redaction.remember(redaction.secret_values(list(argv)))
    if any(arg.split("=")[0] in PRINTING_FLAGS for arg in argv):
        sys.stdout = RedactingStream(sys.stdout)


def full_error() -> bool:
    """Whether ``HYDRA_FULL_ERROR=1`` asks for full traces."""
    return os.environ.get("HYDRA_FULL_ERROR") == "1"


def run_name(
    cfg: Any,
    choices: Mapping[str, Any],
    overrides: Sequence[str],
    sweep: sweeps.Sweep | None = None,
    job_num: int | None = None,
) -> str:
    """The MLflow run name: what this run is and what differs.

    A sweep job: ``#3 agent=dqn seed=1`` (its values of the swept keys). A single run:
    ``pipeline-synthetic-ppo-s0 lr=0.01 debug=default`` (task, data, agent, seed and the other
    overrides, shortened). ``tracking.run_name`` replaces either (a sweep adds ``#<job>``).
    """
    if sweep is not None:
        name = sweeps.job_name(job_num or 0, overrides, sweep)
        return f"{cfg.tracking.run_name} #{job_num}" if cfg.tracking.run_name else name
    if cfg.tracking.run_name:
        return str(cfg.tracking.run_name)
    parts = [cfg.task, choices.get("data"), choices.get("agent"), f"s{cfg.seed}"]
    head = "-".join(str(p) for p in parts if p)
    rest = [o for o in overrides if o.lstrip("+~").split("=")[0] not in SHOWN_IN_NAME]
    return f"{head} {sweeps.short_overrides(rest)}".strip()


def _file_handlers() -> list[logging.Handler]:
    return [h for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)]


def record_failure(exc: BaseException, output_dir: Path | None) -> None:
    """Put the stack of ``exc`` in the job's log file and ``<output_dir>/error/traceback.txt``."""
    text = redaction.redact_text("".join(traceback.format_exception(exc)))
    record = logging.LogRecord("cryptotrade", logging.ERROR, __file__, 0, "%s", (text,), None)
    for handler in _file_handlers():
        handler.handle(record)
    if output_dir is not None and output_dir.exists():
        (output_dir / "error").mkdir(exist_ok=True)
        (output_dir / "error" / "traceback.txt").write_text(text)


def print_error(exc: BaseException | str, prefix: str = "") -> None:
    """``Error: <message>`` on stderr (a user error's one line)."""
    message = redaction.redact_text(str(exc))
    print(f"Error: {prefix}{message}", file=sys.stderr, flush=True)


def remove_folder(output_dir: Path, root: str | Path) -> None:
    """Remove a job folder that holds no run, and the parents it leaves empty below ``root``."""
    shutil.rmtree(output_dir, ignore_errors=True)
    root = Path(root).resolve()
    parent = output_dir.resolve().parent
    while parent != root and parent.is_relative_to(root):
        try:
            parent.rmdir()  # only if empty
        except OSError:
            break
        parent = parent.parent


def config_error_line(exc: BaseException) -> str | None:
    """A Hydra composition error or an OmegaConf error (``train=3``, ``agent=nope``, a missing
    key) as one line, or ``None`` for any other exception (unexpected: it keeps its trace)."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    if not isinstance(exc, HydraException | OmegaConfBaseException):
        return None
    parts = [str(exc)]
    if isinstance(exc.__cause__, OmegaConfBaseException) and str(exc.__cause__) not in parts[0]:
        parts.append(str(exc.__cause__))
    lines = [line.strip() for part in parts for line in part.splitlines()]
    text = " ".join(line for line in lines if line and not line.startswith("object_type="))
    return text.split(" Config search path:")[0]  # Hydra's list of folders: noise here


def one_line_config_errors() -> None:
    """Print Hydra's composition errors (``train=3``, ``agent=nope``, ``+seed=1``) as one
    ``Error:`` line and exit 1, like every other user error (``HYDRA_FULL_ERROR=1``: Hydra's
    own report).

    Hydra reports them from ``hydra._internal.utils.run_and_report``, several lines or a trace
    each; that function is wrapped here (hydra-core is pinned to 1.3 in pyproject.toml, and
    ``tests/test_reliability.py`` fails if the hook stops being called).
    """
    import hydra._internal.utils as hydra_utils

    report = hydra_utils.run_and_report
    if getattr(report, "__wrapped_by_cryptotrade__", False):
        return

    def run_and_report(func: Any) -> Any:
        def guarded() -> Any:
            try:
                return func()
            except Exception as exc:
                line = config_error_line(exc)
                if line is None or full_error():
                    raise
                print_error(line)
                raise SystemExit(1) from None

        return report(guarded)

    run_and_report.__wrapped_by_cryptotrade__ = True  # type: ignore[attr-defined]
    hydra_utils.run_and_report = run_and_report


def fail_single_run(exc: Exception, output_dir: Path, output_root: str | Path) -> None:
    """A single run failed: keep the folder only if its MLflow run opened; a user error becomes
    one line and exit code 1 (unless ``HYDRA_FULL_ERROR=1``); anything else is re-raised."""
    opened = (output_dir / "run_id").exists()
    if opened:
        record_failure(exc, output_dir)
    else:
        remove_folder(output_dir, output_root)
    if isinstance(exc, UserError) and not full_error():
        print_error(exc)
        raise SystemExit(1) from None
    line = config_error_line(exc)  # a key the config lacks or cannot hold
    if line is not None and not full_error():
        print_error(line)
        raise SystemExit(1) from None
    raise exc


def fail_sweep_job(exc: Exception, output_dir: Path, fields: dict[str, Any]) -> None:
    """A sweep job failed: its log, ``error/traceback.txt`` and ``job.json`` say why; the sweep
    goes on and its summary names the job."""
    record_failure(exc, output_dir)
    run_file = output_dir / "run_id"
    run_id = run_file.read_text().strip() if run_file.exists() else None
    error = sweeps.describe_error(exc)
    sweeps.record_job(output_dir, **fields, status="FAILED", run_id=run_id, error=error)
    if isinstance(exc, UserError) and not full_error():
        print_error(exc, prefix=f"job #{fields['num']}: ")
    else:  # unexpected: the trace on the terminal too
        trace = redaction.redact_text("".join(traceback.format_exception(exc)))
        print(f"job #{fields['num']} failed:\n{trace}", file=sys.stderr, flush=True)
