"""Plain-text tables for the terminal: a header once, then one aligned row per record."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from te_sweep.core.metrics import EPOCH_METRICS

TABLE_COLUMNS = (
    "epoch",
    "train_loss",
    "train_acc",
    "test_acc",
    "epoch_time_s",
    "te_time_s",
    "te_active_fraction",
    "te_mean",
    "lr",
)
_FORMATS = {m.name: m.table_format for m in EPOCH_METRICS}


def counts(values: list[str]) -> str:
    """'2 complete, 1 error': how many of each distinct value, sorted by value."""
    return ", ".join(f"{values.count(v)} {v}" for v in sorted(set(values)))


def cell(value: Any, spec: str = "{}") -> str:
    """A table cell: '-' for a value that was not measured (None), else the value formatted."""
    return "-" if value is None else spec.format(value)


class EpochTable:
    """Prints per-epoch records as they come (the live table of `te-sweep train`)."""

    def __init__(self, echo: Any, columns: Iterable[str] = TABLE_COLUMNS) -> None:
        self.echo = echo
        self.columns = tuple(columns)
        self.widths = [max(len(c), 8) for c in self.columns]
        self.started = False

    def row(self, record: dict[str, Any]) -> None:
        if not self.started:
            self.echo("  ".join(c.rjust(w) for c, w in zip(self.columns, self.widths, strict=True)))
            self.started = True
        cells = []
        for column, width in zip(self.columns, self.widths, strict=True):
            value = record.get(column)
            cells.append(cell(value, _FORMATS[column]).rjust(width))
        self.echo("  ".join(cells))
