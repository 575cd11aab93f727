"""``task=train``: train and select on validation (``model=...`` continues that model); no test."""

from __future__ import annotations

from cryptotrade.components import Components
from cryptotrade.tasks.common import check_model_source, load_model
from cryptotrade.tasks.context import RunContext


def preflight(components: Components, context: RunContext) -> None:
    """``model=...``: the model exists and was trained by the configured agent."""
    if context.settings.model:
        check_model_source(context.settings)


def run(components: Components, context: RunContext) -> dict[str, float]:
    """Train (a curriculum's stages if configured) and return the selected model's metrics.

    Returns:
        The selected model's ``val/...`` metrics and ``train/total_timesteps``.
    """
    from cryptotrade.optimize.objective import train
    from cryptotrade.tasks.curriculum import train_curriculum

    settings = context.settings
    model = load_model(settings, components) if settings.model else None
    trainer = train_curriculum if components.train.curriculum else train
    result, _ = trainer(context.configs, context.output_dir, components=components, model=model)
    return {**result.val_metrics, "train/total_timesteps": float(result.num_timesteps)}
