"""What the GA and Tune share: setup checks, scoring candidates, and reporting the winner.

* :func:`search_setup`: open the worker pool the ``ray`` node asks for (a Ray pool's workers
  start warming up at once), then parse and check the space against the config (an unknown
  path, an empty range or a value the config rejects fails here, before any training; the
  launcher's preflight already checked it before the run started).
* :class:`CandidateRunner`: scores points through a pool, each in its own MLflow child run,
  caching scores by point so an identical candidate is never trained twice, with the penalty
  for a failed or hung evaluation.
* :func:`report_winner`: the search's multiple-testing statistics (deflated Sharpe ratio and
  PBO, :func:`log_search_statistics`), the winner's config as a ready-to-run YAML, then the one
  and only test-split evaluation, in the parent run.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cryptotrade.errors import SearchError
from cryptotrade.launch import tracking
from cryptotrade.optimize.derive import ConfigDeriver
from cryptotrade.optimize.importance import TrialRecord
from cryptotrade.optimize.search_state import load_pickle, save_pickle
from cryptotrade.optimize.space import Point, SearchSpace, parse_space
from cryptotrade.optimize.trial import (
    TAG_ERROR,
    TAG_GENERATION,
    TAG_GENOME,
    TAG_KIND,
    Evaluate,
    Outcome,
    TrialSpec,
    candidate_config,
    close_failed_run,
    final_objective,
    open_child_run,
    point_hash,
    point_key,
    point_label,
    score_of,
)
from cryptotrade.optimize.workers import Pool, make_pool

log = logging.getLogger(__name__)
# What a plain run of the winner's config uses as its optimizer: no search.
NO_SEARCH = {"_target_": "cryptotrade.optimize.NoSearch", "metric": "val/sharpe"}


@contextlib.contextmanager
def search_setup(
    optimizer: Any, configs: ConfigDeriver, *, timeout: float | None
) -> Iterator[tuple[SearchSpace, Pool]]:
    """The parsed space and the worker pool of a search (see the module docstring).

    Args:
        optimizer: The search (its ``space``, ``workers`` and ``cpus_per_eval``).
        configs: The run's base config (the space's paths are checked against it; its
            ``ray`` settings choose the pool).
        timeout: Seconds one evaluation may take; ``None``: no limit.
    """
    ray = configs.settings.ray
    with make_pool(
        ray_enabled=bool(ray.enabled),
        address=str(ray.address or ""),
        num_cpus=ray.num_cpus,
        object_store_memory=ray.object_store_memory,
        workers=getattr(optimizer, "workers", None),
        timeout=timeout,
        cpus_per_task=getattr(optimizer, "cpus_per_eval", 1.0),
    ) as pool:
        # after the pool: its workers warm up while the space is checked (~0.3 CPU-s)
        space = parse_space(optimizer.space, configs)
        log.info("search space: %s", ", ".join(f"{d.path}={d}" for d in space.domains))
        yield space, pool


class CandidateRunner:
    """Scores points: score cache, child runs, pool, penalty (see the module docstring).

    Args:
        configs: The base config the points are applied to.
        metric: The ``val/`` metric that is the fitness.
        penalty: Fitness of a failed, hung or NaN-scored candidate.
        pool: Where candidates run.
        evaluate: The worker function (``trial.evaluate_candidate`` in production).
        output_dir: Each candidate gets ``<output_dir>/<point hash>``.
        kind: ``ga`` or ``tune`` (the ``search/kind`` tag of the child runs).
        scores_path: Where the score cache is persisted after every result.
        resume: Start from the persisted cache instead of an empty one.
        column_cache: Folder where candidates share indicator columns
            (:mod:`~cryptotrade.optimize.columns`); ``None`` computes them per candidate.
    """

    def __init__(
        self,
        configs: ConfigDeriver,
        *,
        metric: str,
        penalty: float,
        pool: Pool,
        evaluate: Evaluate,
        output_dir: Path,
        kind: str,
        scores_path: Path,
        resume: bool,
        column_cache: str | None = None,
    ) -> None:
        self.configs = configs.with_column_cache(column_cache) if column_cache else configs
        self.metric = metric
        self.penalty = penalty
        self.pool = pool
        self.evaluate = evaluate
        self.output_dir = output_dir
        self.kind = kind
        self.scores_path = scores_path
        self.cache: dict[str, dict[str, Any]] = (load_pickle(scores_path) or {}) if resume else {}
        self._trained: dict[int, int] = {}
        self._cached: dict[int, int] = {}

    def trained_in(self, generation: int) -> int:
        """Candidates actually trained (not found in the cache) in ``generation``."""
        return self._trained.get(generation, 0)

    def cached_in(self, generation: int) -> int:
        """Candidates of ``generation`` scored from the cache (seen before) instead of trained."""
        return self._cached.get(generation, 0)

    def score(self, points: list[Point], *, generation: int) -> list[float]:
        """The fitness of each point, training only those not scored before."""
        keys = [point_key(p) for p in points]
        todo = list(dict.fromkeys(k for k in keys if k not in self.cache))
        by_key = dict(zip(keys, points, strict=True))
        parent = tracking.active_run_ref()
        uri = parent.uri if parent else None
        specs, run_ids = [], []
        for index, key in enumerate(todo):
            point = by_key[key]
            run_id = open_child_run(
                f"g{generation}-{index} {point_label(point)}",
                tags={TAG_KIND: self.kind, TAG_GENERATION: generation, TAG_GENOME: key},
                params=point,
            )
            run_ids.append(run_id)
            specs.append(
                TrialSpec(
                    config=candidate_config(self.configs, point),
                    point=point,
                    output_dir=str(self.output_dir / point_hash(point)),
                    run_id=run_id,
                    tracking_uri=uri,
                )
            )

        def on_result(i: int, outcome: Outcome) -> None:
            self._store(todo[i], outcome, run_ids[i], generation)

        self.pool.map(self.evaluate, specs, on_result)
        self._trained[generation] = len(todo)
        self._cached[generation] = len(keys) - len(todo)
        return [self.cache[k]["fitness"] for k in keys]

    def _store(self, key: str, outcome: Outcome, run_id: str | None, generation: int) -> None:
        if outcome.metrics is None:
            error = outcome.error or "unknown error"
            fitness = self.penalty
            close_failed_run(run_id, error)
            log.warning("candidate %s failed, fitness = penalty: %s", key, error.strip()[-500:])
        else:
            fitness = score_of(outcome.metrics, self.metric, self.penalty)
        if run_id is not None:
            with contextlib.suppress(Exception):
                tracking.log_metrics({"search/fitness": fitness}, run_id=run_id)
        self.cache[key] = {
            "fitness": fitness,
            "metrics": outcome.metrics,
            "error": outcome.error,
            "run_id": run_id,
            "seconds": outcome.seconds,
            "generation": generation,
            "timing": outcome.extra.get("timing", {}),  # start-up (optimize.warm)
            "fresh": outcome.extra.get("fresh"),
        }
        save_pickle(self.cache, self.scores_path)

    def raise_if_all_failed(self) -> None:
        """Raise :class:`~cryptotrade.errors.SearchError` (one line: the count and the first
        error) when no candidate scored so far succeeded: there is no winner to pick."""
        if not self.cache or any(v["metrics"] is not None for v in self.cache.values()):
            return
        first = next(v for v in self.cache.values())
        raise SearchError(all_failed_message(self.kind, len(self.cache), first.get("error")))

    def log_generation(self, record: dict[str, Any]) -> None:
        """Per-generation fitness statistics as metrics of the parent run."""
        step = int(record["gen"])
        tracking.log_metrics(
            {f"{self.kind}/fitness_{k}": record[k] for k in ("min", "mean", "max")}, step
        )
        counts = ("failed", "trained", "diversity", "distinct")
        tracking.log_metrics({f"{self.kind}/{k}": record[k] for k in counts if k in record}, step)

    def log_hall_of_fame(self, entries: list[tuple[Point, float]]) -> None:
        """The best candidates as a table artifact of the parent run (``<kind>/hall_of_fame.json``,
        shown as a table in the MLflow UI): rank, fitness, child run id and the point's values."""
        if not entries or not tracking.recording(f"{self.kind}/hall_of_fame.json"):
            return
        rows = []
        for rank, (point, fitness) in enumerate(entries, start=1):
            run_id = (self.cache.get(point_key(point)) or {}).get("run_id") or ""
            rows.append({"rank": rank, self.metric: fitness, "run_id": run_id, **point})
        columns = {name: [row.get(name) for row in rows] for name in dict.fromkeys(
            name for row in rows for name in row
        )}  # fmt: skip
        tracking.log_table(columns, f"{self.kind}/hall_of_fame.json")

    def trial_records(self) -> list[TrialRecord]:
        """Every scored candidate (this search's cache, resumed ones included) for the trial
        table and the Optuna study (:mod:`~cryptotrade.optimize.importance`)."""
        import json
        import math

        records = []
        for key, entry in self.cache.items():
            fitness = float(entry["fitness"])
            failed = entry.get("metrics") is None or not (
                math.isfinite(fitness) and fitness > self.penalty
            )
            error = (entry.get("error") or "").strip().splitlines()
            extra = {
                "generation": entry.get("generation"),
                "run_id": entry.get("run_id") or "",
                "seconds": round(float(entry.get("seconds") or 0.0), 1),
                "error": error[-1][:200] if error else "",
            }
            records.append(TrialRecord(json.loads(key), fitness, failed, extra))
        return records

    def log_plot(self, logbook: list[dict[str, Any]]) -> None:
        """Fitness over generations (min, mean, max of the valid candidates) as ``<kind>/``
        artifacts of the parent run: ``fitness.png`` and the logbook as ``logbook.json``."""
        if not tracking.recording(f"{self.kind}/fitness.png"):
            return
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator

        gens = [r["gen"] for r in logbook]
        fig, ax = plt.subplots(figsize=(6, 3.5))
        for name in ("max", "mean", "min"):
            ax.plot(gens, [r[name] for r in logbook], marker="o", label=name)
        ax.set(xlabel="generation", ylabel=self.metric, title="fitness over generations")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))  # whole generations
        # half a generation either side: a single generation otherwise spans -0.05..0.05 with
        # ticks at -0.045, -0.03, ... (one whole number is below the locator's default 2 ticks)
        ax.set_xlim(min(gens, default=0) - 0.5, max(gens, default=0) + 0.5)
        ax.legend()
        fig.tight_layout()
        tracking.log_figure(fig, f"{self.kind}/fitness.png")
        plt.close(fig)
        tracking.log_dict({"logbook": [dict(r) for r in logbook]}, f"{self.kind}/logbook.json")


def all_failed_message(kind: str, count: int, error: str | None) -> str:
    """The one-line summary of a search whose ``count`` candidates all failed: the count, the
    last line of the first ``error`` and where the tracebacks are."""
    lines = [line for line in (error or "").splitlines() if line.strip()]
    frames = [i for i, line in enumerate(lines) if line[:1].isspace()]  # a traceback's frames
    tail = lines[frames[-1] + 1 :] if frames else lines  # the exception and its message
    first = " ".join(line.strip() for line in tail)[:300] or "unknown error"
    what = "candidates" if kind == "ga" else "trials"
    return (
        f"optimizer={kind}: all {count} {what} failed, so there is no winner; the first "
        f"error: {first} (the child runs hold each trace: error/traceback.txt, search/error)"
    )


def log_search_statistics(point: Point, *, kind: str) -> dict[str, float]:
    """``search/deflated_sharpe``, ``search/pbo`` (:mod:`~cryptotrade.optimize.statistics`)
    and ``search/report.txt`` in the parent run, from the ``val/equity.csv`` of every child run
    of this search (the selected model of each candidate on the validation split).

    A resumed search continues in its parent run, so its earlier candidates count too; only
    candidates scored under another parent (a search resumed in another store, or after its
    first parent FINISHED) are left out. Returns the logged metrics (empty when the search runs
    untracked).
    """
    import numpy as np
    import pandas as pd

    from cryptotrade.optimize.statistics import search_statistics

    if not tracking.recording("the search statistics"):
        return {}
    parent = tracking.active_run_ref()
    assert parent is not None  # recording() says a run is active
    children = tracking.child_runs(parent, {TAG_KIND: kind})
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for run_id, tags in children.items():
        try:
            text = tracking.load_run_text(run_id, "val/equity.csv", parent.uri)
        except Exception:  # a failed or early-stopped candidate selected no model
            continue
        frame = pd.read_csv(io.StringIO(text), parse_dates=["close_time"])
        times = frame["close_time"].to_numpy(dtype="datetime64[ns]")
        curves[tags.get(TAG_GENOME, run_id)] = (times, frame["equity"].to_numpy(dtype=np.float64))
    genomes = {tags.get(TAG_GENOME, run_id) for run_id, tags in children.items()}
    stats = search_statistics(curves, point_key(point), n_trials=len(genomes))
    metrics = stats.metrics()
    tracking.log_metrics(metrics)
    tracking.log_text(stats.report() + "\n", "search/report.txt")
    log.info("%s", stats.report())
    return metrics


def winner_config(configs: ConfigDeriver, point: Point) -> ConfigDeriver:
    """The winner's config: the base config with ``point`` set and no search around it
    (resolved, credentials masked)."""
    best = configs.with_point(point)
    best = best.with_optimizer(NO_SEARCH | {"metric": configs.settings.metric})
    return best.redacted()


def report_winner(
    configs: ConfigDeriver, point: Point, fitness: float, output_dir: Path, *, kind: str
) -> dict[str, float]:
    """Save the winner's config, then evaluate it once on the test split in the parent run.

    The winner is retrained by the full objective with the same seed (same config and seed give
    the same model on CPU), so its model, ``val/`` and ``test/`` metrics and backtest artifacts
    all land in the parent run; ``task=evaluate``/``infer`` can load ``runs:/<parent>/model``.

    Returns:
        The objective's metrics plus ``search/best_fitness``.
    """
    best = winner_config(configs, point)
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / "best_config.yaml"
    path.write_text(
        "# The search's winner, ready to run:\n"
        f"#   python -m cryptotrade.run --config-dir {output_dir} --config-name best_config\n"
        + best.yaml()
    )
    tracking.log_artifact(path, "best")
    tracking.log_dict(point, "best/point.json")
    tracking.set_tags({"search/best_genome": point_key(point), "search/kind": kind})
    log.info("best candidate (%s = %.6g): %s", configs.settings.metric, fitness, point_key(point))
    log_search_statistics(point, kind=kind)
    metrics = final_objective(configs.with_point(point), output_dir / "best")
    metrics["search/best_fitness"] = fitness
    tracking.log_metrics({"search/best_fitness": fitness})
    return metrics


__all__ = ["TAG_ERROR", "CandidateRunner", "report_winner", "search_setup", "winner_config"]
