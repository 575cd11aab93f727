"""Supervised pretraining: purged labels, a planted edge is learned, weights load and freeze."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest
import torch as th
from hydra import compose, initialize_config_dir
from stable_baselines3 import DQN, PPO

from cryptotrade.agents.encoder_weights import (
    FreezeEncoderCallback,
    load_encoder,
    prepare_extractor,
    save_encoder,
    sequence_extractors,
)
from cryptotrade.agents.extractors import LSTMExtractor, TCNExtractor
from cryptotrade.agents.policy import PolicySpec
from cryptotrade.agents.pretrain import (
    PretrainSettings,
    classification_metrics,
    gather_windows,
    majority_baseline,
    pretrain_encoder,
    sign_labels,
)
from cryptotrade.config import CONF_DIR, register_configs
from cryptotrade.data.market_data import MarketData
from cryptotrade.env import EnvFactory
from cryptotrade.env.spaces import WindowedBox
from cryptotrade.errors import ConfigError, ModelError
from cryptotrade.run import execute

th.set_num_threads(1)
register_configs()
PATH = "cryptotrade.agents.extractors."


def ar1_market(n: int, phi: float, seed: int, name: str = "train") -> MarketData:
    """Log returns r_t = phi r_{t-1} + noise; the feature at bar t is r_t (known at its close).

    With ``phi != 0`` the sign of the next return is predictable from the window (planted edge).
    """
    rng = np.random.default_rng(seed)
    noise = rng.normal(0.0, 0.01, n)
    r = np.zeros(n)
    for t in range(1, n):
        r[t] = phi * r[t - 1] + noise[t]
    close = 100.0 * np.exp(np.cumsum(r))
    open_ = np.r_[100.0, close[:-1]]
    feats = np.stack([r / 0.01, rng.normal(size=n)], axis=1).astype(np.float32)
    ts = np.datetime64("2024-01-01", "ns") + np.arange(n) * np.timedelta64(1, "m")
    high, low = np.maximum(open_, close), np.minimum(open_, close)
    return MarketData(
        name, ts, open_, high, low, close, np.ones(n), feats, ("ret", "noise"), np.zeros(n)
    )


def split(data: MarketData, at: int) -> tuple[MarketData, MarketData]:
    def part(name: str, sl: slice) -> MarketData:
        return MarketData(
            name,
            data.timestamps[sl],
            data.open[sl],
            data.high[sl],
            data.low[sl],
            data.close[sl],
            data.volume[sl],
            data.features[sl],
            data.feature_names,
            data.funding_rate[sl],
        )

    return part("train", slice(0, at)), part("val", slice(at, None))


# ------------------------------------------------------------------------------ labels/metrics
def test_labels_stay_inside_their_split_and_drop_ties() -> None:
    close = np.array([1.0, 2.0, 2.0, 1.0, 3.0, 3.0, 4.0])
    ends, labels = sign_labels(close, window=2, horizon=2)
    # t from window-1 = 1 to n-1-h = 4; t=1: 2->1 down, t=2: 2->3 up, t=3: 1->3 up, t=4: 3->4 up
    np.testing.assert_array_equal(ends, [1, 2, 3, 4])
    np.testing.assert_array_equal(labels, [0, 1, 1, 1])
    ends, labels = sign_labels(close, window=1, horizon=1)
    assert 1 not in ends and 4 not in ends  # 2->2 and 3->3 are ties
    assert ends.max() + 1 <= len(close) - 1  # no label reads past the split


def test_windows_are_the_env_observation_rows() -> None:
    data = ar1_market(200, 0.0, 0)
    env = EnvFactory(window=5, episode_length=None).make(data, evaluation=True)
    obs, _ = env.reset(seed=0)
    t = 4  # evaluation starts at the first full window
    np.testing.assert_array_equal(
        gather_windows(data.features, np.array([t]), 5)[0].ravel(), obs[: 5 * 2]
    )


def test_metrics_by_hand() -> None:
    y = np.array([1.0, 1.0, 1.0, 0.0])
    p = np.array([0.9, 0.4, 0.8, 0.2])
    m = classification_metrics(y, p)
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["balanced_accuracy"] == pytest.approx((2 / 3 + 1) / 2)
    expected = -(np.log(0.9) + np.log(0.4) + np.log(0.8) + np.log(0.8)) / 4
    assert m["log_loss"] == pytest.approx(expected)
    base = majority_baseline(np.array([1.0, 1.0, 0.0]), y)
    assert base["accuracy"] == pytest.approx(0.75) and base["balanced_accuracy"] == 0.5


def test_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"pretrain\.horizon=0"):
        PretrainSettings(horizon=0)


# ------------------------------------------------------------------------------ learning
def _pretrain(phi: float, cls=LSTMExtractor, **kw) -> tuple[dict[str, float], object]:
    train, val = split(ar1_market(6000, phi, seed=1), 4000)
    extractor = cls(WindowedBox(8, 2, 4), **kw)
    settings = PretrainSettings(horizon=1, epochs=3, batch_size=64, learning_rate=3e-3)
    return pretrain_encoder(extractor, train, val, settings, seed=0), extractor


@pytest.mark.parametrize(
    ("cls", "kw"), [(LSTMExtractor, {"hidden_size": 16}), (TCNExtractor, {"channels": 8})]
)
def test_a_planted_edge_beats_the_majority_baseline(cls, kw) -> None:
    # AR(1) with phi = 0.3: the best possible balanced accuracy is 1/2 + asin(0.3)/pi = 0.597
    metrics, _ = _pretrain(0.3, cls, **kw)
    assert metrics["pretrain/val_balanced_accuracy"] > 0.55
    assert metrics["pretrain/val_accuracy"] > metrics["pretrain/majority/val_accuracy"] + 0.02
    assert metrics["pretrain/val_log_loss"] < metrics["pretrain/majority/val_log_loss"] - 0.005
    assert metrics["pretrain/majority/val_balanced_accuracy"] == 0.5


def test_no_edge_no_skill() -> None:
    """Control: on a random walk the same training finds nothing (no leak through labels)."""
    metrics, _ = _pretrain(0.0, LSTMExtractor, hidden_size=16)
    assert abs(metrics["pretrain/val_balanced_accuracy"] - 0.5) < 0.04


# ------------------------------------------------------------------------------ loading
def _ppo(window: int = 8, cls: str = "LSTMExtractor", **kw):
    data = ar1_market(400, 0.3, seed=2)
    venv = EnvFactory(window=window, episode_length=50, n_envs=2).make_vec(data, seed=0)
    pk = PolicySpec(PATH + cls, kw or {"hidden_size": 16}, net_arch=[8]).policy_kwargs()
    return PPO(
        "MlpPolicy",
        venv,
        seed=0,
        device="cpu",
        policy_kwargs=pk,
        n_steps=16,
        batch_size=16,
        n_epochs=2,
    )


def test_weights_load_into_every_network_and_mismatches_are_named(tmp_path) -> None:
    _, extractor = _pretrain(0.3, LSTMExtractor, hidden_size=16)
    path = save_encoder(extractor, tmp_path / "encoder.pt")
    saved = extractor.encoder.state_dict()
    model = _ppo()
    assert load_encoder(model, str(path)) == 1
    for k, v in sequence_extractors(model.policy)[0].encoder.state_dict().items():
        th.testing.assert_close(v, saved[k])
    data = ar1_market(400, 0.3, seed=2)
    dqn = DQN(
        "MlpPolicy",
        EnvFactory(window=8, episode_length=50, n_envs=1).make_vec(data, seed=0),
        policy_kwargs=PolicySpec(PATH + "LSTMExtractor", {"hidden_size": 16}).policy_kwargs(),
        device="cpu",
    )
    assert load_encoder(dqn, str(path)) == 2  # online and target network
    with pytest.raises(ModelError, match=r"window 8 vs 12.*pretrain again"):
        load_encoder(_ppo(window=12), str(path))
    with pytest.raises(ModelError, match="hidden_size 16 vs 32"):
        load_encoder(_ppo(hidden_size=32), str(path))
    with pytest.raises(ModelError, match=r"extractor .*LSTMExtractor vs .*TCNExtractor"):
        load_encoder(_ppo(cls="TCNExtractor", channels=4), str(path))
    with pytest.raises(ModelError, match="not a file"):
        load_encoder(_ppo(), str(tmp_path / "missing.pt"))
    with pytest.raises(ConfigError, match="freeze_steps=5"):
        prepare_extractor(_ppo(), None, 5)


def test_frozen_encoder_stays_as_loaded_then_trains(tmp_path) -> None:
    _, extractor = _pretrain(0.3, LSTMExtractor, hidden_size=16)
    path = save_encoder(extractor, tmp_path / "encoder.pt")
    model = _ppo()
    (callback,) = prepare_extractor(model, str(path), 96)
    assert isinstance(callback, FreezeEncoderCallback)
    encoder = sequence_extractors(model.policy)[0].encoder
    loaded = [p.detach().clone() for p in encoder.parameters()]
    head = [p.detach().clone() for p in model.policy.action_net.parameters()]
    model.learn(64, callback=callback)  # 2 rollouts of 2 x 16 steps: both updates frozen
    assert all(th.equal(a, b) for a, b in zip(loaded, encoder.parameters(), strict=True))
    assert not all(
        th.equal(a, b) for a, b in zip(head, model.policy.action_net.parameters(), strict=True)
    )
    model.learn(64, callback=callback, reset_num_timesteps=False)
    assert callback.frozen is False
    assert not all(th.equal(a, b) for a, b in zip(loaded, encoder.parameters(), strict=True))


# ------------------------------------------------------------------------------ end to end
def _execute(tmp_path, *overrides: str) -> dict[str, float]:
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["debug=default", *overrides])
    return execute(cfg, output_dir=tmp_path / "out", choices={"extractor": "lstm"})


@pytest.mark.slow
def test_pretrain_task_then_train_with_its_weights(tmp_path, mlflow_uri) -> None:
    small = [
        "extractor=lstm",
        "extractor.features_extractor_kwargs.hidden_size=8",
        "env.window=16",
    ]
    metrics = _execute(
        tmp_path, "task=pretrain", *small, "pretrain.epochs=1", "pretrain.max_samples=512"
    )
    for key in ("val_accuracy", "val_balanced_accuracy", "val_log_loss"):
        assert f"pretrain/{key}" in metrics and f"pretrain/majority/{key}" in metrics
    client = mlflow.MlflowClient(mlflow_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("cryptotrade").experiment_id])
    assert run.info.status == "FINISHED"
    assert "pretrain/val_balanced_accuracy" in run.data.metrics
    source = run.data.tags["pretrain/encoder"]
    assert source == f"runs:/{run.info.run_id}/pretrain/encoder.pt"
    assert [a.path for a in client.list_artifacts(run.info.run_id, "pretrain")] == [
        "pretrain/encoder.pt"
    ]
    trained = _execute(
        tmp_path,
        "task=train",
        *small,
        f"extractor.pretrained={source}",
        "extractor.freeze_steps=256",
        "agent.n_steps=32",
        "agent.batch_size=64",
        "agent.n_epochs=1",
        "train.total_timesteps=512",
        "train.eval_freq=0",
        "train.checkpoint_freq=0",
    )
    assert trained["train/total_timesteps"] == 512
    runs = client.search_runs(
        [client.get_experiment_by_name("cryptotrade").experiment_id], "tags.task = 'train'"
    )
    assert "train/encoder_frozen" in runs[0].data.metrics  # the freeze callback ran


def test_pretrain_refuses_an_extractor_without_encoder(tmp_path, mlflow_store) -> None:
    with pytest.raises(ConfigError, match="extractor=lstm, lstm_gru or tcn"):
        _execute(tmp_path, "task=pretrain", "extractor=mlp")
    with pytest.raises(ConfigError, match="horizon"):
        _execute(tmp_path, "task=pretrain", "extractor=lstm", "pretrain.horizon=0")
    client = mlflow.MlflowClient(mlflow_store)  # refused before a run was opened
    assert not client.search_runs([e.experiment_id for e in client.search_experiments()])


@pytest.mark.slow
def test_config_errors_stop_a_training_run_before_it_starts(tmp_path, mlflow_uri) -> None:
    with pytest.raises(ConfigError, match="num_blocks"):
        _execute(
            tmp_path,
            "task=train",
            "extractor=tcn",
            "extractor.features_extractor_kwargs.num_blocks=2",
        )
    with pytest.raises(ConfigError, match="freeze_steps"):
        _execute(tmp_path, "task=train", "extractor=lstm", "extractor.freeze_steps=10")
    client = mlflow.MlflowClient(mlflow_uri)
    assert not client.search_runs([e.experiment_id for e in client.search_experiments()])
