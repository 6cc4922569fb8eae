"""A sweep's report lines (every trial's result.json) as one table, fast at 10,000 trials.

At 10,000 trials x 50 epochs there are half a million lines, 0.5 GB: the result.json files are
read straight into one buffer a piece at a time (about PIECE_BYTES of them), and each piece is
parsed at once by pyarrow's JSON reader (C++, threaded) into a table with only the columns the
export needs (of lines with a whole record list, only the list and the strings beside it);
deduplication (a trial that restarted reports some epochs again: the last report of each
epoch wins) and the per-trial sums are array operations. A report line cut short by a crash is
dropped; if a piece holds anything else pyarrow cannot parse, the slow per-line Python path
reads that piece's files instead.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from te_sweep.core.metrics import EPOCH_METRICS
from te_sweep.core.reporting import RECORD_COLUMNS, RECORD_KEY

StrPath = str | os.PathLike[str]
TRIAL_COLUMN, LINE_COLUMN = "_trial", "_line"  # added: which trial, which line overall
PIECE_BYTES = 64 << 20  # report lines read and parsed at a time (read_results)

# The result columns the export reads: the epoch record, and what reporting.tune_result adds.
RESULT_SCHEMA = pa.schema(
    [pa.field(m.name, pa.int64() if m.kind is int else pa.float64()) for m in EPOCH_METRICS]
    + [
        pa.field(name, pa.string())
        for name in (
            "trial_status",
            "node_id",
            "hostname",
            "gpu_ids",
            "device_name",
            "omp_wait_policy",
        )
    ]
    + [pa.field("te_compiled", pa.bool_())]
    + [pa.field(name, pa.float64()) for name in ("started_at", "reported_at", "start_value")]
)


# What result.json lines are parsed into: RESULT_SCHEMA's columns at the top (a sweep reported
# before the record list, and the top-level keys of one reported since), and the list.
PARSE_SCHEMA = RESULT_SCHEMA.append(pa.field(RECORD_KEY, pa.list_(pa.float64())))
# What lines with a whole record list need parsed: the list, and what is not in it.
LEAN_SCHEMA = pa.schema(
    [f for f in PARSE_SCHEMA if f.name == RECORD_KEY or f.name not in RECORD_COLUMNS]
)


@dataclass
class Reports:
    """The result.json lines of some trials (a piece of a sweep: read_results) in one buffer,
    read straight into it (no copy per file and none to join them), and the buffer's span of
    each trial. A last line without its newline was cut short by a crash and is left out."""

    data: bytearray
    spans: list[tuple[int, int]]  # data[start:end] are trial i's whole lines
    line_counts: list[int]  # counted as each file is read, while its bytes are in cache

    @classmethod
    def read(cls, paths: Sequence[StrPath | None], sizes: Sequence[int] | None = None) -> Reports:
        """The files at `paths` (None: a trial without one), their first `sizes` bytes (their
        sizes now when not given). Plain string paths are what a 10,000-trial export gives:
        pathlib's objects cost more than the reads."""
        if sizes is None:
            sizes = [_size(path) for path in paths]
        data = bytearray(sum(sizes))
        spans, counts = [], []
        end = 0
        with memoryview(data) as view:
            for path, size in zip(paths, sizes, strict=True):
                start = end
                if path is not None and size:
                    with open(path, "rb") as file:  # a file grown since: its first `size` bytes
                        got = file.readinto(view[start : start + size])
                    newline = data.rfind(b"\n", start, start + got)
                    end = newline + 1 if newline >= 0 else start
                spans.append((start, end))
                counts.append(data.count(b"\n", start, end))
        del data[end:]
        return cls(data, spans, counts)

    def chunks(self) -> list[bytes]:
        return [bytes(self.data[start:end]) for start, end in self.spans]


def _size(path: StrPath | None) -> int:
    """The size of a regular file at `path`; 0 when there is none."""
    if path is None:
        return 0
    try:
        info = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return 0
    return info.st_size if stat.S_ISREG(info.st_mode) else 0


def _parse_fast(data: pa.Buffer, schema: pa.Schema) -> pa.Table:
    return pajson.read_json(
        pa.BufferReader(data),
        read_options=pajson.ReadOptions(block_size=1 << 24),
        parse_options=pajson.ParseOptions(
            explicit_schema=schema, unexpected_field_behavior="ignore"
        ),
    )


def _shortest_record(record: pa.ChunkedArray) -> int | None:
    """The length of the shortest record list; None when no line has one."""
    return pc.min(pc.list_value_length(record)).as_py()  # type: ignore[no-any-return]


def _whole_records(table: pa.Table) -> bool:
    """Whether every line has a record list of the current length (a lean parse is enough)."""
    record = table[RECORD_KEY]
    return _is_whole(record, _shortest_record(record))


def _is_whole(record: pa.ChunkedArray, shortest: int | None) -> bool:
    return record.null_count == 0 and shortest in (None, len(RECORD_COLUMNS))  # None: no line


def _parse_slow(chunks: list[bytes]) -> tuple[pa.Table, list[int]]:
    """Line by line, skipping what is not JSON; returns the table and each chunk's row count."""
    rows: list[dict[str, Any]] = []
    counts: list[int] = []
    for chunk in chunks:
        parsed = []
        for line in chunk.splitlines():
            try:
                parsed.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        rows.extend({name: row.get(name) for name in PARSE_SCHEMA.names} for row in parsed)
        counts.append(len(parsed))
    return pa.Table.from_pylist(rows, schema=PARSE_SCHEMA), counts


def read_results(paths: Sequence[StrPath | None], piece_bytes: int = PIECE_BYTES) -> pa.Table:
    """Every file's lines as `parse_results` makes them (trial i's from paths[i]), read and
    parsed about `piece_bytes` at a time: at 10,000 trials x 50 epochs the lines are 0.5 GB
    and their table a fifth of that, so the export's memory is the table's, not the text's."""
    sizes = [_size(path) for path in paths]
    tables: list[pa.Table] = []
    lines = 0
    for start, end in _pieces(sizes, piece_bytes):
        reports = Reports.read(paths[start:end], sizes[start:end])
        tables.append(parse_results(reports, first_trial=start, first_line=lines))
        lines += tables[-1].num_rows
    return pa.concat_tables(tables)


def _pieces(sizes: Sequence[int], limit: int) -> list[tuple[int, int]]:
    """Consecutive ranges of files whose sizes add up to at most `limit` (a larger file in a
    range of its own); one empty range when there is no file."""
    pieces, start, total = [], 0, 0
    for index, size in enumerate(sizes):
        if index > start and total + size > limit:
            pieces.append((start, index))
            start, total = index, 0
        total += size
    pieces.append((start, len(sizes)))
    return pieces


def parse_results(reports: Reports, first_trial: int, first_line: int) -> pa.Table:
    """One table of every trial's lines, with TRIAL_COLUMN (trial index) and LINE_COLUMN,
    counted from `first_trial` and `first_line` (for a piece of a sweep's files).

    Parsed with LEAN_SCHEMA first: lines reported since the record list was whole (all of
    this version's) carry every column there, and the top-level copies of a few of its values
    (for Tune's scheduler) cost a fifth of the parse. Anything older is parsed again with
    PARSE_SCHEMA; anything pyarrow cannot parse, line by line."""
    counts = reports.line_counts
    buffer = pa.py_buffer(reports.data)
    try:
        table = _parse_fast(buffer, LEAN_SCHEMA)
        if sum(counts) != table.num_rows:  # blank lines: count them the slow way
            raise pa.ArrowInvalid("line count mismatch")
        if not _whole_records(table):
            table = _parse_fast(buffer, PARSE_SCHEMA)
    except pa.ArrowInvalid:
        table, counts = _parse_slow(reports.chunks())
    table = _unpack_record(table)
    trials = np.arange(first_trial, first_trial + len(reports.spans), dtype=np.int64)
    table = table.append_column(TRIAL_COLUMN, int64_array(np.repeat(trials, counts)))
    lines = np.arange(first_line, first_line + table.num_rows)
    return table.append_column(LINE_COLUMN, int64_array(lines))


def _unpack_record(table: pa.Table) -> pa.Table:
    """RESULT_SCHEMA's columns: each from the record list where a line has one (reported since
    the list, reporting.py), else from the line's top level (reported before it)."""
    record = table[RECORD_KEY]
    shortest = _shortest_record(record)  # None: no line has a list
    whole = _split_whole_records(record) if _is_whole(record, shortest) else None
    columns = []
    for field_ in RESULT_SCHEMA:
        top = table[field_.name] if field_.name in table.column_names else None
        column = top
        if field_.name in RECORD_COLUMNS and shortest is not None:
            at = RECORD_COLUMNS.index(field_.name)
            if whole is not None:
                packed = whole[at]
            elif at >= shortest:  # a shorter (older) list: null there, so slice to pad
                record_at = pc.list_slice(record, at, at + 1, return_fixed_size_list=True)
                packed = pc.list_element(record_at, 0)
            else:  # every list has it: read it directly
                packed = pc.list_element(record, at)
            packed = pc.cast(packed, field_.type)
            column = packed if top is None else pc.coalesce(packed, top)
        columns.append(column if column is not None else pa.nulls(table.num_rows, field_.type))
    return pa.table(columns, schema=RESULT_SCHEMA)


def _split_whole_records(record: pa.ChunkedArray) -> list[pa.Array]:
    """RECORD_COLUMNS' columns of lists that all have every one: their values as one matrix,
    a column per column (pc.list_element would walk the lists once per column, 18 times)."""
    values = record.combine_chunks().flatten()
    width = len(RECORD_COLUMNS)
    numbers = values.to_numpy(zero_copy_only=False).reshape(-1, width)  # null: NaN
    valid = values.is_valid().to_numpy(zero_copy_only=False).reshape(-1, width)
    return [float64_array(numbers[:, at], valid[:, at]) for at in range(width)]


def float64_array(values: np.ndarray, valid: np.ndarray) -> pa.Array:
    """An arrow array over the numpy values, null where `valid` is False (see int64_array)."""
    values = np.ascontiguousarray(values, dtype=np.float64)
    bitmap = np.packbits(valid, bitorder="little")
    return pa.Array.from_buffers(
        pa.float64(), len(values), [pa.py_buffer(bitmap), pa.py_buffer(values)]
    )


def int64_array(values: np.ndarray) -> pa.Array:
    """An arrow array over the numpy buffer (pa.array(ndarray) would import pandas: 0.5 s)."""
    values = np.ascontiguousarray(values, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), len(values), [None, pa.py_buffer(values)])


def last_report_per_epoch(table: pa.Table) -> pa.Table:
    """Rows sorted by (trial, epoch); of several reports of one epoch, the last one."""
    table = table.filter(table["epoch"].is_valid())
    if not _in_order(table):  # a trial restored from a checkpoint reported epochs again
        table = table.sort_by(
            [(TRIAL_COLUMN, "ascending"), ("epoch", "ascending"), (LINE_COLUMN, "ascending")]
        )
    if table.num_rows < 2:
        return table
    trial, epoch = table[TRIAL_COLUMN].combine_chunks(), table["epoch"].combine_chunks()
    changes = pc.or_(pc.not_equal(trial[1:], trial[:-1]), pc.not_equal(epoch[1:], epoch[:-1]))
    return table.filter(pa.concat_arrays([changes, pa.array([True])]))


def _in_order(table: pa.Table) -> bool:
    """Whether the rows are sorted by (trial, epoch) already, as they are read unless a trial
    reported an epoch again: then sorting them (a tenth of a second at 500,000) is skipped."""
    trial, epoch = table[TRIAL_COLUMN].to_numpy(), table["epoch"].to_numpy()
    next_trial, same_trial = np.diff(trial) > 0, np.diff(trial) == 0
    return bool(np.all(next_trial | (same_trial & (np.diff(epoch) >= 0))))
