"""``task=train``: train and select on validation (``model=...`` continues that model); no test."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from cryptotrade.tasks.common import check_model_source, load_model


def preflight(cfg: DictConfig) -> None:
    """``model=...``: the model exists and was trained by the configured agent."""
    if cfg.model:
        check_model_source(cfg)


def run(cfg: DictConfig, output_dir: Path) -> dict[str, float]:
    """Train (a curriculum's stages if configured) and return the selected model's metrics.

    Returns:
        The selected model's ``val/...`` metrics and ``train/total_timesteps``.
    """
    from cryptotrade.optimize.objective import train
    from cryptotrade.tasks.curriculum import train_curriculum

    model = load_model(cfg) if cfg.model else None
    trainer = train_curriculum if cfg.train.curriculum else train
    result, _ = trainer(cfg, output_dir, model=model)
    return {**result.val_metrics, "train/total_timesteps": float(result.num_timesteps)}
