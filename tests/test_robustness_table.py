"""The robustness table of experiments/learnability: its 14 markets, its cells, its verdicts."""

from __future__ import annotations

import json
import math

from experiments.learnability import robustness as rb


def test_fourteen_markets_three_kinds_two_strengths_two_lengths_two_nulls():
    markets = rb.markets()
    assert len(markets) == 14 and len(set(map(tuple, markets.values()))) == 14
    assert sum(name.startswith(("rw", "gbm")) for name in markets) == 2
    assert all("data=probe" in o and "data.source.timeframe=1h" in o for o in markets.values())
    cells = rb.plan()
    assert len(cells) == 14 * 2 * 3 + 2 * 2 + 4 * 4 and len(set(cells)) == len(cells)
    assert rb.overrides_of("rw_20k+minimal")[-1] == "features=minimal"
    assert cells[:28] == [(m, a, 0) for m in markets for a in ("ppo", "dqn")]


def _cell(market, agent, seed, log_return, **extra):
    base = {
        "agent": agent, "extractor": "mlp", "seed": seed, "preset": False,
        "extra": rb.markets()[market], "test/log_return": log_return, "test/rule": 2.0,
        "test/buy_hold": 1.0, "test/trades": 10.0, "test/bars": 1000.0, "test/fees": 0.01,
        "test/gross_pnl": 0.02, "selected_step": 50_000, "train_cpu_s": 60.0,
    }  # fmt: skip
    return base | extra


def test_table_aggregates_seeds_with_student_t_and_judges_each_target(tmp_path):
    cells = [_cell("mom1_weak_20k", "ppo", s, v) for s, v in enumerate([1.7, 1.6, 1.8])]
    cells += [_cell("mom1_weak_20k", "dqn", 0, 1.5, stand_aside=True)]
    cells += [_cell("rw_20k", "ppo", 0, 0.0, **{"test/trades": 0.0})]
    cells += [_cell("rw_20k", "dqn", 0, -0.02, **{"test/trades": 1.0})]  # 10 round trips: -0.01
    cells += [_cell("gbm_20k", "ppo", 0, 0.81)]
    for cell in cells:
        folder = tmp_path / next(k for k, v in rb.markets().items() if v == cell["extra"])
        folder.mkdir(exist_ok=True)
        with (folder / "results.jsonl").open("a") as fh:
            fh.write(json.dumps(cell) + "\n")
    found = rb.load(tmp_path)
    assert len(found) == len(cells)
    rows = {tuple(r.split(" | ")[:2]): r for r in rb.table(found).splitlines()[2:]}
    ppo = rows[("| mom1_weak_20k", "ppo")]
    # mean 1.7, s = 0.1, t(0.975, 2) = 4.303: 1.7 +- 0.248
    assert "1.700 [1.45, 1.95] (1.700, 1.600, 1.800)" in ppo and "| 85% |" in ppo
    assert ppo.endswith("| met |")
    assert rows[("| mom1_weak_20k", "dqn")].endswith("| missed |")  # 75 % < 80 %
    assert "| 1/1 |" in rows[("| mom1_weak_20k", "dqn")]  # stood aside
    assert rows[("| rw_20k", "ppo")].endswith("| met (null) |")
    assert rows[("| rw_20k", "dqn")].endswith("| missed (null) |")
    assert rows[("| gbm_20k", "ppo")].endswith("| met (null) |")
    assert math.isclose(rb.ROUND_TRIP, 0.001)
