"""``task=infer model=<runs:/id/model or path>``: the policy's decision on the latest closed bar.

The launcher restores the training run's data, features, env, reward and agent settings from the
run's ``config.yaml`` (:func:`cryptotrade.restore.restore_training_config`; overrides on
the command line, e.g. another ``data.source``, apply on top). The observation is built from the
configured source with the TRAINING split's saved normalisation (the run's
``data/normaliser.json``), never refit on new bars. With ``infer.paper=true`` a
:class:`~cryptotrade.live.paper.PaperAccount` in ``infer.state_dir`` trades every bar after the
last one it processed; otherwise the decision is that of a flat account.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptotrade.errors import ModelError
from cryptotrade.launch import tracking

if TYPE_CHECKING:  # the registry imports this module: --help must not load pandas or numba
    import pandas as pd

    from cryptotrade.components import Components
    from cryptotrade.live.paper import Decision
    from cryptotrade.optimize.derive import RunSettings
    from cryptotrade.tasks.context import RunContext

log = logging.getLogger(__name__)


def saved_normaliser(settings: RunSettings, components: Components) -> dict[str, Any]:
    """The training split's normaliser of the ``model=`` run (``data/normaliser.json``).

    A local model file has no run: its normaliser is the one fit on the training split of the
    configured data (the same config gives the same split and statistics).
    """
    model = str(settings.model)
    if not model.startswith("runs:/"):
        from cryptotrade.optimize.objective import prepare_data

        log.info("model=%s is a local file: normaliser of the configured training split", model)
        return dict(prepare_data(components).normaliser)
    run_id = model.removeprefix("runs:/").split("/")[0]
    try:
        path = tracking.download_artifact(f"runs:/{run_id}/data/normaliser.json")
    except Exception as exc:  # MlflowException / OSError: the run has no such artifact
        raise ModelError(
            f"model={model}: run {run_id} has no data/normaliser.json, so its inputs cannot be "
            f"normalised as in training ({exc.__class__.__name__}); use a run logged by "
            "cryptotrade's training tasks"
        ) from exc
    return dict(json.loads(Path(path).read_text()))


def run(comps: Components, context: RunContext) -> dict[str, float]:
    """Load the policy, build the latest observation, act (and paper-trade); print and log it.

    Returns:
        ``infer/action``, ``infer/target``, ``infer/equity``, ``infer/position`` and, with
        paper trading, ``paper/new_bars`` and ``paper/bars``.
    """
    import numpy as np
    import pandas as pd

    from cryptotrade.evaluation.backtest import model_policy
    from cryptotrade.evaluation.reload import check_model_fits
    from cryptotrade.live.observation import live_market, window_from, with_padding
    from cryptotrade.live.paper import Decision, PaperAccount, target_exposure
    from cryptotrade.tasks.common import load_model

    settings = context.settings
    model = load_model(settings, comps)
    data, raw = live_market(comps.data, comps.features, saved_normaliser(settings, comps))
    policy = model_policy(model)
    metrics: dict[str, float] = {}
    market = with_padding(window_from(data, len(data) - 1, comps.env.window))
    env = comps.env.make(market, comps.reward, evaluation=True)
    check_model_fits(model, env, source=str(settings.model))
    if settings.infer.paper:
        account = PaperAccount(settings.infer.state_dir, str(settings.model))
        new = account.run(data, comps.env, comps.reward, policy, start=settings.infer.start)
        rows = account.decisions()
        decision = rows[-1]
        metrics |= {"paper/new_bars": float(len(new)), "paper/bars": float(len(rows))}
        log.info("paper account %s: %d new bar(s), %d in all", account.folder, len(new), len(rows))
        if tracking.recording("the paper account"):
            tracking.log_artifact(account.log_path, "paper")
            tracking.log_artifact(account.state_path, "paper")
    else:  # a flat account's decision on the latest closed bar
        obs, info = env.reset(seed=settings.seed)
        action = float(np.asarray(policy(obs, env), dtype=np.float64).reshape(-1)[0])
        decision = Decision(
            time=pd.Timestamp(market.timestamps[env.current_index], tz="UTC").isoformat(),
            action=action,
            target=target_exposure(env, action, info),
            equity=float(info["equity"]),
            position=float(info["position"]),
            units=float(info["units"]),
            price=float(market.close[env.current_index]),
        )
    inputs = _inputs(decision, data, raw)
    print(_format(decision, inputs), flush=True)
    metrics |= {
        "infer/action": decision.action,
        "infer/target": decision.target,
        "infer/equity": decision.equity,
        "infer/position": decision.position,
    }
    tracking.log_metrics(metrics)
    tracking.log_dict({"decision": decision.__dict__, "inputs": inputs}, "infer/decision.json")
    return metrics


def _inputs(decision: Decision, data: Any, raw: pd.DataFrame) -> dict[str, Any]:
    """The latest bar and its features, raw and normalised (what the model's last row saw)."""
    import numpy as np
    import pandas as pd

    t = pd.Timestamp(decision.time)
    i = int(np.searchsorted(data.timestamps, t.tz_convert("UTC").tz_localize(None).to_datetime64()))
    bar = {k: float(getattr(data, k)[i]) for k in ("open", "high", "low", "close", "volume")}
    return {
        "bar": {"time": decision.time, **bar},
        "features_raw": {k: float(v) for k, v in raw.iloc[i].items()},
        "features_normalised": {
            k: float(v) for k, v in zip(data.feature_names, data.features[i], strict=True)
        },
    }


def side(exposure: float) -> str:
    """``long``, ``short`` or ``flat`` for a signed exposure, with its size when partial
    (``long 0.5``): what a trader reads instead of the action's index."""
    if exposure == 0 or exposure != exposure:  # NaN: nothing to hold
        return "flat"
    name = "long" if exposure > 0 else "short"
    return name if abs(exposure) == 1 else f"{name} {abs(exposure):.4g}"


def _format(decision: Decision, inputs: dict[str, Any]) -> str:
    bar = inputs["bar"]
    lines = [
        f"bar {decision.time}  close {bar['close']:.8g}",
        f"decision: {side(decision.target)} (target position {decision.target:+.4g}, action "
        f"{decision.action:g}; now {side(decision.position)}, equity {decision.equity:.2f})",
        "inputs (raw -> normalised):",
    ]
    for name, value in inputs["features_raw"].items():
        lines.append(f"  {name:<28} {value:>14.6g} -> {inputs['features_normalised'][name]:+.4f}")
    return "\n".join(lines)
