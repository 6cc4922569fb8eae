"""Paired comparisons of a configuration with its no-TE baselines, over seeds.

Each seed gives a pair: the configuration's TE run and the baseline run of the same seed (same
initial weights, same batch order). A run either reached its target after E epochs
(fractional, see outcome.fractional_epochs) or was censored: it ran `max_epochs` without
reaching it, so all that is known is E > max_epochs. The paired speedup of a seed is
baseline epochs / TE epochs (above 1: TE reached the target sooner). How censoring enters:
  - both reached: the ratio, a value;
  - TE censored, baseline reached: TE's side is put at `censored_at` (max_epochs + 1) and the
    ratio is flagged as an upper bound (the true ratio is lower: TE took longer still);
  - baseline censored, TE reached: the baseline's side at `censored_at`, flagged as a lower
    bound (TE's true advantage is larger);
  - both censored: the pair says nothing about speed. It is counted and left out of the
    estimate, never scored as a tie of 1.0.
Across the informative pairs:
  - `speedup_mean` is the geometric mean of the ratios, `speedup_median` their median;
  - the interval is a percentile bootstrap of the geometric mean: RESAMPLES resamples of the
    pairs with replacement, seeded so that the same sweep gives the same interval;
  - `prob_te_faster` is the share of pairs where TE was faster (a tie counts one half), the
    P(A faster than B) of Bouthillier et al. (MLSys 2021);
  - `p_value` is the exact one-sided sign-flip permutation test of "the mean log ratio is 0"
    against "TE is faster": the share of the 2^K ways of flipping the pairs' signs whose mean is
    at least the observed one. With K pairs it cannot go below 1/2^K: 3 seeds can never show
    p < 0.05 (1/8), 5 seeds can (1/32). Across configurations, Holm's step-down adjustment
    (`holm`) keeps the chance of any false "faster" below 5%.
"""

from __future__ import annotations

import enum
import itertools
import math
import statistics
from dataclasses import dataclass

import numpy as np

RESAMPLES = 10_000
BOOTSTRAP_SEED = 20_240_402  # any fixed number: the interval is a function of the data
LEVEL = 0.95
MAX_EXACT_PAIRS = 16  # 2^16 sign patterns; beyond it the permutation test is sampled


class PairKind(str, enum.Enum):
    BOTH_REACHED = "both_reached"
    TE_CENSORED = "te_censored"  # ratio is an upper bound
    BASELINE_CENSORED = "baseline_censored"  # ratio is a lower bound
    BOTH_CENSORED = "both_censored"  # no information


@dataclass(frozen=True)
class Run:
    """One run's result: fractional epochs to the target (None: censored) and training
    seconds to it (None: censored, or not timed)."""

    epochs: float | None
    seconds: float | None = None


@dataclass(frozen=True)
class Pair:
    seed: int
    te: Run
    baseline: Run

    @property
    def kind(self) -> PairKind:
        if self.te.epochs is None:
            return PairKind.BOTH_CENSORED if self.baseline.epochs is None else PairKind.TE_CENSORED
        return PairKind.BASELINE_CENSORED if self.baseline.epochs is None else PairKind.BOTH_REACHED

    def speedup(self, censored_at: float) -> float | None:
        """baseline / TE epochs, a censored side at `censored_at`; None when both are."""
        if self.kind is PairKind.BOTH_CENSORED:
            return None
        te = censored_at if self.te.epochs is None else self.te.epochs
        base = censored_at if self.baseline.epochs is None else self.baseline.epochs
        return base / te

    def time_speedup(self) -> float | None:
        """baseline / TE training seconds to the target, when both reached it."""
        if self.te.seconds is None or self.baseline.seconds is None or self.te.seconds <= 0:
            return None
        return self.baseline.seconds / self.te.seconds


@dataclass(frozen=True)
class Comparison:
    pairs: int
    speedups: tuple[float | None, ...]  # per pair, in the pairs' order
    speedup_mean: float | None  # geometric mean over the informative pairs
    speedup_median: float | None
    ci_low: float | None
    ci_high: float | None
    prob_te_faster: float | None
    p_value: float | None
    censored_te: int  # pairs where only the TE run missed the target
    censored_baseline: int  # where only the baseline did
    censored_both: int
    time_speedup_median: float | None  # over pairs where both reached the target
    time_speedup_min: float | None
    time_speedup_max: float | None

    @property
    def informative(self) -> int:
        return self.pairs - self.censored_both


def compare(
    pairs: list[Pair], censored_at: float, resamples: int = RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> Comparison:
    """The paired comparison of one configuration (see the module docstring)."""
    speedups = tuple(p.speedup(censored_at) for p in pairs)
    ratios = [s for s in speedups if s is not None]
    logs = np.log(np.array(ratios, dtype=float))
    kinds = [p.kind for p in pairs]
    times = [t for t in (p.time_speedup() for p in pairs) if t is not None]
    low = high = mean = median = prob = p_value = None
    if ratios:
        mean = math.exp(float(logs.mean()))
        median = statistics.median(ratios)
        low, high = bootstrap_interval(logs, resamples, seed)
        prob = float(np.mean(np.where(logs > 0, 1.0, np.where(logs == 0, 0.5, 0.0))))
        p_value = sign_flip_p_value(logs, seed)
    return Comparison(
        pairs=len(pairs),
        speedups=speedups,
        speedup_mean=mean,
        speedup_median=median,
        ci_low=low,
        ci_high=high,
        prob_te_faster=prob,
        p_value=p_value,
        censored_te=kinds.count(PairKind.TE_CENSORED),
        censored_baseline=kinds.count(PairKind.BASELINE_CENSORED),
        censored_both=kinds.count(PairKind.BOTH_CENSORED),
        time_speedup_median=statistics.median(times) if times else None,
        time_speedup_min=min(times, default=None),
        time_speedup_max=max(times, default=None),
    )


def bootstrap_interval(logs: np.ndarray, resamples: int, seed: int) -> tuple[float, float]:
    """Percentile bootstrap interval (LEVEL) of the geometric mean of exp(logs)."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(logs), size=(resamples, len(logs)))
    means = logs[picks].mean(axis=1)
    tail = (1 - LEVEL) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return math.exp(float(low)), math.exp(float(high))


def sign_flip_p_value(logs: np.ndarray, seed: int) -> float:
    """One-sided p of a mean log ratio this large if TE did nothing (signs exchangeable)."""
    observed = float(logs.mean())
    if len(logs) <= MAX_EXACT_PAIRS:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=len(logs))))
    else:
        signs = np.random.default_rng(seed).choice((1.0, -1.0), size=(RESAMPLES, len(logs)))
    flipped = (signs * logs).mean(axis=1)
    return float(np.mean(flipped >= observed - 1e-12))


def holm(p_values: list[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values (None stays None)."""
    present = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(present):
        running = max(running, min(1.0, (len(present) - rank) * p))
        adjusted[i] = running
    return adjusted
