"""Bad input: one line naming the value and the fix, exit 2, before Ray starts, nothing written."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_cli

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ROOT / "search_spaces" / "smoke.yaml"


def refused(result, *fragments: str) -> str:
    """The one line of a refusal, checked for its fragments."""
    assert result.code == 2, result
    lines = result.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def space(tmp_path: Path, fixed: str = "", search: str = "  te_scale: {low: 0.1, high: 4.0}\n"):
    path = tmp_path / "space.yaml"
    path.write_text(
        f"fixed:\n  dataset: fashion-mnist\n  subset: 1000\n  max_epochs: 2\n{fixed}"
        f"search:\n{search}"
    )
    return path


def launch(capsys, tmp_path, space_file, *args):
    result = run_cli(capsys, "launch", space_file, "--storage", tmp_path / "results", *args)
    assert not (tmp_path / "results").exists()
    return result


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has a GPU")
def test_a_cuda_space_without_gpus_is_refused(capsys, tmp_path):
    cuda = space(tmp_path, fixed="  device: cuda\n")
    refused(launch(capsys, tmp_path, cuda), "'--gpus-per-trial'", "device 'cuda'")
    os.environ["TE_SWEEP_LOGICAL_GPUS"] = "2"  # Ray would offer GPUs, torch has none
    try:
        refused(
            launch(capsys, tmp_path, cuda, "--gpus-per-trial", "0.5"),
            "fixed.device",
            "no CUDA device",
        )
    finally:
        del os.environ["TE_SWEEP_LOGICAL_GPUS"]


@pytest.mark.parametrize(
    "storage, fragments",
    [
        ("foo://bar", ["'--storage'", "'foo'", "s3://"]),
        ("s3:/oops", ["'--storage'", "without its '//'", "s3://"]),
        ("gs:bucket/x", ["'--storage'", "without its '//'"]),
    ],
)
def test_bad_storage_uris_are_refused(capsys, tmp_path, storage, fragments):
    result = run_cli(capsys, "launch", SMOKE, "--storage", storage)
    refused(result, *fragments)
    assert not Path("s3:").exists() and not Path("gs:bucket").exists()


def test_storage_that_is_a_file_is_refused(capsys, tmp_path):
    blocker = tmp_path / "results"
    blocker.write_text("mine")
    refused(run_cli(capsys, "launch", SMOKE, "--storage", blocker), "is a file")
    assert blocker.read_text() == "mine"


def test_unwritable_storage_is_refused(capsys, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    # root passes every permission check, but nobody can create a folder in /proc
    unwritable = Path("/proc") if os.geteuid() == 0 else locked
    refused(run_cli(capsys, "launch", SMOKE, "--storage", unwritable / "results"), "not writable")


def test_a_sweep_dir_with_an_unknown_scheme_is_refused(capsys):
    refused(run_cli(capsys, "export", "foo://bucket/sweep"), "'SWEEP_DIR'", "'foo://")
    refused(run_cli(capsys, "resume", "foo://bucket/sweep"), "'SWEEP_DIR'")


def test_export_and_report_out_naming_a_file_are_refused(capsys, tmp_path):
    (tmp_path / "te_sweep.json").write_text("{}")
    out = tmp_path / "out.parquet"
    out.write_text("keep me")
    refused(run_cli(capsys, "export", tmp_path, "--out", out), "'--out'", "is a file")
    refused(run_cli(capsys, "report", tmp_path, "--out", out), "'--out'", "is a file")
    assert out.read_text() == "keep me"


@pytest.mark.parametrize(
    "name", ["target", "max_epochs", "device", "dataset", "subset", "target_metric"]
)
def test_the_objective_cannot_be_searched(capsys, tmp_path, name):
    value = {
        "target": "{low: 0.2, high: 0.3}",
        "max_epochs": "{low: 1, high: 3}",
        "device": "{choices: [cpu, auto]}",
        "dataset": "{choices: [fashion-mnist]}",
        "subset": "{low: 100, high: 200}",
        "target_metric": "{choices: [train_acc]}",
    }[name]
    path = tmp_path / "space.yaml"
    path.write_text(f"fixed:\n  te_scale: 1.0\nsearch:\n  {name}: {value}\n")
    refused(launch(capsys, tmp_path, path), f"search.{name}", "move it to `fixed`")


def test_a_window_longer_than_the_whole_trial_is_refused(capsys, tmp_path):
    line = refused(
        launch(capsys, tmp_path, space(tmp_path, search="  window: {low: 100, high: 5000}\n")),
        "window",
        "5000",
    )
    assert "1000 images x 2 epochs" in line
    result = run_cli(capsys, "train", "--subset", 100, "--epochs", 1, "--window", 500)
    refused(result, "'--window'", "500", "100 images x 1 epochs")


def test_a_data_root_that_is_a_file_is_refused(capsys, tmp_path):
    blocker = tmp_path / "data"
    blocker.write_text("x")
    refused(
        run_cli(capsys, "train", "--dataset", "usps", "--data-root", blocker),
        "'--data-root'",
        "is a file",
    )


@pytest.mark.parametrize("device, fragment", [("cuda:x", "cuda:N"), ("cuda:", "cuda:N")])
def test_malformed_devices_are_refused(capsys, device, fragment):
    refused(run_cli(capsys, "train", "--device", device), "'--device'", fragment)


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has a GPU")
def test_a_missing_cuda_device_is_refused(capsys):
    refused(run_cli(capsys, "train", "--device", "cuda:3"), "'--device'", "no CUDA device")


def test_logical_resources_must_be_counts(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("TE_SWEEP_LOGICAL_CPUS", "many")
    refused(
        run_cli(capsys, "launch", SMOKE, "--storage", tmp_path / "results"),
        "$TE_SWEEP_LOGICAL_CPUS",
        "'many'",
    )
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize(
    "address, code, says",
    [
        ("127.0.0.1:9", 1, "cannot connect to the Ray cluster at 127.0.0.1:9"),  # nothing listens
        ("ray://127.0.0.1:9", 1, "cannot connect to the Ray cluster at ray://127.0.0.1:9"),
        ("headnode", 2, "headnode is not HOST:PORT"),
    ],
)
def test_an_unreachable_cluster_is_one_line_before_ray_starts(
    capsys, tmp_path, address, code, says
):
    result = run_cli(
        capsys,
        "launch",
        SMOKE,
        "--address",
        address,
        "--storage",
        f"file://{tmp_path}/results",
        "--shared-storage",
    )
    assert result.code == code, result
    lines = result.err.splitlines()
    assert len(lines) == 1 and says in lines[0], lines
    assert not (tmp_path / "results").exists()


def test_a_grid_needs_choices_and_no_more_samples_than_combinations(capsys, tmp_path):
    ranged = space(tmp_path)  # te_scale is a range
    refused(
        launch(capsys, tmp_path, ranged, "--sampler", "grid"),
        "'--sampler'",
        "search.te_scale is a range",
        "{choices: [...]}",
    )
    grid = space(
        tmp_path, search="  te_scale: {choices: [0.5, 2.0]}\n  mode: {choices: [grad, paper]}\n"
    )
    refused(
        launch(capsys, tmp_path, grid, "--sampler", "grid", "--num-samples", 5),
        "'--num-samples'",
        "5 is more than the 4 combinations",
        "--num-samples 4",
    )


def test_a_grid_hands_out_every_combination_once_per_seed(tmp_path):
    from te_sweep.core.space import load_space
    from te_sweep.sweep.concurrency import ConcurrencyPolicy
    from te_sweep.sweep.searcher import SweepSearcher

    grid = load_space(
        space(
            tmp_path,
            search="  te_scale: {choices: [0.5, 2.0]}\n"
            "  te_estimator: {choices: [plugin, effective]}\n",
        )
    )
    policy = ConcurrencyPolicy.for_sweep(100, None, 1.0, 0.0, total_trials=100)
    searcher = SweepSearcher(
        grid, seed=7, repeats=2, configs=4, threads=1, concurrency=policy, sampler="grid"
    )
    handed = [searcher.suggest(f"t{i}") for i in range(searcher.max_trials())]
    te_runs = [c["trial"] for c in handed if c["role"] == "te"]
    combos = [(t["te_scale"], t["te_estimator"], t["seed"]) for t in te_runs]
    seeds = {t["seed"] for t in te_runs}
    assert len(seeds) == 2 and len(combos) == len(set(combos)) == 8
    assert {(s, e) for s, e, _ in combos} == {
        (0.5, "plugin"),
        (0.5, "effective"),
        (2.0, "plugin"),
        (2.0, "effective"),
    }
    assert searcher.suggest("one-more") is SweepSearcher.FINISHED
    done = {"trial_status": "complete", "objective_epochs": 2.0, "te_overhead": 0.1}
    for trial_id in (f"t{i}" for i in range(len(handed))):
        searcher.on_trial_complete(trial_id, done)  # the last grid point too: no study.stop()
    states = [t.state.name for t in searcher.study.trials]
    assert states == ["COMPLETE"] * 4
    searcher.save(str(tmp_path / "searcher.pkl"))  # Tune's snapshot pickles the sampler too
    restored = SweepSearcher.__new__(SweepSearcher)
    restored.restore(str(tmp_path / "searcher.pkl"))
    assert len(restored.study.trials) == 4


# ------------------------------------------------------------------ issue 17: smaller ones
def test_storage_under_a_file_names_the_file_not_permissions(capsys, tmp_path):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("mine")
    line = refused(run_cli(capsys, "launch", SMOKE, "--storage", blocker / "results"))
    assert line == (
        f"Error: Invalid value for '--storage': {blocker} is a file, so "
        f"{blocker}/results cannot be created inside it; give a path whose parent "
        "is a directory"
    )
    assert blocker.read_text() == "mine"


def exported_hand_sweep(root: Path) -> Path:
    """A small finished sweep's directory, its tables written by `te-sweep export`."""
    from hand_files import HandSweep, run, trial_config

    sweep = HandSweep(root, num_samples=1, repeats=1)
    sweep.trial("b1", trial_config("baseline", 11), run([0.5, 0.6, 0.7, 0.85]), "TERMINATED")
    sweep.trial("t1", trial_config("te", 11, "c1"), run([0.5, 0.6, 0.81], te=0.1), "TERMINATED")
    sweep.save_state()
    sweep.export()
    return root


@pytest.mark.parametrize(
    "table, damage",
    [
        ("trials.parquet", lambda data: data[: len(data) // 2]),
        ("epochs.parquet", lambda data: b""),
        ("configs.parquet", lambda data: data[:-1]),
    ],
)
def test_report_of_a_damaged_parquet_file_names_it(capsys, tmp_path, table, damage):
    sweep = exported_hand_sweep(tmp_path / "hand")
    path = sweep / table
    path.write_bytes(damage(path.read_bytes()))
    line = refused(run_cli(capsys, "report", sweep))
    assert re.fullmatch(
        rf"Error: {re.escape(str(path))} is not a readable Parquet file "
        rf"\([^()]+\); write it again with `te-sweep export "
        rf"{re.escape(str(sweep))}`",
        line,
    ), line
    assert not (sweep / "report.html").exists()


def test_export_and_report_print_no_optuna_line(tmp_path):
    """The real console script (Optuna's logging set up afresh, as a user's shell gets it)."""
    sweep = exported_hand_sweep(tmp_path / "hand")
    te_sweep = Path(sys.executable).parent / "te-sweep"
    for command in ("export", "report"):
        done = subprocess.run(
            [te_sweep, command, sweep], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        assert done.stderr == "", done.stderr
        assert all(line.startswith(("wrote ", "2 trials")) for line in done.stdout.splitlines()), (
            done.stdout
        )


def test_resume_if_exists_with_an_edited_space_file_says_it_changed(capsys, tmp_path):
    space_file = tmp_path / "smoke.yaml"
    space_file.write_text(SMOKE.read_text())
    sweep = tmp_path / "results" / "mine"
    sweep.mkdir(parents=True)
    launched = SMOKE.read_text().replace("max_epochs:", "max_epochs: 7 #", 1)
    (sweep / "te_sweep.json").write_text(
        json.dumps(
            {
                "sweep_id": "abc123",
                "space_path": str(space_file),
                "space_text": launched,
                "options": {"storage": str(tmp_path / "results"), "name": "mine"},
            }
        )
    )
    line = refused(
        run_cli(
            capsys,
            "launch",
            space_file,
            "--storage",
            tmp_path / "results",
            "--name",
            "mine",
            "--resume-if-exists",
        )
    )
    assert line == (
        f"Error: Invalid value for '--resume-if-exists': {space_file} has changed "
        f"since sweep {sweep} was launched from it; restore it as it was (the "
        "sweep's te_sweep.json holds its text), or choose another --name"
    )
    assert sorted(p.name for p in sweep.iterdir()) == ["te_sweep.json"]
