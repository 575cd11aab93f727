"""One candidate of a search: a point applied to the config, scored on the VALIDATION split.

GA individuals and Tune trials both end up in :func:`evaluate_candidate`: the candidate's config
(the base config with the point's values set) is run through the pipeline objective with
``test=False`` inside its own MLflow child run, and the returned ``val/...`` metrics are the
candidate's score. The test split is never evaluated here; the search evaluates it once, for the
winner, in the parent run (:func:`final_objective`).

Child runs are opened by the driver (:func:`open_child_run`: an MLflow run tagged with the
parent's id, so the UI nests it) and attached to by the worker process
(:func:`cryptotrade.launch.tracking.attached_run`).
A worker on another machine therefore needs only the run id and the tracking URI, and the driver
can mark the run FAILED itself when it kills a worker that hung.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptotrade.errors import ConfigError
from cryptotrade.optimize.derive import ConfigDeriver
from cryptotrade.optimize.space import Point

if TYPE_CHECKING:
    from cryptotrade.agents.checkpoint import OnCheckpoint

OnValidation = Callable[[int, dict[str, float]], None]

# Tags of every search child run (GA individuals and Tune trials).
TAG_KIND = "search/kind"
TAG_GENERATION = "search/generation"
TAG_GENOME = "search/genome"
TAG_ERROR = "search/error"
TAG_HOST = "search/host"  # the machine a candidate ran on
TAG_RAY_NODE = "search/ray_node"  # and its Ray node (a raylet; a machine may run several)


@dataclass(frozen=True)
class TrialSpec:
    """Everything a worker (possibly on another machine) needs to score one candidate.

    Attributes:
        config: The candidate's full config, resolved to plain containers.
        point: The searched values, ``{path: value}``.
        output_dir: The candidate's local folder (saved model, logs).
        run_id: Its MLflow child run, opened by the driver; ``None`` without tracking.
        tracking_uri: The MLflow store the run lives in.
        scheduled_at: When the pool submitted it (``time.time()``; set by the pool), for the
            start-up timing (:func:`cryptotrade.optimize.warm.candidate_timing`).
    """

    config: dict[str, Any]
    point: Point
    output_dir: str
    run_id: str | None = None
    tracking_uri: str | None = None
    scheduled_at: float | None = None


@dataclass
class Outcome:
    """What a worker returned: metrics, or the error that stopped it (traceback or timeout)."""

    metrics: dict[str, float] | None = None
    error: str | None = None
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def point_key(point: Mapping[str, Any]) -> str:
    """Canonical text of a point: equal points (whatever their genes) share one key."""
    return json.dumps({k: point[k] for k in sorted(point)}, sort_keys=True, default=str)


def point_hash(point: Mapping[str, Any]) -> str:
    """Short hash of a point, for run names and folders."""
    return hashlib.sha256(point_key(point).encode()).hexdigest()[:10]


def short_keys(keys: Sequence[str]) -> dict[str, str]:
    """Each config path under the shortest tail that no other key shares: the last part
    (``learning_rate``) unless two keys end alike (``vol.window``, ``env.window``)."""

    def tail(key: str) -> str:
        parts = key.split(".")
        for n in range(1, len(parts)):
            end = ".".join(parts[-n:])
            if not any(o != key and (o == end or o.endswith("." + end)) for o in keys):
                return end
        return key

    return {key: tail(key) for key in keys}


def point_label(point: Mapping[str, Any], limit: int = 80) -> str:
    """``learning_rate=0.000312 vol.window=78 env.window=30``: each searched value under its
    :func:`short_keys` name, floats to 3 significant digits, for run names people can read in
    the MLflow UI."""

    def short(value: Any) -> str:
        return f"{value:.3g}" if isinstance(value, float) else str(value)

    names = short_keys(list(point))
    text = " ".join(f"{names[k]}={short(v)}" for k, v in point.items())
    return text if len(text) <= limit else text[: limit - 1] + "~"


def candidate_config(configs: ConfigDeriver, point: Point) -> dict[str, Any]:
    """The base config with ``point`` applied, resolved to plain containers (picklable).

    The point is applied before resolving so that interpolations reading a searched value see
    the candidate's value.
    """
    return configs.with_point(point).container()


def score_of(metrics: Mapping[str, float], metric: str, penalty: float) -> float:
    """The candidate's fitness: ``metrics[metric]``, or ``penalty`` when it is NaN.

    Raises:
        ConfigError: If the objective did not return ``metric`` (a typo in ``optimizer.metric``
            would otherwise score every candidate as a failure), or a valid score is not above
            ``penalty`` (the penalty must be worse than any valid score).
    """
    if metric not in metrics:
        raise ConfigError(
            f"optimizer.metric={metric} is not among the objective's metrics: "
            f"{', '.join(sorted(metrics))}"
        )
    value = float(metrics[metric])
    if math.isnan(value):
        return penalty
    if value <= penalty:
        raise ConfigError(
            f"{metric}={value} is not above optimizer.penalty={penalty}; set a lower penalty"
        )
    return value


# ---- the objective ----------------------------------------------------------------------------
def validation_objective(
    configs: ConfigDeriver,
    output_dir: Path,
    on_validation: OnValidation | None = None,
    *,
    on_checkpoint: OnCheckpoint | None = None,
    resume: bool = False,
) -> dict[str, float]:
    """The pipeline objective on the VALIDATION split only (``test=False``): a candidate's score.

    ``on_checkpoint`` and ``resume`` (a trial continuing from its checkpoint in ``output_dir``)
    go to :func:`cryptotrade.optimize.objective.objective`.
    """
    from cryptotrade.optimize.objective import objective

    return dict(
        objective(
            configs,
            output_dir,
            test=False,
            on_validation=on_validation,
            on_checkpoint=on_checkpoint,
            resume=resume,
        )
    )


def final_objective(configs: ConfigDeriver, output_dir: Path) -> dict[str, float]:
    """The winner's run in the parent: the full objective, test split evaluated once."""
    from cryptotrade.optimize.objective import objective, seed_everything

    output_dir.mkdir(parents=True, exist_ok=True)
    seed_everything(configs.settings.seed, configs.settings.torch_threads)
    return dict(objective(configs, output_dir))


def evaluate_candidate(
    spec: TrialSpec,
    on_validation: OnValidation | None = None,
    *,
    on_checkpoint: OnCheckpoint | None = None,
    resume: bool = False,
) -> dict:
    """Score one candidate: seed, then the validation objective in ``spec.output_dir``.

    With ``resume`` the candidate continues from the checkpoint in ``spec.output_dir`` (whose
    RNG states replace the fresh seeding), see :func:`validation_objective`.
    """
    from cryptotrade.launch import tracking
    from cryptotrade.optimize.objective import seed_everything

    configs = ConfigDeriver.from_container(spec.config)
    out = Path(spec.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    tracking.log_text(configs.redacted().yaml(resolve=False), "config.yaml")
    seed_everything(configs.settings.seed, configs.settings.torch_threads)
    return validation_objective(
        configs, out, on_validation, on_checkpoint=on_checkpoint, resume=resume
    )


# ---- MLflow child runs across processes ---------------------------------------------------------
def open_child_run(name: str, tags: Mapping[str, Any], params: Mapping[str, Any]) -> str | None:
    """Create a child run of the active run (driver side); ``None`` when the search runs
    untracked (no run, inside :func:`cryptotrade.launch.tracking.run_optional`).

    Raises:
        NoActiveRunError: With no active run outside ``run_optional``.
    """
    from cryptotrade.launch import tracking

    parent = tracking.active_run_ref()
    if parent is None:
        tracking.recording(f"the child run {name}")  # raises unless the search is untracked
        return None
    return tracking.create_run(
        parent.uri, parent.experiment_id, name, tags=tags, params=params, parent=parent
    )


def close_failed_run(run_id: str | None, error: str) -> None:
    """Mark a child run FAILED with the error as a tag, if its worker could not (killed, hung)."""
    if run_id is None:
        return
    from cryptotrade.launch import tracking

    with contextlib.suppress(Exception):
        tracking.set_tags({TAG_ERROR: error[-4000:]}, run_id=run_id)
        tracking.end_run(run_id, "FAILED", only_if_running=True)


def tag_where_it_runs(run_id: str | None, uri: str | None) -> None:
    """Tag run ``run_id`` with :func:`where_it_runs` (never a reason to fail a candidate)."""
    if run_id is None:
        return
    from cryptotrade.launch import tracking

    with contextlib.suppress(Exception):
        tracking.set_tags(where_it_runs(), run_id=run_id, uri=uri)


def where_it_runs() -> dict[str, str]:
    """``search/host`` (this machine) and, in a Ray worker, ``search/ray_node`` (its node id):
    the tags that say where a candidate ran (a search on a cluster spreads them over nodes)."""
    import socket
    import sys

    tags = {TAG_HOST: socket.gethostname()}
    ray = sys.modules.get("ray")  # only a Ray worker has it loaded and initialised
    if ray is not None and ray.is_initialized():
        tags[TAG_RAY_NODE] = ray.get_runtime_context().get_node_id()
    return tags


Evaluate = Callable[[TrialSpec], Mapping[str, float]]


def run_trial(fn: Evaluate, spec: TrialSpec) -> Outcome:
    """Worker entry: ``fn(spec)`` inside the candidate's run; errors become an :class:`Outcome`.

    A candidate that trained also logs its start-up (``time/startup_s`` ...,
    :func:`cryptotrade.optimize.warm.candidate_timing`) in its run and returns it in
    ``Outcome.extra["timing"]``, with ``extra["fresh"]``: its worker process's first candidate.
    """
    from cryptotrade.launch import tracking
    from cryptotrade.optimize import warm

    started_at = time.time()
    fresh = warm.begin_task()
    start = time.perf_counter()
    try:
        with tracking.attached_run(spec.run_id, spec.tracking_uri):
            tag_where_it_runs(spec.run_id, spec.tracking_uri)
            metrics = {k: float(v) for k, v in fn(spec).items()}
            timing = warm.candidate_timing(
                spec.scheduled_at, started_at, warm.learn_started_at(), fresh
            )
            warm.log_timing(spec.run_id, spec.tracking_uri, timing, fresh)
    except Exception:
        return Outcome(error=traceback.format_exc(), seconds=time.perf_counter() - start)
    extra = {"timing": timing, "fresh": fresh}
    return Outcome(metrics=metrics, seconds=time.perf_counter() - start, extra=extra)
