"""Rules that hold for every input, checked on inputs hypothesis draws (and shrinks on failure).

Each property is one a user's number depends on: the batched TE is pyinform's TE, a paired
speedup is symmetric in its two sides, a configuration never beats itself, censoring is never
a tie, and the ring buffer feeding the TE holds exactly the last W samples in order.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pyinform
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from te_sweep.core.te import transfer_entropy, transfer_entropy_all_pairs
from te_sweep.core.te_window import SlidingCounts
from te_sweep.results.statistics import Pair, PairKind, Run, compare

# tools/mutate.py lowers the examples per property (it runs the tests once per mutant).
PROPERTY = settings(
    max_examples=int(os.environ.get("TE_SWEEP_PROPERTY_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
MAX_EPOCHS = 10
CENSORED_AT = MAX_EPOCHS + 1.0
RESAMPLES = 500  # the bootstrap's resamples: enough for the properties, cheap per example

bits = st.integers(0, 1)
epochs = st.one_of(st.none(), st.floats(0.5, MAX_EPOCHS, allow_nan=False))  # None: censored


@st.composite
def binary_series(draw, min_width: int = 2, max_width: int = 80, max_columns: int = 4):
    """A (W, P) {0,1} array with W >= 2: arbitrary binary series, constant ones included."""
    width = draw(st.integers(min_width, max_width))
    columns = draw(st.integers(1, max_columns))
    flat = draw(st.lists(bits, min_size=width * columns, max_size=width * columns))
    return np.array(flat, dtype=np.int64).reshape(width, columns)


@st.composite
def pairs(draw, min_size: int = 1, max_size: int = 8):
    """Paired runs over distinct seeds, either side possibly censored."""
    n = draw(st.integers(min_size, max_size))
    return [Pair(seed, Run(draw(epochs)), Run(draw(epochs))) for seed in range(n)]


# --------------------------------------------------------------------------- the estimator
@PROPERTY
@given(series=binary_series(), data=st.data())
def test_batched_te_equals_pyinform_on_arbitrary_series(series, data):
    width, columns = series.shape
    target = np.array(
        data.draw(st.lists(bits, min_size=width * columns, max_size=width * columns))
    ).reshape(width, columns)
    src, tgt = torch.from_numpy(series).double(), torch.from_numpy(target).double()
    paired = transfer_entropy(src, tgt)
    every = transfer_entropy_all_pairs(src, tgt)
    for i in range(columns):
        expected = pyinform.transfer_entropy(series[:, i], target[:, i], k=1)
        assert paired[i].item() == pytest.approx(expected, abs=1e-9)
        for j in range(columns):
            cross = pyinform.transfer_entropy(series[:, i], target[:, j], k=1)
            assert every[i, j].item() == pytest.approx(cross, abs=1e-9)


@PROPERTY
@given(
    window=st.integers(2, 40),
    units=st.integers(1, 3),
    batches=st.lists(st.integers(0, 60), min_size=1, max_size=12),
    seed=st.integers(0, 99),
)
def test_sliding_counts_give_the_te_of_the_last_window_samples(window, units, batches, seed):
    """However the samples arrive (one at a time, more than a window at once, wrapping the
    ring), the kept counts give the TE of the last `window` samples."""
    generator = torch.Generator().manual_seed(seed)
    counts = SlidingCounts(window, units, 2, torch.device("cpu"))
    history = torch.zeros(0, units + 2, dtype=torch.bool)
    for size in batches:
        rows = torch.rand(size, units + 2, generator=generator) > 0.5
        counts.push(rows)
        history = torch.cat([history, rows])
        assert counts.seen == min(window - 1, max(0, len(history) - 1))
        if counts.full:
            last = history[-window:]
            expected = transfer_entropy_all_pairs(last[:, :units].double(), last[:, units:]).T
            torch.testing.assert_close(counts.te(), expected, rtol=0, atol=1e-12)


# ------------------------------------------------------------------------ the comparisons
@PROPERTY
@given(runs=pairs())
def test_swapping_te_and_baseline_inverts_every_paired_speedup(runs):
    swapped = [Pair(p.seed, p.baseline, p.te) for p in runs]
    forward = compare(runs, CENSORED_AT, resamples=RESAMPLES)
    backward = compare(swapped, CENSORED_AT, resamples=RESAMPLES)
    for there, back in zip(forward.speedups, backward.speedups, strict=False):
        assert (there is None) == (back is None)
        if there is not None:
            assert there * back == pytest.approx(1.0)
    assert forward.censored_te == backward.censored_baseline
    assert forward.censored_baseline == backward.censored_te
    if forward.speedup_mean is not None:
        assert forward.speedup_mean * backward.speedup_mean == pytest.approx(1.0)
        assert forward.prob_te_faster + backward.prob_te_faster == pytest.approx(1.0)


@PROPERTY
@given(outcomes=st.lists(epochs, min_size=1, max_size=8))
def test_a_configuration_compared_with_itself_is_never_faster(outcomes):
    same = [Pair(seed, Run(e), Run(e)) for seed, e in enumerate(outcomes)]
    result = compare(same, CENSORED_AT, resamples=RESAMPLES)
    if all(e is None for e in outcomes):
        assert result.speedup_mean is None and result.censored_both == len(outcomes)
        return
    assert result.speedup_mean == pytest.approx(1.0)
    assert result.ci_low == pytest.approx(1.0) and result.ci_high == pytest.approx(1.0)
    assert result.prob_te_faster == pytest.approx(0.5)
    assert result.p_value == pytest.approx(1.0)


@PROPERTY
@given(reached=st.floats(0.5, MAX_EPOCHS, allow_nan=False), te_censored=st.booleans())
def test_censoring_one_side_is_a_bound_never_a_tie(reached, te_censored):
    te, baseline = (Run(None), Run(reached)) if te_censored else (Run(reached), Run(None))
    pair = Pair(0, te, baseline)
    ratio = pair.speedup(CENSORED_AT)
    assert ratio != 1.0
    if te_censored:
        assert pair.kind is PairKind.TE_CENSORED and ratio < 1.0  # TE took longer still
    else:
        assert pair.kind is PairKind.BASELINE_CENSORED and ratio > 1.0
    both = Pair(1, Run(None), Run(None))
    assert both.kind is PairKind.BOTH_CENSORED and both.speedup(CENSORED_AT) is None
    result = compare([pair, both], CENSORED_AT, resamples=RESAMPLES)
    assert result.censored_both == 1 and result.informative == 1
    assert math.isclose(result.speedup_mean, ratio)
