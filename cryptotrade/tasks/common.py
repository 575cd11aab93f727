"""What several tasks share: the trained model they load (``model=``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cryptotrade.components import Components
from cryptotrade.errors import ConfigError, ModelError
from cryptotrade.launch import tracking

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm

    from cryptotrade.optimize.derive import RunSettings


def check_model_source(settings: RunSettings) -> None:
    """``model=...``: a model is given and, if it comes from an MLflow run, was trained by the
    configured agent class (loading a DQN as PPO would fail deep inside SB3)."""
    model, agent = settings.model, settings.agent_target
    if not model:
        raise ConfigError(
            f"task={settings.task} needs a trained model: add model=runs:/<run_id>/model "
            "(or a path to a saved model.zip)"
        )
    if not model.startswith("runs:/"):
        return
    run_id = model.removeprefix("runs:/").split("/")[0]
    uri = tracking.tracking_uri(settings.tracking.uri, settings.paths.root)
    trained = tracking.run_class(uri, run_id, "agent")
    if trained and trained != agent:
        raise ModelError(
            f"model={model} was trained by {trained} but agent is {agent}; "
            "choose the matching agent (e.g. agent=dqn) to use it"
        )


def load_model(settings: RunSettings, components: Components) -> BaseAlgorithm:
    """Load ``model=`` (``runs:/<id>/model``, a folder or a zip) as the configured agent."""
    path = tracking.download_artifact(str(settings.model))
    if path.is_dir():
        path = path / "model.zip"
    if not path.exists():
        raise ModelError(f"model={settings.model} has no model.zip (looked at {path})")
    return components.agent_class.load(path, device="cpu")
