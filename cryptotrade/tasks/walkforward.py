"""``task=walkforward``: train, select and test fold by fold, then stitch the out-of-sample curve.

Every fold of :class:`~cryptotrade.data.splits.WalkForward` is one nested MLflow run; the folds'
test curves are stitched and aggregated by :mod:`cryptotrade.evaluation.walkforward` (whose
docstring describes the metrics and the stitched account).
"""

from __future__ import annotations

import logging
import time

from cryptotrade.components import Components
from cryptotrade.errors import ConfigError
from cryptotrade.launch import tracking
from cryptotrade.tasks.context import RunContext

log = logging.getLogger(__name__)


def preflight(components: Components, context: RunContext) -> None:
    """Refuse a curriculum before the run opens: every fold trains in one stage."""
    if components.train.curriculum:
        raise ConfigError(
            "task=walkforward trains each fold in one stage; drop train.curriculum (curricula "
            "run with task=pipeline)"
        )


def run(comps: Components, context: RunContext) -> dict[str, float]:
    """Train/select/test every fold in a nested run; log the stitched curve in the parent.

    Args:
        comps: The run's components.
        context: The run's settings (``walkforward``: folds, test, val, train, embargo) and
            the job's folder; fold ``k`` writes under ``output_dir/fold<k>``.

    Returns:
        The parent metrics of :func:`cryptotrade.evaluation.walkforward.aggregate`.
    """
    from cryptotrade.agents.training import train
    from cryptotrade.data.dataset import build_folds
    from cryptotrade.data.splits import WalkForward
    from cryptotrade.evaluation import evaluate_split
    from cryptotrade.evaluation.backtest import model_policy
    from cryptotrade.evaluation.walkforward import (
        FoldResult,
        aggregate,
        plot_curve,
        stitch,
        stitched_performance,
    )

    settings, output_dir = context.settings, context.output_dir
    wf = settings.walkforward
    splitter = WalkForward(
        folds=wf.folds, test=wf.test, val=wf.val, train=wf.train, embargo=wf.embargo
    )
    start = time.perf_counter()
    datasets = build_folds(comps.data, comps.features, splitter)
    log.info("walk-forward data: %d folds in %.1f s", len(datasets), time.perf_counter() - start)
    yaml = context.config_yaml
    regime = getattr(comps.data.source, "regime", None)
    results = []
    for k, dataset in enumerate(datasets):
        with tracking.nested_run(f"fold{k}", tags={"fold": str(k)}, params={"fold": k}):
            tracking.log_text(yaml, "config.yaml")  # a fold's model is usable from its URI
            tracking.log_dict(dataset.normaliser, "data/normaliser.json")
            tracking.log_dict(dataset.meta["splits"], "data/splits.json")
            trained = train(comps, dataset, output_dir / f"fold{k}")
            if settings.tracking.log_model:
                tracking.log_artifact(trained.path, "model")
            # the fold's test block is read once, after selection on its validation block
            # (evaluate_split, the path of a plain run's test split, with the configured baselines)
            evaluation = evaluate_split(
                model_policy(trained.model),
                comps.env.compile(dataset.test, comps.reward),
                prefix="test",
                seed=comps.seed,
                settings=comps.evaluation,
                regime_names=getattr(regime, "names", None),
                config_yaml=yaml,
            )
            result = evaluation.agent
            results.append(FoldResult(k, trained.val_metrics, result, evaluation.baselines.results))
            log.info(
                "fold %d: %s=%.4g (selection), test/total_return=%.4g",
                k,
                comps.train.select_metric,
                trained.val_metrics[comps.train.select_metric],
                result.metrics["total_return"],
            )
    curve = stitch([r.test for r in results], comps.env.initial_cash)
    metrics = aggregate(results, curve)
    for name in results[0].baselines:  # each configured baseline stitched over the same blocks
        runs = [r.baselines[name] for r in results]
        held = stitch(runs, comps.env.initial_cash)
        held_metrics = stitched_performance(runs, held)
        metrics |= {f"baseline/{name}/{k}": v for k, v in held_metrics.items()}
        curve[name] = held["equity"].to_numpy()
    tracking.log_metrics(metrics)
    tracking.log_text(curve.to_csv(index=False), "walkforward/equity.csv")
    tracking.log_dict(
        {f"fold{r.index}": {"val": r.val_metrics, "test": r.test.metrics} for r in results},
        "walkforward/folds.json",
    )
    png = plot_curve(curve)
    if png is not None:
        path = output_dir / "walkforward" / "equity.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png)
        tracking.log_artifact(path, "walkforward")
    return metrics
