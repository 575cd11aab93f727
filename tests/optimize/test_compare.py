"""The sweep comparison: groups without the seed, means and Student t intervals by hand, the
report page (rows, inlined pictures, no external URL) and what the parent run gets."""

from __future__ import annotations

import re
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from cryptotrade.optimize import compare
from cryptotrade.optimize.compare import Child


def _child(name: str, params: dict, metrics: dict, status: str = "FINISHED") -> Child:
    return Child(name, f"id-{name}", status, params, compare.group_name(params), metrics)


CHILDREN = [
    _child("#0 agent=ppo seed=0", {"agent": "ppo", "seed": 0}, {"test/sharpe": 1.0}),
    _child("#1 agent=ppo seed=1", {"agent": "ppo", "seed": 1}, {"test/sharpe": 2.0}),
    _child("#2 agent=ppo seed=2", {"agent": "ppo", "seed": 2}, {"test/sharpe": 3.0}),
    _child("#3 agent=dqn seed=0", {"agent": "dqn", "seed": 0}, {"test/sharpe": 0.1}),
    _child("#4 agent=dqn seed=1", {"agent": "dqn", "seed": 1}, {"test/sharpe": 0.3}),
    _child("#5 agent=dqn seed=2", {"agent": "dqn", "seed": 2}, {}, status="FAILED"),
]


def test_groups_drop_the_seed_and_metric_keys_are_valid():
    assert compare.swept_values(["agent=dqn", "seed=2", "x=1"], ["agent", "seed"]) == {
        "agent": "dqn", "seed": 2,
    }  # fmt: skip
    assert compare.swept_values(["+agent.gamma=0.99"], ["agent.gamma"]) == {"agent.gamma": 0.99}
    assert compare.group_name({"agent": "dqn", "seed": 1, "lr": 0.001}) == "agent=dqn lr=0.001"
    assert compare.group_name({"seed": 3}) == compare.ALL
    key = compare.metric_group_name("data=file x=[1,2] p=a/b")
    assert key == "data-file x-_1_2_ p-a_b"
    assert re.fullmatch(r"[\w.\- ]+", key)


def test_group_means_and_student_t_intervals_by_hand():
    ppo, dqn = compare.aggregate(CHILDREN, ["test/sharpe"])
    assert (ppo.name, ppo.seeds, dqn.name, dqn.seeds) == ("agent=ppo", 3, "agent=dqn", 2)
    # ppo: mean 2, s = 1, t(0.975, 2) = 4.302653 -> 2 +- 4.302653 / sqrt(3)
    mean, low, high, method, n = ppo.stats["test/sharpe"]
    assert (mean, method, n) == (2.0, "student_t", 3)
    assert low == pytest.approx(2 - 2.484138, abs=1e-5)
    assert high == pytest.approx(2 + 2.484138, abs=1e-5)
    # dqn (the failed seed left out): mean 0.2, s / sqrt(2) = 0.1, t(0.975, 1) = 12.7062
    mean, low, high, _, n = dqn.stats["test/sharpe"]
    assert (mean, n) == (pytest.approx(0.2), 2)
    assert low == pytest.approx(0.2 - 1.270620, abs=1e-5)
    assert high == pytest.approx(0.2 + 1.270620, abs=1e-5)
    metrics = compare.group_metrics([ppo, dqn])
    assert metrics["group/agent-ppo/test/sharpe/mean"] == 2.0
    assert metrics["group/agent-dqn/test/sharpe/ci_high"] == pytest.approx(1.470620, abs=1e-5)
    assert metrics["group/agent-dqn/seeds"] == 2.0
    table = compare.comparison_table([ppo, dqn], ["test/sharpe"])
    assert list(table["group"]) == ["agent=ppo", "agent=dqn"]
    assert list(table["ci_method"]) == ["student_t", "student_t"]


def test_a_single_seed_has_a_mean_and_no_interval():
    (group,) = compare.aggregate(CHILDREN[:1], ["test/sharpe"])
    metrics = compare.group_metrics([group])
    assert metrics == {"group/agent-ppo/seeds": 1.0, "group/agent-ppo/test/sharpe/mean": 1.0}


def test_report_has_every_row_inlined_pictures_and_no_external_url():
    groups = compare.aggregate(CHILDREN, ["test/sharpe"])
    rows = [c.params | c.metrics | {"val/sharpe": i} for i, c in enumerate(CHILDREN)]
    png = compare.parallel_coordinates_png(rows, ["agent", "seed"], "val/sharpe")
    times = pd.date_range("2024-01-01", periods=5, freq="h").to_numpy()
    overlay = compare.equity_overlay_png(
        {c.name: (times, np.linspace(1, 2, 5)) for c in CHILDREN[:2]},
        {c.name: c.group for c in CHILDREN},
    )
    assert png is not None and png.startswith(b"\x89PNG")
    assert overlay is not None and overlay.startswith(b"\x89PNG")
    page = compare.html_report(
        title="sweep comparison", children=CHILDREN, groups=groups, metrics=["test/sharpe"],
        fitness="val/sharpe", pictures={"a.png": png, "b.png": overlay},
    )  # fmt: skip
    for child in CHILDREN:
        assert f'<td data-v="{child.name}">{child.name}</td>' in page
    assert page.count("<tr>") == 1 + len(groups) + 1 + len(CHILDREN)  # headers and rows
    assert page.count('src="data:image/png;base64,') == 2
    assert "2.000 [-0.484, 4.484]" in page  # the ppo group: mean [interval]
    assert not re.search(r"(https?:)?//[\w.-]+\.\w", page.replace("</", "")), "no external URL"
    assert "table.sortable" in page and "<script src" not in page


def test_parallel_coordinates_skip_rows_without_a_fitness():
    rows = [{"agent": "ppo", "val/sharpe": float("nan")}]
    assert compare.parallel_coordinates_png(rows, ["agent"], "val/sharpe") is None


def test_the_parent_gets_group_metrics_tables_and_the_report(tmp_path: Path, mlflow_store):
    client = mlflow.MlflowClient(mlflow_store)
    experiment = client.create_experiment("e", artifact_location=str(tmp_path / "art"))
    parent = client.create_run(experiment).info.run_id
    jobs = []
    for num, (seed, gamma, sharpe) in enumerate([(0, 0.9, 1.0), (1, 0.9, 3.0), (0, 0.99, 0.5)]):
        run = client.create_run(experiment, tags={"mlflow.parentRunId": parent}).info.run_id
        client.log_metric(run, "val/sharpe", sharpe)
        client.log_metric(run, "test/total_return", sharpe / 10)
        curve = pd.DataFrame(
            {"close_time": pd.date_range("2024-01-01", periods=4, freq="h"),
             "equity": [1.0, 1.1, 1.0 + sharpe / 10, 1.2]}
        )  # fmt: skip
        client.log_text(run, curve.to_csv(index=False), "test/equity.csv")
        overrides = [f"seed={seed}", f"agent.gamma={gamma}", "debug=default"]
        jobs.append({"num": num, "name": f"#{num}", "overrides": overrides,
                     "status": "FINISHED", "run_id": run})  # fmt: skip
    jobs.append({"num": 3, "name": "#3", "overrides": ["seed=1", "agent.gamma=0.99"],
                 "status": "FAILED", "run_id": ""})  # fmt: skip
    logged = compare.log_sweep_comparison(
        mlflow_store, parent, jobs, ["seed", "agent.gamma"], "val/sharpe"
    )
    data = client.get_run(parent).data
    assert data.metrics["group/agent.gamma-0.9/val/sharpe/mean"] == 2.0
    assert data.metrics["group/agent.gamma-0.99/val/sharpe/mean"] == 0.5
    assert "group/agent.gamma-0.99/val/sharpe/ci_low" not in data.metrics  # one seed: no interval
    assert data.metrics["group/agent.gamma-0.9/test/total_return/mean"] == pytest.approx(0.2)
    assert logged == {k: v for k, v in data.metrics.items() if k.startswith("group/")}
    assert data.tags["comparison/ci_method"] == "student_t"
    folder = Path(client.download_artifacts(parent, "comparison", str(tmp_path / "dl")))
    names = sorted(p.name for p in folder.iterdir())
    assert names == [
        "children.csv", "comparison.csv", "parallel_coordinates.png", "report.html",
        "test_equity.png",
    ]  # fmt: skip
    table = pd.read_csv(folder / "comparison.csv")
    assert list(table["group"]) == ["agent.gamma=0.9", "agent.gamma=0.99"]
    assert table["val/sharpe/ci_high"].iloc[0] == pytest.approx(2 + 12.706205, abs=1e-4)
    page = (folder / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == 2 and "FAILED" in page


def test_the_sweep_end_calls_the_comparison_and_survives_its_failure(
    tmp_path, mlflow_store, caplog
):
    from omegaconf import OmegaConf

    from cryptotrade.launch import sweeps

    client = mlflow.MlflowClient(mlflow_store)
    experiment = client.create_experiment("e", artifact_location=str(tmp_path / "art"))
    cfg = OmegaConf.create(
        {"tracking": {"uri": mlflow_store}, "paths": {"root": str(tmp_path)},
         "optimizer": {"metric": "val/total_return"}}
    )  # fmt: skip
    calls = []

    def record(*args):
        calls.append(args)

    def boom(*args):
        raise RuntimeError("no comparison today")

    for compare_with in (record, boom):
        parent = client.create_run(experiment).info.run_id
        folder = tmp_path / parent
        (folder / "0").mkdir(parents=True)
        (folder / sweeps.SWEEP_FILE).write_text(
            f'{{"sweep_id": "s", "parent_run_id": "{parent}", "swept": ["seed"]}}'
        )
        sweeps.record_job(folder / "0", num=0, name="#0 seed=0", overrides=["seed=0"],
                          status="FINISHED", run_id="r")  # fmt: skip
        jobs = sweeps.finish(folder, cfg, compare_with)
        assert client.get_run(parent).info.status == "FINISHED"
    assert calls == [(mlflow_store, calls[0][1], jobs, ["seed"], "val/total_return")]
    assert "sweep comparison failed: RuntimeError: no comparison today" in caplog.text


@pytest.mark.slow
def test_a_real_2x2_multirun_parent_compares_its_children(tmp_path: Path, mlflow_uri):
    """Two groups (agent.gamma) x two seeds of the debug pipeline: the parent reads back with the
    group aggregates of the children's own metrics and the comparison report."""
    from conftest import run_cli

    proc = run_cli(
        "-m", "debug=default", "seed=0,1", "agent.gamma=0.9,0.99",
        "evaluation.baselines=[buy_hold,flat]", f"paths.root={tmp_path}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Warning" not in proc.stdout + proc.stderr  # quiet: no library warnings
    client = mlflow.MlflowClient(mlflow_uri)
    experiment = client.get_experiment_by_name("cryptotrade")
    runs = client.search_runs([experiment.experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("sweep_role") == "parent"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 4 and parent.info.status == "FINISHED"
    metrics = parent.data.metrics
    for gamma in ("0.9", "0.99"):
        group = [r for r in children if f"gamma={gamma}" in r.info.run_name.split()]
        values = [r.data.metrics["test/total_return"] for r in group]
        key = f"group/agent.gamma-{gamma}"
        assert metrics[f"{key}/seeds"] == 2.0
        assert metrics[f"{key}/test/total_return/mean"] == pytest.approx(np.mean(values))
        for name in ("val/sharpe", "test/sharpe", "test/max_drawdown", "test/num_trades"):
            assert f"{key}/{name}/mean" in metrics, name
        if values[0] != values[1]:
            assert metrics[f"{key}/test/total_return/ci_low"] < np.mean(values)
    assert parent.data.tags["comparison/ci_method"] == "student_t"
    folder = Path(client.download_artifacts(parent.info.run_id, "comparison", str(tmp_path)))
    page = (folder / "report.html").read_text()
    for child in children:
        assert child.info.run_name in page
    assert page.count('src="data:image/png;base64,') == 2  # equity overlay, parallel coordinates
    table = pd.read_csv(folder / "comparison.csv")
    assert sorted(table["group"]) == ["agent.gamma=0.9", "agent.gamma=0.99"]
