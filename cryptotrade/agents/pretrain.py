"""Supervised pretraining of a sequence extractor's encoder (``task=pretrain``,
:mod:`cryptotrade.tasks.pretrain`).

The encoder of the configured extractor (``extractor=lstm|lstm_gru|tcn``, built on the env's
observation space exactly as the RL agent will build it) learns to predict the sign of the
return over the next ``horizon`` bars from the observation window ending at bar ``t``:

    label(t) = 1 if close[t + horizon] > close[t] else 0      (ties dropped)

on the training split. A label is only formed when ``t + horizon`` lies in the same split, so
labels whose horizon would cross into validation (or validation's into test) are purged. The
metrics on the validation split are reported next to a majority-class baseline (the training
split's more frequent label, and its frequency as the constant probability for the log loss):

| metric | meaning |
|---|---|
| ``pretrain/val_accuracy`` | share of validation labels predicted right (p > 0.5) |
| ``pretrain/val_balanced_accuracy`` | mean of the up and down recalls (0.5 = no skill) |
| ``pretrain/val_log_loss`` | binary cross-entropy of the predicted probabilities |
| ``pretrain/majority/val_*`` | the same for the majority-class baseline |
| ``pretrain/train_log_loss`` | mean training loss of each epoch (``step`` = epoch) |

The test split is never read. The encoder's weights go to the run as ``pretrain/encoder.pt``;
``extractor.pretrained=runs:/<run_id>/pretrain/encoder.pt`` loads them into the RL agent
(:mod:`cryptotrade.agents.pretrained`). torch is imported only when pretraining runs, so
composing a config stays light.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from cryptotrade.errors import ConfigError, DataError

if TYPE_CHECKING:
    from cryptotrade.agents.extractors import SequenceExtractor
    from cryptotrade.data.market_data import MarketData

log = logging.getLogger(__name__)
EVAL_BATCH = 256


@dataclass(frozen=True)
class PretrainSettings:
    """How the encoder is pretrained (``conf/pretrain/default.yaml``).

    Args:
        horizon: Bars ahead whose return sign is the label.
        epochs: Passes over (a sample of) the training windows.
        batch_size: Windows per gradient step.
        learning_rate: Adam learning rate.
        max_samples: Training windows drawn (without replacement) per epoch; ``None``: all.
    """

    horizon: int = 16
    epochs: int = 5
    batch_size: int = 256
    learning_rate: float = 1e-3
    max_samples: int | None = 50_000

    def __post_init__(self) -> None:
        for name in ("horizon", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"pretrain.{name}={getattr(self, name)} must be >= 1")
        if not self.learning_rate > 0:
            raise ConfigError(f"pretrain.learning_rate={self.learning_rate} must be > 0")
        if self.max_samples is not None and self.max_samples < 1:
            raise ConfigError(f"pretrain.max_samples={self.max_samples} must be >= 1 or null")


def sign_labels(close: np.ndarray, window: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Window end bars ``t`` and their labels ``close[t + horizon] > close[t]`` within one split.

    ``t`` runs from the first full window (``window - 1``) to ``len(close) - 1 - horizon``: no
    label reads a price past the split's last bar. Bars whose return is exactly zero are dropped.

    Returns:
        ``(ends, labels)``: int64 bar indices and float32 labels in {0, 1}.
    """
    ends = np.arange(window - 1, len(close) - horizon, dtype=np.int64)
    change = close[ends + horizon] - close[ends]
    keep = change != 0.0
    return ends[keep], (change[keep] > 0.0).astype(np.float32)


def gather_windows(features: np.ndarray, ends: np.ndarray, window: int) -> np.ndarray:
    """The feature rows ``t - window + 1 .. t`` of each end ``t``: ``(len(ends), window, F)``.

    The same rows, in the same order, as the env's observation at bar ``t``.
    """
    return features[ends[:, None] + np.arange(1 - window, 1)]


def classification_metrics(labels: np.ndarray, prob: np.ndarray) -> dict[str, float]:
    """Accuracy, balanced accuracy and log loss of probabilities ``prob`` of label 1."""
    pred = prob > 0.5
    truth = labels > 0.5
    recalls = [float(np.mean(pred[truth == c] == c)) for c in (True, False) if np.any(truth == c)]
    p = np.clip(prob, 1e-7, 1 - 1e-7)
    return {
        "accuracy": float(np.mean(pred == truth)),
        "balanced_accuracy": float(np.mean(recalls)),
        "log_loss": float(-np.mean(np.where(truth, np.log(p), np.log1p(-p)))),
    }


def majority_baseline(train_labels: np.ndarray, val_labels: np.ndarray) -> dict[str, float]:
    """Predict the training split's majority label, with its training frequency as probability."""
    return classification_metrics(val_labels, np.full(len(val_labels), np.mean(train_labels)))


def _split_labels(data: MarketData, window: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    ends, labels = sign_labels(data.close, window, horizon)
    if len(labels) == 0 or labels.min() == labels.max():
        raise DataError(
            f"the {data.name!r} split ({len(data)} bars) gives {len(labels)} labels of "
            f"{len(np.unique(labels))} class(es) with env.window={window} and "
            f"pretrain.horizon={horizon}; widen the split or lower the window/horizon"
        )
    return ends, labels


def pretrain_encoder(
    extractor: SequenceExtractor,
    train: MarketData,
    val: MarketData,
    settings: PretrainSettings,
    *,
    seed: int,
) -> dict[str, float]:
    """Train ``extractor.encoder`` (plus a linear head) on ``train``; evaluate on ``val``.

    Args:
        extractor: A sequence extractor built on the env's observation space; its encoder is
            trained in place.
        train: The training split (its features and close prices).
        val: The validation split.
        settings: Horizon, epochs, batch size, learning rate, samples per epoch.
        seed: Seeds the head's initialisation and the sampling of training windows.

    Returns:
        ``pretrain/...`` metrics (see the module docstring).
    """
    import torch as th
    from torch import nn

    from cryptotrade.launch import tracking

    window = extractor.window
    tr_ends, tr_y = _split_labels(train, window, settings.horizon)
    va_ends, va_y = _split_labels(val, window, settings.horizon)
    th.manual_seed(seed)
    rng = np.random.default_rng(seed)
    head = nn.Linear(extractor.encoding_size, 1)
    params = [*extractor.encoder.parameters(), *head.parameters()]
    optimizer = th.optim.Adam(params, lr=settings.learning_rate)
    loss_fn = nn.BCEWithLogitsLoss()

    def logits(x: np.ndarray) -> th.Tensor:
        return head(extractor.encoder(th.from_numpy(x))).squeeze(-1)

    def predict(data: MarketData, ends: np.ndarray) -> np.ndarray:
        extractor.eval()
        with th.no_grad():
            out = [
                th.sigmoid(logits(gather_windows(data.features, ends[i : i + EVAL_BATCH], window)))
                for i in range(0, len(ends), EVAL_BATCH)
            ]
        extractor.train()
        return th.cat(out).numpy().astype(np.float64)

    n = min(len(tr_y), settings.max_samples or len(tr_y))
    val_metrics: dict[str, float] = {}
    for epoch in range(settings.epochs):
        order = rng.permutation(len(tr_y))[:n]
        total = 0.0
        for i in range(0, n, settings.batch_size):
            idx = order[i : i + settings.batch_size]
            batch = gather_windows(train.features, tr_ends[idx], window)
            loss = loss_fn(logits(batch), th.from_numpy(tr_y[idx]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(idx)
        val_metrics = classification_metrics(va_y, predict(val, va_ends))
        step = {
            "pretrain/train_log_loss": total / n,
            "pretrain/val_log_loss": val_metrics["log_loss"],
        }
        tracking.log_metrics(step, step=epoch)
        log.info("pretrain epoch %d: %s", epoch, {k: round(v, 4) for k, v in step.items()})
    metrics = {f"pretrain/val_{k}": v for k, v in val_metrics.items()}
    metrics |= {f"pretrain/majority/val_{k}": v for k, v in majority_baseline(tr_y, va_y).items()}
    metrics |= {
        "pretrain/train_samples": float(len(tr_y)),
        "pretrain/val_samples": float(len(va_y)),
        "pretrain/val_up_fraction": float(np.mean(va_y)),
    }
    return metrics
