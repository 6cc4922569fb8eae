"""What a trial tells Tune after every epoch, and where it ran (given by the caller): one dict.

Both trainables (the real one in trainable.py and the scale benchmark's stand-in in standin.py)
report through `tune_result`, so the live view, the searcher, the scheduler and the export see
the same keys whatever trains. Torch-free, so the stand-in's workers stay small.

Tune keeps, for every trial and every number at the top of its results, running statistics
(max, min, mean, the last 5 and 10 values) in its experiment state, rewritten at every
snapshot: with the whole epoch record at the top that was 28.5 KB per trial, 285 MB at 10,000
trials, most of it statistics nobody reads. So only what Tune's scheduler, the searcher and the
live view read is a number at the top (TOP_LEVEL, the objectives, FACTOR_KEY); the rest of the
epoch travels as one list, RECORD_KEY in RECORD_COLUMNS' order, which Tune keeps in the trial's
last result and result.json (the export's source) without statistics.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from te_sweep.core.config import ResolvedConfig
from te_sweep.core.metrics import EPOCH_METRICS
from te_sweep.core.objectives import censored_score, mean_of_present, te_overhead
from te_sweep.core.outcome import summarize, trial_status

RUNNING = "running"  # trial_status of a trial that goes on after this epoch
FACTOR_KEY = "te_factor_trial"  # the mean last-layer gradient factor over the trial's epochs
RECORD_KEY = "record"  # the epoch record and the trial's times, as a list (the docstring)
TOP_LEVEL = ("epoch", "train_acc", "test_acc")  # ASHA's time and metric; the live view's
# The record list only grows at its end, so that a sweep reported under an older list (and
# resumed after an upgrade) reads back: its lists are shorter, and the missing columns are null.
LATER_COLUMNS = ("te_compile_s",)
RECORD_COLUMNS = (
    *(m.name for m in EPOCH_METRICS if m.name not in LATER_COLUMNS),
    "start_value",
    "started_at",
    "reported_at",
    "te_compiled",
    *LATER_COLUMNS,
)


class Role:
    """A trial's `role` in the Tune config and in trials.parquet."""

    TE = "te"
    BASELINE = "baseline"
    CONTROL = "control"  # a baseline with the last layer's lr scaled as a TE run's feedback did


def mean_factor(records: Sequence[dict[str, Any]]) -> float | None:
    """The mean over epochs of te_factor_mean (epochs have equal steps); None without it."""
    return mean_of_present([r.get("te_factor_mean") for r in records])


def tune_result(
    cfg: ResolvedConfig,
    records: Sequence[dict[str, Any]],
    role: str,
    where: dict[str, Any],
    device: str,
    started_at: float,
    start_value: float | None,
) -> dict[str, Any]:
    """The dict reported to Tune after an epoch: the record plus the trial's running state.

    `started_at` is when the trial first started (Unix seconds; kept across retries and
    resumes in the checkpoint); `reported_at` is now, i.e. when this epoch ended;
    `start_value` is the target metric before training (outcome.py).
    """
    records = list(records)
    status = trial_status(cfg, records) or RUNNING
    outcome = summarize(cfg, status, records, device, start_value)
    record = {
        **records[-1],
        "start_value": start_value,
        "started_at": started_at,
        "reported_at": time.time(),
        "te_compiled": where.get("te_compiled"),
    }
    return {
        **{key: record.get(key) for key in TOP_LEVEL},
        "role": role,
        "trial_status": status,
        "objective_epochs": censored_score(outcome.epochs_to_target_frac, cfg.max_epochs),
        "te_overhead": te_overhead(records),
        FACTOR_KEY: mean_factor(records),
        "device_name": device,
        **{key: value for key, value in where.items() if key != "te_compiled"},  # strings
        RECORD_KEY: [_as_number(record.get(column)) for column in RECORD_COLUMNS],
    }


def _as_number(value: Any) -> float | int | None:
    """A bool as 1 or 0 (the list holds numbers); numbers and None as they are."""
    return int(value) if isinstance(value, bool) else value


def record_value(result: dict[str, Any], column: str) -> Any:
    """One of RECORD_COLUMNS from a result tune_result built."""
    return result[RECORD_KEY][RECORD_COLUMNS.index(column)]
