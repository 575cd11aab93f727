"""The tasks ``python -m cryptotrade.run task=<name>`` runs: one module and one record each.

A :class:`Task` says what the launcher (:func:`cryptotrade.run.execute`) needs to know: the
function, whether the task builds an env and an agent (the launcher's preflight checks that
combination before the run opens), the task's own preflight and, for the tasks that act with a
trained model, how the training run's config is restored. :data:`TASKS` is the one registry;
the launcher has no branch on a task's name. The launcher builds the run's
:class:`~cryptotrade.components.Components` once and hands them to the task with a
:class:`RunContext` (typed settings, the config's YAML, and the
:class:`~cryptotrade.optimize.derive.ConfigDeriver` a search or a curriculum derives new configs
with): no task holds the ``DictConfig``.

| task | module | what it does |
|---|---|---|
| ``pipeline`` | :mod:`~cryptotrade.tasks.pipeline` | data -> train -> test once, or a search |
| ``data`` | :mod:`~cryptotrade.tasks.data` | prepare (and cache) the dataset, print its summary |
| ``train`` | :mod:`~cryptotrade.tasks.train` | train and select on validation; no test |
| ``evaluate`` | :mod:`~cryptotrade.tasks.evaluate` | backtest ``model=`` on the test split |
| ``check`` | :mod:`~cryptotrade.tasks.check` | look-ahead checks of the features |
| ``pretrain`` | :mod:`~cryptotrade.tasks.pretrain` | pretrain a sequence extractor's encoder |
| ``walkforward`` | :mod:`~cryptotrade.tasks.walkforward` | train/select/test fold by fold |
| ``infer`` | :mod:`~cryptotrade.tasks.infer` | the policy's action on the latest bar |

A configured ``train.curriculum`` is trained by :mod:`~cryptotrade.tasks.curriculum` within
``task=pipeline`` and ``task=train``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from omegaconf import OmegaConf

from cryptotrade.components import Components
from cryptotrade.tasks import check, data, evaluate, infer, pipeline, pretrain, train, walkforward
from cryptotrade.tasks.context import RunContext

TaskFn = Callable[[Components, RunContext], Mapping[str, float]]
Preflight = Callable[[Components, RunContext], Any]


@dataclass(frozen=True)
class Task:
    """One task of the launcher.

    Attributes:
        run: ``run(components, context) -> metrics``, inside the run's MLflow run.
        agent: Builds an env and an agent: the launcher builds (and so checks) the agent, the
            extractor and the env/budget combination before the run opens.
        preflight: ``preflight(components, context)``: task-specific checks before the run
            opens and any data is loaded; what it returns reaches ``run`` as
            :attr:`RunContext.prepared` (``task=pipeline``'s optimizer, built once).
        restore: The task acts with ``model=``: the launcher runs it with the training run's
            data, features, env ... settings, command-line overrides on top
            (:func:`cryptotrade.restore.restore_training_config`), before the config is
            checked.
    """

    run: TaskFn
    agent: bool
    preflight: Preflight | None = None
    restore: bool = False


TASKS: dict[str, Task] = {
    "pipeline": Task(pipeline.run, agent=True, preflight=pipeline.preflight),
    "data": Task(data.run, agent=False),
    "train": Task(train.run, agent=True, preflight=train.preflight),
    "evaluate": Task(evaluate.run, agent=True, preflight=evaluate.preflight, restore=True),
    "check": Task(check.run, agent=False),
    # pretrain builds the extractor spec and env the agent would use: checked the same way
    "pretrain": Task(pretrain.run, agent=True, preflight=pretrain.check),
    "walkforward": Task(walkforward.run, agent=True, preflight=walkforward.preflight),
    "infer": Task(infer.run, agent=True, preflight=evaluate.preflight, restore=True),
}

__all__ = ["TASKS", "RunContext", "Task"]

if not OmegaConf.has_resolver("cryptotrade_tasks"):  # --help and the launcher callback
    OmegaConf.register_new_resolver("cryptotrade_tasks", lambda: "|".join(TASKS))
