"""Why does a pairing fail? Train one cell, then look at the selected model from several sides.

``python -m experiments.learnability.diagnose recurrent_ppo mlp [seed [override ...]]`` trains
the cell as the table does (``cell_overrides``, plus any further overrides) and backtests the
validation-selected model on:

* the **training** split: a policy that fits the training path but not validation is
  overfitting; one that is poor on training too never learned the edge;
* the **validation** split as the table does (recurrent state carried over all 15,000 bars), and
  with the recurrent state reset every ``env.episode_length`` bars, the longest stretch the policy
  ever saw in training: if only the carried state fails, the memory drifts out of its training
  range rather than the edge being unlearnt (for a feed-forward policy the two are equal);
* ``agreement``: the share of bars on which the model holds the sign rule's side;
* for SAC, the entropy temperature it ended with (``ent_coef``).

It prints one JSON line; the README quotes what it found.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from hydra.utils import instantiate

from cryptotrade.launch import tracking
from experiments.learnability.__main__ import cell_overrides
from experiments.learnability.harness import compose_config, log_return
from experiments.learnability.oracle import rule_result, rule_sides


@tracking.run_optional()  # a study trains and measures without an MLflow run
def main(argv: list[str]) -> None:
    from cryptotrade.components import build
    from cryptotrade.evaluation.backtest import model_policy, run_backtest
    from cryptotrade.optimize.derive import ConfigDeriver
    from cryptotrade.optimize.objective import prepare_data, seed_everything, train

    agent, extractor = argv[0], argv[1]
    seed = int(argv[2]) if len(argv) > 2 else 0
    extra = argv[3:]  # further overrides, e.g. train.total_timesteps=2000000
    cfg = compose_config(cell_overrides(agent, extractor, seed) + extra)
    seed_everything(cfg.seed, cfg.torch_threads)
    dataset = prepare_data(build(cfg, agent=False))
    out: dict[str, Any] = {"agent": agent, "extractor": extractor, "seed": seed, "extra": extra}
    with tempfile.TemporaryDirectory() as tmp:
        cpu = time.process_time()
        result, dataset = train(ConfigDeriver(cfg), Path(tmp), dataset=dataset)
        out["train_cpu_s"] = round(time.process_time() - cpu)
    out["selected_step"] = int(result.selected_step)
    if getattr(result.model, "log_ent_coef", None) is not None:  # SAC's learned temperature
        out["ent_coef"] = float(result.model.log_ent_coef.exp().item())
    factory = instantiate(cfg.env)
    episode = cfg.env.episode_length
    runs = [("train", None), ("val", None), ("val", episode)]
    for split, every in runs:
        data = getattr(dataset, split)
        env = factory.make(data, instantiate(cfg.reward), seed=cfg.seed, evaluation=True)
        bt = run_backtest(model_policy(result.model, reset_every=every), env, seed=cfg.seed)
        key = f"{split}" + (f"/reset_every_{every}" if every else "")
        out[f"{key}/log_return"] = round(log_return(bt.equity), 3)
        side = np.sign(np.asarray(bt.position[1:]))
        out[f"{key}/flat"] = round(float(np.mean(side == 0)), 3)
        # the sign rule's side at each decision bar (the position after step i is decided at
        # point i's bar, and the backtest decides on consecutive bars)
        t = np.asarray(bt.index)[:-1]
        rule = rule_sides(np.asarray(data.close), int(t[0]), int(t[-1]) + 1)
        out[f"{key}/agreement"] = round(float(np.mean(side == rule)), 3)
    settings = dataclasses.replace(factory.settings, action_mode="discrete3")  # the rule's mode
    for split in ("train", "val"):
        rule = rule_result(getattr(dataset, split), settings).log_return
        out[f"{split}/sign_rule"] = round(rule, 3)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
