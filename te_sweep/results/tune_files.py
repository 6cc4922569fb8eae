"""Reading a sweep's trials from the files Ray Tune leaves on disk, without starting Ray.

Per trial directory: params.json (the config Tune passed), result.json (one JSON line per
report, as te-sweep's ResultLog writes it: Tune's result without the config) and error.txt
(the traceback of a failed trial). Beside them, the experiment state (the newest
experiment_state-YYYY-MM-DD_HH-MM-SS.json: each trial's id, Tune status and directory name).

Built to stay fast at 10,000 trials x 50 epochs (half a million report lines, 0.5 GB): every
result.json is read as bytes and the lot is parsed at once by pyarrow's JSON reader (C++,
threaded) into one table with only the columns the export needs; deduplication (a trial that
restarted reports some epochs again: the last report of each epoch wins) and the per-trial
sums are array operations. A report line cut short by a crash is dropped; if a file holds
anything else pyarrow cannot parse, the slow per-line Python path reads every file instead.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from te_sweep.core.metrics import EPOCH_METRICS
from te_sweep.core.reporting import RECORD_COLUMNS, RECORD_KEY

RESULT_FILE, PARAMS_FILE, ERROR_FILE = "result.json", "params.json", "error.txt"
STATE_GLOB = "experiment_state-*.json"
TRIAL_COLUMN, LINE_COLUMN = "_trial", "_line"  # added: which trial, which line overall

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


STATE_SCHEMA = pa.schema(
    [
        pa.field(name, pa.string())
        for name in ("trial_id", "status", "custom_dirname", "relative_logdir")
    ]
)


@dataclass
class TrialFiles:
    trial_id: str
    tune_status: str | None  # TERMINATED, ERROR, RUNNING, PENDING, PAUSED; None: unknown
    config: dict[str, Any] | None = None  # params.json
    error: str | None = None  # the exception line of error.txt


@dataclass
class SweepFiles:
    """Every trial (sorted by id) and one table of their reports: the last report of each
    (trial, epoch), sorted by trial then epoch, with TRIAL_COLUMN indexing `trials`."""

    trials: list[TrialFiles]
    results: pa.Table
    damaged: list[Path] = field(default_factory=list)  # files skipped as unreadable

    def offsets(self) -> np.ndarray:
        """results rows of trial i are offsets[i]:offsets[i + 1]."""
        index = self.results[TRIAL_COLUMN].to_numpy()
        return np.searchsorted(index, np.arange(len(self.trials) + 1))


def error_line(path: Path) -> str | None:
    """The last exception line of a Tune error.txt (its first line of meaning)."""
    if not path.is_file():
        return None
    lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    exception_lines = [ln for ln in lines if ln.split(":")[0].endswith(("Error", "Exception"))]
    found = exception_lines or lines
    return found[-1] if found else None


def _trial_jsons(path: Path) -> list[str] | None:
    """The per-trial JSON texts of an experiment state file, or None if it cannot be read (cut
    short by a full disk or a crash while Tune rewrote it)."""
    try:
        return [pair[0] for pair in json.loads(path.read_bytes())["trial_data"]]
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None


def state_is_readable(path: Path) -> bool:
    """Whether Tune could restore from the experiment state file at `path`."""
    return _trial_jsons(path) is not None


def experiment_state(root: Path, damaged: list[Path] | None = None) -> dict[str, tuple[str, str]]:
    """trial_id -> (Tune status, trial directory name), from the newest readable experiment
    state; each unreadable newer one is added to `damaged`.

    Newest by the UTC time in the file name (one file per driver session), not by
    modification time, which a copy (a URI mirror, rsync without -t) does not keep.
    """
    trial_jsons = None
    for path in sorted(root.glob(STATE_GLOB), key=lambda p: p.name, reverse=True):
        trial_jsons = _trial_jsons(path)
        if trial_jsons is not None:
            break
        if damaged is not None:
            damaged.append(path)
    if not trial_jsons:
        return {}
    # Each trial's state is a JSON text of ~5 KB; pyarrow parses them all at once, one per
    # line, keeping only the four keys read here (json.loads of each costs seconds at 10,000
    # trials). A raw newline in JSON text can only be whitespace, so it becomes a space.
    lines = "\n".join(text.replace("\n", " ").replace("\r", " ") for text in trial_jsons)
    table = pajson.read_json(
        io.BytesIO(lines.encode()),
        parse_options=pajson.ParseOptions(
            explicit_schema=STATE_SCHEMA, unexpected_field_behavior="ignore"
        ),
    ).to_pydict()
    return {
        trial_id: (status, custom or relative or "")
        for trial_id, status, custom, relative in zip(
            table["trial_id"],
            table["status"],
            table["custom_dirname"],
            table["relative_logdir"],
            strict=True,
        )
    }


def _complete_lines(data: bytes) -> bytes:
    """The file's whole lines: a last line without its newline was cut short by a crash."""
    end = data.rfind(b"\n")
    return data[: end + 1] if end >= 0 else b""


def _parse_fast(chunks: list[bytes]) -> pa.Table:
    return pajson.read_json(
        io.BytesIO(b"".join(chunks)),
        read_options=pajson.ReadOptions(block_size=1 << 24),
        parse_options=pajson.ParseOptions(
            explicit_schema=PARSE_SCHEMA, unexpected_field_behavior="ignore"
        ),
    )


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


def _parse_results(chunks: list[bytes]) -> pa.Table:
    """One table of every chunk's lines, with TRIAL_COLUMN (chunk index) and LINE_COLUMN."""
    try:
        table = _parse_fast(chunks)
        counts = [chunk.count(b"\n") for chunk in chunks]
        if sum(counts) != table.num_rows:  # blank lines: count them the slow way
            raise pa.ArrowInvalid("line count mismatch")
    except pa.ArrowInvalid:
        table, counts = _parse_slow(chunks)
    table = _unpack_record(table)
    trial = np.repeat(np.arange(len(chunks), dtype=np.int64), counts)
    table = table.append_column(TRIAL_COLUMN, int64_array(trial))
    return table.append_column(LINE_COLUMN, int64_array(np.arange(table.num_rows)))


def _unpack_record(table: pa.Table) -> pa.Table:
    """RESULT_SCHEMA's columns: each from the record list where a line has one (reported since
    the list, reporting.py), else from the line's top level (reported before it)."""
    record = table[RECORD_KEY]
    shortest = pc.min(pc.list_value_length(record)).as_py()  # None: no line has a list
    columns = []
    for name in RESULT_SCHEMA.names:
        column = table[name]
        if name in RECORD_COLUMNS and shortest is not None:
            at = RECORD_COLUMNS.index(name)
            if at >= shortest:  # a shorter (older) list: null there, so slice to pad
                record_at = pc.list_slice(record, at, at + 1, return_fixed_size_list=True)
                packed = pc.list_element(record_at, 0)
            else:  # every list has it: read it directly
                packed = pc.list_element(record, at)
            column = pc.coalesce(pc.cast(packed, column.type), column)
        columns.append(column)
    return pa.table(columns, schema=RESULT_SCHEMA)


def int64_array(values: np.ndarray) -> pa.Array:
    """An arrow array over the numpy buffer (pa.array(ndarray) would import pandas: 0.5 s)."""
    values = np.ascontiguousarray(values, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), len(values), [None, pa.py_buffer(values)])


def _last_report_per_epoch(table: pa.Table) -> pa.Table:
    """Rows sorted by (trial, epoch); of several reports of one epoch, the last one."""
    table = table.filter(table["epoch"].is_valid())
    table = table.sort_by(
        [(TRIAL_COLUMN, "ascending"), ("epoch", "ascending"), (LINE_COLUMN, "ascending")]
    )
    if table.num_rows < 2:
        return table
    trial, epoch = table[TRIAL_COLUMN].combine_chunks(), table["epoch"].combine_chunks()
    changes = pc.or_(pc.not_equal(trial[1:], trial[:-1]), pc.not_equal(epoch[1:], epoch[:-1]))
    return table.filter(pa.concat_arrays([changes, pa.array([True])]))


def _read_params(path: Path) -> dict[str, Any] | None:
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return config if isinstance(config, dict) else None


def read_sweep_files(root: Path) -> SweepFiles:
    """Every trial of the experiment at `root`, each once, from Tune's files. A file that
    cannot be read (a full disk, a crash) is skipped and listed in SweepFiles.damaged."""
    damaged: list[Path] = []
    state = experiment_state(root, damaged)
    by_dirname = {dirname: trial_id for trial_id, (_, dirname) in state.items()}
    found = {trial_id: TrialFiles(trial_id, status) for trial_id, (status, _) in state.items()}
    results_of: dict[str, bytes] = {}
    for directory in sorted(root.iterdir()):  # the same order on every file system
        if not (directory / PARAMS_FILE).is_file():
            continue
        result_file = directory / RESULT_FILE
        lines = _complete_lines(result_file.read_bytes()) if result_file.is_file() else b""
        trial_id = by_dirname.get(directory.name) or directory.name.rpartition("_")[2]
        config = _read_params(directory / PARAMS_FILE)
        if config is None:
            damaged.append(directory / PARAMS_FILE)
            continue
        trial = found.setdefault(trial_id, TrialFiles(trial_id, None))
        trial.config = config
        trial.error = error_line(directory / ERROR_FILE)
        results_of[trial_id] = lines
    trials = [found[t] for t in sorted(found)]
    table = _parse_results([results_of.get(t.trial_id, b"") for t in trials])
    return SweepFiles(trials, _last_report_per_epoch(table), damaged)
