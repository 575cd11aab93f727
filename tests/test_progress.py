"""Progress without a terminal: one log line per validation and per GA generation (issue 19)."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from cryptotrade import progress


def test_duration_and_eta_read_like_a_person_would_write_them(monkeypatch):
    assert progress.duration(42.4) == "42 s"
    assert progress.duration(185) == "3 min 05 s"
    assert progress.duration(7620) == "2 h 07 min"
    now = [100.0]
    monkeypatch.setattr(progress.time, "perf_counter", lambda: now[0])
    clock = progress.Clock(total=1000, done=200)  # a resumed run: 200 steps were done before
    assert clock.eta(200) == "?"
    now[0] = 110.0  # 10 s for 100 steps -> 700 left take 70 s
    assert clock.summary(300) == "10 s elapsed, ETA 1 min 10 s"


def test_each_validation_logs_step_metric_best_and_eta(monkeypatch, tmp_path, caplog):
    import numpy as np

    from cryptotrade.agents import selection as validation

    scores = iter([0.5, 0.2])
    curve = (np.zeros(2), np.ones(2))
    monkeypatch.setattr(
        validation,
        "validation_backtest",
        lambda *a: ({"val/sharpe": next(scores), "val/x": 1.0}, curve),
    )
    monkeypatch.setattr(validation.tracking, "log_metrics", lambda *a, **k: None)
    model = SimpleNamespace(
        num_timesteps=0, _n_updates=1, save=lambda path: Path(path).write_bytes(b"m")
    )
    selection = validation.Selection(metric="val/sharpe")
    callback = validation.ValidationCallback(
        None, None, selection, best_path=tmp_path / "best.zip", eval_freq=0, total_steps=2000
    )
    callback.model = model
    callback._on_training_start()
    with caplog.at_level(logging.INFO, logger="cryptotrade"):
        model.num_timesteps = 1000
        callback.validate(model)
        model.num_timesteps = 2000
        callback.validate(model)
    lines = [r.getMessage() for r in caplog.records if r.name == validation.__name__]
    assert lines[0].startswith("validation at step 1,000/2,000: val/sharpe 0.5 (best 0.5 at")
    assert lines[1].startswith("validation at step 2,000/2,000: val/sharpe 0.2 (best 0.5 at")
    assert "elapsed, ETA 0 s" in lines[1]


def score_window(spec):
    """A cheap stand-in for training: the fitness is a function of the point."""
    return {"val/sharpe": -abs(spec.point["env.window"] - 30) / 30}


def test_each_ga_generation_logs_best_mean_trained_cached_failed(tmp_path, caplog):
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from cryptotrade import optimize
    from cryptotrade.config import CONF_DIR, register_configs
    from cryptotrade.optimize.derive import ConfigDeriver
    from cryptotrade.optimize.space import parse_space
    from cryptotrade.optimize.workers import InlinePool

    register_configs()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            "config",
            overrides=[
                "debug=default",
                "optimizer=ga",
                "optimizer.population=4",
                "optimizer.generations=3",
                f"optimizer.checkpoint_dir={tmp_path / 'ckpt'}",
            ],
        )
    OmegaConf.update(cfg, "optimizer.space", {"env.window": "choice(16, 30)"}, merge=False)
    configs = ConfigDeriver(cfg)
    ga = optimize.build(configs)
    space = parse_space(ga.space, configs)
    with caplog.at_level(logging.INFO, logger="cryptotrade"):
        _, logbook = ga.search(
            configs, space, InlinePool(), tmp_path / "out", evaluate=score_window
        )
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("generation ")]
    assert len(lines) == 3 and lines[0].startswith("generation 1/3: best ")
    for line, record in zip(lines, logbook, strict=True):
        assert f"best {record['max']:.4g}, mean {record['mean']:.4g}" in line
        assert f"{record['trained']} trained" in line and "0 failed" in line
        assert "elapsed, ETA" in line
    # two distinct candidates: everything after the first generation comes from the cache
    assert sum(int(line.split(", ")[3].split()[0]) for line in lines[1:]) > 0
    assert math.isfinite(logbook[-1]["max"])


def test_tune_reporter_shows_chosen_columns_and_restores_the_output_setting(monkeypatch):
    pytest.importorskip("ray")
    from cryptotrade.optimize.tune import legacy_output, reporter

    monkeypatch.delenv("RAY_AIR_NEW_OUTPUT", raising=False)
    table = reporter(["agent.learning_rate", "env.window"], "val/sharpe")
    assert table._metric_columns == {
        "score": "val/sharpe",
        "timesteps": "steps",
        "time_total_s": "seconds",
    }
    assert table._parameter_columns == {
        "agent.learning_rate": "learning_rate",
        "env.window": "window",
    }
    with legacy_output():
        assert os.environ["RAY_AIR_NEW_OUTPUT"] == "0"
    assert "RAY_AIR_NEW_OUTPUT" not in os.environ
