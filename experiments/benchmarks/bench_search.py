"""Search at scale: one GA generation on 1 and 2 Ray workers, how soon a candidate trains, and
the per-candidate overhead.

* **Scaling**: the same generation (``debug=default`` budgets, 4 individuals, same seed, so the
  same candidates) evaluated by a :class:`~cryptotrade.optimize.workers.RayPool` with 1 and with
  2 workers; the ratio is the speed-up from the second worker on this machine.
* **Start-up** (:mod:`cryptotrade.optimize.warm`): seconds from the pool submitting a candidate
  to its ``model.learn`` starting (``time/startup_s``), on a fresh worker (the first candidate
  of a worker process of a new Ray instance: the numba and dataset caches are on disk, the
  process is new) and on a warm one (every later candidate).
* **Overhead beyond training**, per candidate: a Ray task round trip plus an MLflow child run
  (opened by the driver, attached and closed by the worker) around a candidate that does
  nothing; loading the prepared dataset from its cache; and, from the real candidates, the time
  in the worker outside ``model.learn`` (data, env, validation backtest, MLflow logging).

Two Ray instances of 2 CPUs: the first fills the caches (numba's kernels, every candidate's
prepared dataset) and times the overheads; the second starts with fresh workers and runs the
timed generations. Everything is logged to a temporary SQLite MLflow store. Run:
``python -m experiments.benchmarks search`` (writes the table between the ``search`` markers).
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from experiments.benchmarks.readme import write_section

POPULATION = 4
NOOP_CANDIDATES = 8


def _compose(root: Path, name: str, *overrides: str) -> Any:
    """The benchmark's GA config; every run shares one column cache (and so one dataset cache
    key per candidate), each has its own checkpoint and output folder."""
    from hydra import compose, initialize_config_dir

    from cryptotrade.config import CONF_DIR, register_configs

    register_configs()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose(
            "config",
            overrides=[
                "debug=default",
                "optimizer=ga",
                f"optimizer.population={POPULATION}",
                "optimizer.generations=1",
                f"optimizer.checkpoint_dir={root / name / 'ckpt'}",
                f"optimizer.column_cache={root / 'columns'}",
                f"paths.output_dir={root / name / 'out'}",
                *overrides,
            ],
        )


def noop(spec: Any) -> dict[str, float]:
    """A candidate that trains nothing: what remains is the machinery around it."""
    return {"val/sharpe": 0.0}


def _generation(cfg: Any, tmp: Path, workers: int) -> tuple[float, float, list[dict[str, Any]]]:
    """Wall time of a one-generation GA search on ``workers`` Ray workers, the part of it until
    the generation's last candidate was scored (before the end-of-search reports), and its
    candidates' records."""
    from cryptotrade import optimize
    from cryptotrade.optimize.derive import ConfigDeriver
    from cryptotrade.optimize.space import parse_space
    from cryptotrade.optimize.workers import RayPool

    configs = ConfigDeriver(cfg)
    ga = optimize.build(configs)
    space = parse_space(ga.space, configs)
    pool = RayPool(workers=workers, timeout=None)
    scored: list[float] = []
    start = time.perf_counter()
    ga.search(
        configs, space, pool, tmp / f"w{workers}",
        on_generation=lambda *_: scored.append(time.perf_counter() - start),
    )  # fmt: skip
    wall = time.perf_counter() - start
    from cryptotrade.optimize.search_state import load_pickle, search_fingerprint

    fingerprint = search_fingerprint(configs, "ga")
    scores = load_pickle(Path(ga.checkpoint_dir) / f"ga-{fingerprint}.scores.pkl")
    return wall, scored[0], list(scores.values())


def _startups(
    records: list[dict[str, Any]], fresh: bool, key: str = "time/startup_s"
) -> list[float]:
    """``key`` (a ``time/`` metric) of the candidates that ran on a fresh (or a warm) worker."""
    return [
        float(r["timing"][key])
        for r in records
        if r.get("fresh") is fresh and key in (r.get("timing") or {})
    ]


def _spread(values: list[float]) -> str:
    """``median (min-max, n)`` of ``values``, or ``n/a``."""
    if not values:
        return "n/a"
    return f"{np.median(values):.1f} ({min(values):.1f}-{max(values):.1f}, n={len(values)})"


def _ray_init() -> None:
    """A private local Ray of 2 CPUs, its workers warmed by the project's setup hook."""
    import ray

    from cryptotrade.optimize.workers import ray_init_kwargs

    ray.init(**ray_init_kwargs("", 2), log_to_driver=False)
    # the no-op candidate travels by value: Ray workers need not import this module
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


def _noop_overhead(cfg: Any, tmp: Path) -> float:
    """Seconds per candidate for a Ray task + MLflow child run around a no-op candidate."""
    from cryptotrade.optimize.derive import ConfigDeriver
    from cryptotrade.optimize.runner import CandidateRunner
    from cryptotrade.optimize.workers import RayPool

    configs = ConfigDeriver(cfg)
    runner = CandidateRunner(
        configs, metric="val/sharpe", penalty=-1e9, pool=RayPool(workers=1), evaluate=noop,
        output_dir=tmp / "noop", kind="ga", scores_path=tmp / "noop.pkl", resume=False,
    )  # fmt: skip
    runner.score([{"env.window": 30}], generation=0)  # warm the worker
    points = [{"env.window": 31 + i} for i in range(NOOP_CANDIDATES)]
    start = time.perf_counter()
    runner.score(points, generation=1)
    return (time.perf_counter() - start) / NOOP_CANDIDATES


def _dataset_load(cfg: Any) -> float:
    """Seconds to load a prepared dataset from its cache (best of 3)."""
    from cryptotrade.components import build
    from cryptotrade.optimize import objective

    objective.prepare_data(build(cfg, agent=False))  # build it once
    times = []
    for _ in range(3):
        start = time.perf_counter()
        objective.prepare_data(build(cfg, agent=False))
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> str:
    import mlflow
    import ray

    from cryptotrade.launch import tracking

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-search-") as name:
        tmp = Path(name)
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp / 'mlflow.db'}"
        cfg = _compose(tmp, "base")
        steps, bars = int(cfg.train.total_timesteps), int(cfg.data.max_bars)
        _ray_init()  # the first Ray: caches and overheads
        try:
            with tracking.run_optional():  # timed without MLflow: no run around it
                load = _dataset_load(cfg)
            with tracking.start_run(cfg, run_name="bench-search", tags={}):
                noop_s = _noop_overhead(cfg, tmp)
                # the same candidates once, so the timed generations find numba's cache and
                # every candidate's prepared dataset cached
                _generation(_compose(tmp, "caches"), tmp / "caches", 2)
        finally:
            ray.shutdown()
        _ray_init()  # the second Ray: fresh workers
        try:
            with tracking.start_run(cfg, run_name="bench-search", tags={}):
                # fresh workers: the first candidate of each of the 2 new worker processes
                _, _, first = _generation(_compose(tmp, "fresh"), tmp / "fresh", 2)
                one, one_scored, records = _generation(_compose(tmp, "one"), tmp / "one", 1)
                two, two_scored, last = _generation(_compose(tmp, "two"), tmp / "two", 2)
                client = mlflow.MlflowClient()
                inside = []
                for rec in records:
                    train = client.get_run(rec["run_id"]).data.metrics.get("perf/train_seconds")
                    if train is not None:
                        inside.append(rec["seconds"] - train)
                trained = len(records)
        finally:
            ray.shutdown()
    fresh = _startups(first, True)
    warm = _startups(first + records + last, False)
    dispatch = _startups(first, True, "time/dispatch_s")  # process start + the setup hook
    setup = _startups(first, True, "time/setup_s")  # the candidate's own data, env, agent
    hooks = _startups(first, True, "time/worker_warmup_s")
    hooks_cpu = _startups(first, True, "time/worker_warmup_cpu_s")
    outside = float(np.median(inside)) if inside else float("nan")
    load_after = os.getloadavg()[0]
    scored_row = f"{one_scored:.1f} / {two_scored:.1f} ({one_scored / two_scored:.2f}x)"
    reports_row = f"{one - one_scored:.1f} / {two - two_scored:.1f}"
    table = f"""## Search (one GA generation on Ray workers; start-up and overhead per candidate)

One GA generation of {POPULATION} individuals ({trained} trained; `debug=default` budgets:
{steps:,} PPO steps on {bars:,} synthetic 15m bars), the same seed and so the same candidates,
on a local Ray of 2 CPUs with 1 and with 2 workers (`{platform.processor() or platform.machine()}`,
{os.cpu_count()} cores; 1-minute load average {load_before:.1f} before and {load_after:.1f} after
the run: with more runnable jobs than cores a second worker finds no idle core, so the ratio
measures this machine's spare capacity at the time, up to 2x when the cores are free).
Start-up: seconds from the pool submitting a candidate to its `model.learn` starting
(`time/startup_s` of its child run, median (min-max, n)); *fresh*: the first candidate of each
worker process of a new Ray instance (numba's kernels and the prepared datasets are cached on
disk; the worker runs the setup hook `cryptotrade.optimize.warm.setup_worker`: imports, torch's
first optimizer, the kernels), *warm*: every later candidate of the timed generations.
Targets on an idle machine: warm <= 2 s, fresh <= 10 s, scaling ratio >= 1.8x.
Overhead per candidate beyond training: a Ray task plus an MLflow child run (driver opens,
worker attaches and closes) around a candidate that does nothing; loading the prepared dataset
from its cache; and the median time a real candidate spent in its worker outside `model.learn`
(data, env construction, validation backtest, MLflow logging).

| measure | seconds |
|---|---|
| search of one generation, 1 Ray worker | {one:.1f} |
| search of one generation, 2 Ray workers | {two:.1f} |
| **scaling ratio (1 worker / 2 workers)** | **{one / two:.2f}x** |
| of which until the last candidate was scored, 1 / 2 workers | {scored_row} |
| of which end-of-search reports (serial), 1 / 2 workers | {reports_row} |
| **start-up, fresh worker** (submitted -> training) | **{_spread(fresh)}** |
| **start-up, warm worker** (submitted -> training) | **{_spread(warm)}** |
| fresh: submitted -> its worker started it (process start, setup hook) | {_spread(dispatch)} |
| fresh: its worker started it -> training (data, env, agent) | {_spread(setup)} |
| setup hook of a fresh worker, wall | {_spread(hooks)} |
| setup hook of a fresh worker, CPU seconds | {_spread(hooks_cpu)} |
| Ray task + MLflow child run, no-op candidate | {noop_s:.3f} |
| prepared dataset from cache | {load:.3f} |
| in-worker time outside training, median | {outside:.2f} |

Run: `python -m experiments.benchmarks search`.
"""
    write_section("search", table)
    print(table)
    return table


if __name__ == "__main__":
    main()
