"""Sequence feature extractors: layout from the env, causality, configs, tiny training runs."""

from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch as th
from conftest import ROOT
from gymnasium import spaces
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from sb3_contrib import QRDQN, RecurrentPPO
from stable_baselines3 import A2C, DQN, PPO, SAC

from cryptotrade import config
from cryptotrade.agents.extractors import (
    LSTMExtractor,
    LSTMGRUExtractor,
    SequenceExtractor,
    TCNExtractor,
)
from cryptotrade.agents.policy import PolicySpec
from cryptotrade.data.market_data import MarketData
from cryptotrade.env import EnvFactory, WeightedReward
from cryptotrade.env.spaces import WindowedBox
from cryptotrade.errors import ConfigError, ModelError

th.set_num_threads(1)
config.register_configs()
PACKAGE = "cryptotrade.agents.extractors"
EXTRACTORS = {"lstm": LSTMExtractor, "lstm_gru": LSTMGRUExtractor, "tcn": TCNExtractor}
TINY = {
    "lstm": {"hidden_size": 8},
    "lstm_gru": {"lstm_hidden_size": 8, "gru_hidden_size": 8},
    "tcn": {"channels": 8},
}


def market(n: int = 300, n_features: int = 3, seed: int = 0) -> MarketData:
    """A random walk whose features are the row index and noise (to check row order)."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    open_ = np.r_[100.0, close[:-1]]
    feats = rng.normal(size=(n, n_features)).astype(np.float32)
    feats[:, 0] = np.arange(n) / n
    ts = np.datetime64("2024-01-01", "ns") + np.arange(n) * np.timedelta64(1, "h")
    names = tuple(f"f{i}" for i in range(n_features))
    high, low = np.maximum(open_, close), np.minimum(open_, close)
    return MarketData("train", ts, open_, high, low, close, np.ones(n), feats, names, np.zeros(n))


DATA = market()


def factory(window: int = 8, mode: str = "discrete3", **kw) -> EnvFactory:
    return EnvFactory(window=window, action_mode=mode, episode_length=40, n_envs=2, **kw)


# ------------------------------------------------------------------------------ configs
def spec(name: str, **kwargs) -> PolicySpec:
    """The PolicySpec of extractor ``name`` with ``kwargs`` and one small head."""
    return PolicySpec(
        f"{PACKAGE}.{EXTRACTORS[name].__name__}", features_extractor_kwargs=kwargs, net_arch=[8]
    )


def option(name: str) -> PolicySpec:
    """``extractor=<name>`` composed and instantiated as the pipeline does."""
    with initialize_config_dir(str(config.CONF_DIR), version_base="1.3"):
        return instantiate(compose("config", overrides=[f"extractor={name}"]).extractor)


@pytest.mark.parametrize("name", sorted(EXTRACTORS))
def test_every_extractor_option_composes_and_builds(name: str) -> None:
    policy = option(name)
    assert isinstance(policy, PolicySpec)
    assert policy.pretrained is None and policy.freeze_steps == 0
    kwargs = policy.policy_kwargs()
    assert kwargs["features_extractor_class"] is EXTRACTORS[name]
    policy.check(30)
    venv = EnvFactory(window=30, episode_length=50, n_envs=1).make_vec(DATA, seed=0)
    extractor = kwargs["features_extractor_class"](
        venv.observation_space, **kwargs["features_extractor_kwargs"]
    )
    out = extractor(th.as_tensor(venv.reset()))
    assert out.shape == (1, extractor.features_dim)


@pytest.mark.slow
def test_composing_a_sequence_extractor_does_not_import_torch() -> None:
    code = (
        "import sys\n"
        "from hydra import compose, initialize_config_dir\n"
        "from cryptotrade.config import CONF_DIR, register_configs\n"
        "register_configs()\n"
        "with initialize_config_dir(str(CONF_DIR), version_base='1.3'):\n"
        "    for name in ('lstm', 'lstm_gru', 'tcn'):\n"
        "        compose('config', overrides=['extractor=' + name, 'task=pretrain'])\n"
        "assert 'torch' not in sys.modules, 'composing imported torch'\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]


# ------------------------------------------------------------------------------ layout
def test_layout_travels_with_the_space_through_wrappers_and_pickle() -> None:
    for vectorized in (True, False):
        venv = factory(vectorized=vectorized).make_vec(DATA, seed=0)
        assert isinstance(venv.observation_space, WindowedBox)
        assert venv.observation_space.layout == (8, 3, 4)
    space = factory().make(DATA).observation_space
    copy = pickle.loads(pickle.dumps(space))
    assert copy == space and copy.layout == space.layout
    # equal size, different layout: not the same observation
    assert WindowedBox(4, 6, 4) != WindowedBox(6, 4, 4)


@pytest.mark.parametrize("name", sorted(EXTRACTORS))
def test_the_encoder_sees_the_env_rows_and_the_account_passes_through(name: str) -> None:
    env = factory(window=8, include_cash=True).make(DATA, seed=0)
    obs, _ = env.reset(seed=0)
    for _ in range(3):
        obs, *_ = env.step(2)  # go long: the account features are non-zero
    extractor = EXTRACTORS[name](env.observation_space, **TINY[name])
    x = th.as_tensor(obs)[None]
    rows = extractor.sequence(x)[0].numpy()
    first = round(float(rows[-1, 0]) * len(DATA))  # feature 0 is the row index / n
    np.testing.assert_array_equal(rows, DATA.features[first - 7 : first + 1])
    out = extractor(x)
    np.testing.assert_array_equal(out[0, extractor.encoding_size :].detach().numpy(), obs[8 * 3 :])
    assert extractor.features_dim == extractor.encoding_size + 5


@pytest.mark.parametrize("name", sorted(EXTRACTORS))
def test_every_row_of_the_window_reaches_the_encoding(name: str) -> None:
    th.manual_seed(0)
    space = WindowedBox(30, 3, 4)
    extractor = EXTRACTORS[name](space, **TINY[name]).eval()
    # a batch of inputs: one input can leave a row's ReLU path dead by chance (zero gradient)
    x = th.randn(16, space.shape[0], requires_grad=True)
    extractor(x)[:, : extractor.encoding_size].sum().backward()
    per_row = x.grad[:, : 30 * 3].reshape(16, 30, 3).abs().sum(dim=(0, 2))
    assert bool((per_row > 0).all()), per_row


def test_tcn_is_causal_inside_the_window() -> None:
    space = WindowedBox(32, 2, 4)
    tcn = TCNExtractor(space, channels=4).eval()
    x = th.randn(1, 32, 2)
    full = tcn.encoder.blocks(x.transpose(1, 2))
    y = x.clone()
    y[:, 20:] += 5.0  # change rows 20.. only
    changed = tcn.encoder.blocks(y.transpose(1, 2))
    th.testing.assert_close(full[:, :, :20], changed[:, :, :20])
    assert not th.allclose(full[:, :, 20:], changed[:, :, 20:])


def test_unknown_kwargs_are_refused_naming_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"hiden_size.*hidden_size, num_layers, dropout"):
        spec("lstm", hiden_size=3).check(30)
    spec("lstm", hidden_size=3).check(30)


def test_freeze_steps_needs_pretrained_weights() -> None:
    with pytest.raises(ConfigError, match=r"extractor\.pretrained"):
        PolicySpec(f"{PACKAGE}.LSTMExtractor", freeze_steps=10).check(30)


def test_tcn_receptive_field_must_cover_the_window() -> None:
    assert TCNExtractor.receptive_field(3, 4) == 61
    assert TCNExtractor.blocks_for(30, 3) == 4 and TCNExtractor.blocks_for(1440, 3) == 9
    assert TCNExtractor(WindowedBox(100, 2, 4), channels=4).hyperparameters["num_blocks"] == 5
    with pytest.raises(ConfigError, match=r"features_extractor_kwargs\.num_blocks=5.*env\.window"):
        TCNExtractor(WindowedBox(100, 2, 4), num_blocks=3)
    with pytest.raises(ConfigError, match="kernel_size"):
        spec("tcn", kernel_size=1).check(30)
    with pytest.raises(ConfigError, match="num_blocks=4"):
        spec("tcn", num_blocks=2).check(30)
    with pytest.raises(ConfigError, match="norm"):
        TCNExtractor(WindowedBox(8, 2, 4), norm="batch")


@pytest.mark.parametrize("norm", ["weight", "layer", "none"])
def test_tcn_norms_train(norm: str) -> None:
    tcn = TCNExtractor(WindowedBox(16, 2, 4), channels=4, norm=norm)
    x = th.randn(5, 16 * 2 + 4)
    loss = tcn(x).pow(2).mean()
    loss.backward()
    assert all(p.grad is not None for p in tcn.parameters())


def test_a_plain_box_is_refused_with_the_fix() -> None:
    with pytest.raises(ModelError, match=r"WindowedBox.*extractor=mlp"):
        LSTMExtractor(spaces.Box(-1, 1, (10,), np.float32))


def test_bad_settings_name_the_key() -> None:
    with pytest.raises(ConfigError, match="hidden_size=0"):
        LSTMExtractor(WindowedBox(8, 2, 4), hidden_size=0)
    with pytest.raises(ConfigError, match="dropout"):
        LSTMGRUExtractor(WindowedBox(8, 2, 4), dropout=1.5)


# ------------------------------------------------------------------------------ training
AGENTS = [
    (PPO, "MlpPolicy", "discrete3", {"n_steps": 16, "batch_size": 16, "n_epochs": 1}),
    (A2C, "MlpPolicy", "discrete3", {"n_steps": 8}),
    (DQN, "MlpPolicy", "discrete3", {"learning_starts": 16, "buffer_size": 500, "batch_size": 16}),
    (
        QRDQN,
        "MlpPolicy",
        "discrete3",
        {"learning_starts": 16, "buffer_size": 500, "batch_size": 16},
    ),
    (SAC, "MlpPolicy", "continuous", {"learning_starts": 16, "buffer_size": 500, "batch_size": 16}),
    (
        RecurrentPPO,
        "MlpLstmPolicy",
        "discrete3",
        {"n_steps": 16, "batch_size": 16, "n_epochs": 1, "policy_kwargs": {"lstm_hidden_size": 8}},
    ),
]


@pytest.mark.parametrize("name", sorted(EXTRACTORS))
@pytest.mark.parametrize(
    ("agent", "policy", "mode", "kwargs"), AGENTS, ids=[a[0].__name__ for a in AGENTS]
)
def test_tiny_learn_with_every_agent(name, agent, policy, mode, kwargs) -> None:
    venv = factory(window=8, mode=mode).make_vec(DATA, WeightedReward(), seed=0)
    kwargs = dict(kwargs)
    extra = kwargs.pop("policy_kwargs", {})
    pk = spec(name, **TINY[name]).policy_kwargs(extra)
    model = agent(policy, venv, seed=0, device="cpu", policy_kwargs=pk, **kwargs)
    assert any(isinstance(m, SequenceExtractor) for m in model.policy.modules())
    before = [p.detach().clone() for p in _encoder_params(model)]
    model.learn(total_timesteps=64)
    after = list(_encoder_params(model))
    assert any(not th.equal(a, b) for a, b in zip(before, after, strict=True)), (
        "encoder did not train"
    )
    obs = venv.reset()
    action, _ = model.predict(obs, deterministic=True)
    assert venv.action_space.contains(action[0])


def _encoder_params(model):
    for m in model.policy.modules():
        if isinstance(m, SequenceExtractor):
            return m.encoder.parameters()
    raise AssertionError("no sequence extractor")


def test_same_seed_same_weights_and_save_load_round_trip(tmp_path) -> None:
    pk = spec("tcn", channels=4).policy_kwargs()
    runs = []
    for _ in range(2):
        venv = factory().make_vec(DATA, seed=0)
        model = PPO(
            "MlpPolicy",
            venv,
            seed=0,
            device="cpu",
            policy_kwargs=pk,
            n_steps=16,
            batch_size=16,
            n_epochs=1,
        )
        model.learn(32)
        runs.append(model)
    for a, b in zip(runs[0].policy.parameters(), runs[1].policy.parameters(), strict=True):
        th.testing.assert_close(a, b, rtol=0, atol=0)
    runs[0].save(tmp_path / "m.zip")
    loaded = PPO.load(tmp_path / "m.zip", env=factory().make_vec(DATA, seed=0), device="cpu")
    assert loaded.observation_space.layout == (8, 3, 4)
    obs = factory().make_vec(DATA, seed=1).reset()
    np.testing.assert_array_equal(
        loaded.predict(obs, deterministic=True)[0], runs[0].predict(obs, deterministic=True)[0]
    )
    # a model saved for one layout does not load on an env of another
    with pytest.raises(ValueError, match=r"[Oo]bservation"):
        PPO.load(tmp_path / "m.zip", env=factory(window=4).make_vec(market(300, 6), seed=0))


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXTRACTORS))
def test_a_day_of_minute_bars_trains(name: str) -> None:
    """Window 1440 (a day of 1m bars): PPO collects and updates with the default extractor."""
    data = market(3000, 8)
    venv = EnvFactory(window=1440, episode_length=100, n_envs=2).make_vec(data, seed=0)
    model = PPO(
        "MlpPolicy",
        venv,
        seed=0,
        device="cpu",
        policy_kwargs=option(name).policy_kwargs(),
        n_steps=32,
        batch_size=32,
        n_epochs=1,
    )
    model.learn(64)
    assert model.num_timesteps == 64
