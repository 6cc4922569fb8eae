"""The one list of per-epoch metrics: names, types, meaning.

The console table, the --json records, tune.report and the Parquet schema all read this list,
so a metric is added here once. Every record holds every key; a value that was not measured is
None (never NaN), so records are valid JSON.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Metric:
    name: str
    kind: type  # int or float
    doc: str
    table_format: str = "{:.4f}"


EPOCH_METRICS: tuple[Metric, ...] = (
    Metric("epoch", int, "epoch number, from 1", "{:d}"),
    Metric("train_loss", float, "mean cross-entropy over the epoch's training steps"),
    Metric(
        "train_acc",
        float,
        "accuracy on the training split, evaluated after the epoch "
        "(eval mode); the paper's target metric. The target metric's split is evaluated "
        "every epoch, the other every other_split_every epochs and at the trial's last: "
        "null in the epochs between",
    ),
    Metric(
        "test_acc",
        float,
        "accuracy on the held-out test split after the epoch (null "
        "where not evaluated, as train_acc)",
    ),
    Metric("test_loss", float, "mean cross-entropy on the test split (null with test_acc)"),
    Metric(
        "epoch_time_s",
        float,
        "seconds of training steps in the epoch, TE included, evaluation and te_compile_s excluded",
        "{:.2f}",
    ),
    Metric(
        "te_time_s",
        float,
        "seconds of TE feedback in the epoch: binarise, estimate, apply (part of epoch_time_s)",
        "{:.3f}",
    ),
    Metric(
        "te_compile_s",
        float,
        "seconds spent compiling the TE step in the epoch (te_compile): once per worker "
        "process, in its first TE epoch; left out of epoch_time_s and te_time_s",
        "{:.2f}",
    ),
    Metric(
        "te_active_fraction",
        float,
        "share of the epoch's steps where the feedback changed a weight or gradient",
        "{:.3f}",
    ),
    Metric(
        "te_mean",
        float,
        "mean TE in bits over the sampled pairs and the epoch's "
        "recomputes (effective TE with te_estimator effective); null when the feedback is "
        "off or still warming up",
        "{:.3g}",
    ),
    Metric(
        "te_factor_mean",
        float,
        "grad mode: the mean over the epoch's steps and the last "
        "layer's weights of the factor its gradients were multiplied by (1 where no "
        "feedback acted); null in paper mode and without feedback",
        "{:.5f}",
    ),
    Metric("lr", float, "learning rate used in the epoch", "{:.4g}"),
    Metric(
        "eval_time_s",
        float,
        "seconds spent evaluating the splits evaluated after the epoch",
        "{:.2f}",
    ),
    Metric(
        "elapsed_s",
        float,
        "training seconds so far: the sum of epoch_time_s through this epoch",
        "{:.2f}",
    ),
)

METRIC_NAMES: tuple[str, ...] = tuple(m.name for m in EPOCH_METRICS)


def clean_record(values: dict[str, Any]) -> dict[str, Any]:
    """A record with exactly METRIC_NAMES, typed, non-finite floats turned into None."""
    record: dict[str, Any] = {}
    for metric in EPOCH_METRICS:
        value = values.get(metric.name)
        if value is not None:
            value = metric.kind(value)
            if isinstance(value, float) and not math.isfinite(value):
                value = None
        record[metric.name] = value
    return record
