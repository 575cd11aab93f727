"""Transfer: train one configuration on a market it was not tuned on, measure it, keep a record.

``python -m experiments.learnability.transfer NAME [--train-curve] override ...`` trains the
configuration of ``override ...`` (the real ``conf/`` tree, as on the command line) through
:func:`experiments.learnability.harness.run_config` and appends one JSON line to
``transfer.jsonl`` beside this file (or ``--out``): the harness's metrics plus

* ``test/bars``, ``test/trades_per_1k`` (closed trades per 1,000 test bars) and the fees as a
  fraction of the initial cash, for the null-market targets;
* ``obs_features`` (feature columns) and ``obs_dim`` (the flattened observation's length);
* ``cpu_s_total``: the whole process's CPU seconds (data preparation included);
* with ``--train-curve``: at every validation the model is also backtested on the *training*
  split (``train_curve``: ``[step, train log return, validation log return]``), which separates
  overfitting (training rises while validation falls) from never learning (both flat).

The README section "Transfer: default settings on markets they were not tuned on" quotes these
records.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from hydra.utils import instantiate

from cryptotrade.launch import tracking

HERE = Path(__file__).resolve().parent


def cpu_seconds() -> float:
    """User + system CPU seconds of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(overrides: list[str], *, train_curve: bool = False) -> dict[str, Any]:
    """Train and measure ``overrides`` (see the module docstring)."""
    from cryptotrade.components import build
    from cryptotrade.evaluation.backtest import model_policy, run_backtest
    from cryptotrade.optimize.derive import ConfigDeriver
    from cryptotrade.optimize.objective import prepare_data, seed_everything, train
    from experiments.learnability.harness import (
        compose_config,
        evaluate_model,
        log_return,
        references,
    )

    start_cpu = cpu_seconds()
    cfg = compose_config(overrides)
    seed_everything(cfg.seed, cfg.torch_threads)
    dataset = prepare_data(build(cfg, agent=False))
    factory = instantiate(cfg.env)
    out: dict[str, Any] = {"overrides": list(overrides)}
    curve: list[list[float]] = []
    tcurve: list[list[float]] = []

    def on_validation(step: int, val: dict[str, float]) -> None:
        curve.append([step, math.log1p(val["val/total_return"]), val["val/sharpe"]])

    def on_checkpoint(step: int, val: dict[str, float], folder: Path | None) -> None:
        if folder is None:
            return
        zips = sorted((folder / "checkpoints").glob("*.zip")) or sorted(folder.rglob("*.zip"))
        model = components.agent_class.load(
            str([z for z in zips if z.name != "best_model.zip"][-1]), device="cpu"
        )
        env = factory.make(dataset.train, instantiate(cfg.reward), seed=cfg.seed, evaluation=True)
        bt = run_backtest(model_policy(model), env, seed=cfg.seed)
        tcurve.append([step, log_return(bt.equity), math.log1p(val["val/total_return"])])

    components = None
    if train_curve:
        components = build(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        cpu, wall = time.process_time(), time.perf_counter()
        result, dataset = train(
            ConfigDeriver(cfg),
            Path(tmp),
            dataset=dataset,
            on_validation=on_validation,
            on_checkpoint=on_checkpoint if train_curve else None,
        )
        out["train_cpu_s"] = time.process_time() - cpu
        out["train_wall_s"] = time.perf_counter() - wall
    out["timesteps"] = int(result.num_timesteps)
    out["selected_step"] = int(result.selected_step)
    out["val_curve"] = curve
    if train_curve:
        out["train_curve"] = tcurve
    out |= evaluate_model(cfg, result.model, dataset)
    out |= references(cfg, dataset)
    bars = len(dataset.test) - int(cfg.env.window)
    out["test/bars"] = bars
    out["test/trades_per_1k"] = 1000.0 * out["test/trades"] / bars
    out["obs_features"] = int(dataset.train.features.shape[1])
    out["obs_dim"] = int(sum(int(math.prod(s)) for s in _obs_shapes(factory, dataset, cfg)))
    out["train_bars"] = len(dataset.train)
    out["cpu_s_total"] = cpu_seconds() - start_cpu
    return out


def _obs_shapes(factory: Any, dataset: Any, cfg: Any) -> list[tuple[int, ...]]:
    """Shapes of the observation space's parts (one for a Box, several for a Dict)."""
    env = factory.make(dataset.val, instantiate(cfg.reward), seed=0, evaluation=True)
    space = env.observation_space
    spaces = getattr(space, "spaces", None)
    return [s.shape for s in spaces.values()] if spaces else [space.shape]


def table(records: list[dict[str, Any]]) -> str:
    """Markdown rows of the README's transfer table, one per record (name order kept)."""
    lines = [
        "| run | test log return | reference (sign rule) | of rule | test trades / 1k bars | "
        "test fees | test gross | selected at | train CPU s | process CPU s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        rule = r["test/sign_rule"]
        lines.append(
            f"| {r['name']} | {r['test/log_return']:.3f} | {rule:.3f} | "
            f"{r['test/log_return'] / rule:.0%} | {r['test/trades_per_1k']:.0f} | "
            f"{r.get('test/fees', 0.0):.3f} | {r.get('test/gross_pnl', 0.0):+.3f} | "
            f"{r['selected_step'] // 1000}k | {r['train_cpu_s']:.0f} | {r['cpu_s_total']:.0f} |"
        )
    return "\n".join(lines)


@tracking.run_optional()  # a study trains and measures without an MLflow run
def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m experiments.learnability.transfer")
    parser.add_argument("name", help="a label for the record; 'table' prints the records' table")
    parser.add_argument("overrides", nargs="*")
    parser.add_argument("--train-curve", action="store_true")
    parser.add_argument("--out", type=Path, default=HERE / "transfer.jsonl")
    args = parser.parse_intermixed_args(argv)
    if args.name == "table" and not args.overrides:
        records = [json.loads(x) for x in args.out.read_text().splitlines() if x.strip()]
        print(table(records))
        return
    record = {"name": args.name} | measure(args.overrides, train_curve=args.train_curve)
    with args.out.open("a") as fh:
        fh.write(json.dumps(record) + "\n")
    keys = (
        "test/log_return",
        "test/sign_rule",
        "test/trades_per_1k",
        "test/fees",
        "test/share_flat",
        "selected_step",
        "train_cpu_s",
        "cpu_s_total",
    )
    print(json.dumps({"name": args.name} | {k: record.get(k) for k in keys}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
