"""Hydra multirun sweeps in MLflow: one parent run, one child per job, a summary that names
every failed job.

``on_multirun_start`` (:mod:`cryptotrade.launch.launcher_callbacks`) opens the parent run and writes
``<sweep dir>/sweep.json`` (sweep id, parent run id, the swept keys). Every job reads that file
from its own config (``hydra.sweep.dir``), so jobs find their parent in any launcher, in-process
or not; its run is a child of the parent (``mlflow.parentRunId``), tagged ``sweep_id`` and
``job``, and named by what differs (``#3 agent=dqn seed=1``). Each job leaves ``job.json`` in
its folder; ``on_multirun_end`` reads them all, logs ``jobs.json`` and ``summary.txt`` to the
parent, ends it FAILED if any job failed, prints the summary and sets a non-zero exit code.
Before the parent ends, the callback's ``compare`` function (configured by its dotted path, so
this layer imports nothing above it; :func:`cryptotrade.optimize.compare.log_sweep_comparison`)
logs the per-group aggregates and the comparison report of the children to it.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cryptotrade.launch import liveness, redaction

log = logging.getLogger(__name__)
SWEEP_FILE = "sweep.json"
JOB_FILE = "job.json"
MAX_NAME = 120
failed_sweeps: list[str] = []  # sweep ids with failed jobs, in this process (the exit code)


@dataclass(frozen=True)
class Sweep:
    """What the jobs of one multirun share."""

    sweep_id: str
    parent_run_id: str
    swept: list[str]  # the keys that take several values


def short_overrides(overrides: Sequence[str], keys: Sequence[str] | None = None) -> str:
    """``agent=dqn seed=1``: the overrides (of ``keys`` only, if given), redacted, each key
    shortened to its last part and each value to 24 characters."""
    parts = []
    for item in overrides:
        key, _, value = redaction.redact_text(item).partition("=")
        bare = key.lstrip("+~")
        if keys is not None and bare not in keys:
            continue
        value = value if len(value) <= 24 else value[:23] + "~"
        parts.append(f"{bare.rsplit('.', 1)[-1]}={value}")
    text = " ".join(parts)
    return text if len(text) <= MAX_NAME else text[: MAX_NAME - 1] + "~"


def swept_keys(overrides: Sequence[str]) -> list[str]:
    """The keys of the sweep overrides (``seed=0,1``, ``agent=glob(*)``, ``x=range(3)``)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(list(overrides))
    return [o.get_key_element().lstrip("+~") for o in parsed if o.is_sweep_override()]


def start(sweep_dir: Path, overrides: Sequence[str], cfg: Any) -> Sweep:
    """Open the parent run of a sweep and write ``sweep.json`` for its jobs."""
    from cryptotrade.launch import tracking

    uri = tracking.tracking_uri(cfg.tracking.uri, cfg.paths.root)
    experiment = tracking.experiment_id(
        uri, cfg.tracking.experiment, tracking.artifact_root(uri, cfg.paths.root)
    )
    sweep_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    keys = swept_keys(overrides)
    tags = {
        "sweep_id": sweep_id,
        "sweep_role": "parent",
        "overrides": redaction.redact_text(" ".join(overrides)),
        "output_dir": str(sweep_dir.resolve()),
        **liveness.identity(),
    }
    name = f"sweep {short_overrides(overrides, keys) or sweep_id}"
    run_id = tracking.create_run(uri, experiment, name, tags=tags)
    sweep = Sweep(sweep_id, run_id, keys)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    (sweep_dir / SWEEP_FILE).write_text(json.dumps(asdict(sweep), indent=1))
    tracking.heartbeat(uri, float(cfg.tracking.get("heartbeat_s", 60))).add(run_id)
    log.info("sweep %s: parent MLflow run %s", sweep_id, run_id)
    return sweep


def load(sweep_dir: str | Path) -> Sweep | None:
    """The sweep of a job, from ``<sweep dir>/sweep.json`` (``None`` outside a sweep)."""
    path = Path(sweep_dir) / SWEEP_FILE
    if not path.exists():
        return None
    return Sweep(**json.loads(path.read_text()))


def job_name(num: int, overrides: Sequence[str], sweep: Sweep) -> str:
    """``#3 agent=dqn seed=1``: the job number and its values of the swept keys."""
    diff = short_overrides(overrides, sweep.swept)
    return f"#{num} {diff}".strip()


def record_job(folder: Path, **fields: Any) -> None:
    """Write ``job.json`` (number, overrides, status, run id, error) into a job's folder."""
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps(redaction.redact(fields), indent=1, default=str)
    (folder / JOB_FILE).write_text(text)


# ``compare(uri, parent_run_id, jobs, swept, fitness)``: logs a comparison to the parent run
Compare = Callable[[str, str, list[dict[str, Any]], list[str], str], Any]


def finish(sweep_dir: Path, cfg: Any, compare: Compare | None = None) -> list[dict[str, Any]]:
    """Summarise the sweep's jobs to its parent run and the terminal; end the parent run.

    Args:
        sweep_dir: The sweep's folder (``sweep.json`` and the jobs' ``job.json``).
        cfg: The driver's config (tracking settings, ``optimizer.metric``).
        compare: Logs the comparison of the children to the parent before it ends; an error
            there is one warning line, never a failed sweep.
    """
    from cryptotrade.launch import tracking

    sweep = load(sweep_dir)
    if sweep is None:
        return []
    jobs = [json.loads(p.read_text()) for p in sorted(sweep_dir.glob(f"*/{JOB_FILE}"))]
    jobs.sort(key=lambda j: int(j.get("num", 0)))
    failed = [j for j in jobs if j.get("status") != "FINISHED"]
    lines = [f"sweep {sweep.sweep_id}: {len(jobs)} jobs, {len(failed)} failed"]
    for job in jobs:
        mark = "FAILED" if job in failed else "ok    "
        line = f"  {mark} {job.get('name', '')} -> {job.get('output_dir')}"
        if job in failed:
            line += f"\n         {job.get('error', '')}"
        lines.append(line)
    summary = "\n".join(lines)
    uri = tracking.tracking_uri(cfg.tracking.uri, cfg.paths.root)
    run_id = sweep.parent_run_id
    tracking.log_text(summary, "summary.txt", run_id=run_id, uri=uri)
    tracking.log_dict({"jobs": jobs}, "jobs.json", run_id=run_id, uri=uri)
    tags = {"jobs": len(jobs), "jobs_failed": len(failed)}
    tracking.set_tags(tags, run_id=run_id, uri=uri)
    if compare is not None and jobs:
        fitness = str(_select(cfg, "optimizer.metric", "val/sharpe"))
        try:
            compare(uri, run_id, jobs, list(sweep.swept), fitness)
        except Exception as exc:  # the sweep's results stand without their comparison
            log.warning("sweep comparison failed: %s", describe_error(exc))
    tracking.heartbeat(uri, 0).discard(run_id)
    tracking.end_run(run_id, "FAILED" if failed else "FINISHED", uri=uri)
    stream = sys.stderr if failed else sys.stdout
    print(redaction.redact_text(summary), file=stream)
    if failed:
        failed_sweeps.append(sweep.sweep_id)
    return jobs


def _select(cfg: Any, key: str, default: Any) -> Any:
    from omegaconf import OmegaConf

    value = OmegaConf.select(cfg, key, default=default)
    return default if value is None else value


def exit_code() -> int:
    """1 if a sweep of this process had a failed job, else 0."""
    return 1 if failed_sweeps else 0


def job_fields(num: int, name: str, overrides: Sequence[str], output_dir: Path) -> dict[str, Any]:
    """The fields of ``job.json`` known when a job starts."""
    return {"num": num, "name": name, "overrides": list(overrides), "output_dir": str(output_dir)}


def describe_error(exc: BaseException) -> str:
    """One line for a failed job: the exception type (unless a user error) and its message."""
    from cryptotrade.errors import UserError

    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text if isinstance(exc, UserError) else f"{type(exc).__name__}: {text}"
