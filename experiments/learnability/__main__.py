"""Train agents x extractors on a market and tabulate them against the market's references.

``python -m experiments.learnability`` runs every pairing of ``conf/agent`` x ``conf/extractor``
for the seeds below on the planted-edge study's market; ``... ppo dqn`` only those agents,
``... ppo --seeds 1 2`` other seeds, ``... ppo dqn --extractors mlp tcn --seeds 0`` only those
extractors. Each agent runs its preset ``experiment=learnability_<agent>`` (PPO and DQN tuned on
this market; the others carry their lessons over untuned), ``experiment=learnability`` (the
agent's own defaults) where none exists; ``--no-preset`` runs the agent's default configuration
(``agent=<a> extractor=<e>``, nothing else).

Any argument with ``=`` is a Hydra override applied after the cell's own, so any market works:

* a probe market: ``... ppo data=probe regime=planted regime.kind=mean_reversion regime.lag=4``
  (its exact rule becomes the reference: ``cryptotrade/data/probes.py``);
* a file: ``... ppo data=file data.source.path=/path/bars.parquet``;
* budgets and costs: ``train.total_timesteps=200000 env.taker_fee=0.001``.

Results go **outside the repository**: every finished cell is appended to
``<out>/results.jsonl`` (``--out``, default ``$TMPDIR/cryptotrade-learnability``; done cells,
keyed by agent, extractor, seed, preset and overrides, are skipped, so a long run resumes) and
``<out>/table.md`` is rewritten from it. ``--publish`` instead appends to this folder's
``results.jsonl`` and rewrites README.md's table: only the study's own cells (presets, no
overrides) belong there.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from cryptotrade.io import atomic_write
from cryptotrade.launch import tracking
from experiments.learnability.harness import ROOT, run_config

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results.jsonl"  # the published study's cells (README.md's table)
OUT = Path(tempfile.gettempdir()) / "cryptotrade-learnability"
SEEDS: tuple[int, ...] = (0, 1)
BEGIN, END = "<!-- table:begin -->", "<!-- table:end -->"


def cell_overrides(
    agent: str, extractor: str, seed: int, extra: list[str] | None = None, *, preset: bool = True
) -> list[str]:
    """Overrides of one cell: the tuned preset where there is one (``preset``), the agent, the
    extractor, the seed, then ``extra`` (a market, budgets: they win over the preset)."""
    cell = [f"agent={agent}", f"extractor={extractor}", f"seed={seed}"]
    if preset:
        file = HERE.parents[1] / "conf" / "experiment" / f"learnability_{agent}.yaml"
        cell.insert(
            0, f"experiment=learnability_{agent}" if file.exists() else "experiment=learnability"
        )
    return cell + list(extra or [])  # agent=sac brings env.action_mode=continuous itself


def load_results(path: Path = RESULTS) -> list[dict[str, Any]]:
    """Every finished cell so far in ``path``."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def cell_key(cell: dict[str, Any]) -> tuple[Any, ...]:
    """What identifies a cell: agent, extractor, seed, preset and the extra overrides."""
    extra = tuple(cell.get("extra", ()))
    return (cell["agent"], cell["extractor"], cell["seed"], cell.get("preset", True), extra)


def selected(cell: dict[str, Any]) -> str:
    """The step of the model a cell measured (the best on validation)."""
    return f"{cell['selected_step'] // 1000}k"


def table(results: list[dict[str, Any]]) -> str:
    """Markdown table: one row per agent x extractor, seeds aggregated (mean and per seed).

    The sign rule, band rule and buy & hold are the same for every row (one market, one test
    split): the lines under the table give them."""
    rows: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in results:
        rows.setdefault((r["agent"], r["extractor"]), []).append(r)
    head = (
        "| agent | extractor | seeds | steps | test log return (per seed) | of sign rule | "
        "of band rule | val log return | test trades | test flat | train CPU s (per seed) | "
        "selected at (per seed) |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for (agent, extractor), cells in sorted(rows.items()):
        cells = sorted(cells, key=lambda c: c["seed"])
        test = [c["test/log_return"] for c in cells]
        mean = sum(test) / len(test)
        sign, band = cells[0]["test/sign_rule"], cells[0]["test/band_rule"]
        flat = sum(c["test/share_flat"] for c in cells) / len(cells)
        lines.append(
            f"| {agent} | {extractor} | {','.join(str(c['seed']) for c in cells)} | "
            f"{cells[0]['timesteps'] / 1e6:.2g}M | "
            f"{mean:.3f} ({', '.join(f'{x:.3f}' for x in test)}) | {mean / sign:.0%} | "
            f"{mean / band:.0%} | "
            f"{sum(c['val/log_return'] for c in cells) / len(cells):.3f} | "
            f"{sum(c['test/trades'] for c in cells) / len(cells):.0f} | {flat:.0%} | "
            f"{', '.join(str(round(c['train_cpu_s'])) for c in cells)} | "
            f"{', '.join(selected(c) for c in cells)} |"
        )
    if results:
        first = results[0]
        lines.append(
            f"\nSame for every row (test split): sign rule {first['test/sign_rule']:.3f}, "
            f"band rule {first['test/band_rule']:.3f}, buy & hold {first['test/buy_hold']:.3f}."
        )
    return "\n".join(lines)


def _mean(cells: list[dict[str, Any]], key: str) -> float:
    values = [c[key] for c in cells if key in c]
    return sum(values) / len(values) if values else float("nan")


def market_table(results: list[dict[str, Any]]) -> str:
    """Markdown table of any market's cells: one row per overrides x preset x agent x extractor.

    ``reference`` is the probe market's exact rule where there is one (``rule``), else the sign
    rule; "of ref" is the mean test log return over it (blank where the reference is flat: a
    null market, judged by its return, trades and fees); "oracle" is the DP oracle's log return
    (a lower bound of the perfect-foresight optimum when its hold is limited)."""
    rows: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in results:
        key = (" ".join(r.get("extra", [])), r.get("preset", True), r["agent"], r["extractor"])
        rows.setdefault(key, []).append(r)
    lines = [
        "| overrides | preset | agent | extractor | seeds | steps | test log return (per seed) "
        "| reference | of ref | oracle | buy & hold | trades / 1k bars | fees | gross | "
        "selected at | train CPU s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (extra, preset, agent, extractor), cells in sorted(rows.items()):
        cells = sorted(cells, key=lambda c: c["seed"])
        mean = _mean(cells, "test/log_return")
        ref_key = "test/rule" if "test/rule" in cells[0] else "test/sign_rule"
        ref = _mean(cells, ref_key)
        share = f"{mean / ref:.0%}" if abs(ref) > 1e-12 else ""
        per_1k = 1000 * _mean(cells, "test/trades") / _mean(cells, "test/bars")
        per_seed = ", ".join(f"{c['test/log_return']:.3f}" for c in cells)
        lines.append(
            f"| {extra or '(study market)'} | {'yes' if preset else 'no'} | {agent} | "
            f"{extractor} | {','.join(str(c['seed']) for c in cells)} | "
            f"{cells[0]['timesteps'] / 1e6:.2g}M | "
            f"{mean:.3f} ({per_seed}) | "
            f"{ref:.3f} ({ref_key.split('/')[1]}) | {share} | {_mean(cells, 'test/oracle'):.1f} | "
            f"{_mean(cells, 'test/buy_hold'):.3f} | {per_1k:.1f} | "
            f"{_mean(cells, 'test/fees'):.2%} | {_mean(cells, 'test/gross_pnl'):.2%} | "
            f"{', '.join(selected(c) for c in cells)} | "
            f"{', '.join(str(round(c['train_cpu_s'])) for c in cells)} |"
        )
    return "\n".join(lines)


def write_readme(results: list[dict[str, Any]]) -> None:
    """Replace the table between the markers in README.md."""
    readme = HERE / "README.md"
    text = readme.read_text()
    start, stop = text.index(BEGIN) + len(BEGIN), text.index(END)
    with atomic_write(readme) as fh:  # two runs may finish at once: never a half-written file
        fh.write((text[:start] + "\n" + table(results) + "\n" + text[stop:]).encode())


def parse(argv: list[str]) -> argparse.Namespace:
    """The command line: agents, ``key=value`` overrides and the options of the docstring."""
    parser = argparse.ArgumentParser(
        prog="python -m experiments.learnability",
        description="Train agents x extractors on a market against its references "
        "(experiments/learnability/README.md).",
    )
    parser.add_argument(
        "items", nargs="*", metavar="AGENT|OVERRIDE",
        help="conf/agent options (default: all) and Hydra overrides (key=value: a market, budgets)",
    )  # fmt: skip
    parser.add_argument("--extractors", nargs="+", help="conf/extractor options (default: all)")
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    parser.add_argument(
        "--no-preset", dest="preset", action="store_false",
        help="the agent's default configuration instead of experiment=learnability_<agent>",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=OUT, help=f"results folder (default: {OUT})")
    parser.add_argument(
        "--publish", action="store_true",
        help="write this folder's results.jsonl and README.md's table (the study's cells only)",
    )  # fmt: skip
    args = parser.parse_intermixed_args(argv)  # agents and overrides before or after options
    args.overrides = [a for a in args.items if "=" in a]
    args.agents = [a for a in args.items if "=" not in a]
    if args.publish and (args.overrides or not args.preset):
        parser.error(
            "--publish writes README.md's table of the study market with the presets; run "
            f"overrides or --no-preset with --out (got {' '.join(args.overrides) or '--no-preset'})"
        )
    return args


@tracking.run_optional()  # a study trains and measures without an MLflow run
def main(argv: list[str]) -> None:
    args = parse(argv)
    agents = args.agents or sorted(p.stem for p in (ROOT / "conf" / "agent").glob("*.yaml"))
    extractors = args.extractors or sorted(
        p.stem for p in (ROOT / "conf" / "extractor").glob("*.yaml")
    )
    results = RESULTS if args.publish else args.out / "results.jsonl"
    results.parent.mkdir(parents=True, exist_ok=True)
    done = {cell_key(r) for r in load_results(results)}
    for agent in agents:
        for extractor in extractors:
            for seed in args.seeds:
                cell = {"agent": agent, "extractor": extractor, "seed": seed}
                cell |= {"preset": args.preset, "extra": args.overrides}
                if cell_key(cell) in done:
                    continue
                print(
                    f"== {agent} x {extractor}, seed {seed} {' '.join(args.overrides)}", flush=True
                )
                overrides = cell_overrides(
                    agent, extractor, seed, args.overrides, preset=args.preset
                )
                result = run_config(overrides) | cell
                with results.open("a") as fh:  # one line per cell: parallel runs append safely
                    fh.write(json.dumps(result) + "\n")
                if args.publish:
                    write_readme(load_results())
                else:
                    with atomic_write(args.out / "table.md") as fh:
                        fh.write((market_table(load_results(results)) + "\n").encode())
                    print(f"results: {results}, table: {args.out / 'table.md'}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
