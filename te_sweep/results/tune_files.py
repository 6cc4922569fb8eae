"""Reading a sweep's trials from the files Ray Tune leaves on disk, without starting Ray.

Per trial directory: params.json (the config Tune passed), result.json (one JSON line per
report, as te-sweep's ResultLog writes it: Tune's result without the config; read and parsed
by report_lines.py) and error.txt (the traceback of a failed trial). Beside them, the
experiment state (the newest experiment_state-YYYY-MM-DD_HH-MM-SS.json: each trial's id, Tune
status and directory name).
"""

from __future__ import annotations

import enum
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.json as pajson

from te_sweep.results.report_lines import (
    TRIAL_COLUMN,
    StrPath,
    last_report_per_epoch,
    read_results,
)

RESULT_FILE, PARAMS_FILE, ERROR_FILE = "result.json", "params.json", "error.txt"
STATE_GLOB = "experiment_state-*.json"

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


def error_line(path: StrPath) -> str | None:
    """The last exception line of a Tune error.txt (its first line of meaning)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            text = file.read()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
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
    # Each trial's state is a JSON text of ~9 KB; pyarrow parses them all at once, one per
    # line, keeping only the four keys read here (json.loads of each costs seconds at 10,000
    # trials). A raw newline in JSON text can only be whitespace, so it becomes a space. The
    # lines are joined as bytes and the texts dropped before the parse: at 10,000 trials each
    # copy is 90 MB of the driver's peak at the sweep's end.
    lines = b"\n".join(text.replace("\n", " ").replace("\r", " ").encode() for text in trial_jsons)
    del trial_jsons
    table = pajson.read_json(
        io.BytesIO(lines),
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


class _Absent(enum.Enum):
    PARAMS = "no params.json: not a trial's directory"


def _read_params(path: str) -> dict[str, Any] | Literal[_Absent.PARAMS] | None:
    """The trial's config; None when the file is there but damaged."""
    try:
        with open(path, "rb") as file:  # opened directly: a stat first costs 10,000 more calls
            text = file.read()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return _Absent.PARAMS
    except OSError:
        return None
    try:
        config = json.loads(text)
    except ValueError:
        return None
    return config if isinstance(config, dict) else None


def read_sweep_files(root: Path) -> SweepFiles:
    """Every trial of the experiment at `root`, each once, from Tune's files. A file that
    cannot be read (a full disk, a crash) is skipped and listed in SweepFiles.damaged."""
    damaged: list[Path] = []
    state = experiment_state(root, damaged)
    by_dirname = {dirname: trial_id for trial_id, (_, dirname) in state.items()}
    found = {trial_id: TrialFiles(trial_id, status) for trial_id, (status, _) in state.items()}
    result_files: dict[str, str] = {}
    base = os.fspath(root)  # paths as strings: pathlib's joins cost more than the reads
    for name in sorted(os.listdir(base)):  # the same order on every file system
        directory = os.path.join(base, name)
        config = _read_params(os.path.join(directory, PARAMS_FILE))
        if config is _Absent.PARAMS:
            continue
        trial_id = by_dirname.get(name) or name.rpartition("_")[2]
        if config is None:
            damaged.append(root / name / PARAMS_FILE)
            continue
        trial = found.setdefault(trial_id, TrialFiles(trial_id, None))
        trial.config = config
        trial.error = error_line(os.path.join(directory, ERROR_FILE))
        result_files[trial_id] = os.path.join(directory, RESULT_FILE)
    trials = [found[t] for t in sorted(found)]
    table = read_results([result_files.get(t.trial_id) for t in trials])
    return SweepFiles(trials, last_report_per_epoch(table), damaged)
