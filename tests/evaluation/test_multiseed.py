"""``evaluation.seeds``: one nested run per training seed, statistics over seeds in the parent."""

from __future__ import annotations

import mlflow
import pytest
from conftest import run_cli


@pytest.mark.slow
def test_seed_loop_logs_children_and_confidence_intervals(mlflow_uri):
    proc = run_cli(
        "debug=default",
        "evaluation.seeds=[0,1]",
        "evaluation.baselines=[buy_hold,flat,random]",
        "evaluation.report=false",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = mlflow.MlflowClient(mlflow_uri)
    exp = client.get_experiment_by_name("cryptotrade")
    runs = client.search_runs([exp.experiment_id])
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(r.data.tags["seed"] for r in children) == ["0", "1"]
    assert all(r.info.status == "FINISHED" for r in [parent, *children])
    returns = [r.data.metrics["test/total_return"] for r in children]
    m = parent.data.metrics
    assert m["test/total_return/mean"] == sum(returns) / 2
    assert m["test/total_return/ci_low"] <= m["test/total_return/mean"]
    assert m["test/total_return/mean"] <= m["test/total_return/ci_high"]
    assert "test/total_return/iqm" in m and "baseline/buy_hold/total_return" in m
    # two seeds: a Student t interval, named beside the numbers, with a warning
    assert parent.data.tags["seeds/ci_method"] == "student_t" and m["seeds/n"] == 2
    note = mlflow.artifacts.load_text(f"runs:/{parent.info.run_id}/test/seeds.txt")
    assert "Student t" in note and "WARNING: only 2 seeds" in note
    assert "only 2 seeds" in proc.stdout + proc.stderr  # the warning on the terminal
    plots = {f.path for f in client.list_artifacts(parent.info.run_id, "test/plots")}
    assert plots == {"test/plots/equity_band.png"}
    assert "== test: agent vs baselines ==" in proc.stdout
