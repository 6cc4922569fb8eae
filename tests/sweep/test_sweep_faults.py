"""Multi-node placement and fault tolerance, with real Ray nodes (ray.cluster_utils.Cluster),
a real SIGKILL of the driver, and a real node removed while its trials run."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import run_cli
from sweep_helpers import TE_SWEEP, blocks_space, read_export, wait_until_written_out

from te_sweep.core.reporting import record_value
from te_sweep.sweep.checkpoints import PREFIX, SUFFIX, TrialCheckpoints

FINAL = {"complete", "censored"}
WAIT_S = 240  # upper bound on waiting for a sweep state; the loops below end by themselves
FINISHED_LINE = re.compile(r"^trial \w+ \(\w+\) (complete|censored)")


@pytest.fixture
def cluster():
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    yield cluster
    cluster.shutdown()


def reports(sweep: Path) -> dict[str, list[dict]]:
    """trial directory -> its reports so far, read from Tune's result.json files."""
    found = {}
    for result in sweep.glob("*/result.json"):
        lines = [json.loads(ln) for ln in result.read_text().splitlines() if ln.strip()]
        found[result.parent.name] = lines
    return found


class SweepProcess:
    """A sweep in a subprocess (`te-sweep launch`), whose output is collected as it comes (a thread reads it)."""

    def __init__(self, args: list[object], env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [str(a) for a in args],
            env=env,
            start_new_session=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(
            target=lambda: self.lines.extend(self.proc.stdout), daemon=True
        )
        self._reader.start()

    def finish(self, timeout: float = WAIT_S) -> tuple[int, str]:
        """Wait for the sweep to end; its exit code and its whole output."""
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return code, "".join(self.lines)

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


def wait_for(condition, what: str, sweep: SweepProcess) -> None:
    """Poll until `condition()`; fail with the sweep's output if it ends or takes too long."""
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if sweep.proc.poll() is not None or time.monotonic() > deadline:
            if sweep.proc.poll() is None:
                sweep.kill()
            code, output = sweep.finish()
            pytest.fail(f"no {what}; sweep exit {code}, output:\n{output[-3000:]}")
        time.sleep(0.2)


def finished_lines(sweep: SweepProcess) -> list[str]:
    """The live view's one line per finished trial: the driver has recorded that trial's end."""
    return [line for line in sweep.lines if FINISHED_LINE.match(line)]


def newest_checkpoint_epochs(sweep_dir: Path) -> list[int]:
    """Each trial directory's newest checkpoint epoch, as its worker wrote it to the storage.

    Tune's result.json reaches the storage only at Tune's next experiment snapshot (seconds
    later, and later still on a slow machine); a trial's own checkpoints are written there at
    once, so they say where a running trial is."""
    epochs = []
    for trial_dir in sweep_dir.glob("*/"):
        numbers = [
            int(p.name[len(PREFIX) : -len(SUFFIX)]) for p in trial_dir.glob(f"{PREFIX}*{SUFFIX}")
        ]
        if numbers:
            epochs.append(max(numbers))
    return epochs


def newest_checkpointed_reports(sweep_dir: Path) -> list[dict]:
    """Each trial's last report, as saved in its newest checkpoint (written at once to the
    storage, unlike result.json; see newest_checkpoint_epochs). A file deleted between the
    listing and the read (its trial has saved a newer one) is skipped."""
    import pyarrow.fs as pafs

    from te_sweep.sweep.trainable import _load

    found = []
    for trial_dir in sweep_dir.glob("*/"):
        try:
            newest = TrialCheckpoints(pafs.LocalFileSystem(), str(trial_dir)).latest()
        except FileNotFoundError:
            continue
        if newest:
            found.append(_load(newest[1])["reported"][-1])
    return found


def launch_process(space: Path, storage: Path, name: str, *extra: object) -> SweepProcess:
    return SweepProcess([TE_SWEEP, "launch", space, "--storage", storage, "--name", name, *extra])


def test_trials_spread_over_two_gpu_workers(capsys, tmp_path, cluster, monkeypatch):
    workers = [cluster.add_node(num_cpus=2, num_gpus=1) for _ in range(2)]
    cluster.wait_for_nodes()
    # The nodes started without it; a value the user set reaches the trials through the
    # job's runtime environment (cpu_threads.worker_env), not through the nodes' own.
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    space = blocks_space(tmp_path, max_epochs=2)
    result = run_cli(
        capsys,
        "launch",
        space,
        "--address",
        cluster.address,
        "--shared-storage",
        "--gpus-per-trial",
        0.5,
        "--num-samples",
        2,
        "--repeats",
        2,
        "--storage",
        tmp_path,
        "--name",
        "multi",
    )
    assert result.code == 0, result.out + result.err
    trials, _, _ = read_export(tmp_path / "multi")
    assert len(trials) == 6 and all(t["status"] in FINAL for t in trials)
    assert {t["node_id"] for t in trials} == {w.node_id for w in workers}
    for t in trials:
        assert t["gpu_ids"] in ("0", "1"), t  # a (logical) GPU assigned by Ray
        assert t["device_name"] == "cpu"  # no real CUDA here: the trial falls back
        assert t["omp_wait_policy"] == "ACTIVE"


def test_killed_sweep_resumes_and_exports_each_trial_once(capsys, tmp_path):
    space = blocks_space(tmp_path, max_epochs=6, n_train=2000)
    sweep = tmp_path / "killed"
    proc = launch_process(
        space, tmp_path, "killed", "--num-samples", 4, "--repeats", 1, "--max-concurrent", 2
    )

    def one_done_one_midway() -> bool:
        midway = [e for e in newest_checkpoint_epochs(sweep) if 1 <= e < 6]
        return bool(finished_lines(proc)) and bool(midway)

    wait_for(one_done_one_midway, "finished trial beside a running one", proc)
    proc.kill()

    partial = run_cli(capsys, "export", sweep)
    assert partial.code == 0 and "partial sweep" in partial.out
    before, _, meta = read_export(sweep)
    assert meta[b"te_sweep.partial"] == b"true"
    assert any(t["status"] == "unfinished" for t in before)

    resumed = run_cli(capsys, "resume", sweep)
    assert resumed.code == 0, resumed.out + resumed.err
    trials, epochs, meta = read_export(sweep)
    assert meta[b"te_sweep.partial"] == b"false"
    assert len(trials) == 5 and len({t["trial_id"] for t in trials}) == 5
    assert all(t["status"] in FINAL for t in trials), trials
    for t in trials:
        numbers = [e["epoch"] for e in epochs if e["trial_id"] == t["trial_id"]]
        assert numbers == list(range(1, t["epochs_run"] + 1)) and t["epochs_run"] == 6

    again = run_cli(
        capsys, "launch", space, "--storage", tmp_path, "--name", "killed", "--resume-if-exists"
    )  # a finished sweep: nothing left to run
    assert again.code == 0, again.out + again.err
    assert read_export(sweep)[0] == trials


def test_ctrl_c_exports_what_finished_and_resume_completes(capsys, tmp_path):
    space = blocks_space(tmp_path, max_epochs=6, n_train=2000)
    sweep = tmp_path / "interrupted"
    proc = launch_process(
        space, tmp_path, "interrupted", "--num-samples", 3, "--repeats", 1, "--max-concurrent", 1
    )
    wait_for(lambda: bool(finished_lines(proc)), "finished trial", proc)
    proc.proc.send_signal(signal.SIGINT)
    code, output = proc.finish()
    assert code == 130, output
    assert f"continue it with: te-sweep resume {sweep}" in output
    trials, _, meta = read_export(sweep)
    assert meta[b"te_sweep.partial"] == b"true"
    finished = {t["trial_id"] for t in trials if t["status"] in FINAL}
    assert finished

    resumed = run_cli(capsys, "resume", sweep)
    assert resumed.code == 0, resumed.out + resumed.err
    trials, _, meta = read_export(sweep)
    assert meta[b"te_sweep.partial"] == b"false" and len(trials) == 4
    assert all(t["status"] in FINAL for t in trials) and finished <= {t["trial_id"] for t in trials}


def test_resume_with_nothing_to_restore_exits_2(capsys, tmp_path):
    result = run_cli(capsys, "resume", tmp_path / "nothing")
    assert result.code == 2
    assert result.err.count("\n") == 1 and "holds no te-sweep sweep" in result.err
    started = tmp_path / "never-ran"  # launched, killed before Ray saved any state
    started.mkdir()
    (started / "te_sweep.json").write_text('{"sweep_id": "x", "space_path": "s.yaml"}')
    result = run_cli(capsys, "resume", started)
    assert result.code == 2
    assert result.err.count("\n") == 1 and "nothing to restore" in result.err
    assert sorted(p.name for p in started.iterdir()) == ["te_sweep.json"]


def test_trials_of_a_removed_node_continue_from_checkpoints(tmp_path, cluster):
    doomed = cluster.add_node(num_cpus=2)
    survivor = cluster.add_node(num_cpus=2)
    cluster.wait_for_nodes()
    space = blocks_space(tmp_path, max_epochs=8, n_train=2000)
    sweep = tmp_path / "removed"
    proc = launch_process(
        space,
        tmp_path,
        "removed",
        "--address",
        cluster.address,
        "--shared-storage",
        "--num-samples",
        3,
        "--repeats",
        1,
        "--max-concurrent",
        4,
    )

    def running_on_doomed_node() -> bool:  # with epochs left to train after the removal
        return any(
            r["node_id"] == doomed.node_id and 2 <= r["epoch"] <= 5
            for r in newest_checkpointed_reports(sweep)
        )

    wait_for(running_on_doomed_node, "trial two epochs into its run on the doomed node", proc)
    cluster.remove_node(doomed)
    code, output = proc.finish()
    assert code == 0, output
    trials, epochs, _ = read_export(sweep)
    assert len(trials) == 4 and all(t["status"] in FINAL for t in trials), trials
    moved = 0
    for directory, runs in reports(sweep).items():
        nodes = [r["node_id"] for r in runs]
        trained: dict[int, set[float]] = {}  # epoch -> when it was trained (a replay repeats it)
        for r in runs:
            trained.setdefault(r["epoch"], set()).add(record_value(r, "reported_at"))
        assert sorted(trained) == list(range(1, 9)), directory
        assert all(len(times) == 1 for times in trained.values()), (
            f"{directory} trained an epoch twice (restarted from scratch?): {runs}"
        )
        if doomed.node_id in nodes:
            assert nodes[-1] == survivor.node_id
            assert len(runs) > 8  # it replayed its earlier reports after the move
            moved += 1
    assert moved >= 1
    by_epoch = {(e["trial_id"], e["epoch"]): e for e in epochs}
    assert len(by_epoch) == len(epochs) == 4 * 8  # each epoch once in the export


def most_at_once(rows: list[dict]) -> tuple[int, set[str]]:
    """The most trials that ran at the same time, and the nodes they ran on at that moment."""
    events = sorted(
        [(r["started_at"], 1, r["node_id"]) for r in rows]
        + [(r["finished_at"], -1, r["node_id"]) for r in rows],
        key=lambda e: (e[0], e[1]),
    )
    running: list[str] = []
    most, nodes = 0, set()
    for _, step, node in events:
        if step > 0:
            running.append(node)
        else:
            running.remove(node)
        if len(running) > most:
            most, nodes = len(running), set(running)
    return most, nodes


STANDIN_DRIVER = """
import sys
from pathlib import Path
from sweep_helpers import standin_space, standin_sweep
tmp, address = Path(sys.argv[1]), sys.argv[2]
space = standin_space(tmp, max_epochs=3, target=1.0)
standin_sweep(space, tmp, "grow", num_samples=5, repeats=2, epoch_seconds=1.0,
              address=address, shared_storage=True, echo=lambda line: print(line, flush=True))
"""


def test_a_cluster_that_grows_mid_sweep_is_used_at_full_width(tmp_path, cluster):
    """The head schedules nothing and no worker has joined when the sweep starts (cluster.yaml's
    set-up before the autoscaler acts): the sweep says it is waiting, two 2-CPU nodes join,
    and four trials then run at once across both. The sweep is a stand-in sweep driven by a
    subprocess, so that this process's main thread can add the nodes (Ray needs it to)."""
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
        "TUNE_WARN_INSUFFICENT_RESOURCE_THRESHOLD_S": "2",
        "TUNE_WARN_INSUFFICENT_RESOURCE_THRESHOLD_S_AUTOSCALER": "2",
    }
    proc = SweepProcess([sys.executable, "-c", STANDIN_DRIVER, tmp_path, cluster.address], env=env)
    wait_for(
        lambda: any("no trial could start" in line for line in proc.lines),
        "warning that no trial can start",
        proc,
    )
    joined = [cluster.add_node(num_cpus=2) for _ in range(2)]
    code, output = proc.finish()
    assert code == 0, output
    lines = output.splitlines()
    trials, _, _ = read_export(tmp_path / "grow")
    assert len(trials) == 12 and all(t["status"] == "censored" for t in trials), trials
    assert {t["node_id"] for t in trials} == {node.node_id for node in joined}
    most, nodes = most_at_once(trials)
    assert most == 4 and len(nodes) == 2
    assert "plus a queue of 8 for the autoscaler" in lines[0]
    warnings = [line for line in lines if "no trial could start" in line]
    assert len(warnings) == 1 and "--gpus-per-trial" in warnings[0]


# epochs.parquet's columns that differ between two runs of one trial: times, and the ids of
# the sweep, the trial and the Ray node (new in every Ray session), which say nothing of training
NOT_TRAINING = {
    "epoch_time_s",
    "te_time_s",
    "eval_time_s",
    "elapsed_s",
    "finished_at",
    "sweep_id",
    "trial_id",
    "node_id",
}


def records_by_run(sweep: Path) -> dict[tuple, list[dict]]:
    """(role, seed, params) -> the run's per-epoch records without times or ids."""
    trials, epochs, _ = read_export(sweep)
    key_of = {
        t["trial_id"]: (
            t["role"],
            t["seed"],
            tuple(sorted((k, v) for k, v in t.items() if k.startswith("param_"))),
        )
        for t in trials
    }
    runs: dict[tuple, list[dict]] = {key: [] for key in key_of.values()}
    for row in epochs:
        runs[key_of[row["trial_id"]]].append(
            {k: v for k, v in row.items() if k not in NOT_TRAINING}
        )
    return runs


def checkpoint_epochs(trial_dir: Path) -> list[int]:
    """The epochs of a trial directory's checkpoint files, oldest first."""
    return sorted(
        int(p.name[len(PREFIX) : -len(SUFFIX)]) for p in trial_dir.glob(f"{PREFIX}*{SUFFIX}")
    )


def test_a_truncated_checkpoint_is_moved_aside_and_its_trial_trains_as_if_never_killed(
    capsys, tmp_path
):
    """kill -9 mid-trial, truncate that trial's newest checkpoint, resume: one line names the
    file, no retry of it, and the trial's records equal those of an uninterrupted sweep."""
    from te_sweep.sweep.checkpoints import checkpoint_name

    space = blocks_space(tmp_path, max_epochs=6, n_train=2000)
    options = ("--num-samples", 2, "--repeats", 1, "--max-concurrent", 1, "--seed", 5)
    reference = run_cli(
        capsys, "launch", space, "--storage", tmp_path, "--name", "reference", *options
    )
    assert reference.code == 0, reference.out + reference.err
    sweep = tmp_path / "damaged"
    proc = launch_process(space, tmp_path, "damaged", *options)
    wait_for(
        lambda: any(2 <= e < 6 for e in newest_checkpoint_epochs(sweep)),
        "trial two epochs into its run",
        proc,
    )
    proc.kill()
    wait_until_written_out(sweep, quiet_s=10)
    trial_dir, epochs = next(
        (d, checkpoint_epochs(d))
        for d in sweep.glob("*/")
        if any(1 <= e < 6 for e in checkpoint_epochs(d))
    )
    newest = trial_dir / checkpoint_name(epochs[-1])
    size = newest.stat().st_size
    with newest.open("r+b") as file:
        file.truncate(size // 2)
    then = (
        f"the trial falls back to {checkpoint_name(epochs[-2])} and restarts from epoch "
        f"{epochs[-2] + 1}"
        if len(epochs) > 1
        else "the trial restarts from epoch 1"
    )

    resumed = run_cli(capsys, "resume", sweep)
    assert resumed.code == 0, resumed.out + resumed.err
    line = (
        f"trial {trial_dir.name}: checkpoint {newest} is damaged ({size // 2} of {size} "
        f"bytes; truncated); moved aside to {newest}.damaged, {then}"
    )
    assert line in resumed.out_lines, resumed.out
    assert (trial_dir / f"{newest.name}.damaged").stat().st_size == size // 2
    assert not (trial_dir / "error.txt").exists()  # no attempt ever read the damaged file
    trials, epochs_rows, meta = read_export(sweep)
    assert meta[b"te_sweep.partial"] == b"false" and len(trials) == 3
    assert all(t["status"] in FINAL for t in trials), trials
    ids = [e["trial_id"] for e in epochs_rows]
    assert (
        len(set(zip(ids, (e["epoch"] for e in epochs_rows), strict=False)))
        == len(epochs_rows)
        == 3 * 6
    )
    damaged_run = records_by_run(sweep)
    expected = records_by_run(tmp_path / "reference")
    damaged_trial = next(t for t in trials if trial_dir.name.endswith(t["trial_id"]))
    assert damaged_trial["epochs_run"] == 6
    assert damaged_run == expected
