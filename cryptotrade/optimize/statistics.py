"""Multiple-testing statistics of a search: the Deflated Sharpe Ratio and the PBO.

A search trains N candidates and keeps the one with the best validation score. The maximum of
N noisy scores is biased upwards even when no candidate has an edge, so the winner's Sharpe
ratio cannot be read as the Sharpe ratio of one experiment. Two corrections are logged on every
search parent (``search/deflated_sharpe`` and ``search/pbo``):

* **Deflated Sharpe Ratio** (Bailey & Lopez de Prado, "The Deflated Sharpe Ratio: Correcting
  for Selection Bias, Backtest Overfitting and Non-Normality", J. Portfolio Management 2014):
  the probability that the winner's true Sharpe ratio is above the Sharpe ratio the best of N
  skill-less trials would show by chance, ``SR0 = sqrt(V[SR_n]) * ((1 - g) Z^-1(1 - 1/N) +
  g Z^-1(1 - 1/(N e)))`` (``g`` = Euler-Mascheroni), given the winner's skewness and kurtosis
  over its T returns. :func:`probabilistic_sharpe_ratio` is Bailey & Lopez de Prado's PSR
  ("The Sharpe Ratio Efficient Frontier", J. Risk 2012); the DSR is the PSR against ``SR0``.
* **Probability of Backtest Overfitting** (Bailey, Borwein, Lopez de Prado & Zhu, "The
  Probability of Backtest Overfitting", J. Computational Finance 2017) by combinatorially
  symmetric cross-validation (CSCV): the T x N matrix of the candidates' returns is cut into
  S blocks of rows; for every way to pick S/2 blocks as in-sample (the rest out-of-sample),
  the in-sample best candidate's out-of-sample rank ``w`` (in (0, 1)) gives the logit
  ``log(w / (1 - w))``; PBO is the share of splits with a logit <= 0, i.e. where the
  in-sample winner is at or below the out-of-sample median. Near 0: the selection carries
  over; near 0.5 or above: the winner was picked by noise.

All Sharpe ratios here are per period (not annualised): mean / standard deviation (ddof 1).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

EULER_GAMMA = 0.5772156649015329


def expected_max_standard_normal(n_trials: int) -> float:
    """Approximate expected maximum of ``n_trials`` independent standard normals.

    ``(1 - g) Z^-1(1 - 1/N) + g Z^-1(1 - 1/(N e))`` (Bailey & Lopez de Prado 2014, eq. 6, from
    extreme value theory); 0 for a single trial (nothing was selected).
    """
    from scipy.stats import norm

    if n_trials < 1:
        raise ValueError(f"n_trials={n_trials} must be >= 1")
    if n_trials == 1:
        return 0.0
    return float(
        (1.0 - EULER_GAMMA) * norm.ppf(1.0 - 1.0 / n_trials)
        + EULER_GAMMA * norm.ppf(1.0 - 1.0 / (n_trials * math.e))
    )


def probabilistic_sharpe_ratio(
    sharpe: float, benchmark: float, n_returns: int, skew: float, kurtosis: float
) -> float:
    """Probability that the true Sharpe ratio exceeds ``benchmark`` (PSR, per period).

    ``Z((SR - SR*) sqrt(T - 1) / sqrt(1 - skew SR + (kurtosis - 1) / 4 SR^2))``.

    Args:
        sharpe: The observed per-period Sharpe ratio.
        benchmark: The per-period Sharpe ratio to beat.
        n_returns: T, the number of returns ``sharpe`` was measured on.
        skew: Skewness of those returns.
        kurtosis: Their (non-excess) kurtosis: 3 for normal returns.
    """
    from scipy.stats import norm

    if n_returns < 2:
        return float("nan")
    variance = 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    if not variance > 0.0:
        return float("nan")
    return float(norm.cdf((sharpe - benchmark) * math.sqrt(n_returns - 1) / math.sqrt(variance)))


def deflated_sharpe_ratio(
    sharpe: float,
    trials_variance: float,
    n_trials: int,
    n_returns: int,
    skew: float,
    kurtosis: float,
) -> tuple[float, float]:
    """The DSR of a winner and the Sharpe ratio a skill-less winner would show (``SR0``).

    Args:
        sharpe: The winner's per-period Sharpe ratio.
        trials_variance: Variance of the per-period Sharpe ratios of all trials.
        n_trials: N, the number of independent trials.
        n_returns: T, the winner's number of returns.
        skew: Skewness of the winner's returns.
        kurtosis: Their (non-excess) kurtosis.

    Returns:
        ``(DSR, SR0)``: ``PSR(SR0)`` and ``SR0 = sqrt(V) E[max of N standard normals]``.
    """
    sr0 = math.sqrt(max(trials_variance, 0.0)) * expected_max_standard_normal(n_trials)
    return probabilistic_sharpe_ratio(sharpe, sr0, n_returns, skew, kurtosis), sr0


def sharpe_per_period(returns: np.ndarray) -> np.ndarray:
    """Per-period Sharpe ratio of each column (0 where a column does not vary)."""
    returns = np.atleast_2d(np.asarray(returns, dtype=np.float64).T).T
    std = returns.std(axis=0, ddof=1) if len(returns) > 1 else np.zeros(returns.shape[1])
    mean = returns.mean(axis=0)
    return np.where(std > 1e-12, mean / np.where(std > 1e-12, std, 1.0), 0.0)


@dataclass(frozen=True)
class PBO:
    """The result of CSCV.

    Attributes:
        pbo: Share of the splits whose in-sample winner ranks at or below the out-of-sample
            median (logit <= 0).
        logits: The logit of every split.
        splits: Number of splits, ``C(S, S/2)``.
        blocks: S, the number of row blocks.
    """

    pbo: float
    logits: np.ndarray
    splits: int
    blocks: int


def probability_of_backtest_overfitting(returns: np.ndarray, blocks: int = 16) -> PBO:
    """PBO by combinatorially symmetric cross-validation over per-period Sharpe ratios.

    Args:
        returns: T x N returns, one column per candidate, rows aligned in time.
        blocks: S, an even number of row blocks (16 in the paper); lowered to the largest
            even number <= T when T is shorter.

    Raises:
        ValueError: Fewer than 2 candidates or fewer than 4 rows.
    """
    matrix = np.asarray(returns, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[1] < 2 or matrix.shape[0] < 4:
        raise ValueError(f"PBO needs >= 4 rows and >= 2 candidates, got shape {matrix.shape}")
    s = min(int(blocks), matrix.shape[0]) // 2 * 2
    if s < 2:
        raise ValueError(f"blocks={blocks} must be an even number >= 2")
    parts = np.array_split(np.arange(len(matrix)), s)
    # per block: row count, sum and sum of squares of every column; a split adds S/2 blocks
    count = np.array([len(p) for p in parts], dtype=np.float64)
    total = np.stack([matrix[p].sum(axis=0) for p in parts])
    square = np.stack([(matrix[p] ** 2).sum(axis=0) for p in parts])
    combos = list(itertools.combinations(range(s), s // 2))
    mask = np.zeros((len(combos), s))
    for i, combo in enumerate(combos):
        mask[i, list(combo)] = 1.0

    def sharpe(m: np.ndarray) -> np.ndarray:
        n = (m @ count)[:, None]
        mean = (m @ total) / n
        var = np.maximum((m @ square) - n * mean**2, 0.0) / np.maximum(n - 1.0, 1.0)
        std = np.sqrt(var)
        return np.where(std > 1e-12, mean / np.where(std > 1e-12, std, 1.0), 0.0)

    inside, outside = sharpe(mask), sharpe(1.0 - mask)
    n = matrix.shape[1]
    best = np.argmax(inside, axis=1)
    chosen = outside[np.arange(len(best)), best][:, None]
    # its rank among the N out-of-sample values (1 = worst; ties share the average rank)
    rank = (outside < chosen).sum(axis=1) + ((outside == chosen).sum(axis=1) + 1) / 2.0
    omega = rank / (n + 1.0)
    logits = np.log(omega / (1.0 - omega))
    return PBO(pbo=float(np.mean(logits <= 0.0)), logits=logits, splits=len(combos), blocks=s)


@dataclass(frozen=True)
class SearchStatistics:
    """What :func:`search_statistics` measured (NaN where it could not be measured).

    Attributes:
        deflated_sharpe: The winner's DSR on daily returns.
        expected_max_sharpe: SR0, the daily Sharpe ratio the best of N skill-less trials shows.
        winner_sharpe: The winner's daily (per-period) Sharpe ratio.
        trials: N, the candidates tried.
        daily_returns: T, the days the DSR was measured on.
        pbo: The PBO of CSCV on bar returns.
        pbo_blocks: S of CSCV.
    """

    deflated_sharpe: float
    expected_max_sharpe: float
    winner_sharpe: float
    trials: int
    daily_returns: int
    pbo: float
    pbo_blocks: int

    def metrics(self) -> dict[str, float]:
        """``search/...`` metrics of the parent run."""
        return {
            "search/deflated_sharpe": self.deflated_sharpe,
            "search/expected_max_sharpe": self.expected_max_sharpe,
            "search/winner_daily_sharpe": self.winner_sharpe,
            "search/trials": float(self.trials),
            "search/pbo": self.pbo,
        }

    def report(self) -> str:
        """A few lines for the search's report: the numbers and how to read them."""
        return "\n".join(
            [
                "Multiple-testing statistics of the search (validation split only)",
                f"candidates tried: N = {self.trials}",
                f"winner's daily Sharpe ratio (not annualised): {self.winner_sharpe:.4f} "
                f"over T = {self.daily_returns} daily returns",
                f"expected best daily Sharpe of N skill-less trials: SR0 = "
                f"{self.expected_max_sharpe:.4f}",
                f"deflated Sharpe ratio: DSR = {self.deflated_sharpe:.4f}  (probability that "
                "the winner's true Sharpe ratio beats SR0, given N, the variance of the "
                "trials' Sharpe ratios and the skew and kurtosis of the winner's returns; "
                "Bailey & Lopez de Prado 2014). Below 0.95 the winner is not significantly "
                "better than the luckiest of N random candidates.",
                f"probability of backtest overfitting: PBO = {self.pbo:.4f}  (CSCV over the "
                f"candidates' bar returns in S = {self.pbo_blocks} blocks; share of in-sample "
                "winners at or below the out-of-sample median; Bailey, Borwein, Lopez de "
                "Prado & Zhu 2017). Near 0: the ranking carries over; near 0.5 or above: "
                "the winner was picked by noise.",
            ]
        )


def search_statistics(
    curves: dict[str, tuple[np.ndarray, np.ndarray]], winner: str, n_trials: int | None = None
) -> SearchStatistics:
    """DSR and PBO of a search from each candidate's validation equity curve.

    Args:
        curves: ``candidate -> (close times (datetime64), equity)`` of the selected model of
            each candidate on the validation split. Candidates whose features need a longer
            warm-up start later: all are compared on the timestamps they share.
        winner: The key of the search's winner in ``curves``.
        n_trials: N for the DSR, when more candidates were tried than left a curve (e.g.
            trials stopped early); default ``len(curves)``.
    """
    from cryptotrade.evaluation.metrics import daily_equity, simple_returns

    nan = float("nan")
    names = [winner] + [k for k in curves if k != winner]
    if winner not in curves:
        return SearchStatistics(nan, nan, nan, len(curves), 0, nan, 0)
    common = curves[winner][0].astype("datetime64[ns]")
    for name in names[1:]:
        common = np.intersect1d(common, curves[name][0].astype("datetime64[ns]"))
    equity = []
    for name in names:
        times, values = curves[name]
        index = np.searchsorted(times.astype("datetime64[ns]"), common)
        equity.append(np.asarray(values, dtype=np.float64)[index])
    daily = np.stack([simple_returns(daily_equity(e, common)) for e in equity], axis=1)
    dsr = sr0 = sr = nan
    if len(daily) >= 3:
        from scipy.stats import kurtosis, skew

        sharpes = sharpe_per_period(daily)
        sr = float(sharpes[0])
        ret = daily[:, 0]
        moments = (0.0, 3.0) if ret.std() <= 1e-12 else (skew(ret), kurtosis(ret, fisher=False))
        variance = float(np.var(sharpes, ddof=1)) if len(names) > 1 else 0.0
        trials = max(n_trials or 0, len(names))
        dsr, sr0 = deflated_sharpe_ratio(sr, variance, trials, len(ret), *moments)
    pbo, blocks = nan, 0
    bars = np.stack([simple_returns(e) for e in equity], axis=1)
    if len(names) >= 2 and len(bars) >= 4:
        result = probability_of_backtest_overfitting(bars)
        pbo, blocks = result.pbo, result.blocks
    trials = max(n_trials or 0, len(names))
    return SearchStatistics(dsr, sr0, sr, trials, len(daily), pbo, blocks)
