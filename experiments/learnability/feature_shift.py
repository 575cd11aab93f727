"""Which feature columns carry the planted edge, and which drift away from their training law?

``python -m experiments.learnability.feature_shift override ...`` prepares the data of the
configuration (no training) and prints one JSON line per feature column of the *normalised*
features (the normaliser was fit on the training split):

* ``val_mean`` / ``test_mean`` and ``val_std`` / ``test_std``: a column whose statistics move far
  from the training split's 0 / 1 is non-stationary (a price level normalised on train);
* ``corr_train`` / ``corr_val``: its correlation with the next bar's log return, the quantity
  the planted AR(1) edge is made of (``ret_1`` carries ``phi``), so a column with a correlation
  near 0 on both splits is noise to the policy.

The README's transfer section quotes it.
"""

from __future__ import annotations

import json
import sys

import numpy as np

from cryptotrade.launch import tracking


def column_stats(features: np.ndarray, close: np.ndarray) -> tuple[np.ndarray, ...]:
    """Mean, std and correlation with the next bar's log return of every feature column."""
    nxt = np.log(close[2:] / close[1:-1])  # the return earned by a decision at bar t (t = 1..)
    x = features[1:-1].astype(np.float64)
    xc = x - x.mean(axis=0)
    yc = nxt - nxt.mean()
    denom = np.sqrt((xc**2).sum(axis=0) * (yc**2).sum()) + 1e-300
    corr = (xc * yc[:, None]).sum(axis=0) / denom
    return features.mean(axis=0), features.std(axis=0), corr


@tracking.run_optional()  # a study trains and measures without an MLflow run
def main(argv: list[str]) -> None:
    from cryptotrade.components import build
    from cryptotrade.optimize.objective import prepare_data
    from experiments.learnability.harness import compose_config

    dataset = prepare_data(build(compose_config(argv), agent=False))
    stats = {
        name: column_stats(split.features, split.close)
        for name, split in (("train", dataset.train), ("val", dataset.val), ("test", dataset.test))
    }
    for j, column in enumerate(dataset.train.feature_names):
        row = {"feature": column}
        for split in ("val", "test"):
            row[f"{split}_mean"] = round(float(stats[split][0][j]), 3)
            row[f"{split}_std"] = round(float(stats[split][1][j]), 3)
        for split in ("train", "val"):
            row[f"corr_{split}"] = round(float(stats[split][2][j]), 4)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
