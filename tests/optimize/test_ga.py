"""GA: resume equivalence, the score cache, and the penalty for failed and hung candidates.

The candidates here are scored by cheap deterministic functions of the point instead of the
pipeline (the slow suite trains real ones), so these tests check the search machinery itself.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import mlflow
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from cryptotrade import optimize
from cryptotrade.config import CONF_DIR, register_configs
from cryptotrade.launch import tracking
from cryptotrade.optimize.derive import ConfigDeriver
from cryptotrade.optimize.runner import CandidateRunner
from cryptotrade.optimize.search_state import load_pickle, search_fingerprint
from cryptotrade.optimize.space import parse_space
from cryptotrade.optimize.trial import TrialSpec
from cryptotrade.optimize.workers import InlinePool, ProcessPool

register_configs()
SPACE = {
    "features.indicators.rsi.period": "int(5, 30)",
    "agent.learning_rate": "log(1e-5, 1e-2)",
    "env.window": "choice(16, 30, 48)",
}


def compose_ga(tmp_path: Path, *overrides: str, space: dict | None = None):
    """The GA config of these tests: ``space`` replaces the configured space."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            "config",
            overrides=[
                "debug=default",
                "optimizer=ga",
                "optimizer.population=6",
                "optimizer.generations=3",
                "optimizer.mutation_prob=0.8",
                f"optimizer.checkpoint_dir={tmp_path / 'ckpt'}",
                *overrides,
            ],
        )
    OmegaConf.update(cfg, "optimizer.space", space or SPACE, merge=False)
    return cfg


def fitness(point: dict) -> float:
    """A smooth deterministic landscape: best at rsi 17, lr 1e-3, window 30."""
    return -(
        abs(point["features.indicators.rsi.period"] - 17) / 10
        + abs(math.log10(point["agent.learning_rate"]) + 3)
        + abs(point["env.window"] - 30) / 30
    )


class Recorder:
    """Scores a point by :func:`fitness` and appends it to ``log`` (counts trainings across
    processes); raises KeyboardInterrupt (a kill) on call number ``kill_at``."""

    def __init__(self, log: Path, kill_at: int | None = None) -> None:
        self.log, self.kill_at = log, kill_at

    def __call__(self, spec: TrialSpec) -> dict[str, float]:
        calls = self.log.read_text().count("\n") if self.log.exists() else 0
        if self.kill_at is not None and calls + 1 == self.kill_at:
            raise KeyboardInterrupt("killed")
        with self.log.open("a") as fh:
            fh.write(f"{sorted(spec.point.items())}\n")
        return {"val/sharpe": fitness(spec.point), "val/total_return": 0.0}


def search(cfg, tmp_path: Path, evaluate, on_generation=None, pool=None):
    configs = ConfigDeriver(cfg)
    ga = optimize.build(configs)
    space = parse_space(ga.space, configs)
    return ga.search(
        configs, space, pool or InlinePool(), tmp_path / "out", evaluate=evaluate,
        on_generation=on_generation,
    )  # fmt: skip


def summary(hof, logbook, cfg):
    state = load_pickle(
        Path(cfg.optimizer.checkpoint_dir)
        / f"ga-{search_fingerprint(ConfigDeriver(cfg), 'ga')}.pkl"
    )
    population = [(list(ind), ind.fitness.values) for ind in state["population"]]
    records = [{k: v for k, v in r.items() if k != "trained"} for r in logbook]
    return [list(i) for i in hof], [i.fitness.values for i in hof], records, population


def test_resume_after_a_kill_gives_the_uninterrupted_result(tmp_path):
    full_dir, killed_dir = tmp_path / "full", tmp_path / "killed"
    cfg = compose_ga(full_dir)
    reference = summary(*search(cfg, full_dir, Recorder(full_dir / "calls.txt")), cfg)
    trained = (full_dir / "calls.txt").read_text().count("\n")
    assert trained > 4 and all(r["failed"] == 0 for r in reference[2])
    assert len(reference[2]) == 3 and reference[2][-1]["max"] >= reference[2][0]["max"]

    def kill_after_first(gen, record):
        if gen == 0:
            raise KeyboardInterrupt("killed after generation 0")

    cfg = compose_ga(killed_dir)
    with pytest.raises(KeyboardInterrupt):
        search(cfg, killed_dir, Recorder(killed_dir / "calls.txt"), kill_after_first)
    resumed_cfg = compose_ga(killed_dir, "optimizer.resume=true")
    resumed = summary(*search(resumed_cfg, killed_dir, Recorder(killed_dir / "calls.txt")), cfg)
    assert resumed == reference
    assert (killed_dir / "calls.txt").read_text().count("\n") == trained, "nothing re-trained"


def test_kill_mid_generation_resumes_without_retraining_scored_candidates(tmp_path):
    full_dir, killed_dir = tmp_path / "full", tmp_path / "killed"
    cfg = compose_ga(full_dir)
    hof, logbook = search(cfg, full_dir, Recorder(full_dir / "calls.txt"))
    reference = summary(hof, logbook, cfg)
    trained = (full_dir / "calls.txt").read_text().count("\n")
    assert logbook[1]["trained"] >= 2
    kill_at = logbook[0]["trained"] + 2  # the second training of generation 1
    cfg = compose_ga(killed_dir)
    with pytest.raises(KeyboardInterrupt):
        search(cfg, killed_dir, Recorder(killed_dir / "calls.txt", kill_at=kill_at))
    cfg = compose_ga(killed_dir, "optimizer.resume=true")
    assert summary(*search(cfg, killed_dir, Recorder(killed_dir / "calls.txt")), cfg) == reference
    assert (killed_dir / "calls.txt").read_text().count("\n") == trained


def test_identical_points_are_trained_once(tmp_path):
    # one-value dimensions: every genome is the same candidate
    cfg = compose_ga(tmp_path, space={"env.window": "choice(30)", "agent.gamma": "choice(0.9)"})

    calls = tmp_path / "calls.txt"

    class Constant(Recorder):
        def __call__(self, spec):
            with self.log.open("a") as fh:
                fh.write("x\n")
            return {"val/sharpe": 1.0}

    hof, logbook = search(cfg, tmp_path, Constant(calls))
    assert calls.read_text().count("\n") == 1
    assert [r["trained"] for r in logbook] == [1, 0, 0]
    assert len(hof) == 1, "the hall of fame holds distinct candidates"


def raise_or_hang(spec: TrialSpec) -> dict[str, float]:
    """ok for window 16, raises for 30, hangs for 48."""
    window = spec.point["env.window"]
    if window == 30:
        raise ValueError("injected failure")
    if window == 48:
        time.sleep(600)
    return {"val/sharpe": 0.5}


@pytest.mark.slow
def test_failed_and_hung_candidates_get_the_penalty_and_a_failed_run(tmp_path, mlflow_uri):
    cfg = compose_ga(tmp_path, "optimizer.eval_timeout=30")
    ga = optimize.build(ConfigDeriver(cfg))
    points = [{"env.window": w} for w in (16, 30, 48)]
    pool = ProcessPool(3, timeout=30)
    with tracking.start_run(cfg, run_name="parent", tags={}) as parent:
        runner = CandidateRunner(
            ConfigDeriver(cfg), metric=ga.metric, penalty=ga.penalty, pool=pool,
            evaluate=raise_or_hang, output_dir=tmp_path / "out", kind="ga",
            scores_path=tmp_path / "scores.pkl", resume=False,
        )  # fmt: skip
        try:
            scores = runner.score(points, generation=0)
        finally:
            pool.close()
    assert scores == [0.5, ga.penalty, ga.penalty]
    assert all(s > -math.inf for s in scores), "finite, so DEAP's statistics stay finite"
    client = mlflow.MlflowClient(mlflow_uri)
    children = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
    )
    by_window = {int(r.data.params["env.window"]): r for r in children}
    assert by_window[16].info.status == "FINISHED"
    assert by_window[16].data.metrics["search/fitness"] == 0.5
    assert by_window[30].info.status == "FAILED"
    assert "injected failure" in by_window[30].data.tags["search/error"]
    assert by_window[48].info.status == "FAILED"
    assert "timeout" in by_window[48].data.tags["search/error"]
    assert by_window[48].data.metrics["search/fitness"] == ga.penalty
    for run in children:
        assert run.data.tags["search/generation"] == "0"
        assert "env.window" in run.data.tags["search/genome"]


def test_a_failing_candidate_does_not_stop_the_generation(tmp_path):
    cfg = compose_ga(tmp_path, space={"env.window": "choice(16, 30)"})
    hof, logbook = search(cfg, tmp_path, raise_or_hang)
    assert hof[0].fitness.values == (0.5,)
    assert sum(r["failed"] for r in logbook) >= 1
    assert all(r["max"] == 0.5 for r in logbook)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optimizer.metric=test/sharpe", "use a val/ metric"),
        ("optimizer.population=1", "optimizer.population=1 is out of range"),
        ("optimizer.elitism=6", "optimizer.elitism=6 is out of range"),
    ],
)
def test_bad_ga_settings_fail_at_build(tmp_path, override, message):
    cfg = compose_ga(tmp_path, override)
    with pytest.raises(Exception) as info:
        optimize.build(ConfigDeriver(cfg))
    chain, exc = [], info.value
    while exc is not None:
        chain.append(str(exc))
        exc = exc.__cause__ or exc.__context__
    assert message in "\n".join(chain)


def test_a_small_population_keeps_exploring(tmp_path):
    # population 4 used to collapse: tournament copies of the best, nothing new to train
    cfg = compose_ga(
        tmp_path, "optimizer.population=4", "optimizer.generations=4",
        "optimizer.mutation_prob=0.0", "optimizer.crossover_prob=0.0",
    )  # fmt: skip
    calls = tmp_path / "calls.txt"
    _, logbook = search(cfg, tmp_path, Recorder(calls))
    trained = [r["trained"] for r in logbook]
    assert trained[0] == 4
    assert all(t >= 4 - cfg.optimizer.elitism for t in trained[1:]), trained
    points = calls.read_text().splitlines()
    assert len(points) == len(set(points)) == sum(trained), "every training is a new candidate"
    assert all(r["distinct"] == 4 for r in logbook)
    assert all(0 < r["diversity"] <= 1 for r in logbook)


def test_diversity_is_zero_for_copies_and_one_for_opposite_corners():
    from cryptotrade.optimize.ga import Individual, diversity

    assert diversity([Individual([0.3, 0.7])] * 3) == 0.0
    assert diversity([Individual([0.0, 0.0]), Individual([1.0, 1.0])]) == pytest.approx(1.0)
    spread = [Individual([0.0, 0.0]), Individual([1.0, 0.0]), Individual([0.0, 1.0])]
    assert diversity(spread) == pytest.approx((1 + 1 + math.sqrt(2)) / 3 / math.sqrt(2))


def test_hall_of_fame_and_every_trial_are_logged_as_tables(tmp_path, mlflow_store):
    cfg = compose_ga(tmp_path, "optimizer.hall_of_fame=3")
    with mlflow.start_run() as run:
        hof, _ = search(cfg, tmp_path, Recorder(tmp_path / "calls.txt"))
    path = mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="ga/hall_of_fame.json", dst_path=str(tmp_path)
    )
    import json

    table = json.loads(Path(path).read_text())
    columns = table["columns"]
    rows = [dict(zip(columns, row, strict=True)) for row in table["data"]]
    assert [r["rank"] for r in rows] == [1, 2, 3]
    assert [r["val/sharpe"] for r in rows] == pytest.approx([i.fitness.values[0] for i in hof])
    assert rows[0]["env.window"] in (16, 30, 48)
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "ga/diversity")
    assert [m.step for m in history] == [0, 1, 2]
    # every candidate trained once, in the trial table and the Optuna study, with importances
    trained = (tmp_path / "calls.txt").read_text().count("\n")
    files = {f.path for f in mlflow.MlflowClient().list_artifacts(run.info.run_id, "ga")}
    assert {"ga/trials.json", "ga/optuna.db", "ga/importance.png"} <= files
    trials = json.loads(
        Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id,
                                                 artifact_path="ga/trials.json")).read_text()
    )  # fmt: skip
    assert len(trials["data"]) == trained
    assert {"generation", "run_id", "val/sharpe", "env.window"} <= set(trials["columns"])
