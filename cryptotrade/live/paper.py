"""A paper account that trades bar by bar through the env's market kernel and resumes exactly.

Every closed bar ``t`` is one row of the account's log (``trades.csv``): the pending order from
bar ``t - 1`` fills at ``t``'s open (fees, slippage, funding, liquidation: the same kernel as
training and backtests, through :class:`~cryptotrade.env.TradingEnv`'s public ``reset``/``step``),
the account is marked at ``t``'s close, and the policy decides the order for ``t + 1``.

Resuming: ``state.json`` (written atomically after each row) names the first bar, the last
processed bar and how many log rows it covers. A restart reads it, drops log rows beyond that
count (a crash between appending a row and writing the state), replays the logged actions
through a fresh env (rebuilding the account exactly, recurrent policy state included) and then
processes only bars after the last one. A bar is therefore never counted twice, and a run
interrupted anywhere ends with the same log and equity as one uninterrupted pass.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cryptotrade.errors import ConfigError, DataError
from cryptotrade.io import atomic_write
from cryptotrade.live.observation import window_from, with_padding

if TYPE_CHECKING:
    from cryptotrade.data import MarketData
    from cryptotrade.env import EnvFactory, TradingEnv, WeightedReward

log = logging.getLogger(__name__)
STATE_VERSION = 1
Policy = Callable[[np.ndarray, Any], Any]


@dataclass(frozen=True)
class Decision:
    """One processed bar: the account marked at its close and the order decided on it.

    Attributes:
        time: Open time of the bar (ISO, UTC) whose close the decision saw.
        action: The action decided at that close (fills at the next bar's open).
        target: The exposure the action aims at: -1 short .. 0 flat .. +1 long.
        equity: Equity marked at the bar's close, before the new order.
        position: Exposure held through the bar (signed notional / equity).
        units: Signed base units held through the bar.
        price: The bar's close.
    """

    time: str
    action: float
    target: float
    equity: float
    position: float
    units: float
    price: float


FIELDS = tuple(Decision.__dataclass_fields__)


def target_exposure(env: TradingEnv, action: float, info: dict[str, float]) -> float:
    """The exposure ``action`` steers toward from the position in ``info`` (-1 .. +1)."""
    s = env.settings
    side = float(np.sign(info["units"]))
    if s.action_mode == "continuous":
        target = float(np.clip(action, -1.0, 1.0))
    elif s.action_mode == "discrete3":
        target = float(int(action) - 1)
    elif s.action_mode == "buy_sell_hold":
        step = {0: 0, 1: 1, 2: -1}[int(action)]
        levels = s.inventory_levels
        target = float(np.clip((info["inventory"] + step) / levels, -1.0, 1.0))
    else:  # discrete4: 0 hold, 1 long / 2 short (only from flat), 3 close
        target = {0: side, 1: side or 1.0, 2: side or -1.0, 3: 0.0}[int(action)]
    return target if s.allow_short else max(target, 0.0)


def _scalar(action: Any) -> float:
    return float(np.asarray(action, dtype=np.float64).reshape(-1)[0])


class PaperAccount:
    """A resumable paper account in ``folder`` (``state.json`` + ``trades.csv``).

    Args:
        folder: Where the state and the log live (created if missing).
        model: The model's URI or path; a folder belongs to one model.
    """

    def __init__(self, folder: Path | str, model: str) -> None:
        self.folder = Path(folder)
        self.model = str(model)
        self.state_path = self.folder / "state.json"
        self.log_path = self.folder / "trades.csv"

    # ------------------------------------------------------------------ persistence
    def state(self) -> dict[str, Any] | None:
        """The saved state, or ``None`` for a new account."""
        if not self.state_path.exists():
            return None
        state = json.loads(self.state_path.read_text())
        if state.get("version") != STATE_VERSION:
            raise ConfigError(f"{self.state_path} is not a paper account state of this version")
        if state["model"] != self.model:
            raise ConfigError(
                f"{self.folder} is the paper account of model={state['model']}, not "
                f"{self.model}; choose another infer.state_dir for this model"
            )
        return dict(state)

    def decisions(self) -> list[Decision]:
        """The logged rows the state covers (rows a crash left beyond it are ignored)."""
        state = self.state()
        if state is None or not self.log_path.exists():
            return []
        with self.log_path.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
        return [_decision(r) for r in rows[: state["log_rows"]]]

    def _truncate_log(self, rows: list[Decision]) -> None:
        """Rewrite the log with exactly ``rows`` (drops what a crash appended past the state)."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(FIELDS)
        writer.writerows(_values(d) for d in rows)
        with atomic_write(self.log_path) as fh:
            fh.write(buf.getvalue().encode())

    def _append(self, decision: Decision) -> None:
        with self.log_path.open("a", newline="") as fh:
            csv.writer(fh, lineterminator="\n").writerow(_values(decision))

    def _save(self, start: str, rows: int, last: Decision, env: TradingEnv) -> None:
        state = {
            "version": STATE_VERSION,
            "model": self.model,
            "start": start,
            "last_bar": last.time,
            "log_rows": rows,
            "pending_action": last.action,
            "equity": last.equity,
            "balance": env.balance,
            "position": last.position,
            "units": last.units,
        }
        with atomic_write(self.state_path) as fh:
            fh.write(json.dumps(state, indent=1).encode())

    # ------------------------------------------------------------------ trading
    def run(
        self,
        data: MarketData,
        factory: EnvFactory,
        reward: WeightedReward,
        policy: Policy,
        *,
        start: str | None = None,
    ) -> list[Decision]:
        """Process every bar of ``data`` after the last processed one; returns the new rows.

        Args:
            data: Normalised bars up to the latest closed one (all bars since the account's
                first bar, plus ``env.window - 1`` before it).
            factory: The env settings (fees, leverage, action mode ...) of the training run.
            reward: The training run's reward (only its settings reach the kernel).
            policy: ``policy(obs, env) -> action``, deterministic.
            start: A new account's first bar (ISO time); ``None``: the latest bar.

        Raises:
            DataError: ``data`` lacks a bar the log has, or its prices differ from the log's.
        """
        state = self.state()
        logged = self.decisions()
        self.folder.mkdir(parents=True, exist_ok=True)
        self._truncate_log(logged)
        stamps = pd.DatetimeIndex(data.timestamps, tz="UTC")
        first_time = pd.Timestamp(state["start"] if state else (start or stamps[-1]))
        first_time = (
            first_time.tz_localize("UTC") if first_time.tz is None else first_time.tz_convert("UTC")
        )
        first = int(stamps.searchsorted(first_time))
        if first >= len(stamps) or stamps[first] != first_time:
            raise DataError(
                f"the paper account's first bar {first_time} is not among the source's bars "
                f"({stamps[0]} .. {stamps[-1]}); give the source a history that covers it"
            )
        market = with_padding(window_from(data, first, factory.window))
        env = factory.make(market, reward, evaluation=True)
        obs, info = env.reset(seed=0)
        last_real = len(market) - 2  # the padding bar is never stepped into
        new: list[Decision] = []
        prev: Decision | None = None
        ended = False
        for i in range(last_real - env.current_index + 1):
            if prev is not None:
                obs, _, ended, _, info = env.step(prev.action)
            t = env.current_index
            time = pd.Timestamp(market.timestamps[t], tz="UTC").isoformat()
            action = _scalar(policy(obs, env))
            if i < len(logged):  # replay: what the account did then is what counts
                prev = logged[i]
                _check_replay(prev, i, time, float(market.close[t]), float(info["equity"]))
                if prev.action != action:
                    log.warning(
                        "replay of %s: logged action %s, policy now %s", time, prev.action, action
                    )
            else:
                prev = Decision(
                    time=time,
                    action=action,
                    target=target_exposure(env, action, info),
                    equity=float(info["equity"]),
                    position=float(info["position"]),
                    units=float(info["units"]),
                    price=float(market.close[t]),
                )
                self._append(prev)  # log first, then the state: a crash in between is undone
                self._save(stamps[first].isoformat(), i + 1, prev, env)
                new.append(prev)
            if ended:
                log.warning("the paper account ended at %s (liquidated or stopped out)", time)
                break
        else:
            if len(logged) > last_real - (env.window - 1) + 1:
                raise DataError(
                    f"the paper log has {len(logged)} bars up to {logged[-1].time} but the "
                    f"source ends at {stamps[-1]}; give the source the account's whole history"
                )
        return new


def _check_replay(done: Decision, row: int, time: str, close: float, equity: float) -> None:
    """The replayed bar must be the logged one, with the logged price and equity."""
    if done.time != time or not np.isclose(done.price, close, rtol=1e-12):
        raise DataError(
            f"the source's bar {time} (close {close}) differs from row {row} of the paper log "
            f"({done.time}, close {done.price}): the bars changed under the account"
        )
    if not np.isclose(done.equity, equity, rtol=1e-9):
        raise DataError(
            f"replaying {time}: equity {equity} but the paper log has {done.equity}; the env "
            "settings (fees, leverage ...) differ from the ones the account traded with"
        )


def _values(d: Decision) -> list[str]:
    return [d.time, *(repr(float(v)) for v in asdict(d).values() if not isinstance(v, str))]


def _decision(row: dict[str, str]) -> Decision:
    return Decision(row["time"], *(float(row[k]) for k in FIELDS[1:]))
