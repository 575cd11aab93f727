"""A Hydra multirun compared at a glance: per-group aggregates and an HTML report on the parent.

When a sweep ends (``on_multirun_end``, :func:`cryptotrade.launch.sweeps.finish`), the parent run
gets, from the MLflow metrics and artifacts of its finished children:

* **Per-group aggregates.** A *group* is the children's swept overrides without ``seed``
  (``agent=dqn gamma=0.99``; ``all`` when only the seed is swept), so the seeds of one setting
  fall into one group. For each key metric (:data:`KEY_METRICS`, those the children logged) the
  parent logs the mean over the group's seeds and its 95 % interval, computed by
  :func:`cryptotrade.evaluation.seeds.confidence_interval` (Student t below 10 seeds, the
  percentile bootstrap from 10), as ``group/<group>/<metric>/{mean,ci_low,ci_high}`` and
  ``group/<group>/seeds``. ``<group>`` is the group's overrides with ``=`` written ``-`` and
  characters MLflow refuses in a key replaced by ``_`` (``group/agent-dqn gamma-0.99/test/sharpe/
  mean``); the ``comparison/ci_method`` tag names the interval.
* ``comparison/comparison.csv``: one row per group (overrides, seeds, method, mean and interval
  of every key metric), and ``comparison/children.csv``: one row per child.
* ``comparison/report.html``, self-contained (no external URL, pictures inlined as base64 PNG):
  the group table and a table of the children (run name, status, overrides, key metrics),
  both sortable by clicking a column; the children's test equity curves overlaid (their
  ``test/equity.csv``; a child trained over ``evaluation.seeds`` logs a band instead and is left
  out); and a parallel-coordinates plot of the swept parameters against the fitness (the
  driver's ``optimizer.metric``, a validation metric).
"""

from __future__ import annotations

import html
import io
import logging
import math
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)
# The metrics compared across the children (those a child did not log are left out).
KEY_METRICS = (
    "val/sharpe",
    "val/total_return",
    "test/total_return",
    "test/sharpe",
    "test/max_drawdown",
    "test/num_trades",
    "test/excess_vs_buy_hold",
)
SEED_KEYS = ("seed",)  # overrides that make the repetitions of one group
ALL = "all"  # the group name when only the seed is swept
FOLDER = "comparison"
_BAD_KEY_CHARS = re.compile(r"[^\w.\- ]")  # MLflow keys: alphanumerics, _ - . space (and /)
MAX_GROUP_NAME = 100


@dataclass(frozen=True)
class Child:
    """One finished or failed job of a sweep, as the comparison sees it.

    Attributes:
        name: The child run's name (``#3 agent=dqn seed=1``).
        run_id: Its MLflow run id ("" if it never opened one).
        status: ``FINISHED`` or ``FAILED``.
        params: The swept keys' values (``{"agent": "dqn", "seed": 1}``).
        group: Its group (the swept overrides without the seed).
        metrics: Its logged metrics.
    """

    name: str
    run_id: str
    status: str
    params: dict[str, Any]
    group: str
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Group:
    """The aggregates of one group over its seeds.

    Attributes:
        name: The group (``agent=dqn gamma=0.99`` or ``all``).
        key: Its name as used in metric keys (:func:`metric_group_name`).
        seeds: Finished children in the group.
        stats: ``metric -> (mean, ci_low, ci_high, method, n)`` over the children's values.
    """

    name: str
    key: str
    seeds: int
    stats: dict[str, tuple[float, float, float, str, int]]


def parse_value(text: str) -> Any:
    """An override's value as a number when it reads as one, else the text."""
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() and re.fullmatch(r"[+-]?\d+", text) else number


def swept_values(overrides: Sequence[str], swept: Sequence[str]) -> dict[str, Any]:
    """``{key: value}`` of the swept keys in a job's overrides (keys as written, no ``+``/``~``)."""
    out: dict[str, Any] = {}
    for item in overrides:
        key, _, value = item.partition("=")
        bare = key.lstrip("+~")
        if bare in swept:
            out[bare] = parse_value(value)
    return out


def group_name(params: Mapping[str, Any]) -> str:
    """``agent=dqn gamma=0.99``: the swept values other than the seed; ``all`` if none."""
    parts = [f"{k}={v}" for k, v in params.items() if k not in SEED_KEYS]
    return " ".join(parts) or ALL


def metric_group_name(name: str) -> str:
    """The group's name in an MLflow metric key: ``=`` written ``-``, ``/`` and every other
    character MLflow refuses written ``_``, at most 100 characters."""
    text = _BAD_KEY_CHARS.sub("_", name.replace("=", "-"))
    return text if len(text) <= MAX_GROUP_NAME else text[: MAX_GROUP_NAME - 1] + "_"


def aggregate(children: Sequence[Child], metrics: Sequence[str]) -> list[Group]:
    """Mean and 95 % interval over the seeds of each group, for each of ``metrics``.

    Only FINISHED children count; NaN and infinite values are left out. The interval is
    :func:`cryptotrade.evaluation.seeds.confidence_interval` (NaN with a single seed).

    Returns:
        The groups in order of first appearance; metric-key names made unique.
    """
    from cryptotrade.evaluation.seeds import confidence_interval

    names: dict[str, list[Child]] = {}
    for child in children:
        if child.status == "FINISHED":
            names.setdefault(child.group, []).append(child)
    groups, taken = [], set()
    for name, members in names.items():
        key = metric_group_name(name)
        while key in taken:  # two names that read alike once cleaned
            key += "_"
        taken.add(key)
        stats: dict[str, tuple[float, float, float, str, int]] = {}
        for metric in metrics:
            values = np.array([c.metrics.get(metric, np.nan) for c in members], dtype=np.float64)
            values = values[np.isfinite(values) & (np.abs(values) < 1e300)]
            if len(values) == 0:
                continue
            low, high, method = confidence_interval(values)
            stats[metric] = (float(values.mean()), low, high, method, len(values))
        groups.append(Group(name, key, len(members), stats))
    return groups


def group_metrics(groups: Sequence[Group]) -> dict[str, float]:
    """``group/<group>/<metric>/{mean,ci_low,ci_high}`` and ``group/<group>/seeds`` (finite
    values only: a single seed has no interval)."""
    out: dict[str, float] = {}
    for group in groups:
        out[f"group/{group.key}/seeds"] = float(group.seeds)
        for metric, (mean, low, high, _, _) in group.stats.items():
            for suffix, value in (("mean", mean), ("ci_low", low), ("ci_high", high)):
                if math.isfinite(value):
                    out[f"group/{group.key}/{metric}/{suffix}"] = value
    return out


def comparison_table(groups: Sequence[Group], metrics: Sequence[str]) -> Any:
    """One row per group: ``group``, ``metric_key``, ``seeds``, ``ci_method`` and, per metric,
    ``<metric>/mean``, ``<metric>/ci_low``, ``<metric>/ci_high`` (a pandas DataFrame)."""
    import pandas as pd

    rows = []
    for group in groups:
        methods = {s[3] for s in group.stats.values()}
        row: dict[str, Any] = {
            "group": group.name,
            "metric_key": f"group/{group.key}",
            "seeds": group.seeds,
            "ci_method": ",".join(sorted(methods)),
        }
        for metric in metrics:
            mean, low, high, _, _ = group.stats.get(metric, (np.nan, np.nan, np.nan, "", 0))
            row |= {f"{metric}/mean": mean, f"{metric}/ci_low": low, f"{metric}/ci_high": high}
        rows.append(row)
    return pd.DataFrame(rows)


def children_table(children: Sequence[Child], metrics: Sequence[str]) -> Any:
    """One row per child: ``run``, ``run_id``, ``status``, ``group``, the swept values and the
    key metrics (a pandas DataFrame)."""
    import pandas as pd

    keys = list(dict.fromkeys(k for c in children for k in c.params))
    rows = [
        {"run": c.name, "run_id": c.run_id, "status": c.status, "group": c.group}
        | {k: c.params.get(k) for k in keys}
        | {m: c.metrics.get(m, np.nan) for m in metrics}
        for c in children
    ]
    return pd.DataFrame(rows)


def figure_png(fig: Any) -> bytes:
    """The figure as PNG bytes (closed afterwards)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def _axis_values(values: Sequence[Any]) -> tuple[np.ndarray, list[tuple[float, str]]]:
    """Values on a [0, 1] axis and its tick labels: numbers scaled between their min and max,
    anything else spaced evenly in sorted order."""
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    if numeric:
        data = np.asarray(values, dtype=np.float64)
        lo, hi = float(np.nanmin(data)), float(np.nanmax(data))
        if hi - lo <= 1e-12 * max(1.0, abs(hi)):
            return np.full(len(data), 0.5), [(0.5, f"{lo:.4g}")]
        return (data - lo) / (hi - lo), [(0.0, f"{lo:.4g}"), (1.0, f"{hi:.4g}")]
    labels = sorted({str(v) for v in values})
    spot = {v: (i / (len(labels) - 1) if len(labels) > 1 else 0.5) for i, v in enumerate(labels)}
    return np.array([spot[str(v)] for v in values]), [(spot[v], v) for v in labels]


def parallel_coordinates_png(
    rows: Sequence[Mapping[str, Any]], params: Sequence[str], fitness: str
) -> bytes | None:
    """Parallel coordinates of ``params`` and ``fitness``, one line per row coloured by the
    fitness (rows without a finite fitness are left out). Each axis is scaled to its own range
    (labelled at its ends; categories at their positions). ``None`` with no row to draw."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kept = [r for r in rows if _finite(r.get(fitness))]
    if not kept:
        return None
    columns = [*params, fitness]
    scaled, ticks = [], []
    for column in columns:
        values, labels = _axis_values([r.get(column, "n/a") for r in kept])
        scaled.append(values)
        ticks.append(labels)
    matrix = np.stack(scaled, axis=1)
    score = np.asarray([float(r[fitness]) for r in kept])
    norm = matplotlib.colors.Normalize(float(score.min()), float(score.max()) + 1e-12)
    cmap = matplotlib.colormaps["viridis"]
    fig, ax = plt.subplots(figsize=(max(5.0, 1.7 * len(columns)), 4.0))
    x = np.arange(len(columns))
    for line, value in zip(matrix, score, strict=True):
        ax.plot(x, line, color=cmap(norm(value)), alpha=0.8, linewidth=1.5)
    for i, labels in enumerate(ticks):
        ax.axvline(i, color="#888", linewidth=0.8)
        for y, text in labels:
            ax.annotate(text, (i, y), xytext=(3, 0), textcoords="offset points", fontsize=7,
                        va="center", color="#333")  # fmt: skip
    from cryptotrade.optimize.trial import short_keys

    names = short_keys([c for c in columns if c != fitness])  # vol.window and env.window differ
    ax.set_xticks(x, [names.get(c, c) for c in columns])
    ax.set_yticks([])
    ax.set_ylim(-0.05, 1.05)
    ax.set_title(f"parameters vs {fitness}")
    fig.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=fitness)
    fig.tight_layout()
    return figure_png(fig)


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value)) and abs(float(value)) < 1e300
    except (TypeError, ValueError):
        return False


def equity_overlay_png(
    curves: Mapping[str, tuple[Any, np.ndarray]], groups: Mapping[str, str]
) -> bytes | None:
    """The children's test equity curves on one chart, one colour per group. ``None`` without
    curves.

    Args:
        curves: ``child name -> (close times, equity)``.
        groups: ``child name -> group``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not curves:
        return None
    colours = {g: f"C{i % 10}" for i, g in enumerate(dict.fromkeys(groups.values()))}
    fig, ax = plt.subplots(figsize=(9, 4.2))
    styles = ("-", "--", ":", "-.")
    seen: dict[str, int] = {}
    for name, (times, equity) in curves.items():
        group = groups.get(name, ALL)
        index = seen[group] = seen.get(group, -1) + 1
        ax.plot(times, equity, color=colours.get(group, "C0"), linestyle=styles[index % 4],
                linewidth=1.2, label=name)  # fmt: skip
    ax.set(title="test equity of every child (one colour per group)", ylabel="equity")
    ax.legend(fontsize=7, ncol=2 if len(curves) > 8 else 1, loc="best")
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    return figure_png(fig)


SORT_SCRIPT = """
document.querySelectorAll('table.sortable').forEach(function (table) {
  table.querySelectorAll('th').forEach(function (th, col) {
    th.addEventListener('click', function () {
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      var down = th.dataset.order !== 'desc';
      th.dataset.order = down ? 'desc' : 'asc';
      rows.sort(function (a, b) {
        var x = a.cells[col].dataset.v, y = b.cells[col].dataset.v;
        var nx = parseFloat(x), ny = parseFloat(y);
        var c = (isNaN(nx) || isNaN(ny)) ? String(x).localeCompare(String(y)) : nx - ny;
        return down ? -c : c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""


def _cell(value: Any, metric: str | None = None) -> str:
    from cryptotrade.evaluation.report import fmt

    if metric is not None and _finite(value):
        shown, raw = fmt(metric.rsplit("/", 1)[-1], float(value)), repr(float(value))
    elif metric is not None:
        shown, raw = "n/a", ""
    else:
        shown = raw = "" if value is None else str(value)
    return f'<td data-v="{html.escape(raw)}">{html.escape(shown)}</td>'


def _sortable(header: Sequence[str], rows: Sequence[str]) -> str:
    head = "".join(f'<th title="click to sort">{html.escape(h)}</th>' for h in header)
    return (
        f'<table class="sortable"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def html_report(
    *,
    title: str,
    children: Sequence[Child],
    groups: Sequence[Group],
    metrics: Sequence[str],
    fitness: str,
    pictures: Mapping[str, bytes],
    notes: Sequence[str] = (),
) -> str:
    """The self-contained comparison page (see the module docstring).

    Args:
        title: Page heading.
        children: Every child, finished or failed (the children's table).
        groups: The per-group aggregates (the groups' table).
        metrics: The key metrics shown, in order.
        fitness: The metric the search or sweep selects on.
        pictures: ``file name -> PNG bytes``, inlined as base64.
        notes: Sentences on how to read the page.
    """
    from cryptotrade.evaluation.report import fmt

    group_rows = []
    for group in groups:
        cells = [_cell(group.name), _cell(group.seeds)]
        for metric in metrics:
            mean, low, high, _, _ = group.stats.get(metric, (np.nan,) * 3 + ("", 0))
            text = "n/a"
            if _finite(mean):
                name = metric.rsplit("/", 1)[-1]
                text = fmt(name, mean)
                if _finite(low) and _finite(high):
                    text += f" [{fmt(name, low)}, {fmt(name, high)}]"
            raw = repr(float(mean)) if _finite(mean) else ""
            cells.append(f'<td data-v="{html.escape(raw)}">{html.escape(text)}</td>')
        methods = sorted({s[3] for s in group.stats.values()})
        cells.append(_cell(", ".join(methods)))
        group_rows.append(f"<tr>{''.join(cells)}</tr>")
    keys = list(dict.fromkeys(k for c in children for k in c.params))
    child_rows = [
        "<tr>"
        + "".join(
            [_cell(c.name), _cell(c.status), _cell(c.group)]
            + [_cell(c.params.get(k)) for k in keys]
            + [_cell(c.metrics.get(m), m) for m in metrics]
        )
        + "</tr>"
        for c in children
    ]
    from cryptotrade.evaluation.report import inline_images

    images = inline_images(pictures, heading="h2")
    items = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 24px; color: #222; max-width: 1300px; }}
table {{ border-collapse: collapse; margin: 8px 0 20px; font-size: 13px; }}
th, td {{ border: 1px solid #ccc; padding: 3px 9px; text-align: right; white-space: nowrap; }}
.wide {{ overflow-x: auto; }}
th {{ background: #f0f3f7; cursor: pointer; user-select: none; }}
th[data-order="asc"]::after {{ content: " \\25B2"; }}
th[data-order="desc"]::after {{ content: " \\25BC"; }}
img {{ max-width: 100%; border: 1px solid #eee; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>Fitness (the selection metric): <b>{html.escape(fitness)}</b></p>
<ul>{items}</ul>
<h2>Groups: mean [95 % interval] over seeds</h2>
<div class="wide">{_sortable(["group", "seeds", *metrics, "interval"], group_rows)}</div>
<h2>Children</h2>
<div class="wide">{_sortable(["run", "status", "group", *keys, *metrics], child_rows)}</div>
{images}
<script>{SORT_SCRIPT}</script>
</body></html>
"""


def _children(uri: str, jobs: Sequence[Mapping[str, Any]], swept: Sequence[str]) -> list[Child]:
    from cryptotrade.launch import tracking

    out = []
    for job in jobs:
        params = swept_values(job.get("overrides") or [], swept)
        run_id = str(job.get("run_id") or "")
        metrics: dict[str, float] = {}
        if run_id and job.get("status") == "FINISHED":
            metrics = tracking.run_metrics(uri, run_id)
        out.append(
            Child(
                name=str(job.get("name") or f"#{job.get('num')}"),
                run_id=run_id,
                status=str(job.get("status") or "FAILED"),
                params=params,
                group=group_name(params),
                metrics=metrics,
            )
        )
    return out


def _test_equity(uri: str, children: Sequence[Child]) -> dict[str, tuple[Any, np.ndarray]]:
    """``name -> (close times, equity)`` from each finished child's ``test/equity.csv``."""
    import io

    import pandas as pd

    from cryptotrade.launch import tracking

    curves = {}
    for child in children:
        if child.status != "FINISHED" or not child.run_id:
            continue
        if "test/equity.csv" not in tracking.artifact_names(child.run_id, "test", uri):
            continue
        text = tracking.load_run_text(child.run_id, "test/equity.csv", uri)
        frame = pd.read_csv(
            io.StringIO(text), usecols=["close_time", "equity"], parse_dates=["close_time"]
        )
        curves[child.name] = (frame["close_time"].to_numpy(), frame["equity"].to_numpy())
    return curves


def log_sweep_comparison(
    uri: str, parent_run_id: str, jobs: Sequence[Mapping[str, Any]], swept: Sequence[str],
    fitness: str = "val/sharpe",
) -> dict[str, float]:  # fmt: skip
    """Log the comparison of a sweep's children to its parent run (see the module docstring).

    Args:
        uri: The MLflow tracking URI.
        parent_run_id: The sweep's parent run.
        jobs: The jobs' ``job.json`` records (name, overrides, status, run id).
        swept: The swept keys (``seed`` among them makes the repetitions).
        fitness: The metric the parallel-coordinates plot colours by (the driver's
            ``optimizer.metric``).

    Returns:
        The logged ``group/...`` metrics.
    """
    from cryptotrade.evaluation.seeds import BOOTSTRAP_FROM
    from cryptotrade.launch import tracking

    children = _children(uri, jobs, swept)
    present = {k for c in children for k in c.metrics}
    metrics = [m for m in dict.fromkeys([fitness, *KEY_METRICS]) if m in present]
    groups = aggregate(children, metrics)
    values = group_metrics(groups) if metrics else {}  # no key metric (task=data): no groups
    if values:
        tracking.log_metrics(values, run_id=parent_run_id, uri=uri)
    methods = sorted({s[3] for g in groups for s in g.stats.values()})
    if methods:
        tags = {"comparison/ci_method": ",".join(methods)}
        tracking.set_tags(tags, run_id=parent_run_id, uri=uri)
    table = comparison_table(groups, metrics)
    rows = children_table(children, metrics)
    params = list(dict.fromkeys(k for c in children for k in c.params))
    pictures: dict[str, bytes] = {}
    curves = _test_equity(uri, children)
    overlay = equity_overlay_png(curves, {c.name: c.group for c in children})
    if overlay is not None:
        pictures["test_equity.png"] = overlay
    finished = [c.params | c.metrics for c in children if c.status == "FINISHED"]
    parallel = parallel_coordinates_png(finished, params, fitness) if params else None
    if parallel is not None:
        pictures["parallel_coordinates.png"] = parallel
    notes = [
        "A group is the children's swept overrides without the seed; its numbers are the mean "
        "over the group's finished seeds and a 95 % interval of that mean: Student t below "
        f"{BOOTSTRAP_FROM} seeds, the percentile bootstrap from {BOOTSTRAP_FROM} "
        "(cryptotrade.evaluation.seeds); a single seed has no interval.",
        f"The parent logs them as group/<group>/<metric>/mean, ci_low, ci_high ('=' written "
        f"'-'); interval used here: {', '.join(methods) or 'none'}.",
        f"Select on validation ({fitness}); the test columns are for reading, not choosing.",
        "Click a column header to sort.",
    ]
    if len(curves) < sum(c.status == "FINISHED" for c in children):
        notes.append(
            "Children without test/equity.csv (not a pipeline run, or one trained over "
            "evaluation.seeds, which logs a band) are not in the equity overlay."
        )
    page = html_report(
        title="sweep comparison", children=children, groups=groups, metrics=metrics,
        fitness=fitness, pictures=pictures, notes=notes,
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / FOLDER
        folder.mkdir()
        table.to_csv(folder / "comparison.csv", index=False)
        rows.to_csv(folder / "children.csv", index=False)
        (folder / "report.html").write_text(page)
        for name, png in pictures.items():
            (folder / name).write_bytes(png)
        tracking.log_artifacts(folder, FOLDER, run_id=parent_run_id, uri=uri)
    log.info(
        "sweep comparison: %d groups, %d children -> %s/report.html of run %s",
        len(groups), len(children), FOLDER, parent_run_id,
    )  # fmt: skip
    return values
