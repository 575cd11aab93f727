"""The tasks ``python -m cryptotrade.run task=<name>`` runs: one module and one record each.

A :class:`Task` says what the launcher (:func:`cryptotrade.run.execute`) needs to know: the
function, whether the task builds an env and an agent (the launcher's preflight checks that
combination before the run opens), the task's own preflight and, for the tasks that act with a
trained model, how the training run's config is restored. :data:`TASKS` is the one registry;
the launcher has no branch on a task's name.

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

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from cryptotrade.tasks import check, data, evaluate, infer, pipeline, pretrain, train, walkforward

TaskFn = Callable[[DictConfig, Path], Mapping[str, float]]


@dataclass(frozen=True)
class Task:
    """One task of the launcher.

    Attributes:
        run: ``run(cfg, output_dir) -> metrics``, inside the run's MLflow run.
        agent: Builds an env and an agent: the launcher's preflight builds (and so checks)
            the agent, the extractor and the env/budget combination before the run opens.
        preflight: Task-specific checks before the run opens and any data is loaded.
        restore: ``restore(cfg, overrides) -> cfg``: the config the task really runs with
            (the training run's settings of ``model=``), before the config is checked.
    """

    run: TaskFn
    agent: bool
    preflight: Callable[[DictConfig], None] | None = None
    restore: Callable[[DictConfig, Sequence[str]], DictConfig] | None = None


TASKS: dict[str, Task] = {
    "pipeline": Task(pipeline.run, agent=True, preflight=pipeline.preflight),
    "data": Task(data.run, agent=False),
    "train": Task(train.run, agent=True, preflight=train.preflight),
    "evaluate": Task(
        evaluate.run, agent=True, preflight=evaluate.preflight, restore=evaluate.restore
    ),
    "check": Task(check.run, agent=False),
    # pretrain builds the extractor spec and env the agent would use: checked the same way
    "pretrain": Task(pretrain.run, agent=True, preflight=pretrain.check),
    "walkforward": Task(walkforward.run, agent=True),
    "infer": Task(infer.run, agent=True, preflight=evaluate.preflight, restore=evaluate.restore),
}

if not OmegaConf.has_resolver("cryptotrade_tasks"):  # --help and the launcher callback
    OmegaConf.register_new_resolver("cryptotrade_tasks", lambda: "|".join(TASKS))
