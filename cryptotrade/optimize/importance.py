"""What a search parent shows of its trials: the trial table, parameter importance and an Optuna
study that ``optuna-dashboard`` opens.

After a GA or Tune search, the parent run gets (``<kind>`` is ``ga`` or ``tune``):

* ``<kind>/trials.json``: every candidate as a table (MLflow shows it as one): its fitness
  (``optimizer.metric`` on the validation split), state, child run id and searched values (GA:
  the generation; Tune: the trial id and reports).
* ``<kind>/optuna.db``: an Optuna study (SQLite) built from those trials with
  ``optuna.create_study`` and ``study.add_trial(optuna.trial.create_trial(...))``; the
  distributions come from the search space (:func:`distributions`: ``int`` -> ``IntDistribution``,
  ``float`` -> ``FloatDistribution``, ``log`` -> ``FloatDistribution(log=True)``, ``choice`` ->
  ``CategoricalDistribution``). A failed candidate (the penalty, a NaN score) is a FAIL trial.
  Download it and run ``optuna-dashboard sqlite:///optuna.db`` for its history, slice, contour and
  parallel-coordinate views.
* ``<kind>/importance.png`` and ``<kind>/importance.json``: each searched parameter's share of the
  fitness variance, by Optuna's fANOVA evaluator (``optuna.importance.get_param_importances``,
  ``FanovaImportanceEvaluator(seed=0)``) over the completed trials; it needs at least two
  completed trials with different values (otherwise a note says why there is none).
* ``<kind>/parallel_coordinates.png``: the searched values against the fitness, one line per
  completed trial (:func:`cryptotrade.optimize.compare.parallel_coordinates_png`).

With few trials (a debug search) the importances are rough: fANOVA fits a random forest to them.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import math
import os
import shutil
import tempfile
import threading
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptotrade.optimize.space import Domain, SearchSpace

log = logging.getLogger(__name__)
STUDY_FILE = "optuna.db"
_template: dict[str, Path] = {}  # this process's empty Optuna storage (new_sqlite_storage)
_template_lock = threading.Lock()


@dataclass(frozen=True)
class TrialRecord:
    """One candidate of a search as the trial table and the study see it.

    Attributes:
        point: The searched values, ``{config path: value}``.
        fitness: Its fitness; the penalty or NaN for a failed candidate.
        failed: Whether it failed (no fitness counts).
        extra: Further columns of the table (``generation``, ``run_id``, ``trial_id``, ...).
    """

    point: dict[str, Any]
    fitness: float
    failed: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def distributions(space: SearchSpace) -> dict[str, Any]:
    """The Optuna distribution of every dimension of the space, by config path."""
    return {d.path: _distribution(d) for d in space.domains}


def _distribution(domain: Domain) -> Any:
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    if domain.kind == "choice":
        return CategoricalDistribution(list(domain.values))
    lo, hi = domain.values
    if domain.kind == "int":
        return IntDistribution(int(lo), int(hi))
    return FloatDistribution(float(lo), float(hi), log=domain.kind == "log")


@contextlib.contextmanager
def quiet_optuna() -> Iterator[None]:
    """Optuna's INFO lines (``A new study created ...``) and its ExperimentalWarning off while
    the block runs; its verbosity is restored afterwards."""
    import optuna

    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(before)


def new_sqlite_storage(path: Path) -> Any:
    """A new, empty Optuna SQLite storage at ``path`` (which must not exist yet).

    It is a copy of an empty storage this process creates once: creating one from scratch has
    Alembic parse Optuna's migration scripts to stamp the schema version (~0.1 s per study);
    the copy holds the same tables, version row and stamp, written by the same Optuna, so it is
    opened without the version check. The template lives in a private temporary folder of this
    process (removed at exit), so processes never share it.

    Args:
        path: Where the storage's database file goes.

    Returns:
        An ``optuna.storages.RDBStorage`` (pass it to :func:`build_study`).
    """
    from optuna.storages import RDBStorage

    with _template_lock:
        template = _template.get("path")
        if template is None or not template.exists():
            folder = Path(tempfile.mkdtemp(prefix="cryptotrade-optuna-"))
            atexit.register(_remove_template, folder, os.getpid())
            template = folder / STUDY_FILE
            RDBStorage(f"sqlite:///{template}").engine.dispose()
            _template["path"] = template
        try:
            shutil.copyfile(template, path)
        except FileNotFoundError:  # the template vanished (a temp-folder cleaner): stamp anew
            return RDBStorage(f"sqlite:///{path}")
    return RDBStorage(f"sqlite:///{path}", skip_compatibility_check=True)


def _remove_template(folder: Path, owner: int) -> None:
    """Remove the template's folder at exit, in the process that made it only (a forked
    child that exits normally leaves it to its parent)."""
    if os.getpid() == owner:
        shutil.rmtree(folder, ignore_errors=True)


def build_study(
    space: SearchSpace,
    trials: Sequence[TrialRecord],
    *,
    metric: str,
    storage: Any = None,
    name: str = "search",
) -> Any:
    """An Optuna study (maximised) holding ``trials``: completed ones with their fitness, failed
    ones as FAIL trials. A trial whose values lie outside the space (a search resumed after its
    space changed) is left out.

    Args:
        space: The search space (the distributions).
        trials: The candidates.
        metric: The fitness metric (the study's ``metric`` user attribute and metric name).
        storage: An Optuna storage or its URL (``sqlite:///.../optuna.db``, or
            :func:`new_sqlite_storage`); ``None``: in memory.
        name: The study name.
    """
    import optuna
    from optuna.trial import TrialState, create_trial

    dists = distributions(space)
    with quiet_optuna():
        study = optuna.create_study(
            storage=storage, study_name=name, direction="maximize", load_if_exists=False
        )
        study.set_metric_names([metric])
        study.set_user_attr("metric", metric)
        for record in trials:
            failed = record.failed or not math.isfinite(record.fitness)
            attrs = {k: _plain(v) for k, v in record.extra.items()}
            try:
                trial = create_trial(
                    params={p: record.point[p] for p in dists},
                    distributions=dists,
                    value=None if failed else float(record.fitness),
                    state=TrialState.FAIL if failed else TrialState.COMPLETE,
                    user_attrs=attrs,
                )
            except (KeyError, ValueError) as exc:
                log.info("trial %s left out of the Optuna study: %s", record.point, exc)
                continue
            study.add_trial(trial)
    return study


def _plain(value: Any) -> Any:
    """A JSON-serialisable user attribute (numpy scalars as Python numbers)."""
    if hasattr(value, "item") and callable(value.item):
        with contextlib.suppress(TypeError, ValueError):
            value = value.item()
    try:
        json.dumps(value)
    except TypeError:
        return str(value)
    return value


def param_importances(study: Any) -> dict[str, float]:
    """fANOVA importance of each parameter (summing to 1), most important first; empty with
    fewer than two completed trials or no parameter that varies."""
    import optuna
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 2 or len({t.value for t in complete}) < 2:
        return {}
    with quiet_optuna():
        try:
            found = get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=0))
        except (RuntimeError, ValueError, ZeroDivisionError, optuna.exceptions.OptunaError) as exc:
            log.info("no parameter importance: %s", exc)
            return {}
    return {str(k): float(v) for k, v in found.items()}


def importance_png(importances: Mapping[str, float], metric: str, trials: int) -> bytes:
    """A horizontal bar per parameter, its importance written beside it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cryptotrade.optimize.compare import figure_png

    names = list(importances)[::-1]  # most important on top
    values = [importances[n] for n in names]
    fig, ax = plt.subplots(figsize=(6.5, 0.5 * len(names) + 1.5))
    bars = ax.barh(names, values, color="C0")
    ax.bar_label(bars, labels=[f"{v:.2f}" for v in values], padding=3, fontsize=8)
    ax.set_xlim(0, max(1.0, max(values, default=0.0) * 1.15))
    ax.set(
        xlabel=f"share of the variance of {metric} (fANOVA)",
        title=f"parameter importance over {trials} completed trials",
    )
    fig.tight_layout()
    return figure_png(fig)


def trial_table(trials: Sequence[TrialRecord], metric: str) -> dict[str, list[Any]]:
    """Column -> values of the trial table (best first, failed last)."""
    ranked = sorted(
        trials, key=lambda r: (r.failed or not math.isfinite(r.fitness), -_score(r.fitness))
    )
    rows = [
        {metric: r.fitness, "state": "FAIL" if r.failed else "COMPLETE"} | r.extra | r.point
        for r in ranked
    ]
    names = list(dict.fromkeys(k for row in rows for k in row))
    return {name: [_plain(row.get(name)) for row in rows] for name in names}


def _score(value: float) -> float:
    return value if math.isfinite(value) else -math.inf


def log_search_trials(
    kind: str, space: SearchSpace, trials: Sequence[TrialRecord], metric: str
) -> dict[str, float]:
    """Log the trial table, the Optuna study, the importance and the parallel coordinates of a
    search to the active (parent) run (see the module docstring).

    Args:
        kind: ``ga`` or ``tune`` (the artifact folder).
        space: The search space.
        trials: Every candidate of the search.
        metric: The fitness metric.

    Returns:
        The importances (``{path: share}``; empty when they cannot be computed).
    """
    from cryptotrade.launch import tracking
    from cryptotrade.optimize.compare import parallel_coordinates_png

    if not trials or not tracking.recording(f"{kind}/trials.json"):
        return {}
    run_id = tracking.active_run_id()
    tracking.log_table(trial_table(trials, metric), f"{kind}/trials.json")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / STUDY_FILE
        study = build_study(
            space, trials, metric=metric, storage=new_sqlite_storage(path), name=f"{kind}-{run_id}"
        )
        importances = param_importances(study)
        completed = [r for r in trials if not r.failed and math.isfinite(r.fitness)]
        _dispose(study)
        tracking.log_artifact(path, kind)
    if importances:
        tracking.log_dict(
            {"metric": metric, "evaluator": "fanova", "trials": len(completed),
             "importance": importances},
            f"{kind}/importance.json",
        )  # fmt: skip
        png = importance_png(importances, metric, len(completed))
        _log_png(png, f"{kind}/importance.png")
    else:
        tracking.log_text(
            f"no parameter importance: {len(completed)} completed trials (fANOVA needs at least "
            "two with different fitness)\n",
            f"{kind}/importance.txt",
        )
    rows = [r.point | {metric: r.fitness} for r in completed]
    picture = parallel_coordinates_png(rows, space.paths, metric)
    if picture is not None:
        _log_png(picture, f"{kind}/parallel_coordinates.png")
    return importances


def _dispose(study: Any) -> None:
    """Close the study's database connections (the file is then complete and can be moved)."""
    storage = getattr(study, "_storage", None)
    backend = getattr(storage, "_backend", storage)  # a cached storage wraps the RDB one
    engine = getattr(backend, "engine", None)
    if engine is not None:
        engine.dispose()


def _log_png(png: bytes, artifact_file: str) -> None:
    from cryptotrade.evaluation.evaluate import log_files

    folder, _, name = artifact_file.rpartition("/")
    log_files({name: png}, folder)
