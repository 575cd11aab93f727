"""``task=walkforward``: train, select and test fold by fold, then stitch the out-of-sample curve.

Every fold of :class:`~cryptotrade.data.splits.WalkForward` is one nested MLflow run; the folds'
test curves are stitched and aggregated by :mod:`cryptotrade.evaluation.walkforward` (whose
docstring describes the metrics and the stitched account).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from omegaconf import DictConfig

from cryptotrade.errors import ConfigError
from cryptotrade.evaluation.metrics import performance
from cryptotrade.evaluation.walkforward import FoldResult, aggregate, plot_curve, stitch
from cryptotrade.launch import tracking

log = logging.getLogger(__name__)


def run(cfg: DictConfig, output_dir: Path) -> dict[str, float]:
    """Train/select/test every fold in a nested run; log the stitched curve in the parent.

    Args:
        cfg: The composed config (``walkforward`` node: folds, test, val, train, embargo).
        output_dir: The job's folder; fold ``k`` writes under ``output_dir/fold<k>``.

    Returns:
        The parent metrics of :func:`cryptotrade.evaluation.walkforward.aggregate`.
    """
    from omegaconf import OmegaConf

    from cryptotrade.agents.training import train
    from cryptotrade.agents.validation import backtest
    from cryptotrade.components import build
    from cryptotrade.data.dataset import build_folds
    from cryptotrade.data.splits import WalkForward
    from cryptotrade.evaluation.backtest import model_policy, target_policy

    comps = build(cfg)
    if comps.train.curriculum:
        raise ConfigError(
            "task=walkforward trains each fold in one stage; drop train.curriculum (curricula "
            "run with task=pipeline)"
        )
    wf = cfg.walkforward
    splitter = WalkForward(
        folds=wf.folds, test=wf.test, val=wf.val, train=wf.train, embargo=wf.embargo
    )
    start = time.perf_counter()
    datasets = build_folds(comps.data, comps.features, splitter)
    log.info("walk-forward data: %d folds in %.1f s", len(datasets), time.perf_counter() - start)
    yaml = OmegaConf.to_yaml(cfg, resolve=True)
    results = []
    for k, dataset in enumerate(datasets):
        with tracking.nested_run(f"fold{k}", tags={"fold": str(k)}, params={"fold": k}):
            tracking.log_text(yaml, "config.yaml")  # a fold's model is usable from its URI
            tracking.log_dict(dataset.normaliser, "data/normaliser.json")
            tracking.log_dict(dataset.meta["splits"], "data/splits.json")
            trained = train(comps, dataset, output_dir / f"fold{k}")
            if cfg.tracking.log_model:
                tracking.log_artifact(trained.path, "model")
            # the fold's test block is read once, after selection on its validation block
            result = backtest(comps, model_policy(trained.model), dataset.test)
            tracking.log_metrics({f"test/{m}": v for m, v in result.metrics.items()})
            buy_hold = backtest(comps, target_policy(1.0), dataset.test)
            tracking.log_metrics({f"baseline/buy_hold/{m}": v for m, v in buy_hold.metrics.items()})
            results.append(FoldResult(k, trained.val_metrics, result, buy_hold))
            log.info(
                "fold %d: %s=%.4g (selection), test/total_return=%.4g",
                k,
                comps.train.select_metric,
                trained.val_metrics[comps.train.select_metric],
                result.metrics["total_return"],
            )
    curve = stitch([r.test for r in results], comps.env.initial_cash)
    metrics = aggregate(results, curve)
    held = stitch([r.buy_hold for r in results], comps.env.initial_cash)
    metrics |= {
        f"baseline/buy_hold/{k}": float(v)
        for k, v in performance(
            held["equity"].to_numpy(),
            held["date"].to_numpy(),
            num_trades=sum(len(r.buy_hold.trades) for r in results),
        ).items()
    }
    curve["buy_hold"] = held["equity"].to_numpy()
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
