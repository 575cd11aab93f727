"""The stale-run sweep also ends the RUNNING child runs (GA individuals, Tune trials: no
liveness tags of their own) of a search driver that died."""

from __future__ import annotations

import mlflow

from cryptotrade.launch import liveness

PARENT = "mlflow.parentRunId"


def _run(client, experiment: str, tags: dict[str, str]) -> str:
    return client.create_run(experiment, tags=tags).info.run_id


def test_children_of_a_dead_driver_are_marked_failed_others_are_left_alone(mlflow_store):
    client = mlflow.MlflowClient(mlflow_store)
    experiment = client.create_experiment("sweep")
    alive = liveness.identity()  # this process: alive
    dead = {**alive, f"{liveness.PREFIX}boot_id": "a-boot-before-a-power-loss"}
    dead_driver = _run(client, experiment, dead)
    live_driver = _run(client, experiment, alive)
    swept_driver = _run(client, experiment, dead)  # an earlier sweep already ended it
    client.set_terminated(swept_driver, "FAILED")
    orphan = _run(client, experiment, {PARENT: dead_driver, "search/kind": "tune"})
    grandchild = _run(client, experiment, {PARENT: orphan})
    old_orphan = _run(client, experiment, {PARENT: swept_driver, "search/kind": "ga"})
    working = _run(client, experiment, {PARENT: live_driver, "search/kind": "ga"})
    finished = _run(client, experiment, {PARENT: dead_driver})
    client.set_terminated(finished, "FINISHED")
    foreign_parent = _run(client, experiment, {})  # not a launcher's run: no liveness tags
    client.set_terminated(foreign_parent, "KILLED")
    foreign_child = _run(client, experiment, {PARENT: foreign_parent})

    marked = liveness.mark_stale_runs(client, mlflow_store, stale_after_s=600, lock_dir=None)

    assert set(marked) == {dead_driver, orphan, grandchild, old_orphan}
    status = {run: client.get_run(run).info.status for run in (*marked, working, finished)}
    assert status == {
        dead_driver: "FAILED", orphan: "FAILED", grandchild: "FAILED", old_orphan: "FAILED",
        working: "RUNNING", finished: "FINISHED",
    }  # fmt: skip
    assert client.get_run(foreign_child).info.status == "RUNNING"
    note = client.get_run(orphan).data.tags[liveness.NOTE]
    assert f"its parent run {dead_driver} ended FAILED" in note
    assert liveness.mark_stale_runs(client, mlflow_store, stale_after_s=600, lock_dir=None) == []
