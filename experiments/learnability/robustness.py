"""Issue 17's robustness table: the default agents on 14 probe markets they were not tuned on.

Markets (``data=probe``, 1h bars, market seed 0, default fees and slippage, no funding): three
edge kinds (momentum at lag 1, mean reversion at lag 4, a lag-1 momentum edge present in one
regime only) x two strengths (weak: |phi| 0.15, strong: 0.3) x two lengths (20,000 and 100,000
bars), plus the two null markets at 20,000 bars (a driftless random walk: flat is optimal; a
GBM with drift: buy & hold is optimal). Every cell is the agent's **default configuration**
(``agent=<a>``, ``--no-preset``: every other group at its default, the stand-aside gate on).

``python -m experiments.learnability.robustness plan`` prints one line per cell not yet in
``--out`` (``cell <market> <agent> <seed> <overrides>``: each runs with ``python -m
experiments.learnability <agent> --no-preset <overrides> --out <out>/<market> --extractors mlp
--seeds <seed>``; ``run`` runs them one after another); ``table`` prints the table from
``--out`` and ``--publish`` writes it into README.md (between the robustness markers) and copies
the cells to ``robustness.jsonl`` here.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from cryptotrade.evaluation.seeds import STUDENT_T, confidence_interval
from cryptotrade.io import atomic_write

HERE = Path(__file__).resolve().parent
OUT = Path("/tmp/cryptotrade-robustness")
PUBLISHED = HERE / "robustness.jsonl"
BEGIN, END = "<!-- robustness:begin -->", "<!-- robustness:end -->"

BASE = ["data=probe", "data.source.timeframe=1h"]
KINDS = {
    "mom1": ["regime=planted", "regime.kind=momentum", "regime.lag=1"],
    "mr4": ["regime=planted", "regime.kind=mean_reversion", "regime.lag=4"],
    "regime": ["regime=planted", "regime.kind=momentum", "regime.lag=1", "regime.gate=regime"],
}
STRENGTHS = {"weak": 0.15, "strong": 0.3}
LENGTHS = {"20k": 20_000, "100k": 100_000}


def markets() -> dict[str, list[str]]:
    """The 14 markets: name -> overrides."""
    out: dict[str, list[str]] = {}
    for length, bars in LENGTHS.items():
        for kind, knobs in KINDS.items():
            for strength, phi in STRENGTHS.items():
                out[f"{kind}_{strength}_{length}"] = [
                    *BASE, *knobs, f"regime.strength={phi}", f"data.source.num_samples={bars}"
                ]  # fmt: skip
    out["rw_20k"] = [*BASE, "regime=random_walk", "data.source.num_samples=20000"]
    out["gbm_20k"] = [*BASE, "regime=gbm", "data.source.num_samples=20000"]
    return out


MAIN_AGENTS, MAIN_SEEDS = ("ppo", "dqn"), (0, 1, 2)
OTHER_AGENTS = ("a2c", "qrdqn", "sac", "recurrent_ppo")
REPRESENTATIVE = ("mom1_weak_20k", "mom1_strong_20k", "rw_20k", "gbm_20k")
TARGETS = {"ppo": 0.8, "dqn": 0.8}  # share of the rule's test log return; the others: 0.6
# a round trip pays the taker fee and the slippage twice: 2 x (4 + 1) bps at the defaults
ROUND_TRIP = 2 * (0.0004 + 0.0001)


# default vs minimal features, PPO and DQN, first seed: "<market>+minimal" rows
VARIANTS = {"minimal": ["features=minimal"]}
FEATURE_MARKETS = ("mom1_weak_20k", "mr4_strong_20k")


def overrides_of(market: str) -> list[str]:
    """Overrides of a market name (``<market>+<variant>``: the market plus the variant's)."""
    base, _, variant = market.partition("+")
    return [*markets()[base], *VARIANTS.get(variant, [])]


def plan() -> list[tuple[str, str, int]]:
    """Every cell (market, agent, seed) in the order they are run: the first seed of PPO and
    DQN everywhere, the other two seeds, then the other agents on the representative markets."""
    names = list(markets())
    cells = [(m, a, 0) for m in names for a in MAIN_AGENTS]
    cells += [(m, a, s) for s in MAIN_SEEDS[1:] for m in names for a in MAIN_AGENTS]
    cells += [(f"{m}+{v}", a, 0) for v in VARIANTS for m in FEATURE_MARKETS for a in MAIN_AGENTS]
    return cells + [(m, a, 0) for m in REPRESENTATIVE for a in OTHER_AGENTS]


def load(out: Path) -> dict[tuple[str, str, int], dict[str, Any]]:
    """The finished cells under ``out`` (one ``results.jsonl`` per market folder)."""
    found: dict[tuple[str, str, int], dict[str, Any]] = {}
    overrides = {" ".join(v): k for k, v in markets().items()}
    overrides |= {
        " ".join([*markets()[m], *extra]): f"{m}+{name}"
        for name, extra in VARIANTS.items()
        for m in FEATURE_MARKETS
    }
    for path in sorted(out.glob("*/results.jsonl")):
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            cell = json.loads(line)
            market = overrides.get(" ".join(cell.get("extra", [])))
            if market is not None and not cell.get("preset", True):
                found[(market, cell["agent"], int(cell["seed"]))] = cell
    return found


def command(market: str, agent: str, seed: int, out: Path) -> list[str]:
    """The command line of one cell."""
    return [
        sys.executable, "-m", "experiments.learnability", agent, "--no-preset",
        *overrides_of(market), "--out", str(out / market), "--extractors", "mlp",
        "--seeds", str(seed),
    ]  # fmt: skip


def _interval(values: list[float]) -> str:
    if len(values) < 2:
        return ""
    low, high, method = confidence_interval(np.asarray(values))
    return f" [{low:.2f}, {high:.2f}]{'' if method == STUDENT_T else ' (bootstrap)'}"


def _step(cell: dict[str, Any]) -> str:
    return f"{cell['selected_step'] // 1000}k"


def _verdict(market: str, agent: str, cells: list[dict[str, Any]]) -> str:
    mean = float(np.mean([c["test/log_return"] for c in cells]))
    per_1k = 1000 * np.mean([c["test/trades"] / c["test/bars"] for c in cells])
    if market.startswith("rw"):
        ok = mean >= math.log1p(-10 * ROUND_TRIP) and per_1k <= 2
        return "met" if ok else "missed"
    ref = float(
        np.mean([c["test/buy_hold" if market.startswith("gbm") else "test/rule"] for c in cells])
    )
    target = 0.8 if market.startswith("gbm") else TARGETS.get(agent, 0.6)
    return "met" if ref > 0 and mean >= target * ref else "missed"


def table(found: dict[tuple[str, str, int], dict[str, Any]]) -> str:
    """One row per market x agent: seeds aggregated (mean, 95 % Student t interval)."""
    head = (
        "| market | agent | seeds | test log return: mean [95 % CI] (per seed) | reference "
        "| of reference | stood aside | trades / 1k bars | fees | gross | selected at "
        "| train CPU s | target |\n|" + "---|" * 13
    )
    rows = [head]
    names = [*markets(), *(f"{m}+{v}" for m in FEATURE_MARKETS for v in VARIANTS)]
    for market in names:
        for agent in (*MAIN_AGENTS, *OTHER_AGENTS):
            cells = [found[k] for k in sorted(found) if k[0] == market and k[1] == agent]
            if not cells:
                continue
            values = [c["test/log_return"] for c in cells]
            mean = float(np.mean(values))
            null = market.startswith(("rw", "gbm"))
            ref_key = "test/buy_hold" if market.startswith("gbm") else "test/rule"
            ref = float(np.mean([c[ref_key] for c in cells]))
            ref_name = {"test/buy_hold": "buy & hold", "test/rule": "rule"}[ref_key]
            if market.startswith("rw"):
                ref_name = "flat"
            share = f"{mean / ref:.0%}" if abs(ref) > 1e-12 else "n/a"
            aside = sum(bool(c.get("stand_aside")) for c in cells)
            per_1k = 1000 * np.mean([c["test/trades"] / c["test/bars"] for c in cells])
            rows.append(
                f"| {market} | {agent} | {len(cells)} | {mean:.3f}{_interval(values)} "
                f"({', '.join(f'{v:.3f}' for v in values)}) | {ref:.3f} ({ref_name}) | "
                f"{share if not market.startswith('rw') else ''} | {aside}/{len(cells)} | "
                f"{per_1k:.1f} | {np.mean([c.get('test/fees', 0.0) for c in cells]):.1%} | "
                f"{np.mean([c.get('test/gross_pnl', 0.0) for c in cells]):+.1%} | "
                f"{', '.join(_step(c) for c in cells)} | "
                f"{', '.join(str(round(c['train_cpu_s'])) for c in cells)} | "
                f"{_verdict(market, agent, cells)}{' (null)' if null else ''} |"
            )
    return "\n".join(rows)


def publish(found: dict[tuple[str, str, int], dict[str, Any]]) -> None:
    """Write the cells to ``robustness.jsonl`` and the table into README.md."""
    with atomic_write(PUBLISHED) as fh:
        for key in sorted(found):
            fh.write((json.dumps(found[key] | {"market": key[0]}) + "\n").encode())
    readme = HERE / "README.md"
    text = readme.read_text()
    start, stop = text.index(BEGIN) + len(BEGIN), text.index(END)
    with atomic_write(readme) as fh:
        fh.write((text[:start] + "\n" + table(found) + "\n" + text[stop:]).encode())


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m experiments.learnability.robustness")
    parser.add_argument("action", choices=["plan", "run", "table"])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--publish", action="store_true", help="table: write README.md")
    args = parser.parse_args(argv)
    found = load(args.out)
    todo = [cell for cell in plan() if cell not in found]
    if args.action == "plan":
        for market, agent, seed in todo:
            print(f"cell {market} {agent} {seed} {' '.join(overrides_of(market))}")
    elif args.action == "run":
        for market, agent, seed in todo:
            subprocess.run(command(market, agent, seed, args.out), check=True)
    elif args.publish:
        publish(found)
    else:
        print(table(found))


if __name__ == "__main__":
    main(sys.argv[1:])
