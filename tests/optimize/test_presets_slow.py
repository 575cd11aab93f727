"""The two seed workflows as presets, end to end at debug budgets (slow)."""

from __future__ import annotations

import mlflow
import pytest
from conftest import SHARED_DATA, run_cli

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not SHARED_DATA.exists(), reason="needs ../shared/data (real exchange data)"
    ),
]


def _search_runs(uri: str):
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name("cryptotrade")
    runs = client.search_runs([exp.experiment_id])
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    return parent, children


def test_ga_bitmex_preset(tmp_path, mlflow_uri):
    proc = run_cli(
        "experiment=ga_bitmex", "debug=default", "optimizer.population=2",
        "optimizer.generations=2", "ray.num_cpus=2", f"optimizer.checkpoint_dir={tmp_path}",
        f"paths.output_dir={tmp_path / 'out'}", timeout=3600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    parent, children = _search_runs(mlflow_uri)
    assert parent.info.status == "FINISHED"
    assert parent.data.params["env.contract"] == "inverse"
    assert parent.data.params["extractor.features_extractor_class"].endswith("LSTMGRUExtractor")
    assert "test/total_return" in parent.data.metrics  # the winner, evaluated once
    assert len(children) >= 2
    assert all("val/total_return" in c.data.metrics for c in children)
    # the winner's model serves task=evaluate (and task=infer) from the parent run
    proc = run_cli(
        "experiment=ga_bitmex", "debug=default", "task=evaluate",
        f"model=runs:/{parent.info.run_id}/model",
        *[f"{k}={v}" for k, v in _best_overrides(mlflow_uri, parent).items()], timeout=3600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]


def _best_overrides(uri: str, parent) -> dict:
    import json
    import tempfile

    path = mlflow.artifacts.download_artifacts(
        run_id=parent.info.run_id, artifact_path="best/point.json", dst_path=tempfile.mkdtemp()
    )
    with open(path) as fh:
        return json.load(fh)


def test_tune_ppo_preset(tmp_path, mlflow_uri):
    proc = run_cli(
        "experiment=tune_ppo", "debug=default", "optimizer.num_samples=3", "ray.num_cpus=2",
        f"optimizer.storage_dir={tmp_path}", f"paths.output_dir={tmp_path / 'out'}",
        timeout=3600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    parent, children = _search_runs(mlflow_uri)
    assert parent.info.status == "FINISHED"
    assert parent.data.params["extractor.features_extractor_class"].endswith("TCNExtractor")
    assert "test/sharpe" in parent.data.metrics
    assert len(children) >= 3
