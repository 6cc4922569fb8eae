"""The sweep at scale, with stand-in trials (te_sweep/sweep/standin.py) through the real driver:
output and checkpoints bounded, ASHA's rungs free of baselines, a resumed errored trial told
to Optuna; and the checkpoint files and live view on their own."""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.fs as pafs
import pytest
from sweep_helpers import Lines, standin_space, standin_sweep

from te_sweep.core.reporting import RECORD_KEY
from te_sweep.sweep.checkpoints import KeepCheckpoints, TrialCheckpoints, checkpoint_name
from te_sweep.sweep.progress import BEST_ROWS, LOG_STATUS_S, MAX_RUNNING_ROWS, LiveView

FINAL = {"complete", "censored"}


def checkpoint_files(sweep: Path) -> dict[str, list[str]]:
    """trial directory -> the checkpoint files in it (temporaries included)."""
    return {
        d.name: sorted(p.name for p in d.iterdir() if "checkpoint" in p.name)
        for d in sweep.iterdir()
        if d.is_dir()
    }


def ended_trial_states(sweep: Path) -> list[tuple[dict, dict]]:
    """(trial, run metadata) of each ended trial in the newest experiment state."""
    state = json.loads(sorted(sweep.glob("experiment_state-*.json"))[-1].read_text())
    pairs = [(json.loads(t), json.loads(m)) for t, m in state["trial_data"]]
    return [(t, m) for t, m in pairs if t["status"] in {"TERMINATED", "ERROR"}]


def latest_study(sweep: Path):
    state = sorted(sweep.glob("searcher-state-*.pkl"))[-1]
    return pickle.loads(state.read_bytes())["study"]


# ------------------------------------------------------------------ sweeps of stand-ins
def test_a_few_hundred_trials_keep_output_and_checkpoints_bounded(tmp_path, monkeypatch):
    from ray.tune.analysis import ExperimentAnalysis

    monkeypatch.setenv("TE_SWEEP_LOGICAL_CPUS", "12")
    read_by_tune = []  # trials whose result.json Tune's analysis read into pandas
    fetch = ExperimentAnalysis._fetch_trial_dataframe
    monkeypatch.setattr(
        ExperimentAnalysis,
        "_fetch_trial_dataframe",
        lambda analysis, trial: read_by_tune.append(trial) or fetch(analysis, trial),
    )
    space = standin_space(tmp_path)
    _, export, out, _ = standin_sweep(space, tmp_path, "many", num_samples=79, repeats=3)
    assert read_by_tune == []  # te-sweep's export reads them (ended_trials.no_result_frames)
    rows = export["rows"]
    assert len(rows) == 240 and {r["status"] for r in rows} == FINAL  # both outcomes occur
    assert not export["partial"]
    text = "".join(line + "\n" for line in out.lines)
    finished_lines = [ln for ln in out.lines if ln.startswith("trial ")]
    assert len(finished_lines) == 240  # one line per finished trial, nothing per result
    assert len(out.lines) <= 240 + 10, out.lines[:20]  # + launch and status lines
    assert len(text.encode()) <= 240 * 512 + 2048
    assert out.lines[-1].startswith("trials: 240 of 240 started (")
    by_id = {r["trial_id"]: r for r in rows}
    for directory, files in checkpoint_files(tmp_path / "many").items():
        trial = by_id[directory.rpartition("_")[2]]
        assert files == [checkpoint_name(trial["epochs_run"])], directory  # its final one
    seeds = {r["seed"] for r in rows if r["role"] == "baseline"}
    assert len(seeds) == 3 and all(r["seed"] in seeds for r in rows)
    for r in rows:
        assert r["started_at"] < r["finished_at"]
    starts = sorted((r["started_at"], 1) for r in rows)
    ends = sorted((r["finished_at"], -1) for r in rows)
    running, most = 0, 0
    for _, step in sorted(starts + ends):
        running += step
        most = max(most, running)
    assert most <= 12  # never more than the 12 logical CPUs hold (tiny trials rarely overlap)
    # Tune's bookkeeping of the ended trials, trimmed (ended_trials.py): no statistics, no
    # config or record copy in the last result, whose other keys the live view reads on resume.
    ended = ended_trial_states(tmp_path / "many")
    assert len(ended) == 240
    for trial_state, metadata in ended:
        assert metadata["metric_analysis"] == {} and metadata["metric_n_steps"] == {}
        last = metadata["last_result"]
        assert "config" not in last and RECORD_KEY not in last, sorted(last)
        assert last["trial_status"] in FINAL and last["objective_epochs"] is not None
        assert last["trial_id"] == trial_state["trial_id"]


def test_asha_rungs_hold_no_baseline_and_keep_none_leaves_no_checkpoint(tmp_path):
    from te_sweep.sweep.run import search_parts

    space = standin_space(tmp_path, max_epochs=6, target=1.0)  # never reached: ASHA decides
    _, export, _, (_, scheduler) = standin_sweep(
        space,
        tmp_path,
        "asha",
        num_samples=3,
        repeats=3,
        scheduler="asha",
        keep_checkpoints=KeepCheckpoints.NONE.value,
        max_concurrent=4,
        parts=search_parts,
    )
    rows = export["rows"]
    baselines = {r["trial_id"] for r in rows if r["role"] == "baseline"}
    assert len(baselines) == 3
    assert all(r["epochs_run"] == 6 for r in rows if r["trial_id"] in baselines)
    assert any(r["status"] == "pruned" for r in rows)
    recorded = set()
    for bracket in scheduler._brackets:
        for _milestone, rung in bracket._rungs:  # (epoch, {trial_id: value})
            recorded |= set(rung)
    assert recorded and not recorded & baselines
    assert recorded <= {r["trial_id"] for r in rows if r["role"] == "te"}
    assert all(files == [] for files in checkpoint_files(tmp_path / "asha").values())


def test_a_trial_that_errored_and_was_resumed_is_told_to_optuna(tmp_path):
    import optuna

    from te_sweep.sweep.launch import prepare_resume
    from te_sweep.sweep.run import run_sweep
    from te_sweep.sweep.standin import StandIn

    marker = tmp_path / "fail-now"
    marker.write_text("TE trials fail after their first epoch while this file exists")
    standin = StandIn(epoch_seconds=0.05, checkpoint_bytes=4096, fail_while=str(marker))
    space = standin_space(tmp_path, max_epochs=3, target=1.0)
    _, export, out, _ = standin_sweep(
        space, tmp_path, "err", num_samples=2, repeats=1, standin=standin, max_concurrent=3
    )
    te = [r for r in export["rows"] if r["role"] == "te"]
    assert [r["status"] for r in te] == ["error", "error"]
    assert all("StandInFailure" in r["error"] for r in te)
    assert sum("failed, retrying from its last checkpoint" in ln for ln in out.lines) == 6
    study = latest_study(tmp_path / "err")
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.FAIL] * 2

    marker.unlink()
    export = run_sweep(prepare_resume(str(tmp_path / "err")), Lines(), standin.trainable())
    rows = export["rows"]
    assert all(r["status"] == "censored" and r["epochs_run"] == 3 for r in rows)
    assert not export["partial"]
    study = latest_study(tmp_path / "err")
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 2 and len(study.trials) == 4
    told = {t.user_attrs["config_id"]: t for t in complete}
    for row in (r for r in rows if r["role"] == "te"):  # repeats 1: one run per configuration
        trial = told[row["config_id"]]
        assert trial.user_attrs["completed_after_failure"] is True
        assert trial.user_attrs["config_id"] == row["config_id"]
        assert trial.values == [4, row["te_overhead"]]  # censored: max_epochs + 1
        assert trial.params["te_scale"] == row["param_te_scale"]


# ------------------------------------------------------------------ checkpoint files
def test_checkpoint_files_keep_the_newest_only(tmp_path):
    checkpoints = TrialCheckpoints(pafs.LocalFileSystem(), str(tmp_path / "trial"))
    assert checkpoints.latest() is None and checkpoints.epochs() == []
    for epoch in range(1, 6):
        checkpoints.save(epoch, f"state {epoch}".encode())
        assert checkpoints.epochs() == [epoch]
    assert checkpoints.latest() == (5, b"state 5")
    partial = tmp_path / "trial" / f".{checkpoint_name(6)}.1234abcd.tmp"
    partial.write_bytes(b"cut short")  # a save killed half-way
    (tmp_path / "trial" / "result.json").write_text("{}\n")
    assert checkpoints.latest() == (5, b"state 5")  # never read
    checkpoints.discard_partial()
    assert sorted(p.name for p in (tmp_path / "trial").iterdir()) == [
        checkpoint_name(5),
        "result.json",
    ]
    checkpoints.finish(KeepCheckpoints.FINAL)
    assert checkpoints.epochs() == [5]
    checkpoints.finish(KeepCheckpoints.NONE)
    assert checkpoints.epochs() == [] and (tmp_path / "trial" / "result.json").exists()


def test_checkpoint_files_through_a_uri(tmp_path):
    """The object-store path (one PUT per save), with pyarrow's file:// filesystem."""
    fs, root = pafs.FileSystem.from_uri(f"file://{tmp_path}/remote/trial")
    checkpoints = TrialCheckpoints(pafs.SubTreeFileSystem("/", fs), root)
    checkpoints.save(1, b"one")
    checkpoints.save(2, b"two")
    assert checkpoints.latest() == (2, b"two")
    assert sorted(p.name for p in (tmp_path / "remote" / "trial").iterdir()) == [checkpoint_name(2)]


# ------------------------------------------------------------------ live view
@dataclass
class Trial:
    """The attributes of Tune's Trial that the live view reads."""

    trial_id: str
    config: dict = field(default_factory=lambda: {"role": "te"})
    last_result: dict = field(default_factory=dict)
    error_file: str | None = None
    path: str | None = None
    status: str = "RUNNING"  # Tune's status (a restored trial's tells whether it ended)


def result(epoch: int, objective: int, overhead: float, status: str = "running") -> dict:
    return {
        "epoch": epoch,
        "train_acc": 0.5,
        "test_acc": 0.5,
        "objective_epochs": objective,
        "te_overhead": overhead,
        "trial_status": status,
        "node_id": "abcdef123456",
    }


def run_events(view: LiveView, clock: list[float], trials: int, in_flight: int) -> list[int]:
    """Trials starting, reporting and finishing, `in_flight` at a time, a second apart;
    returns the terminal table's height after every event."""
    heights, running = [], []
    for i in range(trials):
        trial = Trial(f"t{i:05d}")
        view.on_trial_start(0, [], trial)
        trial.last_result = result(1, 3, 0.01 + (i % 97) / 1000)
        view.on_trial_result(0, [], trial, trial.last_result)
        running.append(trial)
        if len(running) == in_flight:
            done = running.pop(0)
            done.last_result = {**done.last_result, "trial_status": "censored"}
            view.on_trial_complete(0, [], done)
        clock[0] += 1.0
        heights.append(len(view.render()))
    return heights


def test_the_terminal_view_stays_the_same_size_at_10000_trials():
    out, clock = Lines(), [0.0]
    view = LiveView(out, total=10_000, tty=True, clock=lambda: clock[0])
    heights = run_events(view, clock, trials=10_000, in_flight=50)
    bound = MAX_RUNNING_ROWS + 2 + 1 + BEST_ROWS + 1  # header, "... more", best, counts
    assert max(heights) <= bound and heights[-1] == bound
    table = view.render()
    assert table[MAX_RUNNING_ROWS + 1] == "... and 41 more running"
    best = table[MAX_RUNNING_ROWS + 3 : MAX_RUNNING_ROWS + 3 + BEST_ROWS]
    assert all("0.0100" in line for line in best)  # the five lowest overheads (0.01, i % 97 == 0)
    assert table[-1].startswith("trials: 10000 of 10000 started (9951 censored, 49 running)")


def test_the_log_view_writes_a_line_per_trial_and_a_status_line_per_interval():
    out, clock = Lines(), [0.0]
    view = LiveView(out, total=2000, tty=False, clock=lambda: clock[0])
    run_events(view, clock, trials=2000, in_flight=10)
    finished = [ln for ln in out.lines if ln.startswith("trial ")]
    status = [ln for ln in out.lines if ln.startswith("trials: ")]
    assert len(finished) == 1991  # 9 still running
    assert len(status) == pytest.approx(2000 / LOG_STATUS_S, abs=2)
    assert len(out.lines) == len(finished) + len(status)
    assert finished[-1].endswith("[1991/2000]")


def test_a_resumed_view_counts_the_trials_that_ended_before_and_is_upgraded():
    launched = LiveView(Lines(), total=4, tty=False)
    old = pickle.loads(pickle.dumps(launched))  # as Tune restores it from tuner.pkl
    del old.__dict__["total_is_bound"]  # pickled by a te-sweep before that attribute
    view = pickle.loads(pickle.dumps(old))
    ended = [
        Trial("t0", last_result=result(3, 3, 0.02, "complete")),
        Trial("t1", last_result=result(4, 5, 0.01, "censored")),
        Trial("t2"),
        Trial("t3"),
    ]
    for trial, status in zip(ended, ("TERMINATED", "TERMINATED", "ERROR", "PENDING"), strict=False):
        trial.status = status
    view.on_step_begin(0, ended)
    view.on_step_begin(1, ended)  # once per driver session, not per step
    assert dict(view.counts) == {"complete": 1, "censored": 1, "error": 1}
    assert view.status_line().startswith(
        "trials: 3 of 4 started (1 censored, 1 complete, 1 error); best t0"
    )


def test_failures_are_one_line_each(tmp_path):
    error = tmp_path / "error.txt"
    error.write_text("Traceback (most recent call last):\n  File x\nValueError: bad thing\n")
    out = Lines()
    view = LiveView(out, total=3, tty=False)
    trial = Trial("t1", error_file=str(error), path=str(tmp_path))
    view.on_trial_start(0, [], trial)
    view.on_trial_recover(0, [], trial)
    view.on_trial_error(0, [], trial)
    assert out.lines[-2] == (
        f"trial t1 failed, retrying from its last checkpoint: ValueError: "
        f"bad thing (traceback: {tmp_path}/error.txt)"
    )
    assert out.lines[-1].startswith("trial t1 failed: ValueError: bad thing")
    assert view.counts == {"error": 1}


# ------------------------------------------------------------------ Tune's warnings
def test_tune_warnings_become_one_line_each():
    import logging

    from te_sweep.sweep.tune_log import REPEAT_S, route_tune_logs

    out, clock = Lines(), [0.0]
    handler = route_tune_logs(out)
    handler.clock = lambda: clock[0]
    log = logging.getLogger("ray.tune.search.some_module")
    log.warning("Received additional result for trial x,\nbut it already finished.\n  details")
    log.warning("Received additional result for trial x,\nbut it already finished.\n  details")
    logging.getLogger("ray.tune.execution.insufficient_resources_manager").warning(
        "Ignore this message if the cluster is autoscaling.\nNo trial is running ..."
    )
    logging.getLogger("ray.tune.execution.tune_controller").error(
        "Trial task failed for trial abc\nTraceback (most recent call last): ..."
    )
    log.info("an info message")
    assert out.lines[0] == (
        "warning (Ray Tune): Received additional result for trial x, but "
        "it already finished. details"
    )
    assert out.lines[1].startswith("warning: no trial could start for a while")
    assert len(out.lines) == 2  # the repeat, the failed attempt and the info are not shown
    clock[0] += REPEAT_S
    log.warning("Received additional result for trial x,\nbut it already finished.\n  details")
    assert len(out.lines) == 3
