"""``task=pretrain``: pretrain the configured extractor's encoder on the training split.

The model, labels and metrics are described in :mod:`cryptotrade.agents.pretrain`; this task
builds the extractor on the env's observation space, trains it there and logs the weights.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from cryptotrade.errors import ConfigError
from cryptotrade.tasks.context import RunContext

if TYPE_CHECKING:  # the registry imports this module: --help must not load numpy & co
    from cryptotrade.agents.extractors import SequenceExtractor
    from cryptotrade.agents.pretrain import PretrainSettings
    from cryptotrade.components import Components

log = logging.getLogger(__name__)


def _extractor_class(path: str) -> type[SequenceExtractor]:
    from hydra.utils import get_class

    from cryptotrade.agents.extractors import SequenceExtractor

    cls = get_class(path)
    if not issubclass(cls, SequenceExtractor):
        raise ConfigError(
            f"task=pretrain trains a sequence encoder but {cls.__name__} has none; "
            "choose extractor=lstm, lstm_gru or tcn"
        )
    return cls


def _settings(components: Components) -> PretrainSettings:
    if components.pretrain is None:
        raise ConfigError("task=pretrain needs the pretrain config group; add pretrain=default")
    return components.pretrain


def check(components: Components, context: RunContext) -> None:
    """What ``task=pretrain`` checks before its MLflow run opens and any data is loaded, besides
    the launcher's build (which checks the extractor settings against ``env.window``)."""
    assert components.policy is not None
    _extractor_class(components.policy.features_extractor_class)
    _settings(components)


def run(components: Components, context: RunContext) -> dict[str, float]:
    """``task=pretrain``: pretrain the configured extractor's encoder and log its weights.

    Reads only the training and validation splits. The weights are saved atomically to
    ``output_dir/encoder.pt`` and logged to the run as ``pretrain/encoder.pt``.
    """
    from cryptotrade.agents.encoder_weights import save_encoder
    from cryptotrade.agents.pretrain import pretrain_encoder
    from cryptotrade.launch import tracking
    from cryptotrade.optimize.objective import prepare_data

    policy = components.policy
    assert policy is not None
    cls = _extractor_class(policy.features_extractor_class)
    dataset = prepare_data(components)
    env = components.env.make(dataset.train, components.reward)  # checks split vs window
    extractor = cls(env.observation_space, **dict(policy.features_extractor_kwargs or {}))
    metrics = pretrain_encoder(
        extractor, dataset.train, dataset.val, _settings(components), seed=components.seed
    )
    tracking.log_metrics(metrics)
    path = save_encoder(extractor, context.output_dir / "encoder.pt")
    tracking.log_artifact(path, "pretrain")
    run_id = tracking.active_run_id()
    source = f"runs:/{run_id}/pretrain/encoder.pt" if run_id else str(path)
    tracking.set_tags({"pretrain/encoder": source})
    log.info("encoder saved; train with it: extractor.pretrained=%s", source)
    return metrics
