"""Train every agent x extractor on the planted-edge market and write README.md's table.

``python -m experiments.learnability`` runs every pairing of ``conf/agent`` x ``conf/extractor``
for the seeds below; ``python -m experiments.learnability ppo dqn`` only those agents,
``... ppo --seeds 1 2`` other seeds, ``... ppo dqn --extractors mlp tcn --seeds 0`` only those
extractors. Each agent runs its preset
``experiment=learnability_<agent>`` (PPO and DQN tuned on this market; the others carry their
lessons over untuned), ``experiment=learnability`` (the agent's own defaults) where none exists.
Each finished cell is appended to
``results.jsonl`` (so a long run can be resumed: done cells are skipped) and the table in
README.md is rewritten from that file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from cryptotrade.io import atomic_write
from experiments.learnability.harness import ROOT, run_config

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results.jsonl"
SEEDS: tuple[int, ...] = (0, 1)
BEGIN, END = "<!-- table:begin -->", "<!-- table:end -->"


def cell_overrides(agent: str, extractor: str, seed: int) -> list[str]:
    """Overrides of one table cell (the tuned preset where there is one)."""
    preset = HERE.parents[1] / "conf" / "experiment" / f"learnability_{agent}.yaml"
    experiment = f"learnability_{agent}" if preset.exists() else "learnability"
    cell = [f"experiment={experiment}", f"agent={agent}", f"extractor={extractor}", f"seed={seed}"]
    return cell  # agent=sac brings env.action_mode=continuous itself


def load_results() -> list[dict[str, Any]]:
    """Every finished cell so far."""
    if not RESULTS.exists():
        return []
    return [json.loads(line) for line in RESULTS.read_text().splitlines() if line.strip()]


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


def write_readme(results: list[dict[str, Any]]) -> None:
    """Replace the table between the markers in README.md."""
    readme = HERE / "README.md"
    text = readme.read_text()
    start, stop = text.index(BEGIN) + len(BEGIN), text.index(END)
    with atomic_write(readme) as fh:  # two runs may finish at once: never a half-written file
        fh.write((text[:start] + "\n" + table(results) + "\n" + text[stop:]).encode())


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m experiments.learnability")
    parser.add_argument("agents", nargs="*", help="conf/agent options (default: all)")
    parser.add_argument("--extractors", nargs="+", help="conf/extractor options (default: all)")
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    args = parser.parse_args(argv)
    seeds = args.seeds
    agents = args.agents or sorted(p.stem for p in (ROOT / "conf" / "agent").glob("*.yaml"))
    extractors = args.extractors or sorted(
        p.stem for p in (ROOT / "conf" / "extractor").glob("*.yaml")
    )
    done = {(r["agent"], r["extractor"], r["seed"]) for r in load_results()}
    for agent in agents:
        for extractor in extractors:
            for seed in seeds:
                if (agent, extractor, seed) in done:
                    continue
                print(f"== {agent} x {extractor}, seed {seed}", flush=True)
                result = run_config(cell_overrides(agent, extractor, seed))
                result |= {"agent": agent, "extractor": extractor, "seed": seed}
                with RESULTS.open("a") as fh:
                    fh.write(json.dumps(result) + "\n")
                write_readme(load_results())


if __name__ == "__main__":
    main(sys.argv[1:])
