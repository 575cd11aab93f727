"""The terminal summary table and the self-contained HTML report of one evaluation."""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping

from cryptotrade.evaluation.metrics import COSTS, HEADLINE

PERCENT = {"total_return", "cagr", "volatility", "max_drawdown", "win_rate", "exposure"}
QUOTE = "quote currency"
BASE = "base currency: inverse contract, margined in the coin"


def currency_label(inverse: bool) -> str:
    """What money is measured in: the margin currency (the coin for inverse contracts)."""
    return BASE if inverse else QUOTE


def money(value: float) -> str:
    """Money with at least 4 significant digits and 2 decimals (a 0.0003 BTC fee is not 0.00)."""
    if value == 0.0 or abs(value) >= 1e9:
        return f"{value:,.2f}" if abs(value) < 1e9 else f"{value:.4g}"
    decimals = min(max(2, 3 - math.floor(math.log10(abs(value)))), 10)
    return f"{value:,.{decimals}f}"


def fmt(name: str, value: float) -> str:
    """A metric value for people: percentages, money with two decimals, ratios with three.

    ``n/a`` where there is no number to show: NaN and infinity (a ``sortino`` without a
    losing day, a ``profit_factor`` without a losing trade); see :func:`cell` for the
    annualised figures of short splits.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if math.isinf(value) or abs(value) >= 1e300:  # MLflow stores inf as the largest float
        return "n/a"
    parts = [p for p in name.split("/") if p != "std"]
    base = parts[-1] if len(parts) > 1 and parts[0] == "regime" else parts[0]
    if base in PERCENT or base in ("return", "excess_vs_buy_hold"):
        return f"{100.0 * value:.2f}%" if abs(value) < 1e4 else f"{100.0 * value:.3g}%"
    if base in ("num_trades", "liquidations", "bars"):
        return f"{value:.0f}"
    if base in COSTS or base in ("expectancy", "final_equity"):
        return money(value)
    return f"{value:.3f}" if abs(value) < 1e6 else f"{value:.4g}"


ANNUALISED = ("cagr", "calmar")  # n/a where the split is too short to annualise


def cell(key: str, metrics: Mapping[str, float]) -> str:
    """``fmt`` of ``metrics[key]``; ``n/a`` for an annualised figure of a split shorter than a
    year (``annualised`` = 0, see :mod:`cryptotrade.evaluation.metrics`)."""
    if key in ANNUALISED and metrics.get("annualised", 1.0) == 0.0:
        return "n/a"
    return fmt(key, metrics.get(key, float("nan")))


def _rows(columns: Mapping[str, Mapping[str, float]], keys: tuple[str, ...]) -> list[list[str]]:
    return [[name] + [cell(k, m) for k in keys] for name, m in columns.items()]


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        return "  ".join([first] + [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)])

    out = [line(header), "  ".join("-" * w for w in widths)] + [line(r) for r in rows]
    return "\n".join(out)


def _pct(value: float) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{100.0 * value:+.2f} %" if abs(value) < 10.0 else f"{100.0 * value:+.0f} %"


def verdict(
    columns: Mapping[str, Mapping[str, float]],
    *,
    ci: tuple[float, float] | None = None,
    seeds: int | None = None,
    method: str = "",
) -> str:
    """One line: the agent's return against buy & hold (difference in percentage points), flat
    and the oracle, and the 95 % interval over seeds when there is one.

    e.g. ``verdict: agent -16.96 % vs buy & hold +19.54 % (-36.50 pts), flat +0.00 %, oracle
    +7520 %``.
    """
    agent = columns.get("agent", {}).get("total_return", float("nan"))
    who = f"agent (mean of {seeds} seeds)" if seeds else "agent"
    text = f"verdict: {who} {_pct(agent)}"
    if "buy_hold" in columns:
        hold = columns["buy_hold"].get("total_return", float("nan"))
        text += f" vs buy & hold {_pct(hold)} ({100.0 * (agent - hold):+.2f} pts)"
    for name, label in (("flat", "flat"), ("random", "random"), ("oracle", "oracle")):
        if name in columns:
            text += f", {label} {_pct(columns[name].get('total_return', float('nan')))}"
    if ci is not None and all(math.isfinite(v) for v in ci):
        text += f"; 95 % CI of the mean {_pct(ci[0])} to {_pct(ci[1])}"
        text += f" ({method})" if method else ""
    return text


def summary_table(
    split: str,
    columns: Mapping[str, Mapping[str, float]],
    *,
    ci: tuple[float, float] | None = None,
    seeds: int | None = None,
    method: str = "",
) -> str:
    """One text table: agent vs each baseline on the headline metrics, then the cost
    breakdown, closed by the one-line :func:`verdict`.

    Args:
        split: Split name for the title (``test``).
        columns: ``name -> metrics`` with the agent first.
        ci: The 95 % interval of the agent's total return over seeds, if any.
        seeds: How many seeds the agent's column averages.
        method: How ``ci`` was computed (``student_t`` ...).
    """
    keys = HEADLINE + COSTS
    table = _table(["", *keys], _rows(columns, keys))
    line = verdict(columns, ci=ci, seeds=seeds, method=method)
    return f"== {split}: agent vs baselines ==\n{table}\n{line}"


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
    low, high = (metrics.get(f"{prefix}/total_return/ci_{k}") for k in ("low", "high"))
    if low is None or high is None or "seeds/n" not in metrics:
        return summary_table(prefix, columns)
    from cryptotrade.evaluation.seeds import ci_method

    n = int(metrics["seeds/n"])
    return summary_table(prefix, columns, ci=(low, high), seeds=n, method=ci_method(n))


def inline_images(pictures: Mapping[str, bytes], *, heading: str) -> str:
    """Each picture under a ``heading`` named after its file, inlined as base64 PNG (a report
    that opens without its folder and makes no outside request)."""
    return "".join(
        f"<{heading}>{html.escape(name.removesuffix('.png').replace('_', ' '))}</{heading}>"
        f'<img alt="{html.escape(name)}" src="data:image/png;base64,'
        f'{base64.b64encode(png).decode()}">'
        for name, png in pictures.items()
    )


def html_report(
    *,
    title: str,
    columns: Mapping[str, Mapping[str, float]],
    extra: Mapping[str, float],
    pictures: Mapping[str, bytes],
    config_yaml: str,
    notes: list[str],
    currency: str = QUOTE,
) -> str:
    """A self-contained HTML page (pictures inlined as base64 PNG).

    Args:
        title: Page heading.
        columns: ``name -> metrics``, the agent first, then every baseline.
        extra: Comparisons and per-regime numbers (``return_vs_oracle``, ``regime/...``).
        pictures: ``file name -> PNG bytes``.
        config_yaml: The composed config of the run (folded under its heading: a few hundred
            lines that would otherwise be most of the page).
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
            + "".join(f"<td>{cell(k, m)}</td>" for m in columns.values())
            + "</tr>"
            for k in keys
        )
        return f"<table><tr><th>metric</th>{head}</tr>{body}</table>"

    extra_rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{fmt(k, v)}</td></tr>" for k, v in extra.items()
    )
    images = inline_images(pictures, heading="h3")
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
summary {{ cursor: pointer; color: #1f5fa8; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<ul>{items}</ul>
<h2>Cost breakdown ({html.escape(currency)})</h2>{table(list(COSTS))}
<h2>Metrics: agent vs baselines</h2>{table(metric_keys)}
<h2>Comparisons and regimes</h2><table><tr><th>metric</th><th>value</th></tr>{extra_rows}</table>
<h2>Pictures</h2>{images}
<h2>Config</h2>
<details><summary>The run's composed config ({len(config_yaml.splitlines())} lines)</summary>
<pre>{html.escape(config_yaml)}</pre></details>
</body></html>
"""
