"""The sweep's objectives and comparisons, computed the same way everywhere.

Optuna minimises two numbers per TE trial: `objective_epochs` (epochs to the target, or
max_epochs + 1 when the target was never reached: a censored trial) and `te_overhead`
(seconds of TE feedback per second of the rest of training). Speedups are paired comparisons
with the baseline of the same seed (statistics.py). The trainable reports running values after
every epoch; export recomputes them from the per-epoch records, so the Parquet tables never
depend on Ray.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def censored_score(epochs_to_target: float | None, max_epochs: int) -> float:
    """(Fractional) epochs to target, or max_epochs + 1 when the target was not reached."""
    return float(epochs_to_target) if epochs_to_target is not None else float(max_epochs + 1)


def te_overhead(records: Sequence[dict[str, Any]]) -> float:
    """te_time_s / (epoch_time_s - te_time_s), summed over the trial's epochs."""
    return te_overhead_of(
        total_of([r["te_time_s"] for r in records]), total_of([r["epoch_time_s"] for r in records])
    )


def total_of(values: Sequence[float | None]) -> float:
    """A trial's sum of a per-epoch time, in epoch order, a missing one as 0. The trainable
    (live) and the export (from the files) both sum with this, so their values agree."""
    return sum(v or 0.0 for v in values)


def mean_of_present(values: Sequence[float | None]) -> float | None:
    """The mean over the epochs that have the value (sum / count, in epoch order); None when
    none has. Shared by the trainable and the export, as total_of."""
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def te_overhead_of(te_seconds: float, train_seconds: float) -> float:
    """TE seconds per second of the rest of training (0 when nothing else was timed)."""
    rest = train_seconds - te_seconds
    return te_seconds / rest if rest > 0 else 0.0
