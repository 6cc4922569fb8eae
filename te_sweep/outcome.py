"""A trial's outcome from its per-epoch records: its status and when it reached the target.

Torch-free on purpose: the training loop (train.py), the Tune trainable, the scale benchmark's
stand-in trainable and the export all decide "is this trial done, and how did it end" with
these few functions, so a trial is judged the same way everywhere, and the driver and the
export never import torch to do it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from te_sweep.config import TrialConfig

STATUS_COMPLETE = "complete"  # reached the target
STATUS_CENSORED = "censored"  # ran max_epochs without reaching it
STATUS_DIVERGED = "diverged"  # a non-finite training loss
FINAL_STATUSES = (STATUS_COMPLETE, STATUS_CENSORED, STATUS_DIVERGED)


@dataclass
class TrialResult:
    status: str
    epochs_to_target: int | None  # None when the target was not reached
    seconds_to_target: float | None  # training seconds (sum of epoch_time_s) to the target
    epochs_run: int
    device: str
    records: list[dict[str, Any]] = field(default_factory=list)


def reached(cfg: TrialConfig, record: dict[str, Any]) -> bool:
    """The record's target metric is at or above the target (exactly on it counts)."""
    value = record[cfg.target_metric]
    return value is not None and value >= cfg.target


def trial_status(cfg: TrialConfig, records: list[dict[str, Any]]) -> str | None:
    """The trial's final status given its records so far, or None while it should go on."""
    if not records:
        return None
    last = records[-1]
    if last["train_loss"] is None:
        return STATUS_DIVERGED
    if reached(cfg, last):
        return STATUS_COMPLETE
    return STATUS_CENSORED if last["epoch"] >= cfg.max_epochs else None


def summarize(status: str, records: list[dict[str, Any]], device: str) -> TrialResult:
    """The trial's outcome from all its records."""
    result = outcome_of(status, records[-1] if records else None, len(records), device)
    result.records = list(records)
    return result


def outcome_of(status: str, last: dict[str, Any] | None, epochs_run: int,
               device: str) -> TrialResult:
    """The outcome from the last record alone: a trial ends at the first epoch that reached
    the target, so a complete trial's last record is its target epoch."""
    hit = last if status == STATUS_COMPLETE else None
    return TrialResult(
        status=status,
        epochs_to_target=hit["epoch"] if hit else None,
        seconds_to_target=hit["elapsed_s"] if hit else None,
        epochs_run=epochs_run, device=device)
