"""``task=pretrain``: pretrain the configured extractor's encoder on the training split.

The model, labels and metrics are described in :mod:`cryptotrade.agents.pretrain`; this task
builds the extractor on the env's observation space, trains it there and logs the weights.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import DictConfig

from cryptotrade.agents.pretrain import PretrainSettings, pretrain_encoder
from cryptotrade.errors import ConfigError

if TYPE_CHECKING:
    from cryptotrade.agents.extractors import SequenceExtractor

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


def _settings(cfg: DictConfig) -> PretrainSettings:
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    try:
        return instantiate(cfg.pretrain)
    except InstantiationException as err:  # show our ConfigError, not Hydra's wrapper
        if isinstance(err.__cause__, ConfigError):
            raise err.__cause__ from None
        raise


def check(cfg: DictConfig) -> None:
    """What ``task=pretrain`` checks before its MLflow run opens and any data is loaded, besides
    the launcher's preflight (which checks the extractor settings against ``env.window``)."""
    _extractor_class(cfg.extractor.features_extractor_class)
    _settings(cfg)


def run(cfg: DictConfig, output_dir: Path) -> dict[str, float]:
    """``task=pretrain``: pretrain the configured extractor's encoder and log its weights.

    Reads only the training and validation splits. The weights are saved atomically to
    ``output_dir/encoder.pt`` and logged to the run as ``pretrain/encoder.pt``.
    """
    from cryptotrade.agents.pretrained import save_encoder
    from cryptotrade.components import build
    from cryptotrade.launch import tracking
    from cryptotrade.optimize.objective import prepare_data

    check(cfg)
    components = build(cfg)  # the launcher's preflight built (and checked) these
    policy = components.policy
    assert policy is not None
    cls = _extractor_class(policy.features_extractor_class)
    dataset = prepare_data(components)
    env = components.env.make(dataset.train, components.reward)  # checks split vs window
    extractor = cls(env.observation_space, **dict(policy.features_extractor_kwargs or {}))
    metrics = pretrain_encoder(
        extractor, dataset.train, dataset.val, _settings(cfg), seed=components.seed
    )
    tracking.log_metrics(metrics)
    path = save_encoder(extractor, output_dir / "encoder.pt")
    tracking.log_artifact(path, "pretrain")
    run_id = tracking.active_run_id()
    source = f"runs:/{run_id}/pretrain/encoder.pt" if run_id else str(path)
    tracking.set_tags({"pretrain/encoder": source})
    log.info("encoder saved; train with it: extractor.pretrained=%s", source)
    return metrics
