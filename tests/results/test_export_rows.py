"""Every column of trials.parquet and epochs.parquet, every trial status and every kind of
pair, from hand-written Tune files (tests/hand_files.py), without starting Ray.

tests/results/test_export_files.py checks the objectives and the configuration rows of a sweep; this
file checks the rest of what a user reads per trial: times, nodes, sums and means over
epochs, the status a trial's files give it and whether the sweep counts as partial.
"""

from __future__ import annotations

import datetime as dt

import pyarrow.parquet as pq
import pytest
from hand_files import MAX_EPOCHS, HandSweep, report, run, trial_config

from te_sweep.results.tune_files import error_line

UTC = dt.timezone.utc
STARTED = 1_700_000_000.1234567  # Unix seconds, below the microsecond
BASELINE_FRAC = 1 + (0.8 - 0.5) / (0.9 - 0.5)  # run([0.5, 0.9]): 0.8 crossed in epoch 2
TE_FRAC = 2 + (0.8 - 0.6) / (0.9 - 0.6)  # detailed_run(): in epoch 3, from epoch 2's 0.6


def at(unix_seconds: float) -> dt.datetime:
    """The UTC time the export must write: rounded to the microsecond."""
    return dt.datetime(1970, 1, 1, tzinfo=UTC) + dt.timedelta(
        microseconds=round(unix_seconds * 1e6)
    )


def detailed_run() -> list[dict]:
    """Three epochs, each field different, reaching 0.8 in the third: sums, means and maxima
    that any wrong index, operator or default would change."""
    common = dict(
        te=0.0,
        node_id="node-a",
        hostname="host-a",
        gpu_ids="",
        device_name="cpu",
        started_at=STARTED,
    )
    return [
        report(
            1,
            0.5,
            **common,
            epoch_time_s=1.0,
            te_time_s=0.1,
            eval_time_s=0.5,
            te_mean=0.01,
            te_factor_mean=0.9,
            test_acc=0.7,
            elapsed_s=1.5,
            reported_at=STARTED + 10,
        ),
        report(
            2,
            0.6,
            **common,
            epoch_time_s=2.0,
            te_time_s=0.2,
            eval_time_s=None,
            te_mean=0.03,
            te_factor_mean=0.8,
            test_acc=0.85,
            elapsed_s=3.5,
            reported_at=STARTED + 20,
        ),
        report(
            3,
            0.9,
            "complete",
            **common,
            epoch_time_s=3.0,
            te_time_s=0.3,
            eval_time_s=0.25,
            te_mean=0.08,
            te_factor_mean=0.7,
            test_acc=0.8,
            elapsed_s=6.75,
            reported_at=STARTED + 30.5,
        ),
    ]


@pytest.fixture(scope="module")
def one_of_each(tmp_path_factory):
    """Three configurations asked for (an odd number) on one seed; the third never started.
    c0000 reaches the target in epoch 3 (detailed_run), c0001 is censored, the baseline
    reaches it in epoch 2."""
    sweep = HandSweep(tmp_path_factory.mktemp("each") / "hand", num_samples=3, repeats=1)
    sweep.trial("b11", trial_config("baseline", 11), run([0.5, 0.9]), "TERMINATED")
    sweep.trial("t1", trial_config("te", 11, "c0000"), detailed_run(), "TERMINATED")
    sweep.trial(
        "t2",
        trial_config("te", 11, "c0001", te_scale=2.0),
        run([0.5, 0.6, 0.7, 0.7], te=0.1),
        "TERMINATED",
    )
    sweep.save_state()
    trials, epochs, configs, summary = sweep.export()
    return sweep, {t["trial_id"]: t for t in trials}, epochs, configs, summary


def test_every_column_of_a_te_run_that_reached_the_target(one_of_each):
    _, by_id, _, _, _ = one_of_each
    row = by_id["t1"]
    assert row["sweep_id"] == "s1" and row["sweep_name"] == "hand"
    assert row["role"] == "te" and row["config_id"] == "c0000" and row["seed"] == 11
    assert row["param_te_scale"] == 1.0 and row["param_max_epochs"] == MAX_EPOCHS
    assert row["status"] == "complete" and row["error"] is None and row["censored"] is False
    assert row["epochs_to_target"] == 3 and row["epochs_run"] == 3
    assert row["epochs_to_target_frac"] == pytest.approx(TE_FRAC)  # from epoch 2, not 1
    assert row["objective_epochs"] == pytest.approx(TE_FRAC)
    assert row["seconds_to_target"] == pytest.approx(6.75)
    assert row["train_seconds"] == pytest.approx(6.0)
    assert row["te_seconds"] == pytest.approx(0.6)
    assert row["total_seconds"] == pytest.approx(6.0 + 0.75)  # a missing eval time adds 0
    assert row["te_overhead"] == pytest.approx(0.6 / 5.4)
    assert row["te_mean"] == pytest.approx(0.04) and row["te_factor_mean"] == pytest.approx(0.8)
    assert row["final_train_acc"] == 0.9 and row["final_test_acc"] == 0.8
    assert row["best_test_acc"] == 0.85  # the best epoch, not the last
    assert (row["node_id"], row["hostname"], row["device_name"]) == ("node-a", "host-a", "cpu")
    assert row["gpu_ids"] is None  # "" (no GPU) is written as null
    assert row["started_at"] == at(STARTED)
    assert row["finished_at"] == at(STARTED + 30.5)
    assert row["started_at"].microsecond == 123457


def test_a_te_run_beside_its_baseline_and_a_censored_one(one_of_each):
    _, by_id, _, _, _ = one_of_each
    assert by_id["b11"]["epochs_to_target_frac"] == pytest.approx(BASELINE_FRAC)
    assert by_id["b11"]["paired_baseline"] is None and by_id["b11"]["paired_kind"] is None
    reached, censored = by_id["t1"], by_id["t2"]
    assert reached["paired_baseline"] == "b11" and reached["paired_kind"] == "both_reached"
    assert reached["paired_speedup_epochs"] == pytest.approx(BASELINE_FRAC / TE_FRAC)
    assert censored["status"] == "censored" and censored["censored"] is True
    assert censored["objective_epochs"] == MAX_EPOCHS + 1
    assert censored["paired_kind"] == "te_censored"
    # an upper bound: the censored run counted as reaching the target at max_epochs + 1
    assert censored["paired_speedup_epochs"] == pytest.approx(BASELINE_FRAC / (MAX_EPOCHS + 1))


def test_one_run_missing_of_an_odd_number_asked_for_is_partial(one_of_each):
    sweep, by_id, _, _, summary = one_of_each
    assert all(t["status"] in ("complete", "censored") for t in by_id.values())
    assert summary["partial"] and summary["expected"] == 4  # 1 baseline + 3 TE runs
    assert pq.read_schema(sweep.root / "trials.parquet").metadata[b"te_sweep.partial"] == b"true"


def test_epoch_rows_carry_their_report_time_and_node(one_of_each):
    _, _, epochs, _, _ = one_of_each
    rows = [e for e in epochs if e["trial_id"] == "t1"]
    assert [e["epoch"] for e in rows] == [1, 2, 3]
    assert [e["finished_at"] for e in rows] == [
        at(STARTED + 10),
        at(STARTED + 20),
        at(STARTED + 30.5),
    ]
    assert {e["node_id"] for e in rows} == {"node-a"}
    assert {e["role"] for e in rows} == {"te"} and {e["sweep_id"] for e in rows} == {"s1"}
    assert [e["te_time_s"] for e in rows] == [0.1, 0.2, 0.3]


def test_the_schemas_name_every_column_once_and_require_the_identity_ones(one_of_each):
    sweep, *_ = one_of_each
    trials = pq.read_schema(sweep.root / "trials.parquet")
    epochs = pq.read_schema(sweep.root / "epochs.parquet")
    assert "seed" in trials.names and "param_seed" not in trials.names  # one seed column
    assert len(set(trials.names)) == len(trials.names)
    required = {f.name for f in trials if not f.nullable}
    assert required == {"sweep_id", "sweep_name", "trial_id", "role", "status"}
    assert {f.name for f in epochs if not f.nullable} == {"sweep_id", "trial_id", "role"}
    assert str(trials.field("started_at").type) == "timestamp[us, tz=UTC]"


@pytest.fixture(scope="module")
def statuses(tmp_path_factory):
    """Two seeds, the baseline of seed 22 censored, and a trial that ended in each way a run
    can end without a result: pruned by ASHA, failed (Tune's ERROR, or TERMINATED with an
    error.txt and no report), still running; one that diverged; and the runs whose error.txt
    is left from an earlier failure that Tune retried (running again, or completed since)."""
    sweep = HandSweep(tmp_path_factory.mktemp("statuses") / "hand", num_samples=4, repeats=2)
    sweep.trial("b11", trial_config("baseline", 11), run([0.5, 0.9]), "TERMINATED")
    sweep.trial("b22", trial_config("baseline", 22), run([0.5, 0.6, 0.7, 0.7]), "TERMINATED")
    sweep.trial("reach22", trial_config("te", 22, "c0000"), run([0.5, 0.9], te=0.1), "TERMINATED")
    sweep.trial("reach11", trial_config("te", 11, "c0000"), run([0.5, 0.9], te=0.1), "TERMINATED")
    sweep.trial(
        "pruned", trial_config("te", 11, "c0001"), run([0.5, 0.6], te=0.1)[:1], "TERMINATED"
    )  # its last report says running: ASHA stopped it
    traceback = 'Traceback (most recent call last):\n  File "x.py"\nValueError: bad lr\n'
    sweep.trial(
        "failed",
        trial_config("te", 11, "c0002"),
        run([0.5, 0.6], te=0.1)[:1],
        "ERROR",
        error_txt=traceback,
    )
    sweep.trial(
        "noreport",
        trial_config("te", 11, "c0003"),
        [],
        "TERMINATED",
        error_txt="RuntimeError: worker died\n",
    )
    sweep.trial("running", trial_config("te", 22, "c0001"), run([0.5, 0.6], te=0.1)[:1], "RUNNING")
    lost = "RuntimeError: the node was lost\n"  # an error.txt left by an earlier failure
    sweep.trial(
        "retried",
        trial_config("te", 22, "c0004"),
        run([0.5, 0.6], te=0.1)[:1],
        "RUNNING",
        error_txt=lost,
    )  # failed, retried, running again
    sweep.trial(
        "recovered",
        trial_config("te", 11, "c0005"),
        run([0.5, 0.9], te=0.1),
        "TERMINATED",
        error_txt=lost,
    )  # failed, retried, then reached the target
    sweep.trial("empty", trial_config("te", 22, "c0006"), [], "TERMINATED")
    sweep.trial(
        "diverged",
        trial_config("te", 11, "c0007"),
        [report(1, 0.3, "diverged", te=0.1, train_loss=None)],
        "TERMINATED",
    )
    sweep.save_state()
    trials, _, configs, summary = sweep.export()
    return {t["trial_id"]: t for t in trials}, {c["config_id"]: c for c in configs}, summary


def test_a_te_run_that_reached_beside_a_censored_baseline(statuses):
    by_id, _, _ = statuses
    row = by_id["reach22"]
    assert row["paired_baseline"] == "b22" and row["paired_kind"] == "baseline_censored"
    # a lower bound: the baseline counted as reaching the target at max_epochs + 1
    assert row["paired_speedup_epochs"] == pytest.approx((MAX_EPOCHS + 1) / BASELINE_FRAC)
    assert by_id["reach11"]["paired_speedup_epochs"] == pytest.approx(1.0)


def test_a_pruned_run_has_an_end_but_no_objective_and_no_pair(statuses):
    by_id, _, _ = statuses
    row = by_id["pruned"]
    assert row["status"] == "pruned" and row["error"] is None
    assert row["finished_at"] == at(1.7e9 + 10)  # its last report
    assert row["objective_epochs"] is None and row["censored"] is None
    assert row["paired_baseline"] is None and row["paired_speedup_epochs"] is None


@pytest.mark.parametrize(
    "trial_id, error", [("failed", "ValueError: bad lr"), ("noreport", "RuntimeError: worker died")]
)
def test_a_failed_run_carries_its_exception_line_and_no_end(statuses, trial_id, error):
    by_id, _, _ = statuses
    row = by_id[trial_id]
    assert row["status"] == "error" and row["error"] == error
    assert row["finished_at"] is None and row["objective_epochs"] is None
    assert row["paired_baseline"] is None and row["censored"] is None


def test_a_running_run_is_unfinished_and_makes_the_sweep_partial(statuses):
    by_id, _, summary = statuses
    row = by_id["running"]
    assert row["status"] == "unfinished" and row["error"] is None
    assert row["finished_at"] is None and row["started_at"] == at(1.7e9)
    assert summary["partial"]  # every run asked for is there, one has not ended


def test_only_finished_runs_make_a_configuration_complete(statuses):
    _, by_config, _ = statuses
    assert by_config["c0000"]["status"] == "complete"
    assert by_config["c0001"]["status"] == "pruned"  # one run pruned, the other running
    assert by_config["c0002"]["status"] == by_config["c0003"]["status"] == "error"


def test_an_error_left_by_a_retried_failure_does_not_make_a_run_failed(statuses):
    by_id, _, _ = statuses
    assert by_id["retried"]["status"] == "unfinished" and by_id["retried"]["error"] is None
    recovered = by_id["recovered"]
    assert recovered["status"] == "complete" and recovered["error"] is None
    assert recovered["paired_baseline"] == "b11" and recovered["censored"] is False


def test_a_run_that_ended_without_a_report_or_an_error_is_unfinished(statuses):
    by_id, _, _ = statuses
    row = by_id["empty"]
    assert row["status"] == "unfinished" and row["epochs_run"] == 0 and row["error"] is None
    assert row["finished_at"] is None and row["te_overhead"] is None


def test_a_diverged_run_is_censored_and_paired_as_missing_the_target(statuses):
    by_id, _, _ = statuses
    row = by_id["diverged"]
    assert row["status"] == "diverged" and row["censored"] is True
    assert row["objective_epochs"] == MAX_EPOCHS + 1
    assert row["paired_kind"] == "te_censored"
    assert row["paired_speedup_epochs"] == pytest.approx(BASELINE_FRAC / (MAX_EPOCHS + 1))


def test_a_censored_run_counts_at_max_epochs_plus_one_for_an_odd_max_epochs(tmp_path):
    """max_epochs 5: + 1 gives 6 where `^ 1` gives 4 and `| 1` gives 5 (at 4 all three
    agree)."""
    sweep = HandSweep(tmp_path / "hand", num_samples=1, repeats=1)
    five = trial_config("te", 11, "c0000")
    five["trial"] = {**five["trial"], "max_epochs": 5}
    baseline = trial_config("baseline", 11)
    baseline["trial"] = {**baseline["trial"], "max_epochs": 5}
    sweep.trial("b11", baseline, run([0.5, 0.9]), "TERMINATED")
    censored = [report(e, 0.5) for e in range(1, 5)] + [report(5, 0.5, "censored")]
    sweep.trial("t11", five, censored, "TERMINATED")
    sweep.save_state()
    trials, _, _, _ = sweep.export()
    row = next(t for t in trials if t["trial_id"] == "t11")
    assert row["objective_epochs"] == 6
    assert row["paired_speedup_epochs"] == pytest.approx(BASELINE_FRAC / 6)


CHAINED = (
    "Failure # 1 (occurred at 2026-12-01_10-00-00)\n"
    'Traceback (most recent call last):\n  File "x.py", line 3, in f\n'
    "KeyError: 'lr'\n\n"
    "The above exception was the direct cause of the following exception:\n\n"
    'Traceback (most recent call last):\n  File "y.py", line 9, in g\n'
    "ValueError: bad lr\nwhile building the optimizer of epoch 3\n"
)


@pytest.mark.parametrize(
    "text, line",
    [
        (CHAINED, "ValueError: bad lr"),  # the last exception, not the note printed after it
        (
            'Traceback (most recent call last):\n  File "x.py"\nValueError: bad lr\n',
            "ValueError: bad lr",
        ),
        (
            "\nthe worker was killed by the OOM killer\n  \n",  # no exception line: the last line
            "the worker was killed by the OOM killer",
        ),
        ("\n \n", None),
    ],
)
def test_a_failed_runs_error_is_the_last_exception_line_of_its_error_txt(tmp_path, text, line):
    """The `error` column: of a chained traceback the exception that ended the trial, even
    with a note (Python's add_note) after it; without any exception line the last
    non-blank line; nothing for a blank file."""
    path = tmp_path / "error.txt"
    path.write_text(text)
    assert error_line(path) == line
