"""Export from hand-written Tune files: every number in trials.parquet, epochs.parquet and
configs.parquet checked against values computed by hand, without starting Ray.

The files are written by tests/hand_files.py as Tune writes them, so the cases a real sweep
produces only by chance are built on purpose: an epoch reported twice after a restore, a
censored TE run, a censored baseline, a sweep with fewer trials than it asked for, an older
experiment state with a newer modification time. tests/results/test_export_rows.py checks every
column of a row and every status.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import optuna
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hand_files import (
    MAX_EPOCHS,
    SEEDS,
    SPACE_TEXT,
    HandSweep,
    packed,
    report,
    run,
    trial_config,
)

from te_sweep.results.report_lines import TRIAL_COLUMN
from te_sweep.results.tune_files import (
    SweepFiles,
    read_sweep_files,
    state_is_readable,
)


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
    restored = [
        report(1, 0.6, te=0.1),
        report(2, 0.55, te=0.1),  # before the restore
        report(2, 0.9, "complete", te=0.1),
    ]  # the same epoch, again: this one counts
    sweep.trial("t11", trial_config("te", 11, "c0000"), restored, "TERMINATED")
    sweep.trial(
        "t22", trial_config("te", 22, "c0000"), run([0.5, 0.6, 0.7, 0.7], te=0.1), "TERMINATED"
    )
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


def test_a_trial_restored_to_an_earlier_epoch_keeps_each_epochs_last_report(tmp_path):
    """A trial that reported epochs 1-3, was restored from its epoch-1 checkpoint and reported
    2 and 3 again: its rows are out of order, and the later reports of 2 and 3 count."""
    sweep = HandSweep(tmp_path / "hand", num_samples=1, repeats=1)
    sweep.trial("b11", trial_config("baseline", 11), run([0.5, 0.9]), "TERMINATED")
    lines = [
        report(1, 0.5, te=0.1),
        report(2, 0.55, te=0.1),
        report(3, 0.6, te=0.1),  # then lost with its worker
        report(2, 0.7, te=0.1),
        report(3, 0.9, "complete", te=0.1),
    ]
    sweep.trial(
        "t11", trial_config("te", 11, "c0000"), [packed(line) for line in lines], "TERMINATED"
    )
    sweep.save_state()
    _, epochs, _, _ = sweep.export()
    assert [(e["epoch"], e["train_acc"]) for e in epochs if e["trial_id"] == "t11"] == [
        (1, 0.5),
        (2, 0.7),
        (3, 0.9),
    ]


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
    # One informative pair: an estimate, but never a rank (nothing is ranked on one seed).
    assert row["beats_baselines"] is False and row["rank"] is None and row["pareto"] is True


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
    sweep.trial(
        "t11",
        trial_config("te", 11, "c0000"),
        [report(1, 0.5, te=0.1)],
        "RUNNING",
        raw_tail='{"epoch": 2, "train_acc": 0.',
    )
    sweep.save_state()
    trials, epochs, _, summary = sweep.export()
    assert [e["epoch"] for e in epochs if e["trial_id"] == "t11"] == [1]
    assert next(t for t in trials if t["trial_id"] == "t11")["status"] == "unfinished"
    assert summary["partial"]


def test_report_files_are_read_into_one_buffer_whole_lines_only(tmp_path):
    """Each file's whole lines, end to end in one buffer, with its span and line count: a last
    line cut short is left out (and the next file's lines take its place), a missing file, an
    empty one, a directory where the file should be and no path at all are empty spans."""
    from te_sweep.results.report_lines import Reports

    def write(name: str, text: bytes) -> Path:
        (tmp_path / name).write_bytes(text)
        return tmp_path / name

    (tmp_path / "a_directory").mkdir()
    paths = [
        write("two", b'{"a": 1}\n{"a": 2}\n{"a": 3'),
        None,
        tmp_path / "missing",
        write("empty", b""),
        tmp_path / "a_directory",
        write("cut", b'{"a": 4'),
        write("one", b'{"a": 5}\n'),
    ]
    reports = Reports.read(paths)
    assert bytes(reports.data) == b'{"a": 1}\n{"a": 2}\n{"a": 5}\n'
    assert reports.spans == [(0, 18), (18, 18), (18, 18), (18, 18), (18, 18), (18, 18), (18, 27)]
    assert reports.line_counts == [2, 0, 0, 0, 0, 0, 1]
    assert reports.chunks()[0] == b'{"a": 1}\n{"a": 2}\n' and reports.chunks()[-1] == b'{"a": 5}\n'


@pytest.mark.parametrize(
    ("trials", "epochs", "in_order"),
    [
        ([0, 0, 0, 1, 1], [1, 2, 3, 1, 2], True),
        ([0, 0, 1], [1, 1, 1], True),  # an epoch reported twice in a row: the last one wins
        ([0, 0, 0], [1, 2, 1], False),  # restored: epoch 1 again after 2
        ([0, 1, 0], [1, 1, 2], False),  # a trial's rows apart
        ([1, 0], [1, 1], False),
        ([], [], True),
    ],
)
def test_rows_already_in_order_are_not_sorted_again(trials, epochs, in_order):
    from te_sweep.results.report_lines import _in_order

    table = pa.table({TRIAL_COLUMN: pa.array(trials, pa.int64()), "epoch": epochs})
    assert _in_order(table) is in_order


def lines_of(reports: list[dict]) -> str:
    return "".join(json.dumps(line) + "\n" for line in reports)


@pytest.mark.parametrize("piece_bytes", [1, 1000, 2500])
def test_report_lines_read_in_pieces_make_the_same_table(tmp_path, piece_bytes):
    """read_results reads and parses about `piece_bytes` of lines at a time (the export's
    memory at 10,000 x 50 is then the table's, not the 0.5 GB of text): a file a piece, a few
    files a piece, or all at once give the same table, its trial and line numbers included.
    Among the files: lines before the record list, with it, with an older shorter list (each
    piece parsed its own way), an empty file, a missing one, a line cut short, and a restored
    trial whose epochs come again."""
    from te_sweep.core.reporting import LATER_COLUMNS, RECORD_COLUMNS
    from te_sweep.results.report_lines import _pieces, last_report_per_epoch, read_results

    first_form = RECORD_COLUMNS[: len(RECORD_COLUMNS) - len(LATER_COLUMNS)]
    restored = [report(1, 0.5), report(2, 0.6), report(2, 0.7), report(3, 0.9, "complete")]
    texts = {
        "flat": lines_of(run([0.5, 0.7, 0.8])),
        "packed": lines_of([packed(line) for line in run([0.6, 0.9], te=0.1)]),
        "older list": lines_of([packed(line, first_form) for line in run([0.4, 0.5, 0.6])]),
        "empty": "",
        "cut short": lines_of(run([0.5])) + '{"epoch": 2, "train_a',
        "restored": lines_of([packed(line) for line in restored]),
    }
    paths = []
    for name, text in texts.items():
        (tmp_path / name).write_text(text)
        paths.append(tmp_path / name)
    paths.insert(3, tmp_path / "missing")
    whole = read_results(paths, piece_bytes=1 << 40)
    pieces = _pieces([p.stat().st_size if p.exists() else 0 for p in paths], piece_bytes)
    assert 1 < len(pieces) <= len(paths)  # read in pieces, not at once
    in_pieces = read_results(paths, piece_bytes)
    assert in_pieces.equals(whole)
    assert whole.column(TRIAL_COLUMN).to_pylist() == [0] * 3 + [1] * 2 + [2] * 3 + [5] + [6] * 4
    assert whole.column("_line").to_pylist() == list(range(13))
    latest = last_report_per_epoch(in_pieces).select([TRIAL_COLUMN, "epoch", "train_acc"])
    assert latest.to_pylist()[-3:] == [
        {TRIAL_COLUMN: 6, "epoch": 1, "train_acc": 0.5},
        {TRIAL_COLUMN: 6, "epoch": 2, "train_acc": 0.7},
        {TRIAL_COLUMN: 6, "epoch": 3, "train_acc": 0.9},
    ]


@pytest.mark.parametrize(
    ("sizes", "limit", "pieces"),
    [
        ([], 10, [(0, 0)]),
        ([5, 5, 5], 10, [(0, 2), (2, 3)]),
        ([20, 1], 10, [(0, 1), (1, 2)]),  # a file larger than a piece: a piece of its own
        ([1, 20, 1], 10, [(0, 1), (1, 2), (2, 3)]),
        ([0, 0, 10, 0], 10, [(0, 4)]),
        ([4, 4, 4], 1, [(0, 1), (1, 2), (2, 3)]),
        ([5, 6], 10, [(0, 1), (1, 2)]),  # one byte over: two pieces
        ([20, 5, 6], 10, [(0, 1), (1, 2), (2, 3)]),  # the count starts again in each piece
        ([20, 5, 5], 10, [(0, 1), (1, 3)]),  # ... from nothing
    ],
)
def test_pieces_are_consecutive_files_up_to_the_limit(sizes, limit, pieces):
    from te_sweep.results.report_lines import _pieces

    assert _pieces(sizes, limit) == pieces


def reports_read(files: SweepFiles) -> list[tuple[str, int, float]]:
    """(trial id, epoch, train_acc) of every report read, in the table's order."""
    rows = files.results.select([TRIAL_COLUMN, "epoch", "train_acc"]).to_pylist()
    return [(files.trials[r[TRIAL_COLUMN]].trial_id, r["epoch"], r["train_acc"]) for r in rows]


def test_trials_are_found_by_the_directory_their_experiment_state_names(tmp_path):
    """A trial's directory is the one the newest experiment state names (custom_dirname, or
    relative_logdir where Tune left custom_dirname empty), whatever its name ends in; a
    directory the state does not name yet (a trial started after the last save) is known
    by its name's last "_" part, as te-sweep's trial_dirname ends in the trial id."""
    sweep = HandSweep(tmp_path / "hand", num_samples=1, repeats=1)
    sweep.trial(
        "b11",
        trial_config("baseline", 11),
        run([0.5, 0.9]),
        "TERMINATED",
        dirname="train_ab12_00000_0_seed=11_2026-12-01_10-00-00",
    )
    sweep.trial(
        "t11",
        trial_config("te", 11, "c0000"),
        run([0.6], te=0.1),
        "TERMINATED",
        dirname="train_ab12_00001_1_seed=11_2026-12-01_10-00-05",
        state_key="relative_logdir",
    )
    sweep.save_state()
    sweep.trial("t22", trial_config("te", 22, "c0000"), run([0.7], te=0.1), "RUNNING")
    files = read_sweep_files(sweep.root)
    assert [(t.trial_id, t.tune_status, t.config["role"]) for t in files.trials] == [
        ("b11", "TERMINATED", "baseline"),
        ("t11", "TERMINATED", "te"),
        ("t22", None, "te"),
    ]
    assert reports_read(files) == [
        ("b11", 1, 0.5),
        ("b11", 2, 0.9),
        ("t11", 1, 0.6),
        ("t22", 1, 0.7),
    ]


@pytest.mark.parametrize(
    "odd_line",
    [
        "\n",
        "\n\n",
        "not json\n",
        '{"epoch": 2, "train\n',
        '{"trial_status": "running", "training_iteration": 9}\n',
    ],
)
def test_a_line_that_is_not_a_report_is_skipped_and_the_rest_is_read(tmp_path, odd_line):
    """A blank line, a line pyarrow cannot parse, or a JSON line that is no epoch's report
    (no `epoch`), in the middle of a result.json: the per-line path reads every file instead, each report still under its own trial, the
    reports after the odd line included."""
    sweep = HandSweep(tmp_path / "hand", num_samples=1, repeats=1)
    sweep.trial("b11", trial_config("baseline", 11), run([0.5, 0.9]), "TERMINATED")
    later = "".join(json.dumps(line) + "\n" for line in run([0.5, 0.6, 0.9], te=0.1)[1:])
    sweep.trial(
        "t11",
        trial_config("te", 11, "c0000"),
        run([0.5], te=0.1),
        "TERMINATED",
        raw_tail=odd_line + later,
    )
    sweep.trial("t22", trial_config("te", 22, "c0000"), run([0.7, 0.8], te=0.1), "TERMINATED")
    sweep.save_state()
    assert reports_read(read_sweep_files(sweep.root)) == [
        ("b11", 1, 0.5),
        ("b11", 2, 0.9),
        ("t11", 1, 0.5),
        ("t11", 2, 0.6),
        ("t11", 3, 0.9),
        ("t22", 1, 0.7),
        ("t22", 2, 0.8),
    ]


def test_a_whole_last_line_without_its_newline_is_dropped_too(tmp_path):
    """A crash can stop a write right before the newline: the line parses, but it was not
    finished, so it is dropped like any cut-short line (here shorter than the line before,
    so that no slice by a wrong bound keeps it by chance)."""
    sweep = HandSweep(tmp_path / "hand", num_samples=1, repeats=1)
    sweep.trial(
        "t11",
        trial_config("te", 11, "c0000"),
        run([0.5], te=0.1),
        "RUNNING",
        raw_tail='{"epoch": 2, "train_acc": 0.9}',
    )
    sweep.save_state()
    assert reports_read(read_sweep_files(sweep.root)) == [("t11", 1, 0.5)]


def test_one_epoch_reported_twice_is_the_only_row_left_its_last_report(tmp_path):
    """The deduplication holds for the smallest tables too: two reports of one epoch (a
    restore right after the first report) leave one row, the later one."""
    sweep = HandSweep(tmp_path / "hand", num_samples=1, repeats=1)
    sweep.trial(
        "t11",
        trial_config("te", 11, "c0000"),
        [report(1, 0.5, te=0.1), report(1, 0.6, te=0.1)],
        "RUNNING",
    )
    sweep.save_state()
    assert reports_read(read_sweep_files(sweep.root)) == [("t11", 1, 0.6)]


def test_a_searched_setting_with_a_null_choice_exports(tmp_path):
    """`batch_size: {choices: [null, 64]}`: one configuration keeps the preset's batch size
    (100 for fashion-mnist), one sets 64. trials.parquet says what ran; configs.parquet and
    optuna.db name the configurations as the space file does."""
    space = SPACE_TEXT.replace(
        "  te_scale: {low: 0.1, high: 4.0}\n", "  batch_size: {choices: [null, 64]}\n"
    )
    sweep = HandSweep(tmp_path / "hand", num_samples=2, repeats=1, space_text=space)
    sweep.trial("b11", trial_config("baseline", 11), run([0.5, 0.7, 0.8]), "TERMINATED")
    sweep.trial(
        "t1",
        trial_config("te", 11, "c0000", batch_size=None),
        run([0.6, 0.8], te=0.1),
        "TERMINATED",
    )
    sweep.trial(
        "t2", trial_config("te", 11, "c0001", batch_size=64), run([0.8], te=0.1), "TERMINATED"
    )
    sweep.save_state()
    trials, _, configs, _ = sweep.export()
    assert (
        pq.read_schema(tmp_path / "hand" / "configs.parquet").field("param_batch_size").type
        == "int64"
    )
    assert {t["trial_id"]: t["param_batch_size"] for t in trials if t["role"] == "te"} == {
        "t1": 100,
        "t2": 64,
    }
    assert [(c["config_id"], c["param_batch_size"]) for c in configs] == [
        ("c0000", None),
        ("c0001", 64),
    ]
    study = optuna.load_study(
        study_name=None, storage=f"sqlite:///{tmp_path / 'hand' / 'optuna.db'}"
    )
    assert [t.params["batch_size"] for t in study.trials] == [None, 64]


def test_an_lr_control_is_exported_and_compared_with_its_configuration(tmp_path):
    """A configuration's LR control (no TE, the last layer's lr scaled by 0.7) on the TE run's
    seed: configs.parquet compares the TE run with it, as read back from Tune's files."""
    sweep = HandSweep(tmp_path / "hand", num_samples=1, repeats=1)
    sweep.trial("b11", trial_config("baseline", 11), run([0.5, 0.7, 0.8]), "TERMINATED")
    sweep.trial("t11", trial_config("te", 11, "c0000"), run([0.6, 0.8], te=0.1), "TERMINATED")
    sweep.trial(
        "k11",
        trial_config("control", 11, "c0000", te_scale=0.0, last_lr_scale=0.7),
        run([0.5, 0.6, 0.7, 0.8]),
        "TERMINATED",
    )
    sweep.save_state()
    trials, _, (config,), _ = sweep.export()
    assert {t["trial_id"]: t["role"] for t in trials} == {
        "b11": "baseline",
        "t11": "te",
        "k11": "control",
    }
    # TE reached 0.8 at epoch 2 exactly, the control at 4, the baseline at 3
    assert config["speedup_mean"] == pytest.approx(3.0 / 2.0)
    assert config["control_speedup_mean"] == pytest.approx(4.0 / 2.0)
    assert config["control_last_lr_scale"] == pytest.approx(0.7)


def test_unreadable_files_are_skipped_named_and_the_newest_readable_state_is_used(tmp_path):
    """What a full disk leaves: the newest experiment state cut short (the one before it is
    read instead, its statuses used), an empty one before that, and a trial's params.json
    cut short (that trial is left out). Each is listed as damaged; the tables are partial."""
    sweep = HandSweep(tmp_path / "hand", num_samples=1, repeats=1)
    sweep.trial("b11", trial_config("baseline", 11), run([0.5, 0.9]), "TERMINATED")
    sweep.trial("t11", trial_config("te", 11, "c0000"), run([0.6, 0.9], te=0.1), "RUNNING")
    good = sweep.save_state("2026-12-01_10-00-00")
    sweep.states[1]["status"] = "TERMINATED"
    cut = sweep.save_state("2026-12-01_12-00-00")
    cut.write_bytes(cut.read_bytes()[:40])
    empty = sweep.save_state("2026-12-01_11-00-00")
    empty.write_bytes(b"")
    files = read_sweep_files(sweep.root)
    assert files.damaged == [cut, empty]  # newest first, until a readable one
    assert [(t.trial_id, t.tune_status) for t in files.trials] == [
        ("b11", "TERMINATED"),
        ("t11", "RUNNING"),
    ]
    assert good.exists()

    sweep.trial("t22", trial_config("te", 22, "c0000"), run([0.7], te=0.1), "RUNNING")
    (sweep.root / "te_t22" / "params.json").write_text('{"role": "te", "se')
    trials, _, _, summary = sweep.export()
    assert {t["trial_id"] for t in trials} == {"b11", "t11"}
    assert summary["partial"] is True
    assert summary["damaged"] == [str(cut), str(empty), str(sweep.root / "te_t22" / "params.json")]


def test_a_params_json_that_cannot_be_opened_is_damaged_not_absent(tmp_path):
    """A params.json that is there but cannot be read (here a link to itself; a permission,
    an I/O error) is a damaged file of a trial, listed, not a directory that is no trial's."""
    sweep = HandSweep(tmp_path / "hand", num_samples=1, repeats=1)
    sweep.trial("b11", trial_config("baseline", 11), run([0.5, 0.9]), "TERMINATED")
    sweep.trial("t11", trial_config("te", 11, "c0000"), run([0.6, 0.9], te=0.1), "TERMINATED")
    sweep.save_state()
    params = sweep.root / "te_t11" / "params.json"
    params.unlink()
    params.symlink_to(params)
    files = read_sweep_files(sweep.root)
    assert files.damaged == [params]
    assert [t.trial_id for t in files.trials if t.config is not None] == ["b11"]


def test_a_skipped_file_alone_makes_the_tables_partial(tmp_path):
    """Every trial the state names finished, but a directory's params.json cannot be read:
    the tables may be missing a trial, so they say partial."""
    sweep = HandSweep(tmp_path / "hand", num_samples=1, repeats=1)
    sweep.trial("b11", trial_config("baseline", 11), run([0.5, 0.9]), "TERMINATED")
    sweep.trial("t11", trial_config("te", 11, "c0000"), run([0.6, 0.9], te=0.1), "TERMINATED")
    sweep.save_state()
    assert sweep.export()[3]["partial"] is False
    sweep.trial("t00", trial_config("te", 22, "c0000"), run([0.7], te=0.1), "RUNNING")
    (sweep.root / "te_t00" / "params.json").write_bytes(b"")  # read before te_t11's
    trials, _, _, summary = sweep.export()
    assert len(trials) == 2 and summary["partial"] is True
    assert {(t["trial_id"], t["role"], t["epochs_run"]) for t in trials} == {
        ("b11", "baseline", 2),
        ("t11", "te", 2),
    }  # read on past the skipped one
    (state,) = sweep.root.glob("experiment_state-*.json")
    assert state_is_readable(state)
    state.write_bytes(state.read_bytes()[:-2])
    assert not state_is_readable(state)


def test_report_lines_before_and_since_the_record_list_export_alike(tmp_path):
    """result.json lines with every value at the top (sweeps reported before the record list)
    and with the record list (since), in separate trials and within one trial (a sweep
    resumed after upgrading te-sweep): the same rows."""

    def write(name: str, pack_first: bool, pack_rest: bool) -> tuple[list[dict], list[dict]]:
        sweep = HandSweep(tmp_path / name, num_samples=1, repeats=2)
        for trial_id, config, lines in (
            ("b11", trial_config("baseline", 11), run([0.5, 0.7, 0.8])),
            (
                "t11",
                trial_config("te", 11, "c0000"),
                [*run([0.6, 0.9], te=0.1), report(2, 0.95, "complete", te=0.1)],
            ),
            ("b22", trial_config("baseline", 22), run([0.5, 0.6, 0.7, 0.75])),
            ("t22", trial_config("te", 22, "c0000"), run([0.5, 0.6, 0.7, 0.7], te=0.1)),
        ):
            lines = [
                packed(line) if (pack_first if i == 0 else pack_rest) else line
                for i, line in enumerate(lines)
            ]
            sweep.trial(trial_id, config, lines, "TERMINATED")
        sweep.save_state()
        trials, epochs, _, _ = sweep.export()
        return trials, epochs

    flat = write("flat", False, False)
    assert write("packed", True, True) == flat
    assert write("upgraded", False, True) == flat
    trials, epochs = flat
    assert len(epochs) == 3 + 2 + 4 + 4 and {t["status"] for t in trials} >= {"complete"}
    assert all(t["started_at"] is not None and t["te_compiled"] is None for t in trials)


def test_a_record_list_of_an_older_form_reads_back_with_the_later_columns_null(tmp_path):
    """The record list grows only at its end (reporting.LATER_COLUMNS): lines reported under
    its first form (before te_compile_s) and lines reported since, in one sweep, export every
    shared column alike, and te_compile_s where it was reported, null where not."""
    from te_sweep.core.reporting import LATER_COLUMNS, RECORD_COLUMNS

    first_form = RECORD_COLUMNS[: len(RECORD_COLUMNS) - len(LATER_COLUMNS)]
    assert "te_compile_s" in LATER_COLUMNS and "te_compile_s" not in first_form
    sweep = HandSweep(tmp_path / "mixed", num_samples=1, repeats=2)
    for trial_id, config, form in (
        ("b11", trial_config("baseline", 11), first_form),
        ("t11", trial_config("te", 11, "c0000"), first_form),
        ("b22", trial_config("baseline", 22), RECORD_COLUMNS),
        ("t22", trial_config("te", 22, "c0000"), RECORD_COLUMNS),
    ):
        te = 0.1 if trial_id.startswith("t") else 0.0
        lines = [{**line, "te_compile_s": 2.5} for line in run([0.6, 0.7, 0.9], te=te)]
        sweep.trial(trial_id, config, [packed(line, form) for line in lines], "TERMINATED")
    sweep.save_state()
    trials, epochs, _, _ = sweep.export()
    compile_s = {(e["trial_id"], e["epoch"]): e["te_compile_s"] for e in epochs}
    assert compile_s == {
        (trial_id, epoch): (None if trial_id.endswith("11") else 2.5)
        for trial_id in ("b11", "t11", "b22", "t22")
        for epoch in (1, 2, 3)
    }
    by_trial = {t["trial_id"]: t for t in trials}
    for old, new in (("b11", "b22"), ("t11", "t22")):
        for key in ("status", "epochs_run", "epochs_to_target", "te_seconds", "train_seconds"):
            assert by_trial[old][key] == by_trial[new][key], key


def test_a_live_report_parses_on_the_fast_path():
    """A line as the trainable reports it (reporting.tune_result, te_compiled a bool) is read
    by pyarrow's JSON reader with the lean schema: no second parse, no per-line fallback."""
    from te_sweep.core.config import TrialConfig, resolve
    from te_sweep.core.reporting import RECORD_COLUMNS, RECORD_KEY, tune_result
    from te_sweep.results.report_lines import (
        LEAN_SCHEMA,
        RESULT_SCHEMA,
        _parse_fast,
        _unpack_record,
        _whole_records,
    )

    beside = [name for name in RESULT_SCHEMA.names if name not in RECORD_COLUMNS]
    strings = ("trial_status", "node_id", "hostname", "gpu_ids", "device_name", "omp_wait_policy")
    assert beside == list(strings)
    assert sorted(LEAN_SCHEMA.names) == sorted([RECORD_KEY, *beside])  # no top-level copies

    record = report(1, 0.7, te=0.1)
    for compiled in (True, False, None):
        line = tune_result(
            resolve(TrialConfig(max_epochs=3, target=0.8)),
            [record],
            "te",
            {"node_id": "n1", "te_compiled": compiled},
            "cpu",
            1.7e9,
            0.1,
        )
        assert "te_compiled" not in line  # a bool at the top: Tune would keep statistics of it
        lean = _parse_fast(pa.py_buffer((json.dumps(line) + "\n").encode()), LEAN_SCHEMA)
        assert _whole_records(lean)
        table = _unpack_record(lean)
        assert table.num_rows == 1
        row = table.to_pylist()[0]
        assert row["te_compiled"] is compiled and row["node_id"] == "n1"
        assert row["train_acc"] == 0.7 and row["start_value"] == 0.1


def test_a_sweep_from_before_repeats_counts_one_seed_per_configuration(tmp_path):
    """Manifests written before `--repeats` existed have no "repeats": such a sweep asked for
    one seed per configuration, so its two runs are all it asked for and the configuration is
    complete, not partial or waiting for a second seed."""
    sweep = HandSweep(tmp_path / "hand", num_samples=1, repeats=1)
    manifest_path = sweep.root / "te_sweep.json"
    old = json.loads(manifest_path.read_text())
    del old["options"]["repeats"]
    manifest_path.write_text(json.dumps(old))
    sweep.trial("b11", trial_config("baseline", 11), run([0.5, 0.9]), "TERMINATED")
    sweep.trial("t11", trial_config("te", 11, "c0000"), run([0.9], te=0.1), "TERMINATED")
    sweep.save_state()
    _, _, configs, summary = sweep.export()
    assert not summary["partial"] and summary["expected"] == 2
    assert [(c["config_id"], c["status"], c["repeats"]) for c in configs] == [
        ("c0000", "complete", 1)
    ]


def test_a_trial_without_reports_after_hundreds_of_rows_takes_nothing_of_its_neighbour(tmp_path):
    """A trial's rows are a span of the epochs table: one that never reported (an empty span)
    has no last or previous report, wherever its span starts. Past row 256 too, where row
    numbers are no longer the interpreter's shared small ints (an identity test in place of
    the comparison would then hand it its neighbour's last row)."""
    epochs = 300
    sweep = HandSweep(tmp_path / "hand", num_samples=2, repeats=1)
    sweep.trial("b11", trial_config("baseline", 11), run([0.5, 0.9]), "TERMINATED")
    long_run = [report(e, 0.5, "running") for e in range(1, epochs)] + [
        report(epochs, 0.9, "complete")
    ]
    config = trial_config("te", 11, "c0000", max_epochs=epochs)
    sweep.trial("t11", config, long_run, "TERMINATED")
    sweep.trial("t12", trial_config("te", 11, "c0001"), [], "PENDING")
    sweep.save_state()
    trials, _, _, _ = sweep.export()
    by_id = {t["trial_id"]: t for t in trials}
    assert by_id["t11"]["epochs_run"] == epochs and by_id["t11"]["status"] == "complete"
    empty = by_id["t12"]
    assert empty["epochs_run"] == 0 and empty["status"] == "unfinished"
    assert empty["final_train_acc"] is None and empty["epochs_to_target"] is None
    assert empty["finished_at"] is None and empty["node_id"] is None


def test_hundreds_of_trials_all_there_and_ended_are_not_partial(tmp_path):
    """257 trials asked for, all ended: the tables are whole. Past 256, where counts are no
    longer the interpreter's shared small ints (an identity test in place of the comparison
    would call them partial)."""
    configurations = 256
    sweep = HandSweep(tmp_path / "hand", num_samples=configurations, repeats=1)
    sweep.trial("b11", trial_config("baseline", 11), run([0.9]), "TERMINATED")
    for k in range(configurations):
        config = trial_config("te", 11, f"c{k:04d}")
        sweep.trial(f"t{k}", config, run([0.9], te=0.1), "TERMINATED")
    sweep.save_state()
    trials, _, _, summary = sweep.export()
    assert len(trials) == summary["expected"] == configurations + 1
    assert not summary["partial"]
