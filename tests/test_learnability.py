"""The planted-edge market (regime=ar1), the rule oracle, and (slow) that agents learn the edge."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hydra.utils import instantiate

from cryptotrade.data.planted import AR1Model
from cryptotrade.data.synthetic import SyntheticSource
from cryptotrade.env.settings import EnvSettings
from cryptotrade.evaluation.backtest import run_backtest, target_policy
from cryptotrade.market.account import UNITS
from experiments.learnability.harness import compose_config
from experiments.learnability.oracle import replay_sides, rule_result, rule_sides


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory):
    """The preset's dataset (regime=ar1 on data=synthetic) and its env factory."""
    from cryptotrade.components import build
    from cryptotrade.launch import tracking
    from cryptotrade.optimize.objective import prepare_data

    data_dir = tmp_path_factory.mktemp("data")
    cfg = compose_config(["regime=ar1", f"paths.data_dir={data_dir}"])
    with tracking.run_optional():  # a module fixture runs before conftest's per-test switch
        return cfg, prepare_data(build(cfg, agent=False)), instantiate(cfg.env)


def band_policy(threshold: float):
    """The band rule acting through the env: reads the raw closes the env trades on."""

    def act(obs: np.ndarray, env) -> int:
        t = env.current_index
        r = math.log(env.data.close[t] / env.data.close[t - 1])
        if abs(r) <= threshold:
            return int(np.sign(env._state[0, UNITS])) + 1  # discrete3: keep the side
        return env.action_for_target(float(np.sign(r)))

    return act


def test_ar1_returns_have_the_planted_autocorrelation_and_volatility():
    model = AR1Model(autocorrelation=0.3, volatility=1.0)
    bars = SyntheticSource(num_samples=20_000, regime=model, seed=4).load()
    r = np.diff(np.log(bars["close"].to_numpy()))
    assert np.corrcoef(r[1:], r[:-1])[0, 1] == pytest.approx(0.3, abs=0.03)
    per_bar = 1.0 * math.sqrt(15 * 60 / (365 * 24 * 3600))
    assert r.std() == pytest.approx(per_bar, rel=0.03)
    o, h, lo, c = (bars[k].to_numpy() for k in ("open", "high", "low", "close"))
    assert (lo <= np.minimum(o, c)).all() and (np.maximum(o, c) <= h).all()
    np.testing.assert_array_equal(o[1:], c[:-1])  # an order at t fills at close[t]: edge intact
    assert (bars["regime"] == 0).all() and (bars["volume"] > 0).all()


def test_ar1_same_seed_same_market():
    a = SyntheticSource(num_samples=3000, regime=AR1Model(), seed=1).load()
    b = SyntheticSource(num_samples=3000, regime=AR1Model(), seed=1).load()
    c = SyntheticSource(num_samples=3000, regime=AR1Model(), seed=2).load()
    assert a.equals(b)
    assert not np.allclose(a["close"], c["close"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"autocorrelation": 1.0}, "autocorrelation=1.0"), ({"volatility": 0.0}, "volatility=0.0")],
)
def test_ar1_rejects_non_stationary_or_zero_volatility(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AR1Model(**kwargs)


@pytest.mark.slow
def test_preset_edge_beats_buy_and_hold_on_every_split(planted):
    cfg, dataset, factory = planted
    assert "ret_1" in dataset.test.feature_names  # the agent observes the predictive return
    for split in dataset.splits.values():
        rule = rule_result(split, factory.settings)
        env = factory.make(split, instantiate(cfg.reward), evaluation=True)
        hold = run_backtest(target_policy(1.0), env, seed=0).equity
        assert rule.log_return > math.log(hold[-1] / hold[0]) + 1.0
        assert rule.gross_pnl > rule.fees > 0  # the edge pays its costs, which are real


@pytest.mark.parametrize("threshold", [0.0, 0.002])
def test_oracle_equals_the_env_replay_of_the_same_rule(planted, threshold):
    cfg, dataset, factory = planted
    split = dataset.test
    env = factory.make(split, instantiate(cfg.reward), evaluation=True)
    through_env = run_backtest(band_policy(threshold), env, seed=0)
    oracle = rule_result(split, factory.settings, threshold=threshold)
    np.testing.assert_allclose(oracle.equity, through_env.equity, rtol=1e-12)
    assert oracle.num_trades == len(through_env.trades)
    assert oracle.fees == pytest.approx(float(through_env.trades["fees"].sum()), rel=1e-9)


def test_oracle_by_hand_one_round_trip():
    """Long for one bar: buy at open[2] + slippage, mark, sell at close[2] - slippage; fees."""
    from cryptotrade.data.market_data import MarketData

    n = 4
    px = np.array([100.0, 100.0, 110.0, 110.0])
    data = MarketData(
        name="test",
        timestamps=np.arange(n).astype("datetime64[h]").astype("datetime64[ns]"),
        open=np.array([100.0, 100.0, 100.0, 110.0]),
        high=px + 1,
        low=px - 1,
        close=px,
        volume=np.ones(n),
        features=np.zeros((n, 1), np.float32),
        feature_names=("x",),
        funding_rate=np.zeros(n),
    )
    settings = EnvSettings(window=1, taker_fee=0.001, slippage_bps=10.0)
    result = replay_sides(data, np.array([0.0, 1.0]), settings, start=0)
    buy = 100.0 * 1.001
    units = 10_000.0 / buy
    sell = 110.0 * 0.999
    final = 10_000.0 - units * buy * 0.001 + units * (sell - buy) - units * sell * 0.001
    assert result.equity[-1] == pytest.approx(final, rel=1e-12)
    assert result.num_trades == 1
    assert result.gross_pnl == pytest.approx(units * (sell - buy), rel=1e-12)


def test_rule_sides_keep_the_side_inside_the_band():
    close = np.array([100.0, 101.0, 100.95, 99.0])
    sides = rule_sides(close, 1, 4, threshold=0.005)
    assert sides[0] == 1.0 and math.isnan(sides[1]) and sides[2] == -1.0
    with pytest.raises(ValueError, match="start=0"):
        rule_sides(close, 0, 4)


def test_oracle_refuses_settings_it_does_not_model(planted):
    _, dataset, _ = planted
    with pytest.raises(ValueError, match="discrete3"):
        rule_result(dataset.test, EnvSettings(action_mode="continuous"))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("agent", "fraction"),
    [
        # measured (experiments/learnability/README.md): PPO 0.96-0.99, DQN 0.87-0.95
        ("ppo", 0.8),
        ("dqn", 0.8),
    ],
)
def test_agent_learns_the_planted_edge(agent, fraction):
    """The shipped preset trains (~130 CPU-s PPO, ~190 CPU-s DQN) to ``fraction`` of the sign
    rule's test log return, with the model selected on the validation split."""
    from experiments.learnability.harness import run_config

    result = run_config([f"experiment=learnability_{agent}"])
    assert result["test/log_return"] >= fraction * result["test/sign_rule"]
    assert result["test/log_return"] > result["test/buy_hold"] + 1.0


@pytest.mark.parametrize(
    ("agent", "target"),
    [
        ("ppo", "stable_baselines3.PPO"),
        ("dqn", "stable_baselines3.DQN"),
        ("a2c", "stable_baselines3.A2C"),
        ("sac", "stable_baselines3.SAC"),
        ("qrdqn", "sb3_contrib.QRDQN"),
        ("recurrent_ppo", "sb3_contrib.RecurrentPPO"),
    ],
)
def test_learnability_presets_compose_on_the_planted_market(agent, target):
    cfg = compose_config([f"experiment=learnability_{agent}"])
    assert cfg.regime._target_ == "cryptotrade.data.planted.AR1Model"
    assert cfg.agent._target_ == target
    assert cfg.data.source.num_samples == 100_000
    if agent == "sac":  # SAC acts in a Box: the preset brings the continuous action mode
        assert cfg.env.action_mode == "continuous"


def test_cli_takes_agents_and_overrides_and_writes_outside_the_repository():
    from experiments.learnability.__main__ import OUT, ROOT, cell_overrides, parse

    args = parse(["ppo", "--no-preset", "data=probe", "regime=planted", "dqn", "--seeds", "3"])
    assert args.agents == ["ppo", "dqn"] and args.seeds == [3] and not args.preset
    assert args.overrides == ["data=probe", "regime=planted"]
    assert not OUT.resolve().is_relative_to(ROOT) and not args.publish
    assert cell_overrides("ppo", "mlp", 3, args.overrides, preset=False) == [
        "agent=ppo", "extractor=mlp", "seed=3", "data=probe", "regime=planted",
    ]  # fmt: skip
    assert cell_overrides("dqn", "mlp", 0, ["data=file"])[0] == "experiment=learnability_dqn"
    with pytest.raises(SystemExit):  # README.md's table is the study market's, with its presets
        parse(["ppo", "data=probe", "--publish"])


def test_market_table_sets_a_cell_beside_its_reference():
    from experiments.learnability.__main__ import market_table

    cell = {
        "agent": "ppo", "extractor": "mlp", "seed": 0, "preset": False, "extra": ["data=probe"],
        "timesteps": 200_000, "selected_step": 50_000, "train_cpu_s": 61.0,
        "test/log_return": 0.9, "test/rule": 1.2, "test/sign_rule": 0.5, "test/oracle": 40.0,
        "test/buy_hold": 0.1, "test/trades": 30.0, "test/bars": 3000.0, "test/fees": 0.012,
        "test/gross_pnl": 0.9,
    }  # fmt: skip
    row = market_table([cell]).splitlines()[-1]
    assert "| data=probe | no | ppo | mlp | 0 | 0.2M | 0.900 (0.900) | 1.200 (rule) | 75% |" in row
    assert "| 10.0 | 1.20% | 90.00% | 50k | 61 |" in row  # 30 trades in 3,000 bars, fees, gross
    flat = cell | {"test/rule": 0.0}  # a null market's flat rule: no share of it
    assert "| 0.000 (rule) |  |" in market_table([flat])
