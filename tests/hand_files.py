"""Tune's on-disk files for a sweep, written by hand: the export tests build on purpose the
cases a real sweep produces only by chance.

The files are written as Tune and te-sweep's ResultLog write them: te_sweep.json (the sweep's
manifest), per trial params.json, one JSON line per report in result.json and, for a failed
trial, error.txt; beside them an experiment_state-<UTC time>.json naming each trial's status
and directory.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

from te_sweep.results.export import export_sweep
from te_sweep.results.storage import SweepDir

SPACE_TEXT = """fixed:
  dataset: fashion-mnist
  subset: 1000
  max_epochs: 4
  target_metric: train_acc
  target: 0.8
  device: cpu
search:
  te_scale: {low: 0.1, high: 4.0}
"""
MAX_EPOCHS, TARGET = 4, 0.8
SEEDS = (11, 22)


def manifest(num_samples: int, repeats: int, space_text: str = SPACE_TEXT) -> dict:
    return {
        "format": 1,
        "sweep_id": "s1",
        "name": "hand",
        "created": "2026-12-01T00:00:00+00:00",
        "space_path": "space.yaml",
        "space_text": space_text,
        "options": {"num_samples": num_samples, "repeats": repeats, "seed": 0},
        "versions": {"te-sweep": "test"},
        "git_revision": None,
    }


def trial_config(
    role: str, seed: int, config_id: str | None = None, te_scale: float = 1.0, **settings: object
) -> dict:
    trial = {
        "dataset": "fashion-mnist",
        "subset": 1000,
        "max_epochs": MAX_EPOCHS,
        "target_metric": "train_acc",
        "target": TARGET,
        "device": "cpu",
        "seed": seed,
        "te_scale": 0.0 if role == "baseline" else te_scale,
        **settings,
    }
    return {"role": role, "config_id": config_id, "threads": 1, "trial": trial}


def report(
    epoch: int,
    acc: float,
    status: str = "running",
    te: float = 0.0,
    epoch_s: float = 1.0,
    start_value: float = 0.1,
    **fields: object,
) -> dict:
    """One result.json line: the epoch record and what te-sweep's trainable adds (`fields`
    replace or add keys)."""
    return {
        "epoch": epoch,
        "train_loss": 1.0 / epoch,
        "train_acc": acc,
        "test_acc": acc - 0.05,
        "test_loss": 1.0,
        "epoch_time_s": epoch_s,
        "te_time_s": te,
        "te_active_fraction": 1.0 if te else 0.0,
        "te_mean": 0.01 if te else None,
        "te_factor_mean": 0.99 if te else None,
        "lr": 0.01,
        "eval_time_s": 0.5,
        "elapsed_s": epoch_s * epoch,
        "trial_status": status,
        "node_id": "n1",
        "hostname": "h",
        "gpu_ids": "",
        "device_name": "cpu",
        "started_at": 1.7e9,
        "reported_at": 1.7e9 + 10 * epoch,
        "start_value": start_value,
        "training_iteration": epoch,
        **fields,
    }


def packed(line: dict, columns: tuple[str, ...] | None = None) -> dict:
    """A report line as te-sweep writes it since the record list (reporting.tune_result): the
    keys Tune reads at the top, the rest of the epoch in RECORD_KEY's list (of `columns`: an
    older, shorter list when given); report() writes them all at the top, as sweeps reported
    before it."""
    from te_sweep.core.reporting import RECORD_COLUMNS, RECORD_KEY, TOP_LEVEL

    columns = RECORD_COLUMNS if columns is None else columns
    top = {k: v for k, v in line.items() if k not in RECORD_COLUMNS or k in TOP_LEVEL}
    values = [line.get(c) for c in columns]
    return {**top, RECORD_KEY: [int(v) if isinstance(v, bool) else v for v in values]}


def run(accuracies: list[float], te: float = 0.0) -> list[dict]:
    """Reports of a run that stops at the target, or is censored at MAX_EPOCHS."""
    lines = []
    for epoch, acc in enumerate(accuracies, start=1):
        last = epoch == len(accuracies)
        status = "running" if not last else ("complete" if acc >= TARGET else "censored")
        lines.append(report(epoch, acc, status, te=te))
    return lines


class HandSweep:
    """A sweep directory filled trial by trial, then exported and read back."""

    def __init__(
        self, root: Path, num_samples: int, repeats: int, space_text: str = SPACE_TEXT
    ) -> None:
        self.root = root
        root.mkdir(parents=True)
        (root / "te_sweep.json").write_text(json.dumps(manifest(num_samples, repeats, space_text)))
        self.states: list[dict] = []

    def trial(
        self,
        trial_id: str,
        config: dict,
        lines: list[dict],
        tune_status: str,
        raw_tail: str = "",
        error_txt: str | None = None,
        dirname: str | None = None,
        state_key: str = "custom_dirname",
    ) -> None:
        """One trial's directory; `raw_tail` is appended to result.json as it is, and
        `error_txt` (a traceback) written as Tune writes a failed trial's error.txt.
        The directory is named as te-sweep's trial_dirname names it (role_trialid) unless
        `dirname` is given (Tune's own names end in a time, not the trial id); the state
        names it under `state_key` (older Tune versions: "relative_logdir")."""
        directory = self.root / (dirname or f"{config['role']}_{trial_id}")
        directory.mkdir()
        (directory / "params.json").write_text(json.dumps(config))
        if error_txt is not None:
            (directory / "error.txt").write_text(error_txt)
        text = "".join(json.dumps(line) + "\n" for line in lines) + raw_tail
        (directory / "result.json").write_text(text)
        state = {
            "trial_id": trial_id,
            "status": tune_status,
            "custom_dirname": None,
            "relative_logdir": None,
        }
        self.states.append({**state, state_key: directory.name})

    def save_state(self, stamp: str = "2026-12-01_10-00-00") -> Path:
        path = self.root / f"experiment_state-{stamp}.json"
        path.write_text(
            json.dumps(
                {
                    "trial_data": [[json.dumps(s), "{}"] for s in self.states],
                    "runner_data": {},
                    "stats": {},
                }
            )
        )
        return path

    def export(self) -> tuple[list[dict], list[dict], list[dict], dict]:
        summary = export_sweep(SweepDir(str(self.root.parent), self.root.name))
        read = {
            name: pq.read_table(self.root / name)
            for name in ("trials.parquet", "epochs.parquet", "configs.parquet")
        }
        return (
            read["trials.parquet"].to_pylist(),
            read["epochs.parquet"].to_pylist(),
            read["configs.parquet"].to_pylist(),
            summary,
        )


def read_out(sweep_dir: SweepDir, searched: list[str]) -> tuple[dict, list[str], list[str]]:
    """Export a hand-written sweep, print its summary and write its report, as the end of a
    real sweep does; returns the export, the summary's lines, and the report's "What this
    sweep can and cannot conclude" items as text."""
    import html
    import re

    from te_sweep.results.report import write_report
    from te_sweep.results.summary import print_summary

    export = export_sweep(sweep_dir)
    lines: list[str] = []
    print_summary(export, searched, lines.append)
    write_report(sweep_dir)
    page = (Path(sweep_dir.uri) / "report.html").read_text()
    section = page.split("What this sweep can and cannot conclude</h2>")[1].split("</ul>")[0]
    return export, lines, [html.unescape(i) for i in re.findall(r"<li>(.*?)</li>", section)]
