"""Export a sweep to two Parquet tables, from the files on disk, without starting Ray.

    trials.parquet  one row per trial: identity, role, status, error, every trial parameter as
                    a typed `param_*` column, the objectives, speedups against the baselines,
                    where it ran.
    epochs.parquet  one row per trial and epoch: every metric of metrics.EPOCH_METRICS.

Sources: te-sweep's manifest (te_sweep.json) and Tune's files, read by tune_files.py (trial
ids, statuses, configs, reports, errors). A crashed or interrupted sweep exports too: trials
still running are `unfinished` and the schema metadata says `partial` (is_partial: also when
a trial ended in error, since `te-sweep resume` retries it). A trial restored from a
checkpoint may have reported an epoch twice; the last report of each epoch wins, and each trial
appears exactly once. Both files have explicit schemas (no null-typed columns) and are written
atomically. The epochs table is built column by column from the parsed reports and every
per-trial step is linear, so 10,000 trials x 50 epochs export in seconds.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from te_sweep.core.config import TrialConfig, resolve
from te_sweep.core.metrics import EPOCH_METRICS
from te_sweep.core.objectives import censored_score, mean_of_present, te_overhead_of, total_of
from te_sweep.core.outcome import (
    CONFIG_COMPLETE,
    FINAL_STATUSES,
    STATUS_COMPLETE,
    STATUS_ERROR,
    STATUS_PRUNED,
    STATUS_UNFINISHED,
    outcome_of,
)
from te_sweep.core.reporting import RUNNING, Role
from te_sweep.core.space import space_from_text
from te_sweep.errors import InputError
from te_sweep.results.configs import (
    CONFIGS_FILE,
    config_rows,
    configs_schema,
    run_of,
)
from te_sweep.results.optuna_db import OPTUNA_FILE, optuna_db_bytes
from te_sweep.results.param_columns import param_field
from te_sweep.results.report_lines import TRIAL_COLUMN
from te_sweep.results.statistics import Pair
from te_sweep.results.storage import SweepDir
from te_sweep.results.tune_files import SweepFiles, TrialFiles, read_sweep_files

TRIALS_FILE, EPOCHS_FILE = "trials.parquet", "epochs.parquet"

TUNE_ERROR, TUNE_TERMINATED = "ERROR", "TERMINATED"  # Tune's trial statuses


class ExportError(InputError):
    """The directory holds nothing te-sweep can export."""


# ----------------------------------------------------------------------------- schemas
UTC_TIME = pa.timestamp("us", tz="UTC")


UNIX_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def utc_time(unix_seconds: float | None) -> dt.datetime | None:
    """Unix seconds as a UTC time, rounded to the microsecond as _epochs_table rounds them."""
    if unix_seconds is None:
        return None
    return UNIX_EPOCH + dt.timedelta(microseconds=round(unix_seconds * 1e6))


PARAM_FIELDS = [
    param_field(f.name) for f in dataclasses.fields(TrialConfig) if f.name != "seed"
]  # `seed` column

TRIAL_FIELDS = [
    pa.field("sweep_id", pa.string(), nullable=False),
    pa.field("sweep_name", pa.string(), nullable=False),
    pa.field("trial_id", pa.string(), nullable=False),
    pa.field("role", pa.string(), nullable=False),  # te | baseline | control
    pa.field("config_id", pa.string()),  # the configuration (null for baselines)
    pa.field("status", pa.string(), nullable=False),  # one of outcome.STATUSES
    pa.field("error", pa.string()),  # the exception line of a failed trial
    pa.field("seed", pa.int64()),
    *PARAM_FIELDS,
    pa.field("epochs_to_target", pa.int64()),  # null when the target was not reached
    pa.field("epochs_to_target_frac", pa.float64()),  # the crossing inside it (outcome.py)
    pa.field("objective_epochs", pa.float64()),  # epochs_to_target_frac, or max_epochs + 1
    pa.field("te_overhead", pa.float64()),  # te_time / (epoch_time - te_time), summed
    pa.field("censored", pa.bool_()),  # the target was not reached
    pa.field("paired_baseline", pa.string()),  # the baseline trial with the same seed
    pa.field("paired_speedup_epochs", pa.float64()),  # its epochs / own (configs.py rules)
    pa.field("paired_kind", pa.string()),  # statistics.PairKind: both reached, or who missed
    pa.field("seconds_to_target", pa.float64()),
    pa.field("epochs_run", pa.int64()),
    pa.field("train_seconds", pa.float64()),  # sum of epoch_time_s
    pa.field("total_seconds", pa.float64()),  # training + evaluation
    pa.field("te_seconds", pa.float64()),  # sum of te_time_s
    pa.field("te_mean", pa.float64()),  # mean over epochs of te_mean (bits)
    pa.field("te_factor_mean", pa.float64()),  # mean over epochs of te_factor_mean
    pa.field("final_train_acc", pa.float64()),
    pa.field("final_test_acc", pa.float64()),
    pa.field("best_test_acc", pa.float64()),
    pa.field("node_id", pa.string()),
    pa.field("hostname", pa.string()),
    pa.field("gpu_ids", pa.string()),
    pa.field("device_name", pa.string()),
    pa.field("omp_wait_policy", pa.string()),  # as the trial's process had it; "" = unset
    pa.field("te_compiled", pa.bool_()),  # its TE step ran compiled (te_compile.py)
    pa.field("started_at", UTC_TIME),  # when the trial first started training
    pa.field("finished_at", UTC_TIME),  # its last report; null unless it ended (not: error)
]
TRIALS_SCHEMA = pa.schema(TRIAL_FIELDS)

EPOCHS_SCHEMA = pa.schema(
    [
        pa.field("sweep_id", pa.string(), nullable=False),
        pa.field("trial_id", pa.string(), nullable=False),
        pa.field("role", pa.string(), nullable=False),
        *[pa.field(m.name, pa.int64() if m.kind is int else pa.float64()) for m in EPOCH_METRICS],
        pa.field("finished_at", UTC_TIME),  # when the epoch's report was made
        pa.field("node_id", pa.string()),  # the Ray node that trained it
    ]
)


# ----------------------------------------------------------------------------- rows
@dataclasses.dataclass
class TrialReports:
    """What one trial's reports say, for its row: the last report and per-epoch totals."""

    last: dict[str, Any]  # the last report (of the last epoch), {} when none
    previous: dict[str, Any] | None  # the report of the epoch before it, if any
    epochs_run: int
    train_seconds: float  # sums over epochs of epoch_time_s, of eval_time_s, of te_time_s
    eval_seconds: float
    te_seconds: float
    best_test_acc: float | None
    te_mean: float | None  # means over epochs
    te_factor_mean: float | None


def _trial_reports(files: SweepFiles) -> list[TrialReports]:
    """Per trial, in one pass over the columns (sums in epoch order, as the trainable's)."""
    table, offsets = files.results, files.offsets()
    columns = {
        name: table[name].to_pylist()
        for name in (
            "epoch_time_s",
            "eval_time_s",
            "te_time_s",
            "test_acc",
            "te_mean",
            "te_factor_mean",
        )
    }
    starts, ends = [int(o) for o in offsets[:-1]], [int(o) for o in offsets[1:]]
    spans = list(zip(starts, ends, strict=True))
    wanted = sorted(
        {i for start, end in spans for i in (end - 2, end - 1) if i >= start}
    )  # each trial's last two rows
    rows = dict(zip(wanted, table.take(pa.array(wanted, pa.int64())).to_pylist(), strict=True))
    reports = []
    for start, end in spans:
        trial = {name: values[start:end] for name, values in columns.items()}
        accuracies = [v for v in trial["test_acc"] if v is not None]
        reports.append(
            TrialReports(
                last=rows.get(end - 1, {}) if end > start else {},
                previous=rows.get(end - 2) if end - 2 >= start else None,
                epochs_run=end - start,
                train_seconds=total_of(trial["epoch_time_s"]),
                eval_seconds=total_of(trial["eval_time_s"]),
                te_seconds=total_of(trial["te_time_s"]),
                best_test_acc=max(accuracies, default=None),
                te_mean=mean_of_present(trial["te_mean"]),
                te_factor_mean=mean_of_present(trial["te_factor_mean"]),
            )
        )
    return reports


def _status(trial: TrialFiles, last: dict[str, Any]) -> str:
    if trial.tune_status == TUNE_ERROR:
        return STATUS_ERROR
    if last.get("trial_status") in FINAL_STATUSES:
        return str(last["trial_status"])
    if trial.tune_status == TUNE_TERMINATED and last.get("trial_status") == RUNNING:
        return STATUS_PRUNED
    if trial.tune_status == TUNE_TERMINATED and trial.error:
        return STATUS_ERROR
    return STATUS_UNFINISHED


def _trial_row(
    manifest: dict[str, Any], trial: TrialFiles, reports: TrialReports
) -> dict[str, Any]:
    config = trial.config or {}
    cfg = resolve(TrialConfig.from_dict(config["trial"])) if "trial" in config else None
    last = reports.last
    status = _status(trial, last)
    outcome = (
        outcome_of(
            cfg,
            status,
            last or None,
            reports.epochs_run,
            last.get("device_name") or "",
            reports.previous[cfg.target_metric] if reports.previous else last.get("start_value"),
        )
        if cfg
        else None
    )
    reached = outcome.epochs_to_target if outcome else None
    return {
        "sweep_id": manifest["sweep_id"],
        "sweep_name": manifest["name"],
        "trial_id": trial.trial_id,
        "role": config.get("role", "unknown"),
        "config_id": config.get("config_id"),
        "status": status,
        "error": trial.error if status == STATUS_ERROR else None,
        "seed": cfg.seed if cfg else None,
        **{f"param_{k}": v for k, v in (cfg.to_dict() if cfg else {}).items() if k != "seed"},
        "epochs_to_target": reached,
        "epochs_to_target_frac": outcome.epochs_to_target_frac if outcome else None,
        "objective_epochs": censored_score(outcome.epochs_to_target_frac, cfg.max_epochs)
        if cfg and outcome and status in FINAL_STATUSES
        else None,
        "te_overhead": te_overhead_of(reports.te_seconds, reports.train_seconds)
        if reports.epochs_run
        else None,
        "censored": status != STATUS_COMPLETE if status in FINAL_STATUSES else None,
        "seconds_to_target": outcome.seconds_to_target if outcome else None,
        "epochs_run": reports.epochs_run,
        "train_seconds": reports.train_seconds,
        "total_seconds": reports.train_seconds + reports.eval_seconds,
        "te_seconds": reports.te_seconds,
        "te_mean": reports.te_mean,
        "te_factor_mean": reports.te_factor_mean,
        "final_train_acc": last.get("train_acc"),
        "final_test_acc": last.get("test_acc"),
        "best_test_acc": reports.best_test_acc,
        **{k: last.get(k) or None for k in ("node_id", "hostname", "gpu_ids", "device_name")},
        "omp_wait_policy": last.get("omp_wait_policy"),
        "te_compiled": last.get("te_compiled"),
        "started_at": utc_time(last.get("started_at")),
        "finished_at": utc_time(last.get("reported_at"))
        if status in FINAL_STATUSES or status == STATUS_PRUNED
        else None,
    }


def _add_pairs(rows: list[dict[str, Any]]) -> None:
    """Each TE run and control beside the baseline of its seed, in place."""
    baselines = {
        r["seed"]: r for r in rows if r["role"] == Role.BASELINE and r["status"] in FINAL_STATUSES
    }
    for row in rows:
        row.update(paired_baseline=None, paired_speedup_epochs=None, paired_kind=None)
        baseline = baselines.get(row["seed"])
        if row["role"] == Role.BASELINE or baseline is None or row["status"] not in FINAL_STATUSES:
            continue
        pair = Pair(row["seed"], run_of(row), run_of(baseline))
        row.update(
            paired_baseline=baseline["trial_id"],
            paired_kind=pair.kind.value,
            paired_speedup_epochs=pair.speedup(row["param_max_epochs"] + 1),
        )


# ----------------------------------------------------------------------------- partial
def expected_trials(options: dict[str, Any], configs: list[dict[str, Any]] | None = None) -> int:
    """The trials a sweep asks for: a baseline per seed, a TE run per configuration and seed,
    and with `--lr-control` an LR control per seed of each configuration whose runs all ended
    (configs.parquet's status complete) with a gradient factor (grad mode), as the searcher
    queues them. Without `configs` the controls are not counted."""
    repeats = options.get("repeats", 1)
    controls = (
        sum(
            1
            for c in configs or []
            if c["status"] == CONFIG_COMPLETE and c["te_factor_mean"] is not None
        )
        if options.get("lr_control")
        else 0
    )
    return int(repeats * (1 + options["num_samples"] + controls))


def is_partial(rows: list[dict[str, Any]], expected: int) -> bool:
    """The tables are partial while `te-sweep resume` could still add to them: a trial asked
    for is missing (expected_trials), a trial has not ended, or one ended in error (resume
    retries errored trials from their last checkpoint)."""
    return len(rows) < expected or any(
        r["status"] in (STATUS_UNFINISHED, STATUS_ERROR) for r in rows
    )


# ----------------------------------------------------------------------------- writing
def _metadata(manifest: dict[str, Any], partial: bool) -> dict[bytes, bytes]:
    values = {
        "sweep_id": manifest["sweep_id"],
        "sweep_name": manifest["name"],
        "space_path": manifest["space_path"],
        "space": manifest["space_text"],
        "options": json.dumps(manifest["options"]),
        "versions": json.dumps(manifest["versions"]),
        "git_revision": manifest.get("git_revision") or "unknown",
        "partial": "true" if partial else "false",
        "exported_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    return {f"te_sweep.{k}".encode(): v.encode() for k, v in values.items()}


def _epochs_table(manifest: dict[str, Any], files: SweepFiles) -> pa.Table:
    """epochs.parquet's rows, column by column from the parsed reports."""
    results = files.results
    index = results[TRIAL_COLUMN]
    ids = pa.array([t.trial_id for t in files.trials], pa.string())
    roles = pa.array([(t.config or {}).get("role", "unknown") for t in files.trials], pa.string())
    micros = pc.cast(pc.round(pc.multiply(results["reported_at"], 1e6)), pa.int64())
    columns = {
        "sweep_id": pa.repeat(pa.scalar(manifest["sweep_id"], pa.string()), results.num_rows),
        "trial_id": ids.take(index),
        "role": roles.take(index),
        **{m.name: results[m.name] for m in EPOCH_METRICS},
        "finished_at": micros.cast(UTC_TIME),
        "node_id": results["node_id"],
    }
    return pa.table(columns).cast(EPOCHS_SCHEMA)


def _parquet_bytes(table: pa.Table, schema: pa.Schema) -> bytes:
    table = table.cast(schema)
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def export_sweep(sweep_dir: SweepDir, out: Path | None = None) -> dict[str, Any]:
    """Write trials.parquet and epochs.parquet (into the sweep, or `out`); return a summary."""
    manifest = sweep_dir.read_manifest() if sweep_dir.exists() else None
    if manifest is None:
        raise ExportError(
            f"{sweep_dir.uri} holds no te-sweep sweep (no te_sweep.json); give "
            "the STORAGE/NAME directory that `te-sweep launch` printed"
        )
    root = sweep_dir.local_path()
    if root is None:  # a URI: read a local mirror of the small files
        with tempfile.TemporaryDirectory(prefix="te-sweep-export-") as tmp:
            sweep_files = read_sweep_files(sweep_dir.mirror_results(Path(tmp)))
    else:
        sweep_files = read_sweep_files(root)
    rows = [
        _trial_row(manifest, trial, reports)
        for trial, reports in zip(sweep_files.trials, _trial_reports(sweep_files), strict=True)
    ]
    _add_pairs(rows)
    options = manifest["options"]
    repeats = options.get("repeats", 1)
    space = space_from_text(
        manifest["space_text"], Path(manifest["space_path"]), check_trials=False
    )
    configs = config_rows(manifest["sweep_id"], rows, space, repeats)
    expected = expected_trials(options, configs)
    # A file that could not be read (a full disk, a crash) was skipped: the tables say less
    # than the sweep holds, so they are partial whatever the trials' states.
    partial = is_partial(rows, expected) or bool(sweep_files.damaged)
    meta = _metadata(manifest, partial)
    schema = configs_schema(space)
    files = {
        TRIALS_FILE: _parquet_bytes(
            pa.Table.from_pylist(rows, schema=TRIALS_SCHEMA), TRIALS_SCHEMA.with_metadata(meta)
        ),
        EPOCHS_FILE: _parquet_bytes(
            _epochs_table(manifest, sweep_files), EPOCHS_SCHEMA.with_metadata(meta)
        ),
        CONFIGS_FILE: _parquet_bytes(
            pa.Table.from_pylist(configs, schema=schema), schema.with_metadata(meta)
        ),
        OPTUNA_FILE: optuna_db_bytes(configs, space),
    }
    target = SweepDir(str(out.resolve().parent), out.resolve().name) if out else sweep_dir
    for name, data in files.items():
        target.write_bytes(name, data)
    return {
        "rows": rows,
        "configs": configs,
        "partial": partial,
        "expected": expected,
        "paths": [target.file_uri(name) for name in files],
        "damaged": [str(path) for path in sweep_files.damaged],
    }
