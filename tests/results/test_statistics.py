"""Paired comparisons over seeds, on hand-made pairs: every branch of every number."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from te_sweep.results.statistics import (
    BOOTSTRAP_SEED,
    RESAMPLES,
    Pair,
    PairKind,
    Run,
    bootstrap_interval,
    compare,
    holm,
    sign_flip_p_value,
)

CENSORED_AT = 11.0  # max_epochs 10 + 1


def pair(
    seed: int,
    te: float | None,
    base: float | None,
    te_s: float | None = None,
    base_s: float | None = None,
) -> Pair:
    return Pair(seed, Run(te, te_s), Run(base, base_s))


@pytest.mark.parametrize(
    "te, base, kind, speedup",
    [
        (4.0, 5.0, PairKind.BOTH_REACHED, 1.25),
        (5.0, 4.0, PairKind.BOTH_REACHED, 0.8),
        (4.5, 4.5, PairKind.BOTH_REACHED, 1.0),  # a real tie: both reached at 4.5 epochs
        (None, 5.5, PairKind.TE_CENSORED, 0.5),  # TE at 11: an upper bound
        (2.75, None, PairKind.BASELINE_CENSORED, 4.0),  # baseline at 11: a lower bound
        (None, None, PairKind.BOTH_CENSORED, None),  # no information, never 1.0
    ],
)
def test_each_kind_of_pair(te, base, kind, speedup):
    p = pair(0, te, base)
    assert p.kind is kind
    assert p.speedup(CENSORED_AT) == speedup


def test_a_comparison_counts_and_excludes_what_it_must():
    pairs = [
        pair(1, 4.0, 5.0, 40.0, 60.0),
        pair(2, None, 5.5),
        pair(3, 2.75, None),
        pair(4, None, None),
    ]
    c = compare(pairs, CENSORED_AT)
    assert c.pairs == 4 and c.informative == 3
    assert c.speedups == (1.25, 0.5, 4.0, None)
    assert (c.censored_te, c.censored_baseline, c.censored_both) == (1, 1, 1)
    assert c.speedup_mean == pytest.approx((1.25 * 0.5 * 4.0) ** (1 / 3))
    assert c.speedup_median == 1.25
    assert c.prob_te_faster == pytest.approx(2 / 3)
    assert c.time_speedup_median == c.time_speedup_min == c.time_speedup_max == 1.5


def test_only_censored_pairs_give_no_estimate():
    c = compare([pair(1, None, None), pair(2, None, None)], CENSORED_AT)
    assert c.informative == 0 and c.censored_both == 2
    assert (c.speedup_mean, c.ci_low, c.ci_high, c.prob_te_faster, c.p_value) == (
        None,
        None,
        None,
        None,
        None,
    )


def test_no_effect_gives_an_interval_around_one():
    c = compare([pair(s, e, e) for s, e in enumerate([4.0, 5.0, 5.0, 4.5])], CENSORED_AT)
    assert c.speedup_mean == 1.0 and c.ci_low == 1.0 and c.ci_high == 1.0
    assert c.prob_te_faster == 0.5  # every pair a tie
    assert c.p_value == 1.0


def test_swapping_te_and_baseline_inverts_the_speedup():
    pairs = [pair(1, 4.0, 5.0), pair(2, 3.5, 5.5), pair(3, 5.0, 4.5)]
    swapped = [pair(p.seed, p.baseline.epochs, p.te.epochs) for p in pairs]
    a, b = compare(pairs, CENSORED_AT), compare(swapped, CENSORED_AT)
    assert a.speedup_mean * b.speedup_mean == pytest.approx(1.0)
    assert a.ci_low * b.ci_high == pytest.approx(1.0)
    assert a.prob_te_faster + b.prob_te_faster == pytest.approx(1.0)


def test_a_clear_effect_gives_an_interval_above_one():
    c = compare([pair(s, 4.0, 5.0 + 0.1 * s) for s in range(6)], CENSORED_AT)
    assert c.ci_low > 1.2 and c.ci_high < 1.4
    assert c.prob_te_faster == 1.0
    assert c.p_value == pytest.approx(1 / 2**6)


def test_the_bootstrap_is_reproducible_and_percentile():
    logs = np.log(np.array([1.25, 0.8, 1.1]))
    assert bootstrap_interval(logs, 10_000, seed=1) == bootstrap_interval(logs, 10_000, seed=1)
    low, high = bootstrap_interval(logs, 10_000, seed=1)
    # 3 pairs: a resample of three copies of the lowest has chance 1/27 > 2.5%, so the 95%
    # percentile interval is exactly [lowest, highest]
    assert (low, high) == pytest.approx((0.8, 1.25))
    logs = np.log(np.array([1.25, 0.8, 1.1, 1.0, 1.05, 0.95, 1.2, 1.15]))
    low, high = bootstrap_interval(logs, 10_000, seed=1)
    assert 0.8 < low < math.exp(logs.mean()) < high < 1.25  # 8 pairs: inside the range


def test_sign_flip_p_values_are_exact():
    assert sign_flip_p_value(np.log(np.array([1.5, 1.5, 1.5])), 0) == 1 / 8
    assert sign_flip_p_value(np.log(np.array([1.5, 1.2, 0.9])), 0) == 2 / 8
    assert sign_flip_p_value(np.log(np.array([0.5, 0.5])), 0) == 1.0
    big = sign_flip_p_value(np.full(20, 0.1), 0)  # sampled beyond 16 pairs
    assert big < 0.001


def test_holm_adjusts_step_down():
    assert holm([0.01, 0.04, None, 0.03]) == pytest.approx([0.03, 0.06, None, 0.06])
    assert holm([]) == [] and holm([None]) == [None]
    assert holm([0.5, 0.9]) == [1.0, 1.0]
    assert holm([0.6, 0.7]) == [1.0, 1.0]  # 2 x 0.6 capped at 1


def test_the_interval_is_the_2_5_and_97_5_percentiles_of_the_resampled_means():
    logs = np.log(np.array([1.3, 0.9, 1.1, 1.05, 0.8, 1.2]))
    low, high = bootstrap_interval(logs, 2000, 7)
    picks = np.random.default_rng(7).integers(0, len(logs), size=(2000, len(logs)))
    means = np.sort(logs[picks].mean(axis=1))
    assert math.log(low) == pytest.approx(np.quantile(means, 0.025))
    assert math.log(high) == pytest.approx(np.quantile(means, 0.975))
    assert means[0] < math.log(low) < math.log(high) < means[-1]  # not the extremes


def test_a_time_speedup_needs_positive_seconds_on_the_te_side():
    assert Pair(0, Run(3.0, 0.0), Run(3.0, 10.0)).time_speedup() is None
    assert Pair(0, Run(3.0, -1.0), Run(3.0, 10.0)).time_speedup() is None
    assert Pair(0, Run(3.0, 4.0), Run(3.0, 10.0)).time_speedup() == pytest.approx(2.5)
    assert Pair(0, Run(3.0, 0.5), Run(3.0, 10.0)).time_speedup() == pytest.approx(20.0)


def test_holm_on_a_longer_list():
    adjusted = holm([0.01, 0.04, 0.03, 0.5, None])
    assert adjusted[:4] == pytest.approx([0.04, 0.09, 0.09, 0.5]) and adjusted[4] is None


def test_sixteen_pairs_are_enumerated_exactly_and_seventeen_sampled():
    """MAX_EXACT_PAIRS: 2^16 sign patterns are enumerated, so 16 equal positive ratios give
    exactly 1/2^16; from 17 on, RESAMPLES seeded patterns are drawn, so p is a multiple of
    1/RESAMPLES (the exact p of these 17 is not)."""
    assert sign_flip_p_value(np.full(16, 0.2), BOOTSTRAP_SEED) == 1 / 2**16
    logs = np.log(np.array(SEVENTEEN))
    sampled = sign_flip_p_value(logs, BOOTSTRAP_SEED)
    assert sampled * RESAMPLES == pytest.approx(round(sampled * RESAMPLES), abs=1e-9)
    signs = np.array(list(itertools.product((1.0, -1.0), repeat=len(logs))))
    exact = float(np.mean((signs * logs).mean(axis=1) >= logs.mean() - 1e-12))
    assert sampled != exact and sampled == pytest.approx(exact, abs=0.003)


SEVENTEEN = [
    1.3,
    0.9,
    1.2,
    1.1,
    1.05,
    0.97,
    1.15,
    1.02,
    0.99,
    1.08,
    1.12,
    0.95,
    1.01,
    1.04,
    1.09,
    1.03,
    1.06,
]


def test_the_published_numbers_of_a_sweep_are_reproducible_to_the_last_digit():
    """The same pairs give the same interval and p on every export (RESAMPLES resamples from
    BOOTSTRAP_SEED): values computed once and pinned, so a changed seed, resample count or
    draw shows here."""
    runs = [(4.0, 5.0), (5.0, 4.5), (3.5, 4.0), (None, 6.0), (4.2, 4.0), (3.9, None)]
    c = compare([pair(s, te, base) for s, (te, base) in enumerate(runs)], CENSORED_AT)
    assert (c.ci_low, c.ci_high) == pytest.approx(
        (0.7701406151427715, 1.6988612467324153), rel=1e-12
    )
    assert c.p_value == 0.328125 and c.speedup_mean == pytest.approx(1.111322999137349)
    assert sign_flip_p_value(np.log(np.array(SEVENTEEN)), BOOTSTRAP_SEED) == 0.0089
