"""The trained policy as an MLflow model (pyfunc): registrable, with what it needs to act.

The logged model holds the SB3 ``model.zip``, the normaliser statistics (fit on the training
split), the feature and env settings (which fix the observation layout) and the agent class.
``mlflow.pyfunc.load_model(uri).predict(observations)`` returns the deterministic actions for a
batch of observations ``(n, window * features + account)`` built as the env builds them; a
model that stood aside (``train.stand_aside_t``) answers the action that keeps a flat account
flat, whatever the observation.

The one module besides :mod:`cryptotrade.launch.tracking` that imports MLflow, and only its
``PythonModel`` base class: a pyfunc wrapper must subclass it when it is defined, and a logged
model names the class by this import path (``cryptotrade.evaluation.policy_model.PolicyModel``),
so the class stays here for the models already logged. Logging goes through
:func:`cryptotrade.launch.tracking.log_pyfunc_model`.
"""

from __future__ import annotations

import json
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from mlflow.pyfunc import PythonModel

# MLflow checks predict's type hints when the class is defined and warns that there are none;
# they are left out on purpose (see predict). MLflow's check sets its own warning filter, so a
# filter cannot silence it: the warnings are recorded and all but that one are raised again.
_NO_HINTS = "Add type hints to the `predict` method"
with warnings.catch_warnings(record=True) as _caught:
    warnings.simplefilter("always")

    class PolicyModel(PythonModel):
        """pyfunc wrapper of an SB3 policy: observations in, deterministic actions out."""

        def load_context(self, context: Any) -> None:
            """Load the SB3 model named by the logged ``agent.json``."""
            import importlib

            meta = json.loads(Path(context.artifacts["agent"]).read_text())
            module, _, name = meta["class"].rpartition(".")
            cls = getattr(importlib.import_module(module), name)
            self.model = cls.load(context.artifacts["model"], device="cpu")

        # no annotation on model_input: MLflow would derive (and warn about) a schema from it
        def predict(self, context, model_input, params=None):
            """Deterministic actions for a batch of observations (array or DataFrame rows)."""
            obs = np.asarray(model_input, dtype=np.float32)
            if obs.ndim == 1:
                obs = obs[None, :]
            flat = getattr(self.model, "stand_aside_action", None)
            if flat is not None:  # the run stood aside (train.stand_aside_t): hold flat
                return np.repeat(np.asarray(flat)[None], len(obs), axis=0)
            actions, _ = self.model.predict(obs, deterministic=True)
            return np.asarray(actions)


for _w in _caught:
    if _NO_HINTS not in str(_w.message):
        warnings.warn_explicit(_w.message, _w.category, _w.filename, _w.lineno)


def log_policy_model(
    model_zip: Path,
    agent_class: str,
    *,
    normaliser: Mapping[str, Any],
    settings: Mapping[str, Any],
    name: str = "policy",
) -> str | None:
    """Log the policy as an MLflow model of the active run; returns its model URI (``None``
    inside :func:`cryptotrade.launch.tracking.run_optional` with no run).

    Args:
        model_zip: The saved SB3 model.
        agent_class: Dotted class path of the agent (``stable_baselines3.PPO``).
        normaliser: The normaliser statistics (``dataset.normaliser``).
        settings: The config sections that fix the observation (features, env, data);
            credentials in them are masked (:func:`cryptotrade.launch.redaction.redact`) before they
            are written: a logged model is shared and registered, its settings are read by
            people.
        name: Name of the logged model (shown under the run's logged models).

    Raises:
        NoActiveRunError: With no active run outside ``run_optional``.
    """
    import importlib.metadata as md

    from cryptotrade.launch import tracking
    from cryptotrade.launch.redaction import redact

    if not tracking.recording(f"model {name}"):
        return None

    with tempfile.TemporaryDirectory() as tmp:
        files = {
            "agent": Path(tmp) / "agent.json",
            "normaliser": Path(tmp) / "normaliser.json",
            "settings": Path(tmp) / "settings.json",
        }
        files["agent"].write_text(json.dumps({"class": agent_class}))
        files["normaliser"].write_text(json.dumps(dict(normaliser), default=str))
        plain = json.loads(json.dumps(dict(settings), default=str))
        files["settings"].write_text(json.dumps(redact(plain), indent=1))
        artifacts = {k: str(v) for k, v in files.items()} | {"model": str(model_zip)}
        pins = [f"{p}=={md.version(p)}" for p in ("stable-baselines3", "sb3-contrib", "torch")]
        return tracking.log_pyfunc_model(
            name,
            PolicyModel(),
            artifacts=artifacts,
            pip_requirements=[*pins, "numpy", "cryptotrade"],
        )
