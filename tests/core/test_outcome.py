"""A trial's status and epochs to target from hand-made records: every branch."""

from __future__ import annotations

import pytest

from te_sweep.core.config import TrialConfig, resolve
from te_sweep.core.objectives import censored_score, te_overhead, te_overhead_of
from te_sweep.core.outcome import (
    STATUS_CENSORED,
    STATUS_COMPLETE,
    STATUS_DIVERGED,
    fractional_epochs,
    reached,
    summarize,
    trial_status,
)

CFG = resolve(TrialConfig(target=0.8, max_epochs=4, target_metric="train_acc"))


def record(
    epoch: int,
    acc: float | None,
    loss: float | None = 1.0,
    elapsed: float = 0.0,
    te: float = 0.0,
    epoch_s: float = 1.0,
) -> dict:
    return {
        "epoch": epoch,
        "train_acc": acc,
        "test_acc": acc,
        "train_loss": loss,
        "elapsed_s": elapsed,
        "te_time_s": te,
        "epoch_time_s": epoch_s,
    }


def test_reaching_the_target_exactly_counts():
    assert reached(CFG, record(1, 0.8)) and not reached(CFG, record(1, 0.7999999))
    assert reached(CFG, record(1, 0.95))  # above it, of course
    assert not reached(CFG, record(1, None))


@pytest.mark.parametrize(
    "records, status",
    [
        ([], None),
        ([record(1, 0.5)], None),
        ([record(1, 0.5), record(2, 0.8)], STATUS_COMPLETE),
        ([record(1, 0.5), record(2, 0.6), record(3, 0.7), record(4, 0.79)], STATUS_CENSORED),
        ([record(1, 0.5), record(2, 0.9, loss=None)], STATUS_DIVERGED),  # divergence first
    ],
)
def test_trial_status(records, status):
    assert trial_status(CFG, records) == status


@pytest.mark.parametrize(
    "epoch, value, previous, expected",
    [
        (3, 0.9, 0.7, 2.5),  # half-way between the evaluations after epochs 2 and 3
        (3, 0.8, 0.7, 3.0),  # exactly on the target at the end of epoch 3
        (1, 0.85, 0.1, 1 - 0.05 / 0.75),  # from the untrained model's accuracy
        (1, 0.9, None, 1.0),  # no start value: the whole epoch
        (1, 0.9, 0.85, 0.0),  # the untrained model was already there
        (1, 0.8, 0.8, 0.0),  # exactly there before training, and after epoch 1 still exactly
    ],
)
def test_fractional_epochs(epoch, value, previous, expected):
    assert fractional_epochs(0.8, epoch, value, previous) == pytest.approx(expected)


def test_summarize_a_complete_and_a_censored_trial():
    done = summarize(
        CFG, STATUS_COMPLETE, [record(1, 0.5, elapsed=1.5), record(2, 0.9, elapsed=3.0)], "cpu", 0.1
    )
    assert (done.epochs_to_target, done.seconds_to_target, done.epochs_run) == (2, 3.0, 2)
    assert done.epochs_to_target_frac == pytest.approx(1 + 0.3 / 0.4)
    first = summarize(CFG, STATUS_COMPLETE, [record(1, 0.9)], "cpu", 0.1)
    assert first.epochs_to_target_frac == pytest.approx(0.7 / 0.8)
    miss = summarize(CFG, STATUS_CENSORED, [record(e, 0.5) for e in range(1, 5)], "cpu", 0.1)
    assert (miss.epochs_to_target, miss.epochs_to_target_frac, miss.seconds_to_target) == (
        None,
        None,
        None,
    )
    assert miss.epochs_run == 4


def test_the_crossing_is_found_between_the_last_two_evaluations():
    records = [record(1, 0.5), record(2, 0.6), record(3, 0.9)]  # crossed during epoch 3
    done = summarize(CFG, STATUS_COMPLETE, records, "cpu", start_value=0.1)
    assert done.epochs_to_target == 3
    assert done.epochs_to_target_frac == pytest.approx(2 + (0.8 - 0.6) / (0.9 - 0.6))


def test_a_diverged_trial_has_no_epochs_to_target():
    records = [record(1, 0.5), record(2, 0.9, loss=None)]
    diverged = summarize(CFG, STATUS_DIVERGED, records, "cpu", 0.1)
    assert (
        diverged.epochs_to_target,
        diverged.epochs_to_target_frac,
        diverged.seconds_to_target,
    ) == (None, None, None)


def test_objectives():
    assert censored_score(2.75, 4) == 2.75 and censored_score(None, 4) == 5.0
    assert censored_score(None, 5) == 6.0 and censored_score(0.0, 5) == 0.0  # odd, and zero
    assert te_overhead(
        [{"te_time_s": None, "epoch_time_s": 2.0}, {"te_time_s": 0.5, "epoch_time_s": None}]
    ) == pytest.approx(0.5 / 1.5)
    assert te_overhead_of(0.5, 1.0) == pytest.approx(1.0)  # rest of training 0.5 s
    assert te_overhead_of(2.0, 1.0) == 0.0  # inconsistent timings: no negative overhead
    assert te_overhead(
        [record(1, 0.5, te=0.1, epoch_s=1.1), record(2, 0.6, te=0.1, epoch_s=1.1)]
    ) == pytest.approx(0.1)
    assert te_overhead_of(0.0, 0.0) == 0.0 and te_overhead_of(1.0, 1.0) == 0.0
