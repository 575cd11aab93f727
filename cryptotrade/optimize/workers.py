"""Where candidates are evaluated: Ray tasks, a local process pool, or the driver itself.

Each pool runs ``run_trial(fn, spec)`` for a list of specs, at most ``workers`` at a time, and
returns one :class:`~cryptotrade.optimize.trial.Outcome` per spec, in order. An evaluation that
raises gives an outcome with the traceback; one that runs longer than ``timeout`` seconds is
killed (its process, or its Ray worker) and gives an outcome with a timeout error. Either way
the other evaluations continue.

* :class:`RayPool` (``ray.enabled=true``): Ray tasks on a private local Ray or a cluster
  (:func:`ray_session`; ``ray.address`` is checked by :func:`check_ray_address`), killed with
  ``ray.cancel(force=True)`` on timeout.
* :class:`ProcessPool` (``ray.enabled=false``): spawned worker processes, reused across
  candidates; one that hangs is killed and replaced.
* :class:`InlinePool` (``optimizer.workers=0``): in the driver, one at a time, for debugging;
  it cannot enforce a timeout.

Workers are warm (:mod:`~cryptotrade.optimize.warm`): Ray runs
:func:`~cryptotrade.optimize.warm.setup_worker` when a worker process starts (the
``worker_process_setup_hook`` :func:`ray_session` passes to ``ray.init``), a :class:`RayPool`
starts its workers as soon as it is made, and a :class:`ProcessPool` worker warms before it
reports ready. Every pool stamps a spec with the time it submits it (``scheduled_at``), from
which the worker logs the candidate's start-up.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import multiprocessing as mp
import os
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from cryptotrade.errors import ConfigError
from cryptotrade.optimize import warm
from cryptotrade.optimize.reaper import RayWatchdog
from cryptotrade.optimize.trial import Evaluate, Outcome, TrialSpec, run_trial

log = logging.getLogger(__name__)
OnResult = Callable[[int, Outcome], None]
POLL_SECONDS = 0.05
MIN_OBJECT_STORE = 75 * 1024 * 1024  # ray_constants.OBJECT_STORE_MINIMUM_MEMORY_BYTES


class Pool(Protocol):
    """Evaluates specs in parallel; see the module docstring."""

    workers: int

    def map(
        self, fn: Evaluate, specs: Sequence[TrialSpec], on_result: OnResult | None = None
    ) -> list[Outcome]:
        """Outcomes of ``run_trial(fn, spec)`` in the order of ``specs``; ``on_result(i, o)``
        is called as each one arrives (the GA persists its score cache there)."""
        ...


def _stamped(spec: TrialSpec) -> TrialSpec:
    """``spec`` with ``scheduled_at`` = now (the pool submits it)."""
    return dataclasses.replace(spec, scheduled_at=time.time())


def _timeout_outcome(seconds: float) -> Outcome:
    return Outcome(error=f"timeout: still running after {seconds:.1f}s (optimizer.eval_timeout)")


class InlinePool:
    """Evaluations in the driver process, one after another (no timeout)."""

    workers = 1

    def map(
        self, fn: Evaluate, specs: Sequence[TrialSpec], on_result: OnResult | None = None
    ) -> list[Outcome]:
        """See :class:`Pool`."""
        out = []
        for i, spec in enumerate(specs):
            out.append(run_trial(fn, _stamped(spec)))
            if on_result:
                on_result(i, out[-1])
        return out


def _worker_main(conn: Any) -> None:
    """A pool worker: warm up once (imports, first optimizer, numba kernels), then run
    ``(fn, spec)`` jobs until told to stop (``None``)."""
    warm.setup_worker()

    conn.send("ready")
    while True:
        try:
            job = conn.recv()
        except EOFError:  # the driver went away
            return
        if job is None:
            return
        fn, spec = job
        conn.send(run_trial(fn, spec))


class _Worker:
    """One spawned worker process and its pipe."""

    def __init__(self, ctx: Any) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child,), daemon=True)
        self.proc.start()
        child.close()
        self.ready = False
        self.job: tuple[int, float] | None = None  # (spec index, start time)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.join()
        self.conn.close()


class ProcessPool:
    """``workers`` spawned worker processes; one that runs past ``timeout`` is killed and
    replaced. Workers are reused across candidates (imports happen once per worker); every
    candidate seeds everything itself, so reuse does not change its result.
    """

    def __init__(self, workers: int, timeout: float | None = None) -> None:
        self.workers = max(1, int(workers))
        self.timeout = timeout
        self._ctx = mp.get_context("spawn")  # fork would copy the driver's MLflow/torch state
        self._pool: list[_Worker] = []

    def map(
        self, fn: Evaluate, specs: Sequence[TrialSpec], on_result: OnResult | None = None
    ) -> list[Outcome]:
        """See :class:`Pool`."""
        results: dict[int, Outcome] = {}
        queue = list(enumerate(specs))
        while len(self._pool) < min(self.workers, len(specs)):
            self._pool.append(_Worker(self._ctx))
        try:
            while queue or any(w.job for w in self._pool):
                for k, worker in enumerate(self._pool):
                    outcome, index = self._poll(worker)
                    if outcome is not None and index is not None:
                        results[index] = outcome
                        if on_result:
                            on_result(index, outcome)
                    if not worker.proc.is_alive():
                        worker.kill()
                        self._pool[k] = worker = _Worker(self._ctx)
                    if worker.ready and worker.job is None and queue:
                        i, spec = queue.pop(0)
                        worker.conn.send((fn, _stamped(spec)))
                        worker.job = (i, time.monotonic())
                time.sleep(POLL_SECONDS)
        except BaseException:
            self.close()  # interrupted: leave no orphan behind
            raise
        return [results[i] for i in range(len(specs))]

    def _poll(self, worker: _Worker) -> tuple[Outcome | None, int | None]:
        """A finished, failed or timed-out job of ``worker`` (which is killed if it hung)."""
        index = worker.job[0] if worker.job else None
        if worker.conn.poll():
            try:
                message = worker.conn.recv()
            except (EOFError, OSError):
                message = Outcome(error=f"worker died (exit code {worker.proc.exitcode})")
            if message == "ready":
                worker.ready = True
                return None, None
            worker.job = None
            return message, index
        if worker.job is None:
            return None, None
        if not worker.proc.is_alive():
            worker.job = None
            return Outcome(error=f"worker died (exit code {worker.proc.exitcode})"), index
        elapsed = time.monotonic() - worker.job[1]
        if self.timeout is not None and elapsed > self.timeout:
            worker.kill()  # the loop replaces it
            worker.job = None
            return _timeout_outcome(elapsed), index
        return None, None

    def close(self) -> None:
        """Stop every worker."""
        for worker in self._pool:
            with contextlib.suppress(Exception):
                worker.conn.send(None)
            worker.proc.join(timeout=5)
            if worker.proc.is_alive():
                worker.kill()
        self._pool = []


class RayPool:
    """Ray tasks, ``workers`` in flight, force-cancelled after ``timeout``.

    Args:
        workers: Tasks in flight; ``None``: the cluster's CPUs divided by ``cpus_per_task``.
        timeout: Seconds an evaluation may run.
        cpus_per_task: CPUs Ray reserves for each evaluation.
    """

    def __init__(
        self, workers: int | None = None, timeout: float | None = None, cpus_per_task: float = 1
    ) -> None:
        import ray

        cpus = ray.cluster_resources().get("CPU", 1.0)
        self.workers = max(1, int(workers or cpus // cpus_per_task))
        self.timeout = timeout
        self._remote = ray.remote(num_cpus=cpus_per_task, max_retries=0)(run_trial)
        warm.prestart(self.workers, cpus_per_task)  # the workers start (and warm) now

    def map(
        self, fn: Evaluate, specs: Sequence[TrialSpec], on_result: OnResult | None = None
    ) -> list[Outcome]:
        """See :class:`Pool`."""
        import ray

        results: dict[int, Outcome] = {}
        queue = list(enumerate(specs))
        running: dict[Any, tuple[int, float]] = {}
        fn_ref = ray.put(fn)
        try:
            while queue or running:
                while queue and len(running) < self.workers:
                    i, spec = queue.pop(0)
                    ref = self._remote.remote(fn_ref, _stamped(spec))
                    running[ref] = (i, time.monotonic())
                ready, _ = ray.wait(list(running), num_returns=1, timeout=POLL_SECONDS * 4)
                now = time.monotonic()
                for ref in list(running):
                    i, start = running[ref]
                    if ref in ready:
                        try:
                            outcome = ray.get(ref)
                        except Exception as err:  # the worker process died
                            outcome = Outcome(error=f"Ray task failed: {err}")
                    elif self.timeout is not None and now - start > self.timeout:
                        ray.cancel(ref, force=True)
                        outcome = _timeout_outcome(now - start)
                    else:
                        continue
                    del running[ref]
                    results[i] = outcome
                    if on_result:
                        on_result(i, outcome)
        finally:
            for ref in running:
                ray.cancel(ref, force=True)
        return [results[i] for i in range(len(specs))]


CLIENT_REFUSAL = (
    "ray.address={address} is a Ray Client address, which searches cannot use "
    "(tune.with_parameters fails under Ray Client); run the driver on a cluster node with "
    "ray.address=<head>:6379 (the head's GCS address) or ray.address=auto"
)


def check_ray_address(address: str | None) -> str:
    """The ``ray.address`` setting, checked: empty (a private local Ray), ``auto`` (the Ray
    started on this machine with ``ray start``) or a GCS address ``host:port``.

    Args:
        address: The setting as given (``None`` counts as empty).

    Returns:
        The address, stripped.

    Raises:
        ConfigError: A Ray Client address (``ray://...``) or anything that is not ``host:port``;
            the message names the working alternative.
    """
    value = str(address or "").strip()
    if value in ("", "auto"):
        return value
    if value.startswith("ray://"):
        raise ConfigError(CLIENT_REFUSAL.format(address=value))
    host, sep, port = value.rpartition(":")
    if "://" in value or not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(
            f"ray.address={value} is not a Ray address: leave it empty for a private local Ray, "
            "or give auto or the head's GCS address <head>:6379"
        )
    return value


def ray_init_kwargs(
    address: str, num_cpus: int | None, object_store_memory: int | None = None
) -> dict[str, Any]:
    """The arguments :func:`ray_session` passes to ``ray.init``.

    An empty ``address`` starts a new, private Ray instance (``address="local"``) sized to
    ``num_cpus`` (or every core), even when a Ray head already runs on this machine; any other
    address joins that cluster without resource arguments (the cluster's nodes declare theirs).
    Either way the job's runtime env names :func:`~cryptotrade.optimize.warm.setup_worker` as
    the workers' setup hook (:data:`~cryptotrade.optimize.warm.RUNTIME_ENV`).

    Args:
        address: A checked ``ray.address`` (:func:`check_ray_address`).
        num_cpus: CPUs of the private local Ray; ignored when joining a cluster.
        object_store_memory: Bytes of the private local Ray's object store; ignored when
            joining a cluster (its nodes set their own).

    Returns:
        Keyword arguments for ``ray.init``.
    """
    if not address:
        return {
            "address": "local",
            "num_cpus": num_cpus or os.cpu_count(),
            "include_dashboard": False,
            "object_store_memory": object_store_memory,
            "runtime_env": dict(warm.RUNTIME_ENV),
        }
    return {"address": address, "log_to_driver": True, "runtime_env": dict(warm.RUNTIME_ENV)}


def enable_token_auth(address: str) -> bool:
    """Turn on Ray's token authentication for a join by GCS address when a token is at hand.

    Ray (2.5x and later) sends its token (``RAY_AUTH_TOKEN``, the file named by
    ``RAY_AUTH_TOKEN_PATH``, or ``~/.ray/auth_token``) by itself only when it finds the cluster
    itself (``auto``); for an explicit ``host:port`` it needs ``RAY_AUTH_MODE=token``. This does
    what Ray does for ``auto``: with ``RAY_AUTH_MODE`` unset and a token available, it sets
    ``RAY_AUTH_MODE=token`` for this process (an explicit ``RAY_AUTH_MODE`` is respected).

    Args:
        address: A checked ``ray.address``; only ``host:port`` is acted on.

    Returns:
        Whether token authentication is on for the join.
    """
    if address in ("", "auto"):
        return False  # Ray handles a new local instance and `auto` itself
    try:
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available,
        )
    except ImportError:  # a Ray without token authentication
        return False
    enabled = bool(maybe_enable_token_auth_if_token_available(warn_if_disabled=False))
    if enabled:
        log.info("Ray: token authentication on for %s (RAY_AUTH_MODE=token)", address)
    return enabled


@contextlib.contextmanager
def ray_session(
    address: str = "", num_cpus: int | None = None, object_store_memory: int | None = None
) -> Iterator[None]:
    """Start a private local Ray (``address`` empty: sized to ``num_cpus`` or the machine, its
    object store capped at ``object_store_memory`` bytes) or join a cluster (``auto``,
    ``<head>:6379``); shut down what we started. A private Ray's processes are also stopped,
    within seconds, if this process dies without shutting it down (SIGKILL):
    :class:`~cryptotrade.optimize.reaper.RayWatchdog`; a joined cluster is never touched.

    Ray is left alone if the process already initialised it (a test fixture, a notebook).
    See :func:`check_ray_address`, :func:`ray_init_kwargs` and :func:`enable_token_auth`.

    Raises:
        ConfigError: ``address`` is a Ray Client address or malformed, or
            ``ray.object_store_memory`` is below Ray's minimum (75 MB).
    """
    address = check_ray_address(address)
    import ray

    if object_store_memory is not None and object_store_memory < MIN_OBJECT_STORE:
        raise ConfigError(
            f"ray.object_store_memory={object_store_memory} is below Ray's minimum of "
            f"{MIN_OBJECT_STORE} bytes (75 MB); raise it or set it to null (Ray's default)"
        )
    if ray.is_initialized():
        yield
        return
    enable_token_auth(address)
    # a Ray we start is stopped by a watchdog if this process dies without shutting it down
    with RayWatchdog(enabled=not address) as watchdog:
        with watchdog.marking():
            context = ray.init(**ray_init_kwargs(address, num_cpus, object_store_memory))
        session_dir = (getattr(context, "address_info", None) or {}).get("session_dir")
        if session_dir:
            watchdog.log_to(os.path.join(session_dir, "logs", "cryptotrade_reaper.log"))
        log.info("Ray: %s", ray.cluster_resources())
        try:
            yield
        finally:
            ray.shutdown()


@contextlib.contextmanager
def make_pool(
    *,
    ray_enabled: bool,
    address: str,
    num_cpus: int | None,
    workers: int | None,
    timeout: float | None,
    cpus_per_task: float = 1,
    object_store_memory: int | None = None,
) -> Iterator[Pool]:
    """The pool the config asks for (see the module docstring), inside its Ray session."""
    if workers == 0:
        yield InlinePool()
    elif ray_enabled:
        with ray_session(address, num_cpus, object_store_memory):
            yield RayPool(workers, timeout, cpus_per_task)
    else:
        pool = ProcessPool(workers or num_cpus or os.cpu_count() or 1, timeout)
        try:
            yield pool
        finally:
            pool.close()
