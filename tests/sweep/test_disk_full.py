"""A storage that fills up mid-sweep: a real tmpfs mounted by the test (as root, as CI runs),
filled by another writer while a real `te-sweep launch` runs; then space is freed and the sweep
resumed. Also the export and resume of a sweep whose files a full disk already cut short."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import run_cli, tmpfs
from sweep_helpers import blocks_space, read_export
from test_sweep_faults import finished_lines, launch_process, wait_for
from test_sweep_signals import assert_each_trial_once

from te_sweep.exit_codes import ExitCode
from te_sweep.sweep.disk_guard import DiskGuard

TMPFS_SIZE = "96M"


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 96 MiB tmpfs of its own: needs root (CI runs as root), skipped otherwise."""
    with tmpfs(tmp_path / "disk", TMPFS_SIZE) as disk:
        yield disk


def fill(disk: Path, leave: int) -> Path:
    """Another writer takes all but `leave` bytes of the disk."""
    ballast = disk / "ballast"
    free = shutil.disk_usage(disk).free
    with open(ballast, "wb") as out:
        os.posix_fallocate(out.fileno(), 0, max(0, free - leave))
    return ballast


def test_a_trial_report_makes_the_guard_read_the_disk_at_once(small_disk):
    """A fast sweep can finish between two timed reads: each epoch a trial reports asks for
    a read (DiskCheck), and only while a guard runs."""
    import threading

    from te_sweep.sweep.disk_guard import DiskCheck

    sweep = small_disk / "reported"
    sweep.mkdir()
    stopped = threading.Event()
    lines: list[str] = []

    def stop(line: str) -> None:
        lines.append(line)
        stopped.set()

    DiskCheck().on_trial_result(0, [], None, {})  # no guard running: nothing to ask
    guard = DiskGuard(sweep, 2, stop, every_s=3600)  # no timed read within the test
    with guard:
        fill(small_disk, guard.needed() - 2**20)
        DiskCheck().on_trial_result(0, [], None, {})
        assert stopped.wait(60), "a reported epoch did not make the guard read the disk"
    assert len(lines) == 1 and f"the storage of {sweep} is nearly full" in lines[0]
    DiskCheck().on_trial_result(0, [], None, {})  # after the sweep: still nothing
    assert len(lines) == 1


def test_a_disk_filling_up_stops_the_sweep_cleanly_and_resume_finishes(
    capsys, tmp_path, small_disk
):
    space = blocks_space(tmp_path, max_epochs=6, n_train=2000)
    sweep = small_disk / "filling"
    proc = launch_process(
        space, small_disk, "filling", "--num-samples", 4, "--repeats", 1, "--max-concurrent", 2
    )
    wait_for(lambda: bool(finished_lines(proc)), "finished trial", proc)
    needed = DiskGuard(sweep, 2, lambda line: None).needed()
    ballast = fill(small_disk, needed - 2**20)  # a clean stop would no longer fit
    code, output = proc.finish()
    assert code == ExitCode.FAILURE, output
    assert output.count(f"Error: the storage of {sweep} is nearly full") == 1, output
    assert f"continue it with: te-sweep resume {sweep}" in output
    for noise in ("Traceback", "No space left", "Aborted"):
        assert noise not in output, output
    for state in sweep.glob("experiment_state-*.json"):  # nothing cut short
        json.loads(state.read_bytes())["trial_data"]
    for params in sweep.glob("*/params.json"):
        json.loads(params.read_bytes())
    trials, _, meta = read_export(sweep)
    assert meta[b"te_sweep.partial"] == b"true" and trials

    ballast.unlink()  # space freed
    resumed = run_cli(capsys, "resume", sweep)
    assert resumed.code == 0, resumed.out + resumed.err
    assert_each_trial_once(sweep, 5, 6)


def test_files_cut_short_are_skipped_by_export_and_refused_by_resume(capsys, tmp_path):
    """What a full disk leaves when nothing stops the sweep in time (seen with Ray Tune): the
    experiment state and a finished trial's params.json cut short."""
    space = blocks_space(tmp_path, max_epochs=2, n_train=400)
    result = run_cli(
        capsys,
        "launch",
        space,
        "--storage",
        tmp_path,
        "--name",
        "cut",
        "--num-samples",
        2,
        "--repeats",
        1,
    )
    assert result.code == 0, result.out + result.err
    sweep = tmp_path / "cut"
    (state,) = sweep.glob("experiment_state-*.json")
    state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])
    params = sorted(sweep.glob("te_*/params.json"))[0]
    params.write_bytes(b"")

    exported = run_cli(capsys, "export", sweep)
    assert exported.code == 0, exported.err
    assert f"skipped {state}: it cannot be read" in exported.err
    assert f"skipped {params}: it cannot be read" in exported.err
    assert "(partial sweep)" in exported.out
    trials, _, meta = read_export(sweep)
    assert meta[b"te_sweep.partial"] == b"true"
    assert params.parent.name.rpartition("_")[2] not in {t["trial_id"] for t in trials}

    refused = run_cli(capsys, "resume", sweep)
    assert refused.code == ExitCode.BAD_INPUT and refused.err.count("\n") == 1, refused.err
    assert f"experiment state {state} cannot be read" in refused.err
    assert f"te-sweep export {sweep}" in refused.err
    assert not list(sweep.glob("*.damaged")) and state.exists()  # nothing moved or rewritten


def test_a_newest_state_cut_short_is_continued_from_the_one_before(capsys, tmp_path):
    """Two driver sessions, both killed; the second's experiment state cut short: resume
    continues from the first's, the second's new trials are set aside and trained again, and
    every trial is exported once."""
    from test_sweep_faults import newest_checkpoint_epochs

    from te_sweep.results.tune_files import experiment_state
    from te_sweep.sweep.state_fallback import SET_ASIDE_PREFIX

    space = blocks_space(tmp_path, max_epochs=6, n_train=2000)
    sweep = tmp_path / "twice"
    first = launch_process(
        space, tmp_path, "twice", "--num-samples", 4, "--repeats", 1, "--max-concurrent", 2
    )
    wait_for(
        lambda: (
            bool(finished_lines(first)) and any(1 <= e < 6 for e in newest_checkpoint_epochs(sweep))
        ),
        "a trial midway",
        first,
    )
    first.kill()
    (first_state,) = sweep.glob("experiment_state-*.json")
    known = {dirname for _, dirname in experiment_state(sweep).values()}

    from sweep_helpers import wait_until_written_out
    from test_sweep_faults import TE_SWEEP, SweepProcess

    second = SweepProcess([TE_SWEEP, "resume", sweep])

    def a_new_trial_saved_by_the_second_session() -> bool:
        states = sorted(sweep.glob("experiment_state-*.json"))
        new = [d for d in sweep.glob("*_*/checkpoint-epoch-*.pt") if d.parent.name not in known]
        return len(states) == 2 and bool(new)

    wait_for(a_new_trial_saved_by_the_second_session, "a trial of the second session", second)
    second.kill()
    wait_until_written_out(sweep, quiet_s=5)  # its workers outlive it by up to an epoch
    second_state = sorted(sweep.glob("experiment_state-*.json"))[-1]
    new_dirs = sorted(d.name for d in sweep.iterdir() if d.is_dir() and d.name not in known)
    assert second_state != first_state and new_dirs
    second_state.write_bytes(second_state.read_bytes()[:100])  # cut short

    resumed = run_cli(capsys, "resume", sweep)
    assert resumed.code == 0, resumed.out + resumed.err
    stamp = second_state.name[len("experiment_state-") : -len(".json")]
    assert (
        f"Tune's experiment state {second_state} cannot be read (cut short by a full disk "
        "or a crash)"
    ) in resumed.out
    aside = sweep / f"{SET_ASIDE_PREFIX}-{stamp}"
    assert f"are moved to {aside} and will be trained again" in resumed.out
    assert sorted(d.name for d in aside.iterdir()) == new_dirs
    assert (sweep / (second_state.name + ".damaged")).exists()
    trials = assert_each_trial_once(sweep, 5, 6)
    runs = [(t["role"], t["config_id"], t["seed"]) for t in trials]
    assert len(set(runs)) == 5  # the set-aside trials were trained again, not added twice
