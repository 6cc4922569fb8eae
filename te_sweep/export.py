"""Export a sweep to two Parquet tables, from the files on disk, without starting Ray.

    trials.parquet  one row per trial: identity, role, status, error, every trial parameter as
                    a typed `param_*` column, the objectives, speedups against the baselines,
                    where it ran.
    epochs.parquet  one row per trial and epoch: every metric of metrics.EPOCH_METRICS.

Sources: te-sweep's manifest (te_sweep.json), Tune's experiment state (trial ids, statuses,
directories) and each trial's result.json (one JSON line per report) and error.txt. A crashed
or interrupted sweep exports too: trials still running are `unfinished` and the schema
metadata says `partial`. A trial restored from a checkpoint may have reported an epoch twice;
the last report of each epoch wins, and each trial appears exactly once.
Both files have explicit schemas (no null-typed columns) and are written atomically.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from te_sweep.config import TrialConfig, resolve
from te_sweep.errors import InputError
from te_sweep.metrics import EPOCH_METRICS
from te_sweep.objectives import censored_score, median_or_none, speedup, te_overhead
from te_sweep.storage import SweepDir
from te_sweep.train import STATUS_CENSORED, STATUS_COMPLETE, STATUS_DIVERGED, summarize

TRIALS_FILE, EPOCHS_FILE = "trials.parquet", "epochs.parquet"
FINAL_STATUSES = (STATUS_COMPLETE, STATUS_CENSORED, STATUS_DIVERGED)
STATUSES = ("complete", "censored", "pruned", "diverged", "error", "unfinished")


class ExportError(InputError):
    """The directory holds nothing te-sweep can export."""


# ----------------------------------------------------------------------------- schemas
def _arrow_type(annotation: str) -> pa.DataType:
    base = annotation.replace(" | None", "")
    return {"str": pa.string(), "int": pa.int64(), "float": pa.float64(),
            "bool": pa.bool_()}[base]


PARAM_FIELDS = [pa.field(f"param_{f.name}", _arrow_type(f.type))
                for f in dataclasses.fields(TrialConfig) if f.name != "seed"]  # `seed` column

TRIAL_FIELDS = [
    pa.field("sweep_id", pa.string(), nullable=False),
    pa.field("sweep_name", pa.string(), nullable=False),
    pa.field("trial_id", pa.string(), nullable=False),
    pa.field("role", pa.string(), nullable=False),  # te | baseline
    pa.field("status", pa.string(), nullable=False),  # one of STATUSES
    pa.field("error", pa.string()),  # the exception line of a failed trial
    pa.field("seed", pa.int64()),
    *PARAM_FIELDS,
    pa.field("epochs_to_target", pa.int64()),  # null when the target was not reached
    pa.field("objective_epochs", pa.int64()),  # epochs_to_target, or max_epochs + 1
    pa.field("te_overhead", pa.float64()),  # te_time / (epoch_time - te_time), summed
    pa.field("censored", pa.bool_()),  # the target was not reached
    pa.field("pareto", pa.bool_()),  # on the Pareto front of the TE trials
    pa.field("speedup_epochs", pa.float64()),  # median baseline epochs / own (both scored)
    pa.field("speedup_time", pa.float64()),  # median baseline seconds to target / own
    pa.field("paired_baseline", pa.string()),  # the baseline trial with the same seed
    pa.field("paired_speedup_epochs", pa.float64()),  # that baseline's epochs / own
    pa.field("seconds_to_target", pa.float64()),
    pa.field("epochs_run", pa.int64()),
    pa.field("train_seconds", pa.float64()),  # sum of epoch_time_s
    pa.field("total_seconds", pa.float64()),  # training + evaluation
    pa.field("te_seconds", pa.float64()),  # sum of te_time_s
    pa.field("final_train_acc", pa.float64()),
    pa.field("final_test_acc", pa.float64()),
    pa.field("best_test_acc", pa.float64()),
    pa.field("node_id", pa.string()),
    pa.field("hostname", pa.string()),
    pa.field("gpu_ids", pa.string()),
    pa.field("device_name", pa.string()),
]
TRIALS_SCHEMA = pa.schema(TRIAL_FIELDS)

EPOCHS_SCHEMA = pa.schema([
    pa.field("sweep_id", pa.string(), nullable=False),
    pa.field("trial_id", pa.string(), nullable=False),
    pa.field("role", pa.string(), nullable=False),
    *[pa.field(m.name, pa.int64() if m.kind is int else pa.float64()) for m in EPOCH_METRICS],
])


# ----------------------------------------------------------------------------- reading
@dataclass
class TrialFiles:
    trial_id: str
    tune_status: str | None  # TERMINATED, ERROR, RUNNING, PENDING, PAUSED; None: unknown
    config: dict[str, Any] | None = None
    results: list[dict[str, Any]] = field(default_factory=list)  # one per epoch, deduplicated
    records: list[dict[str, Any]] = field(default_factory=list)  # results as EPOCH_METRICS
    error: str | None = None


def _read_json_lines(path: Path) -> list[dict[str, Any]]:
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut short by a crash
    return rows


def error_line(path: Path) -> str | None:
    """The last exception line of a Tune error.txt (its first line of meaning)."""
    if not path.is_file():
        return None
    lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    exception_lines = [ln for ln in lines if ln.split(":")[0].endswith(("Error", "Exception"))]
    return (exception_lines or lines or [None])[-1]


def _experiment_state(root: Path) -> dict[str, tuple[str, str]]:
    """trial_id -> (Tune status, trial directory name), from the newest experiment state."""
    states = sorted(root.glob("experiment_state-*.json"), key=lambda p: p.stat().st_mtime)
    if not states:
        return {}
    trials = {}
    for trial_json, _ in json.loads(states[-1].read_text())["trial_data"]:
        trial = json.loads(trial_json)
        trials[trial["trial_id"]] = (trial["status"], trial.get("custom_dirname")
                                     or trial.get("relative_logdir") or "")
    return trials


def read_trials(root: Path) -> list[TrialFiles]:
    """Every trial of the experiment at `root`, each once, from Tune's files."""
    state = _experiment_state(root)
    dirs = {p.name: p for p in root.iterdir() if p.is_dir() and (p / "params.json").exists()}
    found: dict[str, TrialFiles] = {}
    for trial_id, (status, _) in state.items():
        found[trial_id] = TrialFiles(trial_id, status)
    for name, directory in dirs.items():
        results = _read_json_lines(directory / "result.json") \
            if (directory / "result.json").exists() else []
        trial_id = results[0]["trial_id"] if results else name.rpartition("_")[2]
        match = [t for t, (_, d) in state.items() if d == name]
        trial_id = match[0] if match else trial_id
        trial = found.setdefault(trial_id, TrialFiles(trial_id, None))
        trial.config = json.loads((directory / "params.json").read_text())
        by_epoch = {r["epoch"]: r for r in results if "epoch" in r}
        trial.results = [by_epoch[e] for e in sorted(by_epoch)]
        trial.records = [{m.name: r.get(m.name) for m in EPOCH_METRICS} for r in trial.results]
        trial.error = error_line(directory / "error.txt")
    return [found[t] for t in sorted(found)]


# ----------------------------------------------------------------------------- rows
def _status(trial: TrialFiles) -> str:
    last = trial.results[-1] if trial.results else {}
    if trial.tune_status == "ERROR":
        return "error"
    if last.get("trial_status") in FINAL_STATUSES:
        return last["trial_status"]
    if trial.tune_status == "TERMINATED" and last.get("trial_status") == "running":
        return "pruned"
    if trial.tune_status == "TERMINATED" and trial.error:
        return "error"
    return "unfinished"


def _trial_row(manifest: dict[str, Any], trial: TrialFiles) -> dict[str, Any]:
    config = trial.config or {}
    cfg = resolve(TrialConfig.from_dict(config["trial"])) if "trial" in config else None
    epochs = trial.records
    last = trial.results[-1] if trial.results else {}
    status = _status(trial)
    outcome = summarize(status, epochs, device=last.get("device_name") or "")
    reached = outcome.epochs_to_target
    row = {
        "sweep_id": manifest["sweep_id"], "sweep_name": manifest["name"],
        "trial_id": trial.trial_id, "role": config.get("role", "unknown"), "status": status,
        "error": trial.error if status == "error" else None,
        "seed": cfg.seed if cfg else None,
        **{f"param_{k}": v for k, v in (cfg.to_dict() if cfg else {}).items() if k != "seed"},
        "epochs_to_target": reached,
        "objective_epochs": censored_score(reached, cfg.max_epochs)
        if cfg and status in FINAL_STATUSES else None,
        "te_overhead": te_overhead(epochs) if epochs else None,
        "censored": status != STATUS_COMPLETE if status in FINAL_STATUSES else None,
        "seconds_to_target": outcome.seconds_to_target,
        "epochs_run": outcome.epochs_run,
        "train_seconds": sum(e["epoch_time_s"] or 0 for e in epochs),
        "total_seconds": sum((e["epoch_time_s"] or 0) + (e["eval_time_s"] or 0) for e in epochs),
        "te_seconds": sum(e["te_time_s"] or 0 for e in epochs),
        "final_train_acc": epochs[-1]["train_acc"] if epochs else None,
        "final_test_acc": epochs[-1]["test_acc"] if epochs else None,
        "best_test_acc": max((e["test_acc"] for e in epochs if e["test_acc"] is not None),
                             default=None),
        **{k: last.get(k) or None for k in ("node_id", "hostname", "gpu_ids", "device_name")},
    }
    return row


def _add_comparisons(rows: list[dict[str, Any]]) -> None:
    """Speedups against the baselines and the Pareto front of the TE trials, in place."""
    baselines = [r for r in rows if r["role"] == "baseline" and r["status"] in FINAL_STATUSES]
    base_epochs = median_or_none([r["objective_epochs"] for r in baselines])
    base_seconds = median_or_none([r["seconds_to_target"] for r in baselines])
    by_seed = {r["seed"]: r for r in baselines}
    scored = [r for r in rows if r["role"] == "te" and r["status"] in FINAL_STATUSES]
    for row in rows:
        row.update(speedup_epochs=None, speedup_time=None, paired_baseline=None,
                   paired_speedup_epochs=None, pareto=None)
    for row in scored:
        row["speedup_epochs"] = speedup(base_epochs, row["objective_epochs"])
        row["speedup_time"] = speedup(base_seconds, row["seconds_to_target"])
        pair = by_seed.get(row["seed"])
        if pair:
            row["paired_baseline"] = pair["trial_id"]
            row["paired_speedup_epochs"] = speedup(pair["objective_epochs"],
                                                   row["objective_epochs"])
        row["pareto"] = not any(
            o["objective_epochs"] <= row["objective_epochs"]
            and o["te_overhead"] <= row["te_overhead"]
            and (o["objective_epochs"], o["te_overhead"])
            != (row["objective_epochs"], row["te_overhead"])
            for o in scored)


# ----------------------------------------------------------------------------- writing
def _metadata(manifest: dict[str, Any], partial: bool) -> dict[bytes, bytes]:
    values = {
        "sweep_id": manifest["sweep_id"], "sweep_name": manifest["name"],
        "space_path": manifest["space_path"], "space": manifest["space_text"],
        "options": json.dumps(manifest["options"]),
        "versions": json.dumps(manifest["versions"]),
        "git_revision": manifest.get("git_revision") or "unknown",
        "partial": "true" if partial else "false",
        "exported_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    return {f"te_sweep.{k}".encode(): v.encode() for k, v in values.items()}


def _parquet_bytes(rows: list[dict[str, Any]], schema: pa.Schema) -> bytes:
    table = pa.Table.from_pylist(rows, schema=schema)
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def export_sweep(sweep_dir: SweepDir, out: Path | None = None) -> dict[str, Any]:
    """Write trials.parquet and epochs.parquet (into the sweep, or `out`); return a summary."""
    manifest = sweep_dir.read_manifest() if sweep_dir.exists() else None
    if manifest is None:
        raise ExportError(f"{sweep_dir.uri} holds no te-sweep sweep (no te_sweep.json); give "
                          "the STORAGE/NAME directory that `te-sweep launch` printed")
    root = sweep_dir.local_path()
    if root is None:  # a URI: read a local mirror of the small files
        with tempfile.TemporaryDirectory(prefix="te-sweep-export-") as tmp:
            trials = read_trials(sweep_dir.mirror_results(Path(tmp)))
    else:
        trials = read_trials(root)
    rows = [_trial_row(manifest, t) for t in trials]
    _add_comparisons(rows)
    expected = manifest["options"]["num_samples"] + manifest["options"]["baselines"]
    partial = len(rows) < expected or any(r["status"] == "unfinished" for r in rows)
    epochs = [{"sweep_id": manifest["sweep_id"], "trial_id": t.trial_id,
               "role": (t.config or {}).get("role", "unknown"), **r} for t in trials
              for r in t.records]
    meta = _metadata(manifest, partial)
    files = {TRIALS_FILE: _parquet_bytes(rows, TRIALS_SCHEMA.with_metadata(meta)),
             EPOCHS_FILE: _parquet_bytes(epochs, EPOCHS_SCHEMA.with_metadata(meta))}
    target = SweepDir(str(out.resolve().parent), out.resolve().name) if out else sweep_dir
    for name, data in files.items():
        target.write_bytes(name, data)
    return {"rows": rows, "partial": partial, "expected": expected,
            "paths": [target.file_uri(name) for name in files]}
