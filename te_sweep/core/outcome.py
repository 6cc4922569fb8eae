"""A trial's outcome from its per-epoch records: its status and when it reached the target.

When: `epochs_to_target` is the first epoch whose target metric reached the target (an
integer, as the paper counts), and `epochs_to_target_frac` places the crossing inside that
epoch by linear interpolation of the metric between the evaluation before it and the one
after: with the metric at a < target after epoch e - 1 and b >= target after epoch e,

    epochs_to_target_frac = (e - 1) + (target - a) / (b - a)        (in (e - 1, e])

where "after epoch 0" is the untrained model, evaluated once before training (train.py,
`start_value`). Two trials that both reach the target in epoch 4 are then told apart by how
far into epoch 4 they got there, instead of by timer noise in the other objective. It assumes
the metric rises linearly within the epoch; it is a finer ranking, not a measured time. Without
a start value (a trial from before it was recorded) the first epoch counts whole.

Torch-free on purpose: the training loop (train.py), the Tune trainable, the scale benchmark's
stand-in trainable and the export all decide "is this trial done, and how did it end" with
these few functions, so a trial is judged the same way everywhere, and the driver and the
export never import torch to do it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from te_sweep.core.config import ResolvedConfig

STATUS_COMPLETE = "complete"  # reached the target
STATUS_CENSORED = "censored"  # ran max_epochs without reaching it
STATUS_DIVERGED = "diverged"  # a non-finite training loss
FINAL_STATUSES = (STATUS_COMPLETE, STATUS_CENSORED, STATUS_DIVERGED)
# A trial that ended without a result, or has not ended: given by the export from Tune's files.
STATUS_PRUNED, STATUS_ERROR, STATUS_UNFINISHED = "pruned", "error", "unfinished"
STATUSES = (
    STATUS_COMPLETE,
    STATUS_CENSORED,
    STATUS_PRUNED,
    STATUS_DIVERGED,
    STATUS_ERROR,
    STATUS_UNFINISHED,
)
# A configuration's status from its TE runs (configuration_status).
CONFIG_COMPLETE, CONFIG_PRUNED, CONFIG_ERROR, CONFIG_UNFINISHED = (
    "complete",
    "pruned",
    "error",
    "unfinished",
)


@dataclass
class TrialResult:
    status: str
    epochs_to_target: int | None  # None when the target was not reached
    epochs_to_target_frac: float | None  # the crossing inside that epoch (module docstring)
    seconds_to_target: float | None  # training seconds (sum of epoch_time_s) to the target
    epochs_run: int
    device: str
    records: list[dict[str, Any]] = field(default_factory=list)


def reached(cfg: ResolvedConfig, record: dict[str, Any]) -> bool:
    """The record's target metric is at or above the target (exactly on it counts)."""
    value = record[cfg.target_metric]
    return value is not None and value >= cfg.target


def trial_status(cfg: ResolvedConfig, records: list[dict[str, Any]]) -> str | None:
    """The trial's final status given its records so far, or None while it should go on."""
    if not records:
        return None
    last = records[-1]
    if last["train_loss"] is None:
        return STATUS_DIVERGED
    if reached(cfg, last):
        return STATUS_COMPLETE
    return STATUS_CENSORED if last["epoch"] >= cfg.max_epochs else None


def configuration_status(run_statuses: Collection[str], runs_expected: int) -> str:
    """A configuration's status from how its TE runs ended, one per seed.

    One rule for what the searcher tells Optuna and what configs.parquet says, so the study
    and the table never disagree: an errored run makes the configuration an error whatever
    the others did (its objectives would be a mean over fewer seeds), then a run stopped by
    the scheduler makes it pruned; with fewer ended runs than seeds, or a run still going,
    it is unfinished; otherwise complete (censored and diverged runs are results).
    """
    statuses = set(run_statuses)
    if STATUS_ERROR in statuses:
        return CONFIG_ERROR
    if STATUS_PRUNED in statuses:
        return CONFIG_PRUNED
    if len(run_statuses) < runs_expected or not statuses <= set(FINAL_STATUSES):
        return CONFIG_UNFINISHED
    return CONFIG_COMPLETE


def fractional_epochs(target: float, epoch: int, value: float, previous: float | None) -> float:
    """Where between epoch - 1 and `epoch` the metric crossed `target` (module docstring):
    `value` is the metric after `epoch` (>= target), `previous` after epoch - 1."""
    if previous is None:
        return float(epoch)  # nothing to interpolate from: the whole epoch counts
    if previous >= target:
        return float(epoch - 1)  # at the target before this epoch (only: untrained, epoch 1)
    return (epoch - 1) + (target - previous) / (value - previous)


def summarize(
    cfg: ResolvedConfig,
    status: str,
    records: list[dict[str, Any]],
    device: str,
    start_value: float | None = None,
) -> TrialResult:
    """The trial's outcome from all its records (`start_value`: the metric before training)."""
    previous = records[-2][cfg.target_metric] if len(records) >= 2 else start_value
    result = outcome_of(
        cfg, status, records[-1] if records else None, len(records), device, previous
    )
    result.records = list(records)
    return result


def outcome_of(
    cfg: ResolvedConfig,
    status: str,
    last: dict[str, Any] | None,
    epochs_run: int,
    device: str,
    previous: float | None,
) -> TrialResult:
    """The outcome from the last record and the target metric one evaluation before it: a
    trial ends at the first epoch that reached the target, so a complete trial's last record
    is its target epoch."""
    hit = last if status == STATUS_COMPLETE else None
    return TrialResult(
        status=status,
        epochs_to_target=hit["epoch"] if hit else None,
        epochs_to_target_frac=fractional_epochs(
            cfg.target, hit["epoch"], hit[cfg.target_metric], previous
        )
        if hit
        else None,
        seconds_to_target=hit["elapsed_s"] if hit else None,
        epochs_run=epochs_run,
        device=device,
    )
