"""Pipeline benchmark: how often the default pipeline compiles a market, and its wall and CPU time.

Runs ``python -m cryptotrade.run`` (task=pipeline, the default config) as a child process, once
under ``debug=default`` (2,048 training steps) and once with ``train.total_timesteps=20000`` and
``debug=default``'s other settings left at their defaults, each into a fresh temporary MLflow
store, data cache and output folder (so both pay the same data preparation). Compilations are
the ``compiled market #n`` DEBUG lines of :mod:`cryptotrade.env.compiled` (one per
``CompiledMarket.build``: price rows, feature block, params, spaces); their summed build time is
reported beside them. Wall time is the child's; CPU time is its user + sys (``getrusage``). An
untimed ``debug=default`` run first fills numba's on-disk cache, so both timed runs load the
kernels rather than compile them.

Run: ``python -m experiments.benchmarks pipeline``. Writes the ``pipeline`` section of
experiments/benchmarks/README.md (the numbers before one compiled market per split are kept
above it, measured the same way).
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from experiments.benchmarks.readme import write_section

ROOT = Path(__file__).resolve().parents[2]
RUNS = {
    "debug=default (2,048 steps)": ["debug=default"],
    "default, train.total_timesteps=20000": ["train.total_timesteps=20000"],
}
COMPILED = re.compile(r"compiled market #(\d+): .* in ([0-9.]+) ms")


@dataclass(frozen=True)
class PipelineRun:
    """One measured pipeline run."""

    label: str
    compilations: int
    compile_ms: float
    wall_s: float
    cpu_s: float


def measure(label: str, overrides: list[str], timeout: float = 1800.0) -> PipelineRun:
    """Run the launcher with ``overrides`` in a child process and measure it."""
    with tempfile.TemporaryDirectory(prefix="bench_pipeline_") as tmp:
        args = [
            sys.executable,
            "-m",
            "cryptotrade.run",
            *overrides,
            "hydra.verbose=cryptotrade.env.compiled",
            f"tracking.uri=sqlite:///{tmp}/mlflow.db",
            f"paths.data_dir={tmp}/data",
            f"paths.output_dir={tmp}/outputs",
        ]
        env = os.environ | {"PYTHONPATH": str(ROOT)}
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run(
            args, cwd=tmp, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    builds = COMPILED.findall(proc.stdout + proc.stderr)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return PipelineRun(label, len(builds), sum(float(ms) for _, ms in builds), wall, cpu)


def table(runs: list[PipelineRun]) -> str:
    """The markdown table of ``runs``."""
    rows = [
        "| run | markets compiled | time in CompiledMarket.build | wall | CPU (user+sys) |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in runs:
        rows.append(
            f"| {r.label} | {r.compilations} | {r.compile_ms:.0f} ms | {r.wall_s:.1f} s | "
            f"{r.cpu_s:.1f} s |"
        )
    return "\n".join(rows)


def main() -> None:
    # untimed: fills numba's on-disk cache (a fresh checkout would otherwise pay the kernels'
    # JIT compilation in the first timed run only)
    measure("warm-up", RUNS["debug=default (2,048 steps)"])
    runs = [measure(label, overrides) for label, overrides in RUNS.items()]
    text = table(runs)
    print(text)
    write_section("pipeline", text)


if __name__ == "__main__":
    main()
