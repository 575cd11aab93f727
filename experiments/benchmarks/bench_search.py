"""Search at scale: one GA generation on 1 and 2 Ray workers, and the per-candidate overhead.

* **Scaling**: the same generation (``debug=default`` budgets, 4 individuals, same seed, so the
  same candidates) evaluated by a :class:`~cryptotrade.optimize.workers.RayPool` with 1 and with
  2 workers; the ratio is the speed-up from the second worker on this machine.
* **Overhead beyond training**, per candidate: a Ray task round trip plus an MLflow child run
  (opened by the driver, attached and closed by the worker) around a candidate that does
  nothing; loading the prepared dataset from its cache; and, from the real candidates, the time
  in the worker outside ``model.learn`` (data, env, validation backtest, MLflow logging).

Everything is logged to a temporary SQLite MLflow store. Run:
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


def _generation(cfg: Any, tmp: Path, workers: int) -> tuple[float, list[dict[str, Any]]]:
    """Wall time of one GA generation on ``workers`` Ray workers, and its candidates' records."""
    from cryptotrade import optimize
    from cryptotrade.optimize.derive import ConfigDeriver
    from cryptotrade.optimize.space import parse_space
    from cryptotrade.optimize.workers import RayPool

    configs = ConfigDeriver(cfg)
    ga = optimize.build(configs)
    space = parse_space(ga.space, configs)
    pool = RayPool(workers=workers, timeout=None)
    start = time.perf_counter()
    ga.search(configs, space, pool, tmp / f"w{workers}")
    wall = time.perf_counter() - start
    from cryptotrade.optimize.search_state import load_pickle, search_fingerprint

    fingerprint = search_fingerprint(configs, "ga")
    scores = load_pickle(Path(ga.checkpoint_dir) / f"ga-{fingerprint}.scores.pkl")
    return wall, list(scores.values())


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
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        # the no-op candidate travels by value: Ray workers need not import this module
        ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
        try:
            cfg = _compose(tmp, "base")
            with tracking.run_optional():  # timed without MLflow: no run around it
                load = _dataset_load(cfg)
            with tracking.start_run(cfg, run_name="bench-search", tags={}):
                noop_s = _noop_overhead(cfg, tmp)
                # warm-up: the same candidates once, so both timed generations find numba's
                # cache, warm workers and every candidate's prepared dataset cached
                _generation(_compose(tmp, "warm"), tmp / "warm", 2)
                one, records = _generation(_compose(tmp, "one"), tmp / "one", 1)
                two, _ = _generation(_compose(tmp, "two"), tmp / "two", 2)
                client = mlflow.MlflowClient()
                inside = []
                for rec in records:
                    train = client.get_run(rec["run_id"]).data.metrics.get("perf/train_seconds")
                    if train is not None:
                        inside.append(rec["seconds"] - train)
                trained = len(records)
        finally:
            ray.shutdown()
    outside = float(np.median(inside)) if inside else float("nan")
    load_after = os.getloadavg()[0]
    table = f"""## Search (one GA generation on Ray workers; overhead per candidate)

One GA generation of {POPULATION} individuals ({trained} trained; `debug=default` budgets:
512 PPO steps on 4,000 synthetic 15m bars), the same seed and so the same candidates, on a local
Ray with 1 and with 2 workers (`{platform.processor() or platform.machine()}`, {os.cpu_count()}
cores; 1-minute load average {load_before:.1f} before and {load_after:.1f} after the run: with
more runnable jobs than cores a second worker finds no idle core, so the ratio measures this
machine's spare capacity at the time, up to 2x when the cores are free).
Overhead per candidate beyond training: a Ray task plus an MLflow child run (driver opens,
worker attaches and closes) around a candidate that does nothing; loading the prepared dataset
from its cache; and the median time a real candidate spent in its worker outside `model.learn`
(data, env construction, validation backtest, MLflow logging).

| measure | seconds |
|---|---|
| generation, 1 Ray worker | {one:.1f} |
| generation, 2 Ray workers | {two:.1f} |
| **scaling ratio (1 worker / 2 workers)** | **{one / two:.2f}x** |
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
