"""Issue 17's real-data check: the default agent, walk-forward, on the shared exchange files.

Two markets from ``../shared/data``: the Binance USD-M BTC/USDT perpetual (1h bars with its 8h
funding, from 2019-09-11, linear contract) and BitMEX XBTUSD 2019 (1m trades resampled to 1h,
funding, inverse contract: ``experiment=bitmex``). On each, ``task=walkforward`` (4 folds of
1,000 test bars, each selected on the 500 validation bars before it, training on everything
before that) for every seed, with the agent's default configuration (the stand-aside gate on).

The question is whether the default agent is **significantly below flat**: per seed, its
stitched out-of-sample return over the four test blocks minus flat's (0: flat pays no fees or
funding); the 95 % Student t interval of the mean over the seeds must reach 0 or above.

``python -m experiments.learnability.realdata run --store DIR [--seeds 0 1 2 3 4]`` runs the
walk-forwards into the MLflow store ``DIR/mlflow.db`` (already finished seeds are skipped);
``table --store DIR`` prints the table, ``--publish`` writes it into README.md.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from cryptotrade.evaluation.seeds import confidence_interval
from cryptotrade.io import atomic_write

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1].parent / "shared" / "data"
BEGIN, END = "<!-- realdata:begin -->", "<!-- realdata:end -->"
MARKETS = {
    "binance_perp_1h": [
        "data=file",
        f"data.source.path={DATA / 'binance_usdm_BTCUSDT_perp_1h.parquet'}",
        f"data.source.funding_path={DATA / 'binance_usdm_BTCUSDT_funding_8h.parquet'}",
        "data.source.start=2019-09-11",  # the funding history starts 2019-09-10
    ],
    "bitmex_1h": ["experiment=bitmex"],
}


def market_of(tags: dict[str, str]) -> str | None:
    """Which of :data:`MARKETS` a run's ``overrides`` tag ran."""
    overrides = tags.get("overrides", "")
    for name, market in MARKETS.items():
        if all(o in overrides for o in market):
            return name
    return None


def command(market: str, seed: int, store: Path, agent: str = "ppo") -> list[str]:
    """The walk-forward of one seed."""
    return [
        sys.executable, "-m", "cryptotrade.run", "task=walkforward", f"agent={agent}",
        f"seed={seed}", *MARKETS[market], f"tracking.uri=sqlite:///{store / 'mlflow.db'}",
        f"paths.output_dir={store / 'outputs'}",
    ]  # fmt: skip


def load(store: Path) -> dict[str, list[dict[str, Any]]]:
    """Finished walk-forward parents per market: their metrics and their folds' gate."""
    from cryptotrade.launch import tracking

    client = tracking.client(f"sqlite:///{store / 'mlflow.db'}")
    out: dict[str, list[dict[str, Any]]] = {}
    for experiment in client.search_experiments():
        runs = client.search_runs([experiment.experiment_id], max_results=5000)
        children: dict[str, list[Any]] = {}
        for run in runs:
            parent = run.data.tags.get("mlflow.parentRunId")
            if parent:
                children.setdefault(parent, []).append(run)
        for run in runs:
            tags = run.data.tags
            market = market_of(tags)
            if (
                tags.get("task") != "walkforward"
                or market is None
                or run.info.status != "FINISHED"
                or "mlflow.parentRunId" in tags
            ):
                continue
            folds = children.get(run.info.run_id, [])
            out.setdefault(market, []).append(
                dict(run.data.metrics)
                | {
                    "seed": int(run.data.params.get("seed", -1)),
                    "agent": tags.get("choice/agent", "?"),
                    "folds": len(folds),
                    "stood_aside": sum(f.data.metrics.get("val/stand_aside", 0.0) for f in folds),
                    "cpu_s": run.data.metrics.get("perf/cpu_seconds", float("nan")),
                }
            )
    return out


def _mean(runs: list[dict[str, Any]], key: str) -> float:
    return float(np.mean([r.get(key, np.nan) for r in runs]))


def table(found: dict[str, list[dict[str, Any]]]) -> str:
    """One row per market x agent: the excess over flat per seed and its interval."""
    rows = [
        "| market | agent | seeds | folds | excess over flat: mean [95 % CI] (per seed) "
        "| buy & hold | random | stood aside (folds) | trades | fees | gross PnL | target |",
        # fees and gross PnL: mean over seeds, in the margin currency (USDT; BitMEX: XBT)
        "|" + "---|" * 12,
    ]
    for market in MARKETS:
        by_agent: dict[str, list[dict[str, Any]]] = {}
        for run in found.get(market, []):
            by_agent.setdefault(run["agent"], []).append(run)
        for agent, runs in sorted(by_agent.items()):
            runs = sorted(runs, key=lambda r: r["seed"])
            flat = [r.get("baseline/flat/total_return", 0.0) for r in runs]
            excess = [r["test/total_return"] - f for r, f in zip(runs, flat, strict=True)]
            mean = float(np.mean(excess))
            low, high, method = (
                confidence_interval(np.asarray(excess)) if len(excess) > 1 else (mean, mean, "")
            )
            rows.append(
                f"| {market} | {agent} | {len(runs)} | {runs[0]['folds']} | {mean:+.2%} "
                f"[{low:+.2%}, {high:+.2%}] {method} "
                f"({', '.join(f'{e:+.2%}' for e in excess)}) | "
                f"{_mean(runs, 'baseline/buy_hold/total_return'):+.2%} | "
                f"{_mean(runs, 'baseline/random/total_return'):+.2%} | "
                f"{sum(int(r['stood_aside']) for r in runs)}/{sum(r['folds'] for r in runs)} | "
                f"{_mean(runs, 'test/num_trades'):.1f} | "
                f"{_mean(runs, 'test/fees_paid'):.4g} | "
                f"{_mean(runs, 'test/gross_pnl'):.4g} | "
                f"{'met' if high >= 0 else 'missed'} |"
            )
    return "\n".join(rows)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m experiments.learnability.realdata")
    parser.add_argument("action", choices=["run", "table"])
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--markets", nargs="+", default=list(MARKETS), choices=list(MARKETS))
    parser.add_argument("--publish", action="store_true", help="table: write README.md")
    args = parser.parse_args(argv)
    if args.action == "run":
        args.store.mkdir(parents=True, exist_ok=True)
        done = load(args.store) if (args.store / "mlflow.db").exists() else {}
        for market in args.markets:
            seen = {r["seed"] for r in done.get(market, [])}
            for seed in args.seeds:
                if seed not in seen:
                    subprocess.run(command(market, seed, args.store), check=True)
        return
    text = table(load(args.store))
    if not args.publish:
        print(text)
        return
    readme = HERE / "README.md"
    body = readme.read_text()
    start, stop = body.index(BEGIN) + len(BEGIN), body.index(END)
    with atomic_write(readme) as fh:
        fh.write((body[:start] + "\n" + text + "\n" + body[stop:]).encode())


if __name__ == "__main__":
    main(sys.argv[1:])
