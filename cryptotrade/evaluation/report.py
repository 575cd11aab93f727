"""The terminal summary table and the self-contained HTML report of one evaluation."""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping

from cryptotrade.evaluation.metrics import COSTS, HEADLINE

PERCENT = {"total_return", "cagr", "volatility", "max_drawdown", "win_rate", "exposure"}


def fmt(name: str, value: float) -> str:
    """A metric value for people: percentages, money with two decimals, ratios with three."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if math.isinf(value) or abs(value) >= 1e300:  # MLflow stores inf as the largest float
        return "inf" if value > 0 else "-inf"
    parts = [p for p in name.split("/") if p != "std"]
    base = parts[-1] if len(parts) > 1 and parts[0] == "regime" else parts[0]
    if base in PERCENT or base in ("return", "excess_vs_buy_hold"):
        return f"{100.0 * value:.2f}%" if abs(value) < 1e4 else f"{100.0 * value:.3g}%"
    if base in ("num_trades", "liquidations", "bars"):
        return f"{value:.0f}"
    if base in COSTS or base in ("expectancy", "final_equity"):
        return f"{value:,.2f}" if abs(value) < 1e9 else f"{value:.4g}"
    return f"{value:.3f}" if abs(value) < 1e6 else f"{value:.4g}"


def _rows(columns: Mapping[str, Mapping[str, float]], keys: tuple[str, ...]) -> list[list[str]]:
    return [[name] + [fmt(k, m.get(k, float("nan"))) for k in keys] for name, m in columns.items()]


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        return "  ".join([first] + [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)])

    out = [line(header), "  ".join("-" * w for w in widths)] + [line(r) for r in rows]
    return "\n".join(out)


def summary_table(split: str, columns: Mapping[str, Mapping[str, float]]) -> str:
    """One text table: agent vs each baseline on the headline metrics, then the cost breakdown.

    Args:
        split: Split name for the title (``test``).
        columns: ``name -> metrics`` with the agent first.
    """
    keys = HEADLINE + COSTS
    return f"== {split}: agent vs baselines ==\n" + _table(["", *keys], _rows(columns, keys))


def summary_from_metrics(metrics: Mapping[str, float], prefix: str = "test") -> str | None:
    """:func:`summary_table` rebuilt from a run's flat metrics (``test/...``,
    ``baseline/<name>/...``); ``None`` when there is no ``<prefix>/total_return``."""
    if f"{prefix}/total_return" not in metrics:
        return None
    columns: dict[str, dict[str, float]] = {"agent": {}}
    for key, value in metrics.items():
        if key.startswith(f"{prefix}/"):
            columns["agent"][key.removeprefix(f"{prefix}/")] = value
        elif key.startswith("baseline/"):
            _, name, metric = key.split("/", 2)
            columns.setdefault(name, {})[metric] = value
    return summary_table(prefix, columns)


def verdict(metrics: Mapping[str, float], prefix: str = "test", key: str = "sharpe") -> str | None:
    """One line: which baselines the agent beats on ``<prefix>/<key>``; the oracle (perfect
    foresight) is the ceiling, not a rival. ``None`` without the agent's value.

    Example: ``Verdict: on test sharpe the agent (0.412) beats flat, random but not buy_hold
    (0.530); the oracle reaches 9.800.``
    """
    agent = metrics.get(f"{prefix}/{key}")
    if agent is None or math.isnan(agent):
        return None
    rivals = {
        name: value
        for name, value in (
            (k.split("/")[1], v)
            for k, v in metrics.items()
            if k.startswith("baseline/") and k.count("/") == 2 and k.endswith(f"/{key}")
        )
        if not math.isnan(value)
    }
    ceiling = rivals.pop("oracle", None)
    beaten = sorted(n for n, v in rivals.items() if agent > v)
    lost = sorted((n for n in rivals if n not in beaten), key=lambda n: -rivals[n])
    head = f"Verdict: on {prefix} {key} the agent ({fmt(key, agent)})"
    if not rivals:
        text = f"{head} has no baseline to compare with"
    elif not lost:
        text = f"{head} beats every baseline ({', '.join(beaten)})"
    elif not beaten:
        best = lost[0]
        text = f"{head} beats no baseline; the best is {best} ({fmt(key, rivals[best])})"
    else:
        worse = ", ".join(f"{n} ({fmt(key, rivals[n])})" for n in lost)
        text = f"{head} beats {', '.join(beaten)} but not {worse}"
    if ceiling is not None:
        text += f"; the oracle reaches {fmt(key, ceiling)}"
    return text + "."


def html_report(
    *,
    title: str,
    columns: Mapping[str, Mapping[str, float]],
    extra: Mapping[str, float],
    pictures: Mapping[str, bytes],
    config_yaml: str,
    notes: list[str],
) -> str:
    """A self-contained HTML page (pictures inlined as base64 PNG).

    Args:
        title: Page heading.
        columns: ``name -> metrics``, the agent first, then every baseline.
        extra: Comparisons and per-regime numbers (``return_vs_oracle``, ``regime/...``).
        pictures: ``file name -> PNG bytes``.
        config_yaml: The composed config of the run.
        notes: Sentences on how to read the numbers (conventions, oracle exactness).
    """
    order = {k: i for i, k in enumerate(HEADLINE)}  # headline first, in its order
    metric_keys = sorted(
        {k for m in columns.values() for k in m if "/" not in k},
        key=lambda k: (order.get(k, len(order)), k),
    )

    def table(keys: list[str]) -> str:
        head = "".join(f"<th>{html.escape(n)}</th>" for n in columns)
        body = "".join(
            f"<tr><td>{html.escape(k)}</td>"
            + "".join(f"<td>{fmt(k, m.get(k, float('nan')))}</td>" for m in columns.values())
            + "</tr>"
            for k in keys
        )
        return f"<table><tr><th>metric</th>{head}</tr>{body}</table>"

    extra_rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{fmt(k, v)}</td></tr>" for k, v in extra.items()
    )
    images = "".join(
        f"<h3>{html.escape(name.removesuffix('.png').replace('_', ' '))}</h3>"
        f'<img alt="{html.escape(name)}" src="data:image/png;base64,'
        f'{base64.b64encode(png).decode()}">'
        for name, png in pictures.items()
    )
    items = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 24px; color: #222; max-width: 1150px; }}
table {{ border-collapse: collapse; margin: 8px 0 20px; font-size: 13px; }}
th, td {{ border: 1px solid #ccc; padding: 3px 9px; text-align: right; }}
td:first-child, th:first-child {{ text-align: left; }}
th {{ background: #f0f3f7; }}
img {{ max-width: 100%; border: 1px solid #eee; }}
pre {{ background: #f7f7f7; padding: 10px; font-size: 12px; overflow-x: auto; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<ul>{items}</ul>
<h2>Cost breakdown (quote currency)</h2>{table(list(COSTS))}
<h2>Metrics: agent vs baselines</h2>{table(metric_keys)}
<h2>Comparisons and regimes</h2><table><tr><th>metric</th><th>value</th></tr>{extra_rows}</table>
<h2>Pictures</h2>{images}
<h2>Config</h2><pre>{html.escape(config_yaml)}</pre>
</body></html>
"""
