"""``task=evaluate model=runs:/<run_id>/model``: backtest a trained model on the test split."""

from __future__ import annotations

from cryptotrade.components import Components
from cryptotrade.tasks.common import check_model_source, load_model
from cryptotrade.tasks.context import RunContext


def preflight(components: Components, context: RunContext) -> None:
    """A model is given and was trained by the configured agent (also ``task=infer``'s)."""
    check_model_source(context.settings)


def run(components: Components, context: RunContext) -> dict[str, float]:
    """Backtest ``model=`` and the baselines on the test split of the configured data."""
    from cryptotrade.optimize.objective import evaluate, prepare_data

    model = load_model(context.settings, components)
    dataset = prepare_data(components)
    return evaluate(
        components,
        model,
        dataset,
        source=str(context.settings.model),
        config_yaml=context.config_yaml,
    )
