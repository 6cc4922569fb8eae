"""Stopping a sweep driver the ways clusters do, and one driver per sweep: real `te-sweep`
processes, real signals (SIGTERM to the whole process group, SIGHUP, two signals in a row),
two real drivers on one sweep directory, and real locks held by other processes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import run_cli
from sweep_helpers import blocks_space, read_export
from test_sweep_faults import (
    FINAL,
    finished_lines,
    launch_process,
    newest_checkpoint_epochs,
    wait_for,
)

from te_sweep.exit_codes import ExitCode
from te_sweep.results.storage import SweepDir
from te_sweep.sweep import claim as claim_module
from te_sweep.sweep.claim import CLAIM_FILE, LEASE_FILE, Holder, SweepClaim, SweepHeldError

RAY_TEMP_DIR = re.compile(r"/tmp/te-sweep-ray-[A-Za-z0-9_]+")  # a private local Ray's


def ray_temp_dir_of(pid: int) -> Path:
    """The temporary directory of the private Ray that the driver `pid` started: named in the
    command line of its children (the GCS server, the raylet)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            command = (stat.parent / "cmdline").read_bytes().decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue
        found = RAY_TEMP_DIR.search(command) if parent == pid else None
        if found:
            return Path(found.group(0))
    raise AssertionError(f"no Ray process started by {pid}")


def one_done_one_midway(sweep: Path, proc) -> bool:
    midway = [e for e in newest_checkpoint_epochs(sweep) if 1 <= e < 6]
    return bool(finished_lines(proc)) and bool(midway)


def assert_each_trial_once(sweep: Path, count: int, epochs_each: int) -> list[dict]:
    trials, epochs, meta = read_export(sweep)
    assert meta[b"te_sweep.partial"] == b"false"
    assert len(trials) == count and len({t["trial_id"] for t in trials}) == count
    assert all(t["status"] in FINAL for t in trials), trials
    for t in trials:
        numbers = [e["epoch"] for e in epochs if e["trial_id"] == t["trial_id"]]
        assert numbers == list(range(1, epochs_each + 1)), (t["trial_id"], numbers)
    return trials


def test_sigterm_to_the_process_group_stops_cleanly_and_resume_finishes(capsys, tmp_path):
    space = blocks_space(tmp_path, max_epochs=6, n_train=2000)
    sweep = tmp_path / "termed"
    proc = launch_process(
        space, tmp_path, "termed", "--num-samples", 3, "--repeats", 1, "--max-concurrent", 2
    )
    wait_for(lambda: one_done_one_midway(sweep, proc), "finished trial beside a running one", proc)
    ray_temp = ray_temp_dir_of(proc.proc.pid)
    assert ray_temp.is_dir()
    finished = {line.split()[1] for line in finished_lines(proc)}
    sent = time.monotonic()
    os.killpg(proc.proc.pid, signal.SIGTERM)  # as scancel or systemd: every process of the job
    code, output = proc.finish()
    print(f"SIGTERM to exit: {time.monotonic() - sent:.1f} s")  # README: Fault tolerance
    assert code == ExitCode.TERMINATED == 143, output
    assert output.count("SIGTERM received: stopping the sweep") == 1, output
    assert f"sweep stopped (SIGTERM); continue it with: te-sweep resume {sweep}" in output
    for noise in (
        "Traceback",
        "SIGTERM received at time",
        "Stop signal received",
        "Failed to connect to GCS",
        "Aborted",
    ):
        assert noise not in output, output
    assert not ray_temp.exists()  # the private Ray's processes and directory are gone
    trials, _, meta = read_export(sweep)
    assert meta[b"te_sweep.partial"] == b"true"
    kept = {t["trial_id"] for t in trials if t["status"] in FINAL}
    assert finished <= kept

    resumed = run_cli(capsys, "resume", sweep)
    assert resumed.code == 0, resumed.out + resumed.err
    trials = assert_each_trial_once(sweep, 4, 6)
    assert finished <= {t["trial_id"] for t in trials}


def test_a_second_signal_stops_at_once_with_tables_and_the_first_names_the_code(tmp_path):
    space = blocks_space(tmp_path, max_epochs=6, n_train=2000)
    sweep = tmp_path / "hung-up"
    proc = launch_process(
        space, tmp_path, "hung-up", "--num-samples", 3, "--repeats", 1, "--max-concurrent", 2
    )
    wait_for(lambda: one_done_one_midway(sweep, proc), "finished trial beside a running one", proc)
    proc.proc.send_signal(signal.SIGHUP)  # the terminal closed...
    time.sleep(0.3)
    proc.proc.send_signal(signal.SIGTERM)  # ... and the scheduler wants the node back
    code, output = proc.finish()
    assert code == ExitCode.HANGUP == 129, output  # the first signal's code
    assert "SIGHUP received: stopping the sweep" in output
    assert "SIGTERM again: stopping at once" in output, output
    assert "report.html not written (stopped at once)" in output
    assert f"continue it with: te-sweep resume {sweep}" in output
    assert "Traceback" not in output and "Aborted" not in output, output
    trials, _, meta = read_export(sweep)  # the tables are whole and readable
    assert meta[b"te_sweep.partial"] == b"true" and trials
    # (resume after a stop: the process-group test above)


def test_a_second_driver_is_refused_and_the_first_counts_every_run_once(capsys, tmp_path):
    space = blocks_space(tmp_path, max_epochs=4, n_train=1000)
    sweep = tmp_path / "shared"
    args = ("--num-samples", 2, "--repeats", 2, "--max-concurrent", 2)
    first = launch_process(space, tmp_path, "shared", *args)
    time.sleep(0.3)
    second = launch_process(space, tmp_path, "shared", *args, "--resume-if-exists")
    code, output = second.finish()
    assert code == ExitCode.BAD_INPUT, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert f"sweep {sweep} is being run by te-sweep launch (pid {first.proc.pid} on " in lines[0]

    wait_for(
        lambda: (sweep / "te_sweep.json").exists() and bool(newest_checkpoint_epochs(sweep)),
        "first checkpoint",
        first,
    )
    manifest = json.loads((sweep / "te_sweep.json").read_text())
    held = run_cli(capsys, "resume", sweep)
    assert held.code == 2 and held.err.count("\n") == 1, held.err
    assert f"(pid {first.proc.pid} on " in held.err and "is being run by" in held.err
    again = run_cli(
        capsys,
        "launch",
        space,
        "--storage",
        tmp_path,
        "--name",
        "shared",
        "--resume-if-exists",
        *args,
    )
    assert again.code == 2 and "is being run by" in again.err

    code, output = first.finish()
    assert code == 0, output
    assert "interrupted" not in output and "stopped" not in output, output
    assert json.loads((sweep / "te_sweep.json").read_text()) == manifest  # never rewritten
    assert_each_trial_once(sweep, 2 + 2 * 2, 4)
    configs = read_export(sweep)[0]
    seeds_by_role = [(t["role"], t["config_id"], t["seed"]) for t in configs]
    assert len(set(seeds_by_role)) == len(seeds_by_role)  # no run counted twice


HOLD = """
import sys, time
from te_sweep.sweep.claim import SweepClaim
from te_sweep.results.storage import SweepDir
claim = SweepClaim(SweepDir(sys.argv[1], "s"), "launch").acquire()
print("held", flush=True)
if sys.argv[2] == "die":
    import os
    os._exit(0)  # ends without releasing: as after kill -9
time.sleep(60)
"""


def hold_claim(storage: Path, how: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(storage), how], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_claim_held_by_a_live_process_is_refused_naming_it(tmp_path):
    holder = hold_claim(tmp_path, "hold")
    try:
        with pytest.raises(SweepHeldError) as refused:
            SweepClaim(SweepDir(str(tmp_path), "s"), "resume").acquire()
        message = str(refused.value)
        assert f"is being run by te-sweep launch (pid {holder.pid} on " in message
        assert f"te-sweep resume {tmp_path}/s" in message and "\n" not in message
    finally:
        holder.kill()
        holder.wait()
    claim = SweepClaim(SweepDir(str(tmp_path), "s"), "resume").acquire()  # freed by the OS
    assert claim.took_over is not None and claim.took_over.pid == holder.pid
    claim.release()


def test_a_dead_holder_is_taken_over_and_a_released_claim_leaves_none(tmp_path):
    dead = hold_claim(tmp_path, "die")
    dead.wait()
    claim = SweepClaim(SweepDir(str(tmp_path), "s"), "resume").acquire()
    assert claim.took_over is not None and claim.took_over.pid == dead.pid
    assert claim.took_over.alive_here() is False
    record = Holder.parse((tmp_path / "s" / CLAIM_FILE).read_bytes())
    assert record is not None and record.pid == os.getpid() and record.command == "resume"
    claim.release()
    assert (tmp_path / "s" / CLAIM_FILE).read_bytes() == b""
    after = SweepClaim(SweepDir(str(tmp_path), "s"), "launch").acquire()
    assert after.took_over is None  # released in order: nobody to take over from
    after.release()


def test_a_refused_launch_leaves_no_directory_behind(tmp_path):
    claim = SweepClaim(SweepDir(str(tmp_path), "new"), "launch").acquire()
    claim.release(remove_dir_if_created=True)
    assert not (tmp_path / "new").exists()
    (tmp_path / "old").mkdir()
    claim = SweepClaim(SweepDir(str(tmp_path), "old"), "launch").acquire()
    claim.release(remove_dir_if_created=True)
    assert (tmp_path / "old").is_dir()  # it was there before: kept


def test_a_uri_lease_refuses_while_renewed_and_is_taken_over_once_stale(tmp_path, monkeypatch):
    monkeypatch.setattr(claim_module, "HEARTBEAT_S", 0.2)
    monkeypatch.setattr(claim_module, "SETTLE_S", 0.05)
    where = SweepDir(f"file://{tmp_path}", "s")
    lost: list[str] = []
    first = SweepClaim(where, "launch", on_lost=lost.append).acquire()
    lease = tmp_path / "s" / LEASE_FILE
    renewed = Holder.parse(lease.read_bytes())
    time.sleep(0.5)
    assert Holder.parse(lease.read_bytes()).renewed > renewed.renewed  # the heartbeat renews
    with pytest.raises(SweepHeldError, match="its lease was renewed"):
        SweepClaim(where, "resume").acquire()

    stale = Holder(
        **{
            **Holder.parse(lease.read_bytes()).__dict__,
            "renewed": time.time() - 10,
            "token": "gone",
        }
    )
    first._stop.set()  # the first driver hangs: its heartbeat stops
    first._heartbeat.join()
    lease.write_bytes(stale.dump())
    second = SweepClaim(where, "resume").acquire()
    assert second.took_over is not None and second.took_over.token == "gone"
    second.release()
    assert not lease.exists()


def test_a_driver_whose_lease_is_taken_is_told(tmp_path, monkeypatch):
    monkeypatch.setattr(claim_module, "HEARTBEAT_S", 0.1)
    monkeypatch.setattr(claim_module, "SETTLE_S", 0.01)
    where = SweepDir(f"file://{tmp_path}", "s")
    lost: list[str] = []
    first = SweepClaim(where, "launch", on_lost=lost.append).acquire()
    other = Holder.of_this_process("resume")
    (tmp_path / "s" / LEASE_FILE).write_bytes(other.dump())
    deadline = time.monotonic() + 10
    while not lost and time.monotonic() < deadline:
        time.sleep(0.05)
    assert first.lost and len(lost) == 1 and "was taken over by te-sweep resume" in lost[0]
    first.release()
    assert Holder.parse((tmp_path / "s" / LEASE_FILE).read_bytes()).token == other.token


# --- the stop controller on its own, in this process ------------------------------------
class FakeTuneRun:
    """What Tune's fit does with SIGUSR1: installs a handler that ends its loop."""

    def __init__(self) -> None:
        self.stopped = 0

    def install(self) -> None:
        signal.signal(
            signal.SIGUSR1, lambda signum, frame: setattr(self, "stopped", self.stopped + 1)
        )


@contextmanager
def stopping_in_tune(lines: list[str]):
    """A StopController in Tune's phase, with Tune's stop handler installed as fit does."""
    from te_sweep.sweep.stopping import Phase, StopController

    tune = FakeTuneRun()
    with StopController(lines.append) as stop:
        stop.enter(Phase.TUNE)
        tune.install()
        yield stop, tune


def deliver(signum: int) -> None:
    """Send `signum` to this process and let the main thread run its handler."""
    os.kill(os.getpid(), signum)
    time.sleep(0.05)


def test_outside_tune_a_signal_raises_where_the_driver_is_and_handlers_are_given_back():
    from te_sweep.sweep.stopping import Phase, StopController, SweepStopped

    lines: list[str] = []
    before = signal.getsignal(signal.SIGINT)
    with StopController(lines.append) as stop:
        stop.enter(Phase.EXPORT)  # a sweep that ended by itself, writing its tables
        with pytest.raises(SweepStopped) as stopped:
            deliver(signal.SIGINT)
        assert stopped.value.cause.code == ExitCode.INTERRUPTED
    with StopController(lines.append) as stop:
        stop.enter(Phase.REPORT)  # ... or its report
        with pytest.raises(SweepStopped) as stopped:
            deliver(signal.SIGTERM)
        assert stopped.value.cause.code == ExitCode.TERMINATED
        assert os.environ["TUNE_DISABLE_SIGINT_HANDLER"] == "1"
    assert signal.getsignal(signal.SIGINT) is before  # no handler of Tune's or ours left
    assert "TUNE_DISABLE_SIGINT_HANDLER" not in os.environ


def test_in_tune_the_first_signal_ends_tunes_loop_and_the_second_raises():
    from te_sweep.sweep.stopping import SweepStopped

    lines: list[str] = []
    with stopping_in_tune(lines) as (stop, tune):
        deliver(signal.SIGTERM)
        assert tune.stopped == 1 and stop.cause is not None
        assert stop.cause.code == ExitCode.TERMINATED and not stop.hurried
        with pytest.raises(SweepStopped) as stopped:
            deliver(signal.SIGINT)
        assert stopped.value.cause.code == ExitCode.TERMINATED and stop.hurried
        assert tune.stopped == 1
    assert lines[0].startswith("SIGTERM received: stopping the sweep")
    assert lines[1].startswith("SIGINT again: stopping at once")


def test_while_exporting_a_stopped_sweep_only_a_third_signal_stops_the_tables():
    from te_sweep.sweep.stopping import Phase, SweepStopped

    lines: list[str] = []
    with stopping_in_tune(lines) as (stop, _):
        deliver(signal.SIGTERM)
        stop.enter(Phase.EXPORT)  # Tune ended its loop; the tables are being written
        deliver(signal.SIGTERM)
        assert stop.hurried and lines[-1].startswith("SIGTERM again: writing the tables first")
        with pytest.raises(SweepStopped):
            deliver(signal.SIGTERM)


def test_a_signal_before_tune_starts_keeps_tune_from_starting():
    from te_sweep.sweep.stopping import Phase, StopController, SweepStopped

    with StopController(lambda line: None) as stop:
        with pytest.raises(SweepStopped):
            deliver(signal.SIGHUP)  # while Ray starts (Phase.SETUP)
        with pytest.raises(SweepStopped) as stopped:
            stop.enter(Phase.TUNE)
        assert stopped.value.cause.code == ExitCode.HANGUP


def test_a_stop_requested_from_another_thread_reaches_tune_with_its_own_code():
    import threading

    lines: list[str] = []
    with stopping_in_tune(lines) as (stop, tune):
        worker = threading.Thread(
            target=stop.request_stop, args=("disk full", ExitCode.FAILURE, "Error: disk full")
        )
        worker.start()
        worker.join()
        deadline = time.monotonic() + 5
        while not tune.stopped and time.monotonic() < deadline:
            time.sleep(0.01)
    assert tune.stopped == 1 and stop.cause is not None
    assert (stop.cause.name, stop.cause.code) == ("disk full", ExitCode.FAILURE)
    assert lines == ["Error: disk full"]


# --- the exit code of an exported sweep ---------------------------------------------------
def exported(*statuses: str, partial: bool = False) -> dict:
    return {"rows": [{"status": s} for s in statuses], "partial": partial}


@pytest.mark.parametrize(
    "statuses, partial, code, line",
    [
        (("complete", "censored", "diverged"), False, ExitCode.OK, None),
        (
            ("complete", "error", "error"),
            True,
            ExitCode.TRIALS_FAILED,
            "2 of 3 trials ended in error",
        ),
        (("error",), True, ExitCode.TRIALS_FAILED, "1 of 1 trials ended in error"),
        (
            ("complete", "unfinished"),
            True,
            ExitCode.FAILURE,
            "the sweep ended with trials unfinished",
        ),
    ],
)
def test_an_exported_sweep_exits_with_what_happened(capsys, statuses, partial, code, line):
    from te_sweep.cli import _sweep_exit

    assert _sweep_exit(exported(*statuses, partial=partial), None, "RESUME") == code
    err = capsys.readouterr().err
    if line is None:
        assert err == ""
    else:
        assert err.count("\n") == 1 and line in err and "RESUME" in err


def test_a_stopped_sweep_exits_with_its_cause_even_with_errored_trials(capsys):
    from te_sweep.cli import _sweep_exit
    from te_sweep.sweep.stopping import StopCause

    cause = StopCause("disk full", ExitCode.FAILURE, "Error: ...")
    assert _sweep_exit(exported("error", "complete", partial=True), cause, "RESUME") == 1
    assert capsys.readouterr().err == "sweep stopped (disk full); RESUME\n"
    cause = StopCause("SIGTERM", ExitCode.TERMINATED, "...")
    assert _sweep_exit(exported("complete"), cause, "RESUME") == 143
