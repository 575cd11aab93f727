"""Warm search workers (:mod:`cryptotrade.optimize.warm`): the setup hook Ray runs in a new
worker, the start-up marks every pool stamps and the timing a candidate logs. Fast, no Ray; the
real hook in a fresh process is the slow test at the end."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest
from conftest import ROOT

from cryptotrade.optimize import warm
from cryptotrade.optimize.trial import TrialSpec
from cryptotrade.optimize.workers import InlinePool


def test_the_runtime_env_names_setup_worker_by_its_module_path():
    module, _, name = warm.RUNTIME_ENV["worker_process_setup_hook"].rpartition(".")
    assert getattr(importlib.import_module(module), name) is warm.setup_worker


def test_setup_worker_warms_once_per_process_and_never_raises(monkeypatch):
    calls: list[str] = []
    monkeypatch.setattr(warm, "_state", {})
    for step in ("_import_pipeline", "_first_optimizer", "_load_kernels"):
        monkeypatch.setattr(warm, step, lambda step=step: calls.append(step))
    done = warm.setup_worker()
    assert calls == ["_import_pipeline", "_first_optimizer", "_load_kernels"]
    assert set(done) == {"imports", "torch_optimizer", "kernels", "total", "cpu"}
    assert warm.setup_worker() == done and len(calls) == 3, "a process warms once"

    def broken() -> None:
        raise ImportError("no torch here")

    # Ray stops a worker whose hook raised (every task on it would fail): log and carry on
    monkeypatch.setattr(warm, "_state", {})
    monkeypatch.setattr(warm, "_first_optimizer", broken)
    failed = warm.setup_worker()
    assert failed["error"] == "ImportError: no torch here" and "kernels" not in failed


def test_candidate_timing_from_the_marks(monkeypatch):
    monkeypatch.setattr(warm, "_state", {"total": 4.0, "cpu": 3.0})
    assert warm.candidate_timing(100.0, 101.5, 103.0, fresh=True) == {
        "time/dispatch_s": 1.5,
        "time/setup_s": 1.5,
        "time/startup_s": 3.0,
        "time/worker_warmup_s": 4.0,
        "time/worker_warmup_cpu_s": 3.0,
    }
    # a learn mark older than the candidate's start is an earlier candidate's: not this one's
    assert warm.candidate_timing(100.0, 101.5, 90.0, fresh=False) == {"time/dispatch_s": 1.5}
    assert warm.candidate_timing(None, 101.5, 102.0, fresh=False) == {"time/setup_s": 0.5}


def test_a_pool_stamps_when_it_submits_and_the_outcome_carries_the_timing():
    seen: list[float | None] = []

    def candidate(spec: TrialSpec) -> dict[str, float]:
        seen.append(spec.scheduled_at)
        return {"val/sharpe": 1.0}

    specs = [TrialSpec(config={}, point={"x": x}, output_dir=".") for x in (1, 2)]
    outcomes = InlinePool().map(candidate, specs)
    assert all(isinstance(t, float) for t in seen) and seen[0] <= seen[1]
    for outcome in outcomes:
        assert outcome.metrics == {"val/sharpe": 1.0}
        assert outcome.extra["timing"]["time/dispatch_s"] >= 0.0
        assert isinstance(outcome.extra["fresh"], bool)


def test_a_search_opens_its_pool_before_it_checks_the_space_again(monkeypatch):
    """The launcher's preflight checked the space already; re-parsing it (~0.3 CPU-s) happens
    while the new pool's workers warm up, not before they start."""
    import contextlib

    from omegaconf import OmegaConf

    from cryptotrade.optimize import runner
    from cryptotrade.optimize.derive import ConfigDeriver

    order: list[str] = []
    parse = runner.parse_space

    @contextlib.contextmanager
    def make_pool(**kwargs):
        order.append("pool")
        yield InlinePool()

    def parse_space(space, configs):
        order.append("space")
        return parse(space)

    monkeypatch.setattr(runner, "make_pool", make_pool)
    monkeypatch.setattr(runner, "parse_space", parse_space)

    class Search:
        def __init__(self) -> None:
            self.space = {"agent.gamma": "float(0.9, 0.99)"}

    configs = ConfigDeriver(OmegaConf.create({"ray": {"enabled": True}}))
    with runner.search_setup(Search(), configs, timeout=None) as (space, pool):
        assert isinstance(pool, InlinePool) and space.paths == ["agent.gamma"]
    assert order == ["pool", "space"]


SCRIPT = """
import json, sys
from cryptotrade.optimize import warm
from cryptotrade.env.steps import step_single_nb
from cryptotrade.env.vec_env import STEP_VEC
done = warm.setup_worker()
print(json.dumps({
    "done": done,
    "modules": [m for m in ("torch", "torch._dynamo", "stable_baselines3", "mlflow",
                            "cryptotrade.optimize.objective") if m in sys.modules],
    "kernels": [len(step_single_nb.signatures), len(STEP_VEC[0].signatures)],
}))
"""


@pytest.mark.slow
def test_the_hook_imports_the_pipeline_and_loads_the_kernels_in_a_fresh_process():
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "error" not in out["done"], out["done"]
    assert out["modules"] == [
        "torch", "torch._dynamo", "stable_baselines3", "mlflow", "cryptotrade.optimize.objective"
    ]  # fmt: skip
    assert min(out["kernels"]) >= 1, "the linear step kernels are loaded (or compiled)"
