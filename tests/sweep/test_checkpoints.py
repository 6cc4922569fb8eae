"""Checkpoint integrity on real files: the header written with each checkpoint, the damaged
file moved aside with one line naming it, the fallback to an older file or the first epoch, a
legacy file (no header, written by an earlier te-sweep) judged by the trainable's own loader,
and the driver's check of a resumed sweep (checkpoint_check.py)."""

from __future__ import annotations

import io
import json
import pickle
from pathlib import Path

import pyarrow.fs as pafs
import pytest
from hand_files import HandSweep, run, trial_config

from te_sweep.results.storage import SweepDir
from te_sweep.sweep.checkpoint_check import (
    check_resumed_checkpoints,
    load_trainable_checkpoint,
    trainable_loader,
)
from te_sweep.sweep.checkpoints import (
    DAMAGED_SUFFIX,
    HEADER_BYTES,
    MAGIC,
    CheckpointDamaged,
    KeepCheckpoints,
    TrialCheckpoints,
    checkpoint_name,
    seal,
)

STATE = {"state": {"records": [1, 2, 3]}, "started_at": 1.0, "reported": [{"epoch": 3}]}


def trial(tmp_path: Path, name: str = "te_abc123") -> TrialCheckpoints:
    return TrialCheckpoints(pafs.LocalFileSystem(), str(tmp_path / name))


def legacy_torch_bytes(state: dict) -> bytes:
    """A checkpoint as te-sweep wrote it before the header: torch.save's bytes, nothing else."""
    import torch

    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def damaged_line(checkpoints: TrialCheckpoints, epoch: int, reason: str, then: str) -> str:
    path = f"{checkpoints.trial_path}/{checkpoint_name(epoch)}"
    return (
        f"trial {checkpoints.trial_name}: checkpoint {path} is damaged ({reason}); moved "
        f"aside to {path}{DAMAGED_SUFFIX}, {then}"
    )


def test_a_checkpoint_is_written_with_its_header_and_restored_through_the_loader(tmp_path):
    checkpoints = trial(tmp_path)
    payload = pickle.dumps(STATE)
    checkpoints.save(3, payload)
    data = (tmp_path / "te_abc123" / checkpoint_name(3)).read_bytes()
    assert data.startswith(MAGIC) and len(data) == HEADER_BYTES + len(payload)
    assert data[HEADER_BYTES:] == payload
    assert checkpoints.latest() == (3, payload)
    restored = checkpoints.restore(pickle.loads)
    assert restored.newest == (3, STATE) and restored.damaged == []
    assert restored.restart_epoch == 4 and restored.lines("x") == []


@pytest.mark.parametrize(
    "damage, reason",
    [
        (lambda data: data[: len(data) // 2], "{half} of {size} bytes; truncated"),
        (lambda data: data + b"\0", "{longer} of {size} bytes; too long"),
        (lambda data: b"", "0 bytes"),
        (lambda data: data[:10], f"10 bytes, shorter than its {HEADER_BYTES}-byte header"),
        (
            lambda data: data[:HEADER_BYTES] + bytes(len(data) - HEADER_BYTES),
            "{size} of {size} bytes; digest mismatch",
        ),
    ],
)
def test_a_damaged_newest_checkpoint_is_moved_aside_and_the_trial_restarts(
    tmp_path, damage, reason
):
    checkpoints = trial(tmp_path)
    checkpoints.save(4, pickle.dumps(STATE))
    path = tmp_path / "te_abc123" / checkpoint_name(4)
    data = path.read_bytes()
    path.write_bytes(damage(data))
    reason = reason.format(half=len(data) // 2, size=len(data), longer=len(data) + 1)
    with pytest.raises(CheckpointDamaged, match=reason):
        checkpoints.latest()  # reads only: the file is still there
    assert path.exists()

    restored = checkpoints.restore(pickle.loads)
    assert restored.newest is None and restored.restart_epoch == 1
    assert restored.lines(checkpoints.trial_name) == [
        damaged_line(checkpoints, 4, reason, "the trial restarts from epoch 1")
    ]
    assert not path.exists()
    assert Path(f"{path}{DAMAGED_SUFFIX}").read_bytes() == damage(data)
    assert checkpoints.epochs() == [] and checkpoints.latest() is None
    assert checkpoints.restore(pickle.loads).damaged == []  # never looked at again


def test_garbage_of_the_same_length_is_damaged(tmp_path):
    """Overwritten whole, header included: no MAGIC, so a legacy file, which the loader
    cannot read."""
    checkpoints = trial(tmp_path)
    checkpoints.save(2, pickle.dumps(STATE))
    path = tmp_path / "te_abc123" / checkpoint_name(2)
    size = path.stat().st_size
    path.write_bytes(b"x" * size)
    restored = checkpoints.restore(pickle.loads)
    assert restored.newest is None
    [line] = restored.lines(checkpoints.trial_name)
    assert line.startswith(
        f"trial te_abc123: checkpoint {path} is damaged ({size} bytes, a "
        "legacy checkpoint without te-sweep's header that cannot be loaded: "
    )
    assert line.endswith(f"moved aside to {path}{DAMAGED_SUFFIX}, the trial restarts from epoch 1")


def test_the_trial_falls_back_to_an_older_checkpoint_still_there(tmp_path):
    """Killed during a save: the older file is not deleted yet, and is used."""
    checkpoints = trial(tmp_path)
    older = {**STATE, "reported": [{"epoch": 1}, {"epoch": 2}]}
    checkpoints.save(2, pickle.dumps(older))
    directory = tmp_path / "te_abc123"
    (directory / checkpoint_name(3)).write_bytes(seal(pickle.dumps(STATE))[:100])
    assert checkpoints.epochs() == [2, 3]
    restored = checkpoints.restore(pickle.loads)
    assert restored.newest == (2, older) and restored.restart_epoch == 3
    size = len(seal(pickle.dumps(STATE)))
    assert restored.lines("te_abc123") == [
        damaged_line(
            checkpoints,
            3,
            f"100 of {size} bytes; truncated",
            f"the trial falls back to {checkpoint_name(2)} and restarts from epoch 3",
        )
    ]
    assert checkpoints.epochs() == [2]
    assert sorted(p.name for p in directory.iterdir()) == [
        checkpoint_name(2),
        checkpoint_name(3) + DAMAGED_SUFFIX,
    ]


def test_both_checkpoints_damaged_the_trial_restarts_from_its_first_epoch(tmp_path):
    checkpoints = trial(tmp_path)
    directory = tmp_path / "te_abc123"
    (directory).mkdir()
    (directory / checkpoint_name(5)).write_bytes(b"")
    (directory / checkpoint_name(6)).write_bytes(b"")
    restored = checkpoints.restore(pickle.loads)
    then = "the trial restarts from epoch 1"
    assert restored.lines("te_abc123") == [
        damaged_line(checkpoints, 6, "0 bytes", then),
        damaged_line(checkpoints, 5, "0 bytes", then),
    ]


def test_a_damaged_file_is_never_listed_and_a_new_save_leaves_it(tmp_path):
    checkpoints = trial(tmp_path)
    directory = tmp_path / "te_abc123"
    checkpoints.save(1, b"one")
    (directory / checkpoint_name(1)).write_bytes(b"")
    checkpoints.restore(None)
    checkpoints.save(1, b"one again")
    checkpoints.save(2, b"two")
    assert checkpoints.epochs() == [2] and checkpoints.latest() == (2, b"two")
    checkpoints.finish(KeepCheckpoints.NONE)
    assert sorted(p.name for p in directory.iterdir()) == [checkpoint_name(1) + DAMAGED_SUFFIX]


def test_a_legacy_checkpoint_that_loads_is_used(tmp_path):
    """A sweep launched by an earlier te-sweep (torch.save bytes, no header) resumes."""
    checkpoints = trial(tmp_path)
    (tmp_path / "te_abc123").mkdir()
    legacy = legacy_torch_bytes(STATE)
    (tmp_path / "te_abc123" / checkpoint_name(3)).write_bytes(legacy)
    assert checkpoints.latest() == (3, legacy)
    restored = checkpoints.restore(load_trainable_checkpoint)
    assert restored.newest == (3, STATE) and restored.damaged == []


def test_a_legacy_checkpoint_that_cannot_load_is_damaged(tmp_path):
    checkpoints = trial(tmp_path)
    (tmp_path / "te_abc123").mkdir()
    legacy = legacy_torch_bytes(STATE)
    path = tmp_path / "te_abc123" / checkpoint_name(3)
    path.write_bytes(legacy[: len(legacy) - 200])  # a zip cut before its central directory
    restored = checkpoints.restore(load_trainable_checkpoint)
    assert restored.newest is None
    [damage] = restored.damaged
    assert damage.reason.startswith(
        f"{len(legacy) - 200} bytes, a legacy checkpoint without "
        "te-sweep's header that cannot be loaded: "
    )
    assert Path(damage.moved_to).exists() and not path.exists()


def test_without_a_loader_a_legacy_file_is_accepted_unread(tmp_path):
    """The driver with a trainable it does not know: its workers judge legacy files."""
    checkpoints = trial(tmp_path)
    (tmp_path / "te_abc123").mkdir()
    (tmp_path / "te_abc123" / checkpoint_name(2)).write_bytes(b"not a pickle")
    assert checkpoints.restore(None).newest == (2, b"not a pickle")


# ------------------------------------------------------------------ the driver's check
def hand_sweep_with_checkpoints(root: Path) -> HandSweep:
    """A finished baseline and a running TE trial, each with its newest checkpoint truncated
    (as a kill -9 of a whole machine can leave it), and an errored one with a valid file."""
    sweep = HandSweep(root, num_samples=2, repeats=1)
    sweep.trial("b1", trial_config("baseline", 11), run([0.5, 0.6, 0.7, 0.75]), "TERMINATED")
    sweep.trial("t1", trial_config("te", 11, "c1"), run([0.5, 0.6]), "RUNNING")
    sweep.trial("t2", trial_config("te", 11, "c2"), run([0.5]), "ERROR")
    for name, epoch in (("baseline_b1", 4), ("te_t1", 2), ("te_t2", 1)):
        TrialCheckpoints(pafs.LocalFileSystem(), str(root / name)).save(
            epoch, pickle.dumps({"epoch": epoch})
        )
    for name, epoch in (("baseline_b1", 4), ("te_t1", 2)):
        path = root / name / checkpoint_name(epoch)
        path.write_bytes(path.read_bytes()[:-1])
    return sweep


def test_the_driver_checks_only_unfinished_trials_and_names_each_damaged_file(tmp_path):
    root = tmp_path / "hand"
    sweep = hand_sweep_with_checkpoints(root)
    finished = sweep.states
    sweep.states = [{**state, "status": "RUNNING"} for state in finished]
    sweep.save_state("2026-12-01_09-00-00")  # an older snapshot: the baseline still ran
    sweep.states = finished
    sweep.save_state("2026-12-01_10-00-00")
    size = len(seal(pickle.dumps({"epoch": 2})))
    running = root / "te_t1" / checkpoint_name(2)
    lines = check_resumed_checkpoints(SweepDir(str(tmp_path), "hand"), pickle.loads)
    assert lines == [
        f"trial te_t1: checkpoint {running} is damaged ({size - 1} of {size} "
        f"bytes; truncated); moved aside to {running}{DAMAGED_SUFFIX}, the trial "
        "restarts from epoch 1"
    ]
    assert (root / "baseline_b1" / checkpoint_name(4)).exists()  # finished: never read
    assert (root / "te_t2" / checkpoint_name(1)).exists()
    assert check_resumed_checkpoints(SweepDir(str(tmp_path), "hand"), pickle.loads) == []


def test_an_unreadable_newest_experiment_state_gives_way_to_the_one_before(tmp_path):
    root = tmp_path / "hand"
    sweep = hand_sweep_with_checkpoints(root)
    sweep.save_state("2026-12-01_10-00-00")
    (root / "experiment_state-2026-12-01_11-00-00.json").write_text('{"trial_data": [')
    lines = check_resumed_checkpoints(SweepDir(str(tmp_path), "hand"), pickle.loads)
    assert [line.split(":")[0] for line in lines] == ["trial te_t1"]


def test_without_a_readable_experiment_state_the_driver_checks_every_trial(tmp_path):
    root = tmp_path / "hand"
    hand_sweep_with_checkpoints(root)
    (root / "experiment_state-2026-12-01_11-00-00.json").write_text('{"trial_data": [')
    lines = check_resumed_checkpoints(SweepDir(str(tmp_path), "hand"), pickle.loads)
    assert [line.split(":")[0] for line in lines] == ["trial baseline_b1", "trial te_t1"]


def test_the_driver_checks_a_sweep_on_a_uri(tmp_path):
    root = tmp_path / "hand"
    hand_sweep_with_checkpoints(root).save_state()
    lines = check_resumed_checkpoints(SweepDir(f"file://{tmp_path}", "hand"), pickle.loads)
    assert len(lines) == 1 and f"{root}/te_t1/{checkpoint_name(2)}{DAMAGED_SUFFIX}" in lines[0]
    assert (root / "te_t1" / f"{checkpoint_name(2)}{DAMAGED_SUFFIX}").exists()


def test_the_driver_judges_legacy_files_with_the_real_trainables_loader(tmp_path):
    """A sweep launched by an earlier te-sweep: its good legacy file stays, its garbage one is
    moved aside; with a trainable the driver does not know (a stand-in), both are left to the
    workers."""
    from te_sweep.sweep.standin import StandIn

    root = tmp_path / "hand"
    sweep = HandSweep(root, num_samples=2, repeats=1)
    sweep.trial("t1", trial_config("te", 11, "c1"), run([0.5]), "RUNNING")
    sweep.trial("t2", trial_config("te", 11, "c2"), run([0.5]), "RUNNING")
    sweep.save_state()
    (root / "te_t1" / checkpoint_name(1)).write_bytes(legacy_torch_bytes(STATE))
    garbage = root / "te_t2" / checkpoint_name(1)
    garbage.write_bytes(b"\x80not a checkpoint")
    sweep_dir = SweepDir(str(tmp_path), "hand")
    assert check_resumed_checkpoints(sweep_dir, trainable_loader(StandIn().trainable())) == []
    [line] = check_resumed_checkpoints(sweep_dir, trainable_loader(None))
    assert line.startswith(f"trial te_t2: checkpoint {garbage} is damaged (17 bytes, a legacy ")
    assert (root / "te_t1" / checkpoint_name(1)).exists() and not garbage.exists()


# ------------------------------------------------------------------ the worker's own check
STANDIN_LAUNCH = """
import sys
from pathlib import Path
from sweep_helpers import standin_space, standin_sweep
from te_sweep.sweep.standin import StandIn
tmp = Path(sys.argv[1])
space = standin_space(tmp, max_epochs=4, target=1.0)
standin_sweep(space, tmp, "worker", num_samples=1, repeats=1, max_concurrent=1,
              standin=StandIn(epoch_seconds=1.0, checkpoint_bytes=8192))
"""


def test_a_worker_moves_a_damaged_checkpoint_aside_and_restarts_its_trial(tmp_path):
    """A stand-in sweep killed (kill -9) mid-trial, whose newest checkpoint is then replaced
    by garbage without te-sweep's header. The driver cannot judge such a file for a trainable
    it does not know, so the trial's worker does: it moves the file aside and trains the trial
    from epoch 1, with no failed attempt; each epoch is exported once."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from sweep_helpers import Lines, read_export, wait_until_written_out

    from te_sweep.sweep.launch import prepare_resume
    from te_sweep.sweep.run import run_sweep
    from te_sweep.sweep.standin import StandIn

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    launch = subprocess.Popen(
        [sys.executable, "-c", STANDIN_LAUNCH, tmp_path],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    sweep = tmp_path / "worker"
    deadline = time.monotonic() + 240
    while not list(sweep.glob(f"*/{checkpoint_name(2)}")):
        assert launch.poll() is None and time.monotonic() < deadline, "no trial reached epoch 2"
        time.sleep(0.1)
    os.killpg(launch.pid, signal.SIGKILL)
    launch.wait()
    wait_until_written_out(sweep, quiet_s=3)  # 3 epochs of the stand-in
    [trial_dir] = {path.parent for path in sweep.glob("*/checkpoint-epoch-*.pt")}
    newest = max(trial_dir.glob("checkpoint-epoch-*.pt"))
    newest.write_bytes(b"\x80garbage of a damaged disk")

    output = Lines()
    run_sweep(
        prepare_resume(str(sweep)),
        output,
        StandIn(epoch_seconds=0.05, checkpoint_bytes=8192).trainable(),
    )
    assert not any(
        line.startswith(f"trial {trial_dir.name}: checkpoint") for line in output.lines
    ), output.lines  # the driver left the file to the worker
    assert Path(f"{newest}{DAMAGED_SUFFIX}").read_bytes() == b"\x80garbage of a damaged disk"
    assert not (trial_dir / "error.txt").exists()
    trials, epochs, meta = read_export(sweep)
    assert meta[b"te_sweep.partial"] == b"false" and len(trials) == 2
    assert all(t["status"] == "censored" and t["epochs_run"] == 4 for t in trials), trials
    assert sorted((e["trial_id"], e["epoch"]) for e in epochs) == sorted(
        (t["trial_id"], epoch) for t in trials for epoch in range(1, 5)
    )
    lines = [json.loads(line) for line in (trial_dir / "result.json").read_text().splitlines()]
    assert [line["epoch"] for line in lines][-4:] == [1, 2, 3, 4]  # trained again from epoch 1
