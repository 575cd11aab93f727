"""Warm search workers: imports and compiled kernels ready before a worker's first candidate.

A fresh worker process would otherwise pay for all of this inside its first candidate: importing
torch, Stable-Baselines3, MLflow and cryptotrade's pipeline (the bulk: ~5 CPU-s), torch's first
optimizer (``torch.optim.Adam`` imports ``torch._dynamo`` on first use, ~1-2 CPU-s) and loading
the env's numba kernels (default contract) from numba's on-disk cache (``cache=True``; ~1 CPU-s;
compiled once per kernel source, :func:`cryptotrade._key_numba_cache_by_source`).

* :func:`setup_worker` does it when a worker process starts. :data:`RUNTIME_ENV` names it as
  Ray's ``worker_process_setup_hook`` (a module path, so nothing is pickled and a cluster's
  workers import it from their own install);
  :func:`~cryptotrade.optimize.workers.ray_session` passes it to ``ray.init``, so every Ray
  worker of a search (GA tasks, Tune trial actors) runs it once before its first task. A Ray
  the caller initialised itself (a notebook, a test fixture) keeps its own runtime env.
* Ray starts worker processes on demand, so :func:`prestart` submits one no-op task per worker
  slot as soon as the pool exists: the processes start (and warm) while the driver prepares the
  first candidates; Ray then reuses those idle workers for the candidates (tasks) and trials
  (Tune's ``reuse_actors`` keeps one trial actor for the next trial).
* The process pool (``ray.enabled=false``) calls :func:`setup_worker` in each worker before it
  reports ready.

How long a candidate waited is logged in its child run (:func:`candidate_timing`):
``time/startup_s`` (the pool submitted it -> ``model.learn`` started), ``time/dispatch_s`` (->
its worker started it), ``time/setup_s`` (its worker started it -> ``model.learn``) and the tag
``search/worker_fresh`` (the worker process's first candidate). Tune trials log
``time/setup_s`` and the tag (Tune does not tell a trial when it was scheduled).
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

log = logging.getLogger(__name__)

HOOK = "cryptotrade.optimize.warm.setup_worker"
RUNTIME_ENV: dict[str, Any] = {"worker_process_setup_hook": HOOK}
TAG_FRESH = "search/worker_fresh"

# what setup_worker did in this process: seconds per step, or the error that stopped it
_state: dict[str, Any] = {}
_tasks = 0  # candidates this process started (begin_task)


def setup_worker() -> dict[str, Any]:
    """Import the heavy modules, create torch's first optimizer and load the env's numba
    kernels, once per process (Ray's ``worker_process_setup_hook``).

    Never raises: a worker whose hook raised would be stopped by Ray and every task on it fail;
    an error is logged and left to the first candidate to report as its own.

    Returns:
        ``{step: seconds}`` (``imports``, ``torch_optimizer``, ``kernels``, ``total``, and
        ``cpu``: the CPU seconds of it all), plus ``{"error": text}`` if a step failed.
    """
    if _state:
        return dict(_state)
    start, cpu = time.perf_counter(), time.process_time()
    steps: dict[str, Any] = {}
    try:
        lap = time.perf_counter()
        _import_pipeline()
        steps["imports"] = time.perf_counter() - lap
        lap = time.perf_counter()
        _first_optimizer()
        steps["torch_optimizer"] = time.perf_counter() - lap
        lap = time.perf_counter()
        _load_kernels()
        steps["kernels"] = time.perf_counter() - lap
    except Exception as err:
        log.warning("warming the worker failed (%s); its first candidate pays the rest", err)
        steps["error"] = f"{type(err).__name__}: {err}"
    steps["total"] = time.perf_counter() - start
    steps["cpu"] = time.process_time() - cpu
    _state.update(steps)
    log.info("worker warmed in %.1f s: %s", steps["total"], steps)
    return dict(_state)


def _import_pipeline() -> None:
    """The modules every candidate imports (MLflow, torch and SB3 come with them), and the
    tracking stores a candidate's run opens (:func:`cryptotrade.launch.tracking.preload`)."""
    import stable_baselines3  # noqa: F401

    import cryptotrade.agents.training
    import cryptotrade.evaluation.backtest
    import cryptotrade.evaluation.baselines
    import cryptotrade.optimize.objective
    import cryptotrade.optimize.trial  # noqa: F401
    from cryptotrade.launch import tracking

    tracking.preload()


def _first_optimizer() -> None:
    """The first ``torch.optim`` optimizer of a process imports ``torch._dynamo``."""
    import torch

    torch.optim.Adam(torch.nn.Linear(1, 1).parameters())


def _load_kernels() -> None:
    """Step an env and its native VecEnv of the default contract (``linear``) on a small random
    walk: numba loads their kernels from its on-disk cache (or compiles them once, for every
    worker after it). The ``inverse`` specialisation loads in the first candidate that trades
    one: compiling it for a search that does not would cost ~100 CPU-s per new kernel source."""
    import numpy as np

    from cryptotrade.data.market_data import MarketData
    from cryptotrade.env.factory import EnvFactory

    n = 200
    rng = np.random.default_rng(0)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    open_ = np.r_[100.0, close[:-1]]
    times = np.datetime64("2024-01-01T00:00", "ns") + np.arange(n) * np.timedelta64(15, "m")
    data = MarketData(
        "warm-up", times, open_, np.maximum(open_, close) * 1.001,
        np.minimum(open_, close) * 0.999, close, np.ones(n),
        rng.normal(size=(n, 2)).astype(np.float32), ("f0", "f1"), np.zeros(n),
    )  # fmt: skip
    factory = EnvFactory(episode_length=100, n_envs=2)
    market = factory.compile(data)
    env = factory.make(market, evaluation=True)
    try:
        env.reset(seed=0)
        env.step(env.action_for_target(0.0))
    finally:
        env.close()
    venv = factory.make_vec(market, seed=0)
    try:
        venv.reset()
        venv.step(np.array([venv.action_space.sample() for _ in range(venv.num_envs)]))
    finally:
        venv.close()


def warmed() -> dict[str, Any]:
    """What :func:`setup_worker` did in this process (empty if it did not run)."""
    return dict(_state)


def begin_task() -> bool:
    """Count a candidate starting in this process; ``True`` for the process's first."""
    global _tasks
    _tasks += 1
    return _tasks == 1


def learn_started_at() -> float | None:
    """When this process's latest training reached ``model.learn`` (``time.time()``), or
    ``None`` if none did (:func:`cryptotrade.agents.training.last_learn_start`; not imported
    here if nothing trained)."""
    training = sys.modules.get("cryptotrade.agents.training")
    return training.last_learn_start() if training is not None else None


def candidate_timing(
    scheduled_at: float | None, started_at: float, learn_at: float | None, fresh: bool
) -> dict[str, float]:
    """A candidate's start-up, in seconds, from wall-clock marks (``time.time()``).

    Args:
        scheduled_at: When the pool submitted it (``None``: unknown, e.g. a Tune trial).
        started_at: When its worker started it.
        learn_at: When its ``model.learn`` started (:func:`learn_started_at`); a time before
            ``started_at`` belongs to an earlier candidate (this one did not train).
        fresh: Whether it was its worker process's first candidate.

    Returns:
        ``time/dispatch_s`` (scheduled -> started), ``time/setup_s`` (started -> learn) and
        ``time/startup_s`` (scheduled -> learn), those the marks allow, and
        ``time/worker_warmup_s`` and ``time/worker_warmup_cpu_s`` (what :func:`setup_worker`
        took, wall and CPU) for a fresh worker that ran it.
    """
    out: dict[str, float] = {}
    if scheduled_at is not None:
        out["time/dispatch_s"] = started_at - scheduled_at
    if learn_at is not None and learn_at >= started_at:
        out["time/setup_s"] = learn_at - started_at
        if scheduled_at is not None:
            out["time/startup_s"] = learn_at - scheduled_at
    if fresh and "total" in _state:
        out["time/worker_warmup_s"] = float(_state["total"])
        out["time/worker_warmup_cpu_s"] = float(_state.get("cpu", 0.0))
    return out


def log_timing(run_id: str | None, uri: str | None, timing: dict[str, float], fresh: bool) -> None:
    """``timing`` as metrics and ``search/worker_fresh`` as a tag of the child run (never a
    reason to fail a candidate)."""
    if run_id is None:
        return
    import contextlib

    from cryptotrade.launch import tracking

    with contextlib.suppress(Exception):
        if timing:
            tracking.log_metrics(timing, run_id=run_id, uri=uri)
        tracking.set_tags({TAG_FRESH: str(fresh).lower()}, run_id=run_id, uri=uri)


def prestart(workers: int, cpus_per_task: float = 1.0) -> list[Any]:
    """Start ``workers`` Ray worker processes now (one no-op task each, not waited for), so
    their setup hook runs while the driver prepares the first candidates.

    Returns:
        The tasks' object refs (nobody needs to wait on them).
    """
    import ray

    task = ray.remote(num_cpus=cpus_per_task, max_retries=0)(_ready)
    return [task.remote() for _ in range(max(0, int(workers)))]


def _ready() -> bool:
    """The no-op task of :func:`prestart` (the hook already ran when it starts)."""
    return True
