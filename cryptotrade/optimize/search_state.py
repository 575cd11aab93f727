"""Search checkpoints: atomic pickles, and the fingerprint that names a search.

A checkpoint is written through :func:`cryptotrade.io.atomic_write` (a temporary file in the same
folder, renamed into place), so a search killed mid-write leaves the previous checkpoint intact,
and no process ever reads a half-written file.
"""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from cryptotrade.io import atomic_write

# Settings that do not change what a search computes: a resumed search may change them.
_NOT_SEARCH = ("resume", "workers", "eval_timeout", "max_concurrent", "checkpoints_to_keep")


def search_fingerprint(cfg: DictConfig, kind: str) -> str:
    """Hash of everything that determines a search's result (config, seed, space, settings).

    Tracking, Ray and the settings in ``_NOT_SEARCH`` are left out: resuming against another
    MLflow store, on a cluster, or with a different timeout continues the same search.
    """
    node = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(node, dict)
    for key in ("tracking", "ray", "hydra"):
        node.pop(key, None)
    for key in _NOT_SEARCH:
        node.get("optimizer", {}).pop(key, None)
    text = f"{kind}\n{OmegaConf.to_yaml(OmegaConf.create(node))}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def save_pickle(obj: Any, path: Path) -> None:
    """Pickle ``obj`` to ``path`` atomically (flushed to disk: a checkpoint outlives a crash)."""
    with atomic_write(path, fsync=True) as fh:
        pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)


def load_pickle(path: Path) -> Any | None:
    """The pickled object at ``path``, or ``None`` if there is none."""
    if not path.exists():
        return None
    with path.open("rb") as fh:
        return pickle.load(fh)
