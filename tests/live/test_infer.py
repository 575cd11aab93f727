"""task=infer end to end: a model URI is enough; inputs normalised by the run's saved statistics."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd
import pytest
from conftest import SHARED_DATA
from hydra import compose, initialize_config_dir

from cryptotrade.config import CONF_DIR, register_configs
from cryptotrade.errors import ConfigError
from cryptotrade.run import execute

register_configs()
SPOT = SHARED_DATA / "binance_spot_BTCUSDT_1h.parquet"
pytestmark = pytest.mark.skipif(not SPOT.exists(), reason="../shared/data is absent")
# 256 x 2 envs = one PPO update in the 512 steps
TRAIN = [
    "debug=default", "data=file", "train.total_timesteps=512", "train.eval_freq=256",
    "env.n_envs=2",
]  # fmt: skip


def _execute(tmp_path, overrides: list[str]) -> dict[str, float]:
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    return execute(cfg, output_dir=tmp_path / "out", choices={}, overrides=overrides)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny PPO trained on the real 1h file, logged to its own MLflow store."""
    tmp = tmp_path_factory.mktemp("infer")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    _execute(tmp, [*TRAIN, "env.n_envs=2", f"tracking.uri={uri}"])
    client = mlflow.MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("cryptotrade").experiment_id])
    return run.info.run_id, uri


def _decision(uri: str) -> dict:
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name("cryptotrade")
    run = client.search_runs([exp.experiment_id], "tags.task = 'infer'", max_results=1)[0]
    mlflow.set_tracking_uri(uri)
    return json.loads(mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/infer/decision.json"))


@pytest.mark.slow
def test_infer_needs_only_the_model_uri_and_uses_the_saved_normaliser(trained, tmp_path, capsys):
    run_id, uri = trained
    metrics = _execute(
        tmp_path, ["task=infer", f"model=runs:/{run_id}/model", f"tracking.uri={uri}"]
    )
    assert metrics["infer/action"] in (0.0, 1.0, 2.0)  # the run's discrete3 action space
    assert metrics["infer/target"] == metrics["infer/action"] - 1.0
    decision = _decision(uri)
    # the run's data (the whole real 1h file, not debug's last 4000 bars): its latest bar
    assert decision["decision"]["time"] == "2024-12-31T23:00:00+00:00"
    side = {0.0: "short", 1.0: "flat", 2.0: "long"}[metrics["infer/action"]]
    assert f"decision: {side} (target position" in capsys.readouterr().out
    mlflow.set_tracking_uri(uri)
    norm = json.loads(mlflow.artifacts.load_text(f"runs:/{run_id}/data/normaliser.json"))
    raw = np.array([decision["inputs"]["features_raw"][c] for c in norm["columns"]])
    seen = np.array([decision["inputs"]["features_normalised"][c] for c in norm["columns"]])
    # the training split's statistics, not a refit on the new bars
    expected = (raw - np.array(norm["shift"])) / np.array(norm["scale"])
    np.testing.assert_allclose(seen, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_paper_trading_resumes_over_new_candles_like_one_pass(trained, tmp_path):
    run_id, uri = trained
    bars = pd.read_parquet(SPOT)
    bars = bars[(bars["date"] >= "2024-05-01") & (bars["date"] < "2024-06-20")]
    files = {}
    for name, end in (("early", "2024-06-05 07:00"), ("late", "2024-06-20")):
        files[name] = tmp_path / f"{name}.parquet"
        bars[bars["date"] < end].to_parquet(files[name])

    def paper(path, state: str) -> dict[str, float]:
        return _execute(
            tmp_path,
            [
                "task=infer",
                f"model=runs:/{run_id}/model",
                f"tracking.uri={uri}",
                "data=file",
                f"data.source.path={path}",
                "infer.paper=true",
                "infer.start=2024-06-01",
                f"infer.state_dir={tmp_path / state}",
            ],
        )

    first = paper(files["early"], "restarted")
    second = paper(files["late"], "restarted")
    once = paper(files["late"], "once")
    assert first["paper/new_bars"] == 4 * 24 + 7  # 06-01 00:00 .. 06-05 06:00
    assert second["paper/new_bars"] + first["paper/new_bars"] == once["paper/new_bars"]
    assert once["paper/bars"] == 19 * 24
    log = (tmp_path / "once" / "trades.csv").read_text()
    assert (tmp_path / "restarted" / "trades.csv").read_text() == log
    assert second["infer/equity"] == once["infer/equity"]


def test_infer_without_a_model_fails_before_any_run(tmp_path, mlflow_store):
    with pytest.raises(ConfigError, match="needs a trained model"):
        _execute(tmp_path, ["task=infer"])
    client = mlflow.MlflowClient(mlflow_store)
    ids = [e.experiment_id for e in client.search_experiments()]
    assert not ids or not client.search_runs(ids)  # refused before a run was opened


def test_side_names_the_exposure():
    from cryptotrade.tasks.infer import side

    assert [side(x) for x in (1.0, -1.0, 0.0, 0.5, -0.25)] == [
        "long", "short", "flat", "long 0.5", "short 0.25",
    ]  # fmt: skip
