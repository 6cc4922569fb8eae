"""Export from hand-written Tune files: every number in trials.parquet, epochs.parquet and
configs.parquet checked against values computed by hand, without starting Ray.

The files are written as Tune and te-sweep's ResultLog write them (params.json, one JSON line
per report in result.json, an experiment_state-<UTC time>.json naming each trial's status and
directory), so the cases a real sweep produces only by chance are built on purpose: an epoch
reported twice after a restore, a censored TE run, a censored baseline, a sweep with fewer
trials than it asked for, an older experiment state with a newer modification time.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from te_sweep.export import export_sweep
from te_sweep.storage import SweepDir

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


def manifest(num_samples: int, repeats: int) -> dict:
    return {"format": 1, "sweep_id": "s1", "name": "hand", "created": "2026-12-01T00:00:00+00:00",
            "space_path": "space.yaml", "space_text": SPACE_TEXT,
            "options": {"num_samples": num_samples, "repeats": repeats, "seed": 0},
            "versions": {"te-sweep": "test"}, "git_revision": None}


def trial_config(role: str, seed: int, config_id: str | None = None,
                 te_scale: float = 1.0) -> dict:
    trial = {"dataset": "fashion-mnist", "subset": 1000, "max_epochs": MAX_EPOCHS,
             "target_metric": "train_acc", "target": TARGET, "device": "cpu", "seed": seed,
             "te_scale": 0.0 if role == "baseline" else te_scale}
    return {"role": role, "config_id": config_id, "threads": 1, "trial": trial}


def report(epoch: int, acc: float, status: str = "running", te: float = 0.0,
           epoch_s: float = 1.0, start_value: float = 0.1) -> dict:
    """One result.json line: the epoch record and what te-sweep's trainable adds."""
    return {"epoch": epoch, "train_loss": 1.0 / epoch, "train_acc": acc, "test_acc": acc - 0.05,
            "test_loss": 1.0, "epoch_time_s": epoch_s, "te_time_s": te,
            "te_active_fraction": 1.0 if te else 0.0, "te_mean": 0.01 if te else None,
            "te_factor_mean": 0.99 if te else None, "lr": 0.01, "eval_time_s": 0.5,
            "elapsed_s": epoch_s * epoch, "trial_status": status, "node_id": "n1",
            "hostname": "h", "gpu_ids": "", "device_name": "cpu", "started_at": 1.7e9,
            "reported_at": 1.7e9 + 10 * epoch, "start_value": start_value,
            "training_iteration": epoch}


def run(accuracies: list[float], te: float = 0.0) -> list[dict]:
    """Reports of a run that stops at the target, or is censored at MAX_EPOCHS."""
    lines = []
    for epoch, acc in enumerate(accuracies, start=1):
        last = epoch == len(accuracies)
        status = "running" if not last else ("complete" if acc >= TARGET else "censored")
        lines.append(report(epoch, acc, status, te=te))
    return lines


class HandSweep:
    def __init__(self, root: Path, num_samples: int, repeats: int) -> None:
        self.root = root
        root.mkdir(parents=True)
        (root / "te_sweep.json").write_text(json.dumps(manifest(num_samples, repeats)))
        self.states: list[dict] = []

    def trial(self, trial_id: str, config: dict, lines: list[dict], tune_status: str,
              raw_tail: str = "") -> None:
        directory = self.root / f"{config['role']}_{trial_id}"
        directory.mkdir()
        (directory / "params.json").write_text(json.dumps(config))
        text = "".join(json.dumps(line) + "\n" for line in lines) + raw_tail
        (directory / "result.json").write_text(text)
        self.states.append({"trial_id": trial_id, "status": tune_status,
                            "custom_dirname": directory.name, "relative_logdir": None})

    def save_state(self, stamp: str = "2026-12-01_10-00-00") -> Path:
        path = self.root / f"experiment_state-{stamp}.json"
        path.write_text(json.dumps({"trial_data": [[json.dumps(s), "{}"] for s in self.states],
                                    "runner_data": {}, "stats": {}}))
        return path

    def export(self) -> tuple[list[dict], list[dict], list[dict], dict]:
        summary = export_sweep(SweepDir(str(self.root.parent), self.root.name))
        read = {name: pq.read_table(self.root / name) for name in
                ("trials.parquet", "epochs.parquet", "configs.parquet")}
        return (read["trials.parquet"].to_pylist(), read["epochs.parquet"].to_pylist(),
                read["configs.parquet"].to_pylist(), summary)


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    """The export (trials, epochs, configs, summary) of one configuration (c0000) on two seeds
    beside two baselines:
    seed 11: baseline reaches 0.8 at epoch 3 exactly (fractional 3.0), TE at epoch 2
             (fractional 1 + (0.8-0.6)/(0.9-0.6)); a restore reported TE's epoch 2 twice.
    seed 22: baseline censored (never 0.8 in 4 epochs), TE censored too."""
    sweep = HandSweep(tmp_path_factory.mktemp("full") / "hand", num_samples=1, repeats=2)
    sweep.trial("b11", trial_config("baseline", 11), run([0.5, 0.7, 0.8]), "TERMINATED")
    sweep.trial("b22", trial_config("baseline", 22), run([0.5, 0.6, 0.7, 0.75]), "TERMINATED")
    restored = [report(1, 0.6, te=0.1), report(2, 0.55, te=0.1),  # before the restore
                report(2, 0.9, "complete", te=0.1)]  # the same epoch, again: this one counts
    sweep.trial("t11", trial_config("te", 11, "c0000"), restored, "TERMINATED")
    sweep.trial("t22", trial_config("te", 22, "c0000"), run([0.5, 0.6, 0.7, 0.7], te=0.1),
                "TERMINATED")
    sweep.save_state()
    return sweep.export()  # once for the module's tests, which only read it (export ~1 s)


def test_an_epoch_reported_twice_keeps_its_last_report(full):
    trials, epochs, _, _ = full
    te = [e for e in epochs if e["trial_id"] == "t11"]
    assert [e["epoch"] for e in te] == [1, 2] and te[1]["train_acc"] == 0.9
    row = next(t for t in trials if t["trial_id"] == "t11")
    assert row["epochs_run"] == 2 and row["status"] == "complete"
    assert row["epochs_to_target"] == 2
    assert row["epochs_to_target_frac"] == pytest.approx(1 + (0.8 - 0.6) / (0.9 - 0.6))
    assert row["train_seconds"] == pytest.approx(2.0) and row["te_seconds"] == pytest.approx(0.2)


def test_objectives_and_pairs_per_trial(full):
    trials, _, _, summary = full
    by_id = {t["trial_id"]: t for t in trials}
    assert not summary["partial"]
    assert by_id["b11"]["objective_epochs"] == pytest.approx(3.0)  # exactly on the target
    assert by_id["b22"]["objective_epochs"] == MAX_EPOCHS + 1  # censored: max_epochs + 1
    assert by_id["b22"]["censored"] and not by_id["b11"]["censored"]
    assert by_id["t22"]["objective_epochs"] == MAX_EPOCHS + 1
    assert by_id["t11"]["te_overhead"] == pytest.approx(0.2 / 1.8)
    te_frac = 1 + (0.8 - 0.6) / (0.9 - 0.6)
    assert by_id["t11"]["paired_baseline"] == "b11"
    assert by_id["t11"]["paired_speedup_epochs"] == pytest.approx(3.0 / te_frac)  # above 1
    assert by_id["t11"]["paired_kind"] == "both_reached"
    assert by_id["t22"]["paired_kind"] == "both_censored"
    assert by_id["t22"]["paired_speedup_epochs"] is None  # never a tie of 1.0


def test_the_configuration_row_counts_censoring_and_leaves_both_censored_out(full):
    _, _, configs, _ = full
    (row,) = configs
    te_frac = 1 + (0.8 - 0.6) / (0.9 - 0.6)
    assert row["config_id"] == "c0000" and row["status"] == "complete" and row["repeats"] == 2
    assert row["seeds"] == list(SEEDS) and row["pair_kinds"] == ["both_reached", "both_censored"]
    assert row["speedups"][0] == pytest.approx(3.0 / te_frac) and row["speedups"][1] is None
    assert row["censored_both"] == 1 and row["censored_te"] == row["censored_baseline"] == 0
    assert row["speedup_mean"] == pytest.approx(3.0 / te_frac)
    assert row["objective_epochs"] == pytest.approx((te_frac + MAX_EPOCHS + 1) / 2)
    assert row["p_value"] == pytest.approx(0.5)  # one informative pair: 1 of 2 sign patterns
    assert row["beats_baselines"] is False and row["rank"] == 1 and row["pareto"] is True


def test_fewer_trials_than_asked_is_partial_even_when_all_ended(tmp_path):
    sweep = HandSweep(tmp_path / "hand", num_samples=2, repeats=2)  # expects 2 + 2 x 2 runs
    sweep.trial("b11", trial_config("baseline", 11), run([0.5, 0.9]), "TERMINATED")
    sweep.trial("b22", trial_config("baseline", 22), run([0.5, 0.9]), "TERMINATED")
    sweep.trial("t11", trial_config("te", 11, "c0000"), run([0.9], te=0.1), "TERMINATED")
    sweep.trial("t22", trial_config("te", 22, "c0000"), run([0.9], te=0.1), "TERMINATED")
    sweep.save_state()
    trials, _, _, summary = sweep.export()
    assert all(t["status"] == "complete" for t in trials)
    assert summary["partial"] and summary["expected"] == 6
    meta = pq.read_schema(sweep.root / "trials.parquet").metadata
    assert meta[b"te_sweep.partial"] == b"true"


def test_the_newest_state_is_chosen_by_its_name_not_its_time_on_disk(tmp_path):
    sweep = HandSweep(tmp_path / "hand", num_samples=1, repeats=1)
    sweep.trial("b11", trial_config("baseline", 11), run([0.9]), "TERMINATED")
    sweep.trial("t11", trial_config("te", 11, "c0000"), run([0.5], te=0.1)[:1], "RUNNING")
    older = sweep.save_state("2026-12-01_09-00-00")  # t11 still running then
    sweep.states[1]["status"] = "ERROR"
    sweep.save_state("2026-12-01_10-00-00")  # the newer session: t11 errored
    os.utime(older, (2e9, 2e9))  # the older file touched last (a copy without -t)
    trials, _, _, _ = sweep.export()
    assert next(t for t in trials if t["trial_id"] == "t11")["status"] == "error"


def test_a_report_line_cut_short_by_a_crash_is_dropped(tmp_path):
    sweep = HandSweep(tmp_path / "hand", num_samples=1, repeats=1)
    sweep.trial("b11", trial_config("baseline", 11), run([0.5, 0.9]), "TERMINATED")
    sweep.trial("t11", trial_config("te", 11, "c0000"), [report(1, 0.5, te=0.1)], "RUNNING",
                raw_tail='{"epoch": 2, "train_acc": 0.')
    sweep.save_state()
    trials, epochs, _, summary = sweep.export()
    assert [e["epoch"] for e in epochs if e["trial_id"] == "t11"] == [1]
    assert next(t for t in trials if t["trial_id"] == "t11")["status"] == "unfinished"
    assert summary["partial"]
