"""The `te-sweep` command line, driven through its real entry point `te_sweep.cli.main`.

The product rule under test: bad input gets one clear line naming the bad value and the fix,
exit code 2, before any work starts, and nothing on disk is lost or overwritten. Good input
runs a trial and prints a live table. Runs here are tiny (--subset, 1-2 epochs, --device cpu).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import Result, write_blocks_npz
from conftest import run_cli as run_main

from te_sweep.cli import train as train_command
from te_sweep.core.metrics import METRIC_NAMES

CUDA = torch.cuda.is_available()
FAST = ("--device", "cpu")  # every real run: deterministic, and a GPU's start-up is not needed


# ------------------------------------------------------------------------------ helpers
def run_train(capsys: pytest.CaptureFixture[str], *args: object) -> Result:
    return run_main(capsys, "train", *args)


def error_line(result: Result) -> str:
    """The single stderr line of a bad-input exit (code 2, nothing on stdout)."""
    assert result.code == 2, result
    assert result.out == "", f"bad input must stop before the trial starts: {result}"
    lines = result.err.splitlines()
    assert len(lines) == 1 and result.err == lines[0] + "\n", f"want one stderr line: {result}"
    assert lines[0].startswith("Error: ") and lines[0].strip() != "Error:", result
    return lines[0]


def assert_bad_value(result: Result, option: str, value: str, *fixes: str) -> str:
    """One line naming the option, then the bad value, then stating the fix."""
    line = error_line(result)
    assert line.startswith(f"Error: Invalid value for '{option}': {value}"), line
    for fix in fixes:
        assert fix in line, f"{fix!r} not in {line!r}"
    return line


@dataclass
class Table:
    trial: str  # the "trial: ..." line
    header: list[str]
    rows: list[dict[str, str]]  # column -> printed cell
    status: str  # the final "status: ..." line


def parse_run(result: Result) -> Table:
    """A successful run's stdout: trial line, header, one row per epoch, status line."""
    assert result.code == 0, result
    lines = result.out_lines
    assert len(lines) >= 4, result.out
    assert lines[0].startswith("trial: "), lines[0]
    assert lines[-1].startswith("status: "), lines[-1]
    header = lines[1].split()
    assert header[0] == "epoch" and "te_time_s" in header and "te_mean" in header, lines[1]
    rows = []
    for line in lines[2:-1]:
        cells = line.split()
        assert len(cells) == len(header), f"row {line!r} does not match header {header}"
        rows.append(dict(zip(header, cells, strict=False)))
    return Table(lines[0], header, rows, lines[-1])


def epoch_numbers(table: Table) -> list[int]:
    return [int(row["epoch"]) for row in table.rows]


def status_ok(table: Table) -> None:
    assert re.fullmatch(
        r"status: (complete|censored); (target reached at epoch \d+ after "
        r"[\d.]+ s of training|target not reached); device cpu",
        table.status,
    ), table.status


# ------------------------------------------------------------------------------ fixtures
@pytest.fixture(autouse=True)
def data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test's torchvision root: a path that does not exist until something downloads."""
    root = tmp_path / "data"
    monkeypatch.setenv("TE_SWEEP_DATA", str(root))
    return root


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny CPU trials run faster on one thread than on two contended ones."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def no_loading(monkeypatch: pytest.MonkeyPatch, data_root: Path):
    """Fail loudly if a test's trial gets as far as reading a data set; then check the disk."""
    import te_sweep.core.data

    def refuse(*args, **kwargs):
        raise AssertionError(f"data was loaded for bad input: {args}")

    monkeypatch.setattr(te_sweep.core.data, "load_dataset", refuse)
    yield
    assert not data_root.exists(), "bad input must not start a download"


# ------------------------------------------------------------------------------ 1. bad values
NEEDS_NO_GPU = pytest.mark.skipif(CUDA, reason="checks the message when no CUDA device exists")

BAD_VALUES = [
    # (arguments, option named, value as the message shows it, distinctive fix fragment)
    pytest.param(
        ["--dataset", "imagenet"],
        "--dataset",
        "'imagenet'",
        "use one of fashion-mnist, usps, cifar10, svhn, stl10 or a path to an .npz",
        id="dataset-unknown",
    ),
    pytest.param(
        ["--pair-fraction", "0"],
        "--pair-fraction",
        "0.0",
        "give a fraction of pairs such as 0.1 or 1",
        id="pair-fraction-0",
    ),
    pytest.param(
        ["--pair-fraction", "1.5"],
        "--pair-fraction",
        "1.5",
        "give a fraction of pairs such as 0.1 or 1",
        id="pair-fraction-1.5",
    ),
    pytest.param(["--window", "1"], "--window", "1 ", "TE needs at least 2 samples", id="window-1"),
    pytest.param(["--te-scale", "-1"], "--te-scale", "-1.0", "must be >= 0", id="te-scale-neg"),
    pytest.param(["--te-scale", "nan"], "--te-scale", "nan", "must be >= 0", id="te-scale-nan"),
    pytest.param(
        ["--threshold", "0"],
        "--threshold",
        "0.0",
        "positive, finite |z| threshold",
        id="threshold-0",
    ),
    pytest.param(["--threshold", "-0.5"], "--threshold", "-0.5", "e.g. 1.0", id="threshold-neg"),
    pytest.param(
        ["--threshold", "inf"], "--threshold", "inf", "positive, finite", id="threshold-inf"
    ),
    pytest.param(
        ["--prob-threshold", "1.0"],
        "--prob-threshold",
        "1.0",
        "the paper uses 0.9",
        id="prob-threshold-1",
    ),
    pytest.param(
        ["--te-every", "0"], "--te-every", "0 ", "must be at least 1 (steps)", id="te-every-0"
    ),
    pytest.param(
        ["--other-split-every", "0"],
        "--other-split-every",
        "0 ",
        "1 evaluates both splits every epoch",
        id="other-split-every-0",
    ),
    pytest.param(["--epochs", "0"], "--epochs", "0 ", "must be at least 1", id="epochs-0"),
    pytest.param(["--target", "1.5"], "--target", "1.5", "give e.g. 0.97", id="target-1.5"),
    pytest.param(
        ["--subset", "0"],
        "--subset",
        "0 ",
        "give the number of training images to use",
        id="subset-0",
    ),
    pytest.param(
        ["--subset", "70000"],
        "--subset",
        "70000",
        "60000 training images of fashion-mnist; give at most 60000 or leave it out",
        id="subset-too-large",
    ),
    pytest.param(["--lr", "0"], "--lr", "0.0", "e.g. 0.008", id="lr-0"),
    pytest.param(["--momentum", "1"], "--momentum", "1.0", "[0, 1)", id="momentum-1"),
    pytest.param(["--momentum", "-0.1"], "--momentum", "-0.1", "[0, 1)", id="momentum-neg"),
    pytest.param(
        ["--batch-size", "0"], "--batch-size", "0 ", "must be at least 1", id="batch-size-0"
    ),
    pytest.param(["--seed", "-1"], "--seed", "-1", "[0, 2**63)", id="seed-neg"),
    pytest.param(
        ["--preset", "vgg"],
        "--preset",
        "'vgg'",
        "use one of fashion-mnist, usps",
        id="preset-unknown",
    ),
    pytest.param(
        ["--device", "gpu"], "--device", "'gpu'", "auto, cpu, cuda, cuda:N", id="device-unknown"
    ),
    pytest.param(["--mode", "bogus"], "--mode", "'bogus'", "'grad', 'paper'", id="mode-choice"),
    pytest.param(
        ["--target-metric", "loss"],
        "--target-metric",
        "'loss'",
        "'train_acc', 'test_acc'",
        id="target-metric-choice",
    ),
    pytest.param(
        ["--window", "abc"], "--window", "'abc'", "is not a valid integer", id="window-not-int"
    ),
    pytest.param(
        ["--subset", "1e3"], "--subset", "'1e3'", "is not a valid integer", id="subset-not-int"
    ),
    pytest.param(
        ["--device", "cuda"],
        "--device",
        "'cuda'",
        "use 'cpu' or 'auto'",
        id="device-cuda-absent",
        marks=NEEDS_NO_GPU,
    ),
    pytest.param(
        ["--dataset", "cifar10", "--mode", "grad", "--te-scale", "1"],
        "--mode",
        "'grad'",
        "preset 'cifar10' has one; use mode 'paper'",
        id="grad-single-fc",
    ),
    # te_scale 0 is the baseline: no feedback, so 'grad' on a single-FC preset is fine and the
    # error is about the next bad value (the window: found in validate, before the mode check).
    pytest.param(
        ["--dataset", "cifar10", "--mode", "grad", "--te-scale", "0", "--window", "1"],
        "--window",
        "1 ",
        "TE needs at least 2 samples",
        id="baseline-grad-window",
    ),
    # The device check runs after the mode check, so this proves the mode passed preflight.
    pytest.param(
        ["--dataset", "cifar10", "--mode", "grad", "--te-scale", "0", "--device", "cuda"],
        "--device",
        "'cuda'",
        "use 'cpu' or 'auto'",
        id="baseline-grad-device",
        marks=NEEDS_NO_GPU,
    ),
]


@pytest.mark.parametrize("args, option, value, fix", BAD_VALUES)
def test_bad_value_exits_2_with_one_line(capsys, no_loading, args, option, value, fix):
    assert_bad_value(run_train(capsys, *args), option, value, fix)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--epochs"], "Error: Option '--epochs' requires an argument."),
        (["--no-such-option", "3"], "Error: No such option '--no-such-option'."),
    ],
)
def test_usage_errors_are_one_line(capsys, no_loading, args, message):
    assert error_line(run_train(capsys, *args)) == message


def test_unknown_command_is_one_line(capsys):
    assert (
        error_line(run_main(capsys, "trian"))
        == "Error: No such command 'trian'. Did you mean 'train'?"
    )


def test_console_script_bad_value(tmp_path: Path):
    """The installed `te-sweep` script: exit 2, one stderr line, nothing on stdout."""
    script = Path(sys.executable).parent / "te-sweep"
    assert script.is_file(), f"console script missing: {script}"
    env = {**os.environ, "TE_SWEEP_DATA": str(tmp_path / "data")}
    proc = subprocess.run(
        [str(script), "train", "--pair-fraction", "0"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 2, proc
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [
        "Error: Invalid value for '--pair-fraction': 0.0 is not in (0, 1]; give a fraction of "
        "pairs such as 0.1 or 1"
    ]
    assert not (tmp_path / "data").exists()


# ------------------------------------------------------------------------------ 2. before any data
@pytest.mark.parametrize(
    "args, option, fix",
    [
        (["--window", "1"], "--window", "TE needs at least 2 samples"),
        (["--subset", "50001"], "--subset", "give at most 50000"),
        (["--mode", "grad", "--te-scale", "0.5"], "--mode", "use mode 'paper'"),
        (["--mode", "paper", "--preset", "vgg"], "--preset", "is not a preset"),
        (["--mode", "paper", "--epochs", "0"], "--epochs", "must be at least 1"),
    ],
)
def test_cifar10_bad_value_fails_before_download(capsys, no_loading, data_root, args, option, fix):
    """cifar10 is not on disk here: loading it would create TE_SWEEP_DATA to download into."""
    result = run_train(capsys, "--dataset", "cifar10", *args)
    line = error_line(result)
    assert line.startswith(f"Error: Invalid value for '{option}': "), line
    assert fix in line
    assert not data_root.exists()


def test_existing_json_refused_before_download(capsys, no_loading, tmp_path, data_root):
    """A valid cifar10 baseline (grad mode allowed at te_scale 0) stops at the --json check."""
    target = tmp_path / "records.json"
    target.write_bytes(b"precious\n")
    result = run_train(
        capsys, "--dataset", "cifar10", "--mode", "grad", "--te-scale", "0", "--json", target
    )
    assert_bad_value(
        result, "--json", str(target), "already exists", "choose another path or pass --overwrite"
    )
    assert target.read_bytes() == b"precious\n"
    assert not data_root.exists()


def _npz_missing_key(path: Path) -> str:
    a = np.zeros((10, 12, 12), np.uint8)
    np.savez(path, train_images=a, train_labels=np.zeros(10, np.int64), test_images=a)
    return "key 'test_labels' missing; an .npz needs train_images, train_labels"


def _npz_mismatched(path: Path) -> str:
    a = np.zeros((10, 12, 12), np.uint8)
    np.savez(
        path,
        train_images=a,
        train_labels=np.zeros(9, np.int64),
        test_images=a,
        test_labels=np.zeros(10, np.int64),
    )
    return "key 'train_labels' has 9 labels but 'train_images' has 10 images; give exactly one"


def _npz_float_images(path: Path) -> str:
    a = np.zeros((10, 12, 12), np.float32)
    np.savez(
        path,
        train_images=a,
        train_labels=np.zeros(10, np.int64),
        test_images=a.astype(np.uint8),
        test_labels=np.zeros(10, np.int64),
    )
    return "key 'train_images' has dtype float32; images must be uint8"


def _text_file(path: Path) -> str:
    path.write_text("train_images,train_labels\n1,2\n")
    return "not an .npz (zip) archive"


def _absent(path: Path) -> str:
    return "no such file; pass the path of an existing .npz file"


def _directory(path: Path) -> str:
    path.mkdir()
    return "is a directory, not an .npz file"


@pytest.mark.parametrize(
    "name, make",
    [
        ("missing-key.npz", _npz_missing_key),
        ("mismatch.npz", _npz_mismatched),
        ("floats.npz", _npz_float_images),
        ("bad.npz", _text_file),
        ("absent.npz", _absent),
        ("dir.npz", _directory),
    ],
)
def test_bad_npz_fails_before_training(capsys, no_loading, tmp_path, name, make):
    path = tmp_path / name
    fix = make(path)
    before = sorted(p.name for p in tmp_path.iterdir())
    assert_bad_value(
        run_train(capsys, "--dataset", path, "--subset", 5), "--dataset", f"{path}: ", fix
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written, nothing lost


def test_npz_images_too_small_for_preset(capsys, no_loading, tmp_path):
    path = write_blocks_npz(tmp_path / "tiny.npz", n_train=40, n_test=8, size=4)
    line = assert_bad_value(
        run_train(capsys, "--dataset", path),
        "--preset",
        "'fashion-mnist'",
        "does not fit",
        "images of 4x4 are too small",
        "use larger images or a preset with fewer pooling stages",
    )
    assert str(path) in line


def test_npz_subset_larger_than_train_split(capsys, no_loading, tmp_path):
    path = write_blocks_npz(tmp_path / "small.npz", n_train=50, n_test=10)
    line = assert_bad_value(
        run_train(capsys, "--dataset", path, "--subset", 51),
        "--subset",
        "51 ",
        "give at most 50 or leave it out",
    )
    assert f"50 training images of {path}" in line


# ------------------------------------------------------------------------------ 3. --config
def test_config_file_runs_a_trial(capsys, blocks_npz, tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        f"dataset: {blocks_npz}\nmax_epochs: 1\nsubset: 100\nte_scale: 0\ndevice: cpu\nseed: 3\n"
    )
    table = parse_run(run_train(capsys, "--config", cfg))
    assert f"trial: {blocks_npz} " in table.trial
    assert "subset=100" in table.trial and "te_scale=0 " in table.trial
    assert "seed=3" in table.trial and "within 1 epochs" in table.trial
    assert epoch_numbers(table) == [1]
    status_ok(table)


def test_command_line_overrides_config_file(capsys, blocks_npz, tmp_path):
    cfg = tmp_path / "cfg.json"  # JSON is YAML too
    cfg.write_text(
        json.dumps(
            {
                "dataset": str(blocks_npz),
                "max_epochs": 3,
                "subset": 100,
                "te_scale": 0,
                "device": "cpu",
                "target": 0.999,
            }
        )
    )
    table = parse_run(run_train(capsys, "--config", cfg, "--epochs", 1, "--subset", 60))
    assert "within 1 epochs" in table.trial and "subset=60" in table.trial
    assert "te_scale=0 " in table.trial and ">= 0.999" in table.trial  # the file's, kept
    assert epoch_numbers(table) == [1]
    status_ok(table)


@pytest.mark.parametrize(
    "name, text, fixes",
    [
        (
            "unknown.yaml",
            "max_epochs: 2\nbogus_key: 1\n",
            [
                "Invalid key 'bogus_key'",
                "is not a trial setting",
                "known settings: dataset, preset, subset",
            ],
        ),
        (
            "malformed.yaml",
            "te_scale: [1, 2\n",
            ["is not valid YAML/JSON at line 2, column 1", "fix the syntax"],
        ),
        (
            "list.yaml",
            "- te_scale: 1\n- te_scale: 0\n",
            ["must hold a mapping of trial settings", "e.g. 'te_scale: 1.0'"],
        ),
        ("string.yaml", "te_scale: lots\n", ["'te_scale'", "expected a number, got 'lots'"]),
        ("bool.yaml", "subset: true\n", ["'subset'", "expected an integer, got True"]),
        ("null.yaml", "mode: null\n", ["'mode'", "got null; give a value or leave the key out"]),
    ],
)
def test_bad_config_file(capsys, no_loading, tmp_path, name, text, fixes):
    cfg = tmp_path / name
    cfg.write_text(text)
    line = error_line(run_train(capsys, "--config", cfg))
    assert line.startswith(("Error: Invalid value for '", "Error: Invalid key '")), line
    assert str(cfg) in line, f"the file is not named: {line}"
    for fix in fixes:
        assert fix in line, f"{fix!r} not in {line!r}"
    assert cfg.read_text() == text


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_unreadable_config_file(capsys, no_loading, tmp_path, kind):
    cfg = tmp_path / "cfg.yaml"
    if kind == "directory":
        cfg.mkdir()
    assert_bad_value(
        run_train(capsys, "--config", cfg),
        "--config",
        f"cannot read {cfg}: ",
        "give a readable YAML or JSON file",
    )


def test_config_file_bad_value_exits_2(capsys, no_loading, tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("max_epochs: 0\n")
    line = error_line(run_train(capsys, "--config", cfg))
    assert "0 must be at least 1" in line


def test_config_file_bad_value_names_the_file(capsys, no_loading, tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("max_epochs: 0\n")
    line = error_line(run_train(capsys, "--config", cfg))
    assert str(cfg) in line and "max_epochs" in line, line


# ------------------------------------------------------------------------------ 4. --json
def test_json_records(capsys, blocks_npz, tmp_path):
    path = tmp_path / "records.json"
    table = parse_run(
        run_train(
            capsys,
            "--dataset",
            blocks_npz,
            "--subset",
            200,
            "--epochs",
            2,
            "--window",
            100,
            "--json",
            path,
            *FAST,
        )
    )
    records = json.loads(path.read_text())
    assert isinstance(records, list) and len(records) == 2
    for record in records:
        assert tuple(record) == METRIC_NAMES
        assert 0.0 <= record["train_acc"] <= 1.0
    # The test split is evaluated at the last epoch only (other_split_every 5): null before.
    assert records[0]["test_acc"] is None and 0.0 <= records[1]["test_acc"] <= 1.0
    assert [r["epoch"] for r in records] == [1, 2] == epoch_numbers(table)
    for record, row in zip(records, table.rows, strict=False):  # the table prints the same numbers
        assert row["train_acc"] == f"{record['train_acc']:.4f}"
        assert row["test_acc"] == (
            "-" if record["test_acc"] is None else f"{record['test_acc']:.4f}"
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocks.npz", "records.json"]


def test_existing_json_is_kept_without_overwrite(capsys, no_loading, blocks_npz, tmp_path):
    path = tmp_path / "records.json"
    path.write_bytes(b'[{"epoch": 1}]\n')
    assert_bad_value(
        run_train(capsys, "--dataset", blocks_npz, "--subset", 20, "--window", 10, "--json", path),
        "--json",
        f"{path} already exists",
        "choose another path or pass --overwrite",
    )
    assert path.read_bytes() == b'[{"epoch": 1}]\n'


def test_existing_json_replaced_with_overwrite(capsys, blocks_npz, tmp_path):
    path = tmp_path / "records.json"
    path.write_bytes(b"old contents\n")
    table = parse_run(
        run_train(
            capsys,
            "--dataset",
            blocks_npz,
            "--subset",
            40,
            "--epochs",
            1,
            "--te-scale",
            0,
            "--json",
            path,
            "--overwrite",
            *FAST,
        )
    )
    records = json.loads(path.read_text())
    assert [r["epoch"] for r in records] == [1] == epoch_numbers(table)
    assert not (tmp_path / ".records.json.tmp").exists()


def test_json_in_missing_directory(capsys, no_loading, blocks_npz, tmp_path):
    path = tmp_path / "nowhere" / "records.json"
    assert_bad_value(
        run_train(capsys, "--dataset", blocks_npz, "--json", path),
        "--json",
        f"directory {path.parent} does not exist",
        "create it first",
    )
    assert not path.parent.exists()


def test_json_directory_with_overwrite(capsys, no_loading, blocks_npz, tmp_path):
    path = tmp_path / "out"
    path.mkdir()
    assert_bad_value(
        run_train(
            capsys,
            "--dataset",
            blocks_npz,
            "--subset",
            20,
            "--epochs",
            1,
            "--window",
            10,
            "--json",
            path,
            "--overwrite",
            *FAST,
        ),
        "--json",
        str(path),
    )


# ------------------------------------------------------------------------------ 5. real runs
def test_te_run_prints_live_table(capsys, blocks_npz):
    table = parse_run(
        run_train(
            capsys,
            "--dataset",
            blocks_npz,
            "--subset",
            200,
            "--epochs",
            2,
            "--window",
            50,
            "--batch-size",
            20,
            "--threshold",
            0.5,
            *FAST,
        )
    )
    assert "te_scale=1 " in table.trial and "window=50 " in table.trial
    assert epoch_numbers(table) == [1, 2]
    for row in table.rows:
        assert float(row["te_time_s"]) > 0  # the feedback ran
        assert row["te_mean"] != "-" and float(row["te_mean"]) >= 0
        assert 0 <= float(row["train_acc"]) <= 1
    assert table.rows[0]["test_acc"] == "-"  # evaluated at the last epoch only
    assert 0 <= float(table.rows[-1]["test_acc"]) <= 1
    status_ok(table)
    complete = float(table.rows[-1]["train_acc"]) >= 0.97
    assert table.status.startswith(
        "status: complete; target reached at epoch 2"
        if complete
        else "status: censored; target not reached"
    )


def test_baseline_run_has_no_te(capsys, blocks_npz):
    table = parse_run(
        run_train(
            capsys, "--dataset", blocks_npz, "--subset", 200, "--epochs", 2, "--te-scale", 0, *FAST
        )
    )
    assert "te_scale=0 " in table.trial
    assert epoch_numbers(table) == [1, 2]
    assert [row["te_mean"] for row in table.rows] == ["-", "-"]
    assert [row["te_time_s"] for row in table.rows] == ["0.000", "0.000"]
    status_ok(table)


# ------------------------------------------------------------------------------ 6. help
TRAIN_OPTIONS = [
    opt
    for param in train_command.params
    for opt in (*param.opts, *param.secondary_opts)
    if opt.startswith("--")
]


def test_every_train_parameter_is_an_option():
    assert len(TRAIN_OPTIONS) >= 25 and "--json" in TRAIN_OPTIONS


@pytest.mark.parametrize("args", [["--help"], ["-h"]])
def test_group_help(capsys, args):
    result = run_main(capsys, *args)
    assert result.code == 0 and result.err == ""
    assert result.out.startswith("Usage: te-sweep [OPTIONS] COMMAND")
    assert re.search(r"^\s+train\s+Run one trial", result.out, re.M)


@pytest.mark.parametrize("option", TRAIN_OPTIONS)
def test_train_help_lists_option(capsys, option):
    result = run_main(capsys, "train", "--help")
    assert result.code == 0 and result.err == ""
    assert result.out.startswith("Usage: te-sweep train [OPTIONS]")
    assert re.search(rf"(^|[\s,/]){re.escape(option)}([\s,/]|$)", result.out), option


def test_version(capsys):
    result = run_main(capsys, "--version")
    assert result.code == 0
    assert re.fullmatch(r"te-sweep, version \S+\n", result.out)


def test_no_command_is_one_line_or_help(capsys):
    result = run_main(capsys)
    if result.code == 0:
        assert result.out.startswith("Usage: te-sweep")
    else:
        error_line(result)


# ------------------------------------------------------------------------------ 7. real data
def test_fashion_mnist_learns(capsys, fashion_mnist):
    # --batch-size 20: 50 steps; the preset's 100 gives only 10 steps (test_acc ~0.16).
    table = parse_run(
        run_train(
            capsys,
            "--dataset",
            "fashion-mnist",
            "--subset",
            1000,
            "--epochs",
            1,
            "--te-scale",
            1,
            "--batch-size",
            20,
            *FAST,
        )
    )
    assert "trial: fashion-mnist preset=fashion-mnist subset=1000" in table.trial
    assert epoch_numbers(table) == [1]
    assert float(table.rows[0]["test_acc"]) > 0.2, table.rows[0]
    status_ok(table)


def test_python_dash_m_runs_the_same_cli():
    """`python -m te_sweep` is the CLI where no console script is installed (GPU machines)."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "te_sweep", "train", "--window", "1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("Error: Invalid value for '--window': 1")


RAYLET_LINE_DRIVER = """
import os
import sys
import time
from pathlib import Path
import ray
from te_sweep.sweep.ray_cluster import ray_session

with ray_session(None, print):
    @ray.remote(max_retries=0)
    def die():
        os._exit(1)  # the raylet tells the driver that this worker died

    try:
        ray.get(die.remote())
    except ray.exceptions.WorkerCrashedError:
        pass
    deadline = time.monotonic() + 60  # Ray prints the raylet's line from a thread of its own
    while "(raylet)" not in Path(sys.argv[1]).read_text() and time.monotonic() < deadline:
        sys.stdout.flush()
        time.sleep(0.2)
"""


def test_raylet_lines_in_a_log_file_have_no_colour_codes(tmp_path: Path):
    """A sweep driver whose stdout is a file: Ray's "(raylet)" line arrives plain."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_COLOR_PREFIX"}
    log = tmp_path / "sweep.log"
    with log.open("w") as out:
        done = subprocess.run(
            [sys.executable, "-c", RAYLET_LINE_DRIVER, log],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            timeout=240,
        )
    text = log.read_text()
    assert done.returncode == 0, text
    raylet = [line for line in text.splitlines() if "(raylet)" in line]
    assert raylet and raylet[0].startswith("(raylet) A worker died"), text
    assert "\x1b[" not in text, text


def test_a_moved_sweep_resumes_and_exports_where_it_is_now(capsys, tmp_path: Path):
    """A sweep killed mid-way (kill -9 of its process group), then its directory moved to
    other storage under another name: resume runs it there, records the new location in
    te_sweep.json, and the export's options name it; nothing is written at the old place."""
    import signal
    import time

    import pyarrow.parquet as pq
    from sweep_helpers import TE_SWEEP, blocks_space, read_export, wait_until_written_out

    space = blocks_space(tmp_path, max_epochs=4)
    old = tmp_path / "launched" / "first"
    args = [
        TE_SWEEP,
        "launch",
        space,
        "--storage",
        old.parent,
        "--name",
        old.name,
        "--num-samples",
        1,
        "--repeats",
        1,
        "--max-concurrent",
        1,
    ]
    launch = subprocess.Popen(
        [str(a) for a in args],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 240
    while not list(old.glob("*/checkpoint-epoch-*.pt")):
        assert launch.poll() is None and time.monotonic() < deadline, "no trial checkpointed"
        time.sleep(0.2)
    os.killpg(launch.pid, signal.SIGKILL)
    launch.wait()
    wait_until_written_out(old, quiet_s=10)  # a worker that outlived the kill by an epoch
    new = tmp_path / "archive" / "renamed"
    new.parent.mkdir()
    old.rename(new)
    launched = (new / "te_sweep.json").read_text()
    partial = run_main(capsys, "export", new)  # reads only: the manifest stays as launched
    assert partial.code == 0, partial.err
    options = json.loads(read_export(new)[2][b"te_sweep.options"])
    assert (options["storage"], options["name"]) == (str(new.parent), "renamed")
    assert (new / "te_sweep.json").read_text() == launched

    resumed = run_main(capsys, "resume", new)
    assert resumed.code == 0, resumed.out + resumed.err
    assert (
        f"{new} was launched as {old}; its te_sweep.json now records where it is"
        in resumed.out_lines
    ), resumed.out
    manifest = json.loads((new / "te_sweep.json").read_text())
    assert (manifest["name"], manifest["options"]["storage"], manifest["options"]["name"]) == (
        "renamed",
        str(new.parent),
        "renamed",
    )
    assert not old.exists()
    exported = run_main(capsys, "export", new)
    assert exported.code == 0, exported.err
    trials, epochs, meta = read_export(new)
    assert len(trials) == 2 and {t["status"] for t in trials} <= {"complete", "censored"}
    assert len(epochs) == sum(t["epochs_run"] for t in trials)
    options = json.loads(meta[b"te_sweep.options"])
    assert (options["storage"], options["name"]) == (str(new.parent), "renamed")
    assert meta[b"te_sweep.sweep_name"] == b"renamed"
    assert pq.read_table(new / "configs.parquet").num_rows == 1
    assert not old.exists()
