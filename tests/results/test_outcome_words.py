"""The words a sweep's end is told in: every way its trials can end, from hand-written Tune
files (tests/hand_files.py) through the real export, the real summary and the real report.html;
the exit-code count (outcome_words.failed_trials) and the partial flag; and the live view's
"best", which never holds a diverged or errored trial.

Each case asserts the exact sentences, in order, in the summary's output and in report.html's
"What this sweep can and cannot conclude" list, and that the sentence the reviewer found false
("No configuration has a paired estimate yet (no TE run and baseline finished)") is gone.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hand_files import HandSweep, read_out, report, run, trial_config
from sweep_helpers import Lines

from te_sweep.core.outcome import (
    STATUS_CENSORED,
    STATUS_COMPLETE,
    STATUS_DIVERGED,
    STATUS_ERROR,
    STATUS_UNFINISHED,
)
from te_sweep.core.reporting import RUNNING
from te_sweep.results.outcome_words import (
    failed_trials,
    outcome_sentences,
    partial_sentence,
    verdict,
)
from te_sweep.results.storage import SweepDir
from te_sweep.sweep.progress import BEST_ROWS, LiveView

SEEDS = (11, 22, 33)
FALSE_SENTENCE = "no TE run and baseline finished"
ERROR_TEXT = "Traceback (most recent call last):\n  File x\nRuntimeError: worker died\n"
# The kinds of run a hand-written trial can be (its reports and Tune's status).
REACH_1, REACH_2 = "reach_1", "reach_2"  # complete in epoch 1 (frac 0.875), epoch 2 (1.75)


def lines_of(kind: str, te: float) -> tuple[list[dict], str]:
    """(result.json lines, Tune status) of a run of this kind (train_acc target 0.8 within
    4 epochs; every run starts from 0.1)."""
    if kind == REACH_1:
        return run([0.9], te=te), "TERMINATED"
    if kind == REACH_2:
        return run([0.5, 0.9], te=te), "TERMINATED"
    if kind == STATUS_CENSORED:
        return run([0.5, 0.6, 0.7, 0.75], te=te), "TERMINATED"
    if kind == STATUS_DIVERGED:
        return [
            report(1, 0.5, te=te),
            report(2, 0.3, STATUS_DIVERGED, te=te, train_loss=None),
        ], "TERMINATED"
    if kind == STATUS_ERROR:
        return [report(1, 0.5, te=te)], "ERROR"
    assert kind == STATUS_UNFINISHED
    return [report(1, 0.5, te=te)], "RUNNING"


@dataclass
class Ended:
    summary: list[str]  # the summary's lines
    report: list[str]  # report.html's conclusions, unescaped
    export: dict


def sweep_of(
    tmp_path: Path,
    baselines: dict[int, str],
    te: dict[str, dict[int, str]],
    num_samples: int | None = None,
    cut_short: bool = False,
) -> Ended:
    """A hand-written sweep: one baseline per seed, TE runs per configuration and seed, each
    of the given kind; exported, summarised and reported for real. `cut_short`: a newer
    experiment state cut short by a full disk beside the good one (the export skips it)."""
    root = tmp_path / "hand"
    sweep = HandSweep(
        root, num_samples=len(te) if num_samples is None else num_samples, repeats=len(baselines)
    )
    for seed, kind in baselines.items():
        lines, status = lines_of(kind, 0.0)
        sweep.trial(
            f"b{seed}",
            trial_config("baseline", seed),
            lines,
            status,
            error_txt=ERROR_TEXT if kind == STATUS_ERROR else None,
        )
    for n, (config_id, runs) in enumerate(te.items()):
        for seed, kind in runs.items():
            lines, status = lines_of(kind, 0.1)
            sweep.trial(
                f"{config_id}_{seed}",
                trial_config("te", seed, config_id, te_scale=1.0 + n),
                lines,
                status,
                error_txt=ERROR_TEXT if kind == STATUS_ERROR else None,
            )
    sweep.save_state()
    if cut_short:
        (root / "experiment_state-2026-12-01_11-00-00.json").write_text('{"trial_data": [')
    export, lines, items = read_out(SweepDir(str(root.parent), root.name), ["te_scale"])
    return Ended(lines, items, export)


def assert_told(ended: Ended, sentences: list[str], partial: str | None = None) -> None:
    """The summary ends with exactly these sentences, then the partial tables' sentence if
    any, then the 4 "wrote" lines; the report's conclusions begin with the sentences, the
    seeds' sentence right after, and end with the partial one. No partial sentence: the
    tables are not partial and neither says they are."""
    assert ended.summary[-4:] == [f"wrote {p}" for p in ended.export["paths"]]
    said = sentences + ([partial] if partial else [])
    told = ended.summary[-4 - len(said) : -4]
    assert told == said, "\n".join(ended.summary)
    before = ended.summary[-5 - len(said)]  # the configurations' header or a ranked one
    assert before.startswith(("  ", "no configurations")) or "configurations (" in before
    assert ended.report[: len(sentences)] == sentences, ended.report
    assert ended.report[len(sentences)].startswith("Each configuration was trained on")
    assert ended.export["partial"] is (partial is not None)
    assert ended.summary[0].endswith("; PARTIAL (why: below)") is (partial is not None)
    if partial:
        assert ended.report[-1] == partial
    for text in ended.summary + ended.report:
        assert FALSE_SENTENCE not in text
        assert partial or "partial" not in text.lower()
    meta = pq.read_schema(Path(ended.export["paths"][0].removeprefix("file://"))).metadata
    assert meta[b"te_sweep.partial"] == (b"true" if partial else b"false")


def all_seeds(kind: str) -> dict[int, str]:
    return {seed: kind for seed in SEEDS}


THREE_SEEDS_CANNOT = (
    "With at most 3 paired seeds in a configuration's estimate, even a "
    "speedup on every one has p = 0.125, so none can; 5 or more seeds "
    "(--repeats) can show one."
)
NO_WINNER_2 = (
    "No configuration is shown to reach the target faster than its baselines: none "
    "has a Holm-adjusted p < 0.05 with its interval above 1 (2 configurations). "
    + THREE_SEEDS_CANNOT
)
DIVERGED_TAIL = (
    ": their training loss became non-finite before they reached the target; in "
    "a pair a diverged run counts as one that missed it."
)
RESUME_TAIL = "; `te-sweep resume` retries them."


# ------------------------------------------------------------------ every way trials end
def test_all_te_runs_diverged_beside_censored_baselines(tmp_path):
    """The smoke sweep the reviewer saw: no pair reached the target on either side."""
    baselines = {11: STATUS_CENSORED, 22: STATUS_CENSORED, 33: STATUS_DIVERGED}
    ended = sweep_of(
        tmp_path,
        baselines,
        {"c0000": all_seeds(STATUS_DIVERGED), "c0001": all_seeds(STATUS_DIVERGED)},
    )
    assert_told(
        ended,
        [
            "All TE runs diverged (6 of 6; also 1 of 3 baselines)" + DIVERGED_TAIL,
            "No configuration has a paired estimate: of the 6 TE runs, 6 were paired with the "
            "baseline of their seed but neither run reached the target.",
        ],
    )
    assert not ended.export["partial"] and failed_trials(ended.export) == 0
    assert ended.summary[0] == "9 trials (2 censored, 7 diverged)"


def test_all_te_runs_diverged_beside_baselines_that_reached_it(tmp_path):
    """A diverged run enters its pair as a miss: TE slower, an estimate, the verdict."""
    ended = sweep_of(
        tmp_path,
        all_seeds(REACH_2),
        {"c0000": all_seeds(STATUS_DIVERGED), "c0001": all_seeds(STATUS_DIVERGED)},
    )
    assert_told(ended, ["All TE runs diverged (6 of 6)" + DIVERGED_TAIL, NO_WINNER_2])
    assert all(c["speedups"] == [1.75 / 5] * 3 for c in ended.export["configs"])


def test_some_runs_diverged_never_reads_all(tmp_path):
    ended = sweep_of(
        tmp_path,
        {11: REACH_2, 22: STATUS_DIVERGED, 33: REACH_2},
        {"c0000": {11: STATUS_DIVERGED, 22: REACH_1, 33: REACH_2}, "c0001": all_seeds(REACH_2)},
    )
    assert_told(
        ended,
        ["2 of 9 trials diverged (1 of 6 TE runs, 1 of 3 baselines)" + DIVERGED_TAIL, NO_WINNER_2],
    )


def test_all_te_runs_errored(tmp_path):
    ended = sweep_of(
        tmp_path,
        all_seeds(REACH_2),
        {"c0000": all_seeds(STATUS_ERROR), "c0001": all_seeds(STATUS_ERROR)},
    )
    assert_told(
        ended,
        [
            "All TE runs ended in error (6 of 6)" + RESUME_TAIL,
            "No configuration has a paired estimate: of the 6 TE runs, 6 have no result (6 error).",
        ],
        partial="These tables are partial: 6 trials ended in error.",
    )
    assert ended.export["partial"] and failed_trials(ended.export) == 6
    assert ended.summary[0] == "9 trials (3 complete, 6 error); PARTIAL (why: below)"


def test_every_trial_errored(tmp_path):
    ended = sweep_of(tmp_path, all_seeds(STATUS_ERROR), {"c0000": all_seeds(STATUS_ERROR)})
    assert_told(
        ended,
        [
            "All TE runs ended in error (3 of 3; also 3 of 3 baselines)" + RESUME_TAIL,
            "None of the 3 baselines ended with a result (3 error), so no TE run can be paired "
            "with one.",
            "No configuration has a paired estimate: of the 3 TE runs, 3 have no result (3 error).",
        ],
        partial="These tables are partial: 6 trials ended in error.",
    )
    assert failed_trials(ended.export) == 6


def test_some_trials_errored(tmp_path):
    """One configuration all errored, the other ended: a mixed sweep never reads 'all'; the
    verdict counts the configurations with an estimate and names the one without."""
    ended = sweep_of(
        tmp_path,
        {11: STATUS_ERROR, 22: REACH_2, 33: REACH_2},
        {"c0000": all_seeds(STATUS_ERROR), "c0001": all_seeds(REACH_2)},
    )
    assert_told(
        ended,
        [
            "4 of 9 trials ended in error (3 of 6 TE runs, 1 of 3 baselines)" + RESUME_TAIL,
            "No configuration is shown to reach the target faster than its baselines: none has a "
            "Holm-adjusted p < 0.05 with its interval above 1 (1 configuration with a paired "
            "estimate, 1 without). With at most 2 paired seeds in a configuration's estimate, "
            "even a speedup on every one has p = 0.25, so none can; 5 or more seeds (--repeats) "
            "can show one.",
        ],
        partial="These tables are partial: 4 trials ended in error.",
    )
    assert ended.export["partial"] and failed_trials(ended.export) == 4
    assert [line for line in ended.summary if "failed:" in line] == [
        f"  {role} trial {trial} failed: RuntimeError: worker died"
        for role, trial in [
            ("baseline", "b11"),
            ("te", "c0000_11"),
            ("te", "c0000_22"),
            ("te", "c0000_33"),
        ]
    ]


def test_every_pair_censored_on_both_sides(tmp_path):
    ended = sweep_of(
        tmp_path,
        all_seeds(STATUS_CENSORED),
        {"c0000": all_seeds(STATUS_CENSORED), "c0001": all_seeds(STATUS_CENSORED)},
    )
    assert_told(
        ended,
        [
            "Every pair was censored on both sides (6 of 6): neither the TE run nor its baseline "
            "reached the target (train_acc >= 0.8) within max_epochs (4), so no pair says "
            "anything about speed; a higher max_epochs or a lower target is needed.",
            "No configuration has a paired estimate: of the 6 TE runs, 6 were paired with the "
            "baseline of their seed but neither run reached the target.",
        ],
    )
    assert not ended.export["partial"]


def test_pairs_censored_on_both_sides_but_not_all(tmp_path):
    """One pair where the TE run diverged: not 'every pair was censored'."""
    ended = sweep_of(
        tmp_path,
        all_seeds(STATUS_CENSORED),
        {"c0000": {11: STATUS_CENSORED, 22: STATUS_CENSORED, 33: STATUS_DIVERGED}},
    )
    assert_told(
        ended,
        [
            "1 of 6 trials diverged (1 of 3 TE runs)" + DIVERGED_TAIL,
            "No configuration has a paired estimate: of the 3 TE runs, 3 were paired with the "
            "baseline of their seed but neither run reached the target.",
        ],
    )


def test_every_pair_so_far_censored_on_both_sides(tmp_path):
    """A second configuration not started yet: 'every pair so far', never 'every pair'."""
    ended = sweep_of(
        tmp_path, all_seeds(STATUS_CENSORED), {"c0000": all_seeds(STATUS_CENSORED)}, num_samples=2
    )
    assert_told(
        ended,
        [
            "The sweep has not finished (it is still running, or was stopped): 3 of the 9 trials "
            "asked for have not started, so their pairs are not formed yet; "
            "`te-sweep resume` continues a stopped sweep.",
            "Every pair so far was censored on both sides (3 of 3): neither the TE run nor its "
            "baseline reached the target (train_acc >= 0.8) within max_epochs (4), so no pair "
            "says anything about speed; a higher max_epochs or a lower target is needed.",
            "No configuration has a paired estimate: of the 3 TE runs, 3 were paired with the "
            "baseline of their seed but neither run reached the target.",
        ],
        partial="These tables are partial: 3 asked for have not started.",
    )


def test_no_baseline_ended(tmp_path):
    """Baselines errored and unfinished: TE runs that ended have nothing to pair with."""
    ended = sweep_of(
        tmp_path,
        {11: STATUS_ERROR, 22: STATUS_ERROR, 33: STATUS_UNFINISHED},
        {"c0000": all_seeds(REACH_1)},
    )
    assert_told(
        ended,
        [
            "The sweep has not finished (it is still running, or was stopped): 1 of 6 trials is "
            "unfinished, so their pairs are not formed yet; `te-sweep resume` continues a stopped "
            "sweep.",
            "2 of 6 trials ended in error (2 of 3 baselines)" + RESUME_TAIL,
            "None of the 3 baselines ended with a result (2 error, 1 unfinished), so no TE run "
            "can be paired with one.",
            "No configuration has a paired estimate: of the 3 TE runs, 3 ended but the baseline "
            "of their seed did not.",
        ],
        partial="These tables are partial: 2 trials ended in error and 1 is unfinished.",
    )


def test_a_sweep_still_running(tmp_path):
    """Two of four configurations started, some runs of them unfinished."""
    ended = sweep_of(
        tmp_path,
        all_seeds(REACH_2),
        {"c0000": {11: REACH_2, 22: STATUS_UNFINISHED}, "c0001": {11: STATUS_UNFINISHED}},
        num_samples=4,
    )
    assert_told(
        ended,
        [
            "The sweep has not finished (it is still running, or was stopped): 2 of 6 trials are "
            "unfinished and 9 of the 15 trials asked for have not started, so "
            "their pairs are not formed yet; `te-sweep resume` continues a stopped sweep.",
            "No configuration is shown to reach the target faster than its baselines: none has a "
            "Holm-adjusted p < 0.05 with its interval above 1 (1 configuration with a paired "
            "estimate, 1 without). With at most 1 paired seed in a configuration's estimate, "
            "even a speedup on every one has p = 0.5, so none can; 5 or more seeds (--repeats) "
            "can show one.",
        ],
        partial="These tables are partial: 2 are unfinished and 9 asked for have not started.",
    )
    assert ended.export["partial"] and failed_trials(ended.export) == 0


def test_a_sweep_stopped_before_any_te_run(tmp_path):
    ended = sweep_of(tmp_path, {11: REACH_2, 22: STATUS_UNFINISHED}, {}, num_samples=2)
    assert_told(
        ended,
        [
            "The sweep has not finished (it is still running, or was stopped): 1 of 2 trials is "
            "unfinished and 4 of the 6 trials asked for have not started, so "
            "their pairs are not formed yet; `te-sweep resume` continues a stopped sweep.",
            "No configuration has a paired estimate: no TE run has started yet.",
        ],
        partial="These tables are partial: 1 is unfinished and 4 asked for have not started.",
    )


def test_a_finished_sweep_with_no_winner(tmp_path):
    """Three seeds, every ratio 1 or 2: no configuration can beat its baselines."""
    ended = sweep_of(
        tmp_path,
        all_seeds(REACH_2),
        {"c0000": {11: REACH_1, 22: REACH_2, 33: REACH_2}, "c0001": all_seeds(REACH_2)},
    )
    assert_told(ended, [NO_WINNER_2])
    assert not ended.export["partial"] and failed_trials(ended.export) == 0
    assert ended.summary[0] == "9 trials (9 complete)"


def test_a_finished_sweep_with_a_winner(tmp_path):
    """Five seeds, every TE run twice as fast: p = 1/32 and the interval [2, 2]."""
    seeds = (11, 22, 33, 44, 55)
    ended = sweep_of(tmp_path, {s: REACH_2 for s in seeds}, {"c0000": {s: REACH_1 for s in seeds}})
    assert_told(
        ended,
        [
            "1 of 1 configurations reached the target faster than their paired baselines, beyond "
            "chance over all configurations tried (Holm-adjusted p < 0.05): c0000."
        ],
    )
    assert ended.export["configs"][0]["speedup_ci_low"] == pytest.approx(2.0)


def test_a_file_the_export_skipped_makes_the_tables_partial(tmp_path):
    """Every trial ended, but a state file could not be read: the summary counts the skipped
    file (the export lists it); the report, which has only the tables, says a file was."""
    ended = sweep_of(tmp_path, all_seeds(REACH_2), {"c0000": all_seeds(REACH_2)}, cut_short=True)
    assert len(ended.export["damaged"]) == 1 and ended.export["partial"]
    assert ended.summary[-6:-4] == [
        NO_WINNER_2.replace("(2 configurations)", "(1 configuration)"),
        "These tables are partial: 1 file of the sweep could not be read.",
    ]
    assert ended.report[-1] == (
        "These tables are partial: a file of the sweep could not be read when they were exported."
    )


# ------------------------------------------------------------------ the rows alone
def row(role: str, seed: int, status: str, config_id: str | None = None) -> dict:
    return {"role": role, "seed": seed, "status": status, "config_id": config_id}


def config(
    ci_low: float | None, seeds: int = 3, censored_both: int = 0, beats: bool = False
) -> dict:
    return {
        "config_id": "c0000",
        "speedup_ci_low": ci_low,
        "beats_baselines": beats,
        "seeds": list(range(seeds)),
        "censored_both": censored_both,
        "repeats": seeds,
    }


def test_configs_older_than_the_trials_still_say_no_estimate():
    """configs.parquet without an estimate beside trials with an informative pair (a stale
    file): the sentence stays true and says only that."""
    trials = [row("baseline", 1, STATUS_COMPLETE), row("te", 1, STATUS_COMPLETE, "c0000")]
    assert outcome_sentences(trials, [config(None)]) == ["No configuration has a paired estimate."]
    trials[0]["status"] = STATUS_CENSORED  # one side reached the target: still informative
    assert outcome_sentences(trials, [config(None)]) == ["No configuration has a paired estimate."]
    assert verdict([]) == "No configuration has a paired estimate."


def test_counts_of_one_take_the_singular():
    trials = [
        row("baseline", 1, STATUS_DIVERGED),
        row("baseline", 2, STATUS_CENSORED),
        row("te", 1, STATUS_CENSORED, "c0000"),
        row("te", 2, STATUS_ERROR, "c0000"),
    ]
    assert outcome_sentences(trials, [config(None)], expected=5) == [
        "The sweep has not finished (it is still running, or was stopped): 1 of the 5 trials "
        "asked for has not started, so their pairs are not formed yet; "
        "`te-sweep resume` continues a stopped sweep.",
        "1 of 4 trials ended in error (1 of 2 TE runs)" + RESUME_TAIL,
        "1 of 4 trials diverged (1 of 2 baselines)" + DIVERGED_TAIL,
        "No configuration has a paired estimate: of the 2 TE runs, 1 has no result (1 error) "
        "and 1 was paired with the baseline of their seed but neither run reached the target.",
    ]


def test_all_te_runs_so_far_while_a_trial_is_unfinished():
    trials = [
        row("baseline", 1, STATUS_UNFINISHED),
        row("te", 1, STATUS_DIVERGED, "c0000"),
        row("te", 2, STATUS_DIVERGED, "c0001"),
    ]
    assert outcome_sentences(trials, [config(None)])[1] == (
        "All TE runs so far diverged (2 of 2)" + DIVERGED_TAIL
    )
    trials[0]["status"] = STATUS_COMPLETE
    assert outcome_sentences(trials, [config(0.4)])[0] == (
        "All TE runs diverged (2 of 2)" + DIVERGED_TAIL
    )


def test_a_sweep_with_no_trial_yet():
    assert outcome_sentences([], [], expected=4) == [
        "The sweep has not finished (it is still running, or was stopped): 4 of the 4 trials "
        "asked for have not started, so their pairs are not formed yet; "
        "`te-sweep resume` continues a stopped sweep.",
        "No baseline has started yet, so no TE run can be paired with one.",
        "No configuration has a paired estimate: no TE run has started yet.",
    ]


def test_why_the_tables_are_partial():
    trials = [row("baseline", 1, STATUS_ERROR), row("te", 1, STATUS_UNFINISHED, "c0000")]
    assert partial_sentence(trials, 3, ["s/b1/result.json", "s/state.json"]) == (
        "These tables are partial: 1 trial ended in error, 1 is unfinished, 1 asked for has "
        "not started and 2 files of the sweep could not be read."
    )
    done = [row("baseline", 1, STATUS_COMPLETE), row("te", 1, STATUS_COMPLETE, "c0000")]
    assert partial_sentence(done, 2, ["s/state.json"]) == (
        "These tables are partial: 1 file of the sweep could not be read."
    )
    # The report has no list of skipped files: with no other cause, a skipped file is it.
    assert partial_sentence(done, 2) == (
        "These tables are partial: a file of the sweep could not be read when they were exported."
    )
    assert partial_sentence(trials, 2) == (
        "These tables are partial: 1 trial ended in error and 1 is unfinished."
    )
    assert partial_sentence(done, 2, []) == "These tables are partial."


def test_the_p_floor_counts_only_the_pairs_in_the_estimate():
    """Five seeds of which two pairs missed on both sides: three enter, p >= 1/8."""
    assert verdict([config(0.9, seeds=5, censored_both=2)]).endswith(
        "(1 configuration). With at most 3 paired seeds in a configuration's estimate, even a "
        "speedup on every one has p = 0.125, so none can; 5 or more seeds (--repeats) can "
        "show one."
    )
    assert verdict([config(0.9, seeds=5)]).endswith("(1 configuration).")


def test_a_trial_of_another_role_is_named_by_its_role():
    trials = [
        row("baseline", 1, STATUS_COMPLETE),
        row("te", 1, STATUS_COMPLETE, "c0000"),
        row("control", 1, STATUS_ERROR, "c0000"),
        row("odd", 1, STATUS_ERROR),
    ]
    assert outcome_sentences(trials, [config(1.0)])[0] == (
        "2 of 4 trials ended in error (1 of 1 LR controls, 1 of 1 trials of role odd)" + RESUME_TAIL
    )


def test_failed_trials_counts_errors_only():
    rows = [
        row("te", 1, s)
        for s in (STATUS_ERROR, STATUS_DIVERGED, STATUS_UNFINISHED, STATUS_ERROR, STATUS_CENSORED)
    ]
    assert failed_trials({"rows": rows}) == 2
    assert failed_trials({"rows": []}) == 0


# ------------------------------------------------------------------ the live view
@dataclass
class Trial:
    """The attributes of Tune's Trial that the live view reads."""

    trial_id: str
    config: dict = field(default_factory=lambda: {"role": "te"})
    last_result: dict = field(default_factory=dict)
    error_file: str | None = None
    path: str | None = None
    status: str = "RUNNING"


def ended(
    view: LiveView, trial_id: str, status: str, objective: float, overhead: float = 0.01
) -> Trial:
    """A TE trial that reports one epoch and ends with `status` (as Tune calls the view)."""
    trial = Trial(trial_id)
    view.on_trial_start(0, [], trial)
    trial.last_result = {
        "epoch": 2,
        "train_acc": 0.5,
        "test_acc": 0.5,
        "objective_epochs": objective,
        "te_overhead": overhead,
        "trial_status": status,
        "node_id": "abcdef123456",
    }
    view.on_trial_result(0, [], trial, trial.last_result)
    view.on_trial_complete(0, [], trial)
    return trial


def best_ids(view: LiveView) -> list[str]:
    return [row["trial"] for _, row in view.best]


def test_a_diverged_trial_is_never_best():
    """max_epochs 4: a diverged or censored run's objective is 5; the diverged one and a
    pruned one have the least overhead, the pruned one the least objective."""
    view = LiveView(Lines(), total=4, tty=False)
    ended(view, "x7", STATUS_DIVERGED, 5.0, overhead=0.0)
    ended(view, "x8", RUNNING, 1.0, overhead=0.0)  # stopped by ASHA while running: pruned
    assert view.best == [] and "best" not in view.status_line()
    ended(view, "cen", STATUS_CENSORED, 5.0, overhead=0.05)
    ended(view, "com", STATUS_COMPLETE, 3.5, overhead=0.09)
    assert best_ids(view) == ["com", "cen"]
    assert view.status_line() == (
        "trials: 4 of 4 started (1 censored, 1 complete, "
        "1 diverged, 1 pruned); best com: epochs_obj 3.5000, "
        "overhead 0.0900"
    )
    table = view.render()
    assert table[:2] == ["no trial running", "best so far:"] and len(table) == 5
    assert table[2].startswith("com ") and table[3].startswith("cen ")
    assert "x7" not in "".join(table) and "x8" not in "".join(table)


def test_a_censored_trial_ranks_behind_every_complete_one_whatever_its_number():
    """Even a censored row whose objective were below a complete one's (a max_epochs lower
    than that run's) stays behind it."""
    view = LiveView(Lines(), total=2, tty=False)
    ended(view, "cen", STATUS_CENSORED, 2.0)
    ended(view, "com", STATUS_COMPLETE, 3.5)
    assert best_ids(view) == ["com", "cen"]


def test_an_errored_trial_is_never_best():
    view = LiveView(Lines(), total=BEST_ROWS + 2, tty=False)
    for n in range(BEST_ROWS):
        ended(view, f"ok{n}", STATUS_COMPLETE, 2.0 + n)
    first = ended(view, "early", STATUS_COMPLETE, 1.0)  # best, then its trial errors
    assert best_ids(view)[0] == "early"
    view.on_trial_error(0, [], first)
    assert "early" not in best_ids(view)
    assert view.status_line().endswith("best ok0: epochs_obj 2.0000, overhead 0.0100")
    restored = Trial(
        "restored",
        status="ERROR",
        last_result={"objective_epochs": 0.5, "trial_status": STATUS_COMPLETE},
    )
    view.on_step_begin(0, [restored])  # an errored trial a resumed sweep restored
    assert "restored" not in best_ids(view) and view.states["restored"] == "error"


def test_a_view_pickled_with_a_diverged_best_drops_it_on_resume():
    """An older te-sweep kept diverged trials among the best (under a 3-part key); the view
    Tune restores from its pickle holds only complete and censored ones, re-ordered."""
    view = LiveView(Lines(), total=3, tty=False)
    ended(view, "com", STATUS_COMPLETE, 3.5)
    ended(view, "cen", STATUS_CENSORED, 5.0)
    rows = {row["trial"]: row for _, row in view.best}
    rows["div"] = {**rows["cen"], "trial": "div", "state": STATUS_DIVERGED}
    view.best = [
        ((5.0, 0.0, "div"), rows["div"]),
        ((5.0, 0.01, "cen"), rows["cen"]),
        ((3.5, 0.01, "com"), rows["com"]),
    ]
    restored = pickle.loads(pickle.dumps(view))
    assert best_ids(restored) == ["com", "cen"]
    assert (
        json.dumps([key for key, _ in restored.best])
        == '[[false, 3.5, 0.01, "com"], [true, 5.0, 0.01, "cen"]]'
    )


# ------------------------------------------------------------------ the summary's ranked part
def test_the_summary_lists_top_ranked_baselines_only_and_the_seeds_paired(tmp_path):
    """Semantic mutants of summary.py (tools/semantic_mutants.toml): 7 configurations, 6 with
    an estimate, so exactly TOP = 5 ranked lines and a count of all 7; LR controls beside the
    baselines, which the baselines' line must not list; the baseline of seed 33 errored, so
    each estimate has 2 paired seeds though 3 TE runs ended ("over 2 seeds", not 3)."""
    from te_sweep.results.summary import TOP

    root = tmp_path / "hand"
    sweep = HandSweep(root, num_samples=7, repeats=3)
    for seed in SEEDS:
        kind = REACH_2 if seed != 33 else STATUS_ERROR
        lines, status = lines_of(kind, 0.0)
        sweep.trial(
            f"b{seed}",
            trial_config("baseline", seed),
            lines,
            status,
            error_txt=ERROR_TEXT if kind == STATUS_ERROR else None,
        )
        lines, status = lines_of(REACH_1, 0.0)
        sweep.trial(f"l{seed}", trial_config("control", seed, "c0000"), lines, status)
    for n in range(7):
        for seed in SEEDS:
            kind = REACH_1 if n < 6 else STATUS_ERROR
            lines, status = lines_of(kind, 0.1)
            sweep.trial(
                f"c{n}_{seed}",
                trial_config("te", seed, f"c000{n}", te_scale=0.5 + 0.5 * n),
                lines,
                status,
                error_txt=ERROR_TEXT if kind == STATUS_ERROR else None,
            )
    sweep.save_state()
    _export, summary, _ = read_out(SweepDir(str(root.parent), root.name), ["te_scale"])
    header = next(line for line in summary if "configurations (" in line)
    assert header.startswith("7 configurations (6 complete, 1 error); ranked by"), header
    ranked = [line for line in summary if line.startswith("  ") and ". c000" in line]
    assert TOP == 5 and [line.split(".")[0].strip() for line in ranked] == [
        "1",
        "2",
        "3",
        "4",
        "5",
    ], "\n".join(summary)
    assert all(" over 2 seeds," in line for line in ranked), "\n".join(ranked)
    baselines = next(line for line in summary if line.startswith("baselines (te_scale 0)"))
    assert baselines == (
        "baselines (te_scale 0), epochs to target per seed: "
        "seed 11: 1.75 (complete), seed 22: 1.75 (complete), "
        "seed 33: - (error)"
    ), baselines


# ------------------------------------------------------------------ cosmic-ray's survivors
def read_back(rows: list[dict]) -> list[dict]:
    """Rows as trials.parquet gives them: equal strings, not the constants' own objects."""
    import pyarrow as pa

    back = pa.Table.from_pylist(rows).to_pylist()
    assert all(b["status"] == r["status"] for b, r in zip(back, rows, strict=True))
    assert back[0]["status"] is not rows[0]["status"]
    return back


def test_the_words_read_rows_read_back_from_parquet():
    rows = [
        row("baseline", 1, STATUS_DIVERGED),
        row("te", 1, STATUS_ERROR, "c0000"),
        row("te", 2, STATUS_UNFINISHED, "c0000"),
        row("te", 3, STATUS_CENSORED, "c0001"),
        row("baseline", 3, STATUS_COMPLETE),
        row("te", 4, STATUS_COMPLETE, "c0002"),
        row("baseline", 4, STATUS_CENSORED),
    ]
    assert failed_trials({"rows": read_back(rows)}) == failed_trials({"rows": rows}) == 1
    sentences = outcome_sentences(rows, [config(None)])
    assert outcome_sentences(read_back(rows), [config(None)]) == sentences
    so_far = [
        row("baseline", 1, STATUS_UNFINISHED),
        row("te", 1, STATUS_DIVERGED, "c0000"),
        row("te", 2, STATUS_DIVERGED, "c0001"),
    ]
    assert outcome_sentences(read_back(so_far), [config(None)])[1] == (
        "All TE runs so far diverged (2 of 2)" + DIVERGED_TAIL
    )
    assert "All TE runs so far" not in sentences[1] and "1 of 7 trials" in sentences[1]
    assert sentences[-1] == (  # both pairs informative: one side reached the target
        "No configuration has a paired estimate: of the 4 TE runs, 2 have no result "
        "(1 error, 1 unfinished)."
    )


TARGET = {"param_target_metric": "train_acc", "param_target": 0.8, "param_max_epochs": 4}


def censored(role: str, seed: int, config_id: str | None = None) -> dict:
    """A run of `role` that missed TARGET: censored, its target stated."""
    return {**row(role, seed, STATUS_CENSORED, config_id), **TARGET}


def test_lr_controls_are_not_counted_as_te_runs():
    trials = [
        censored("baseline", 1),
        censored("te", 1, "c0000"),
        row("control", 1, STATUS_ERROR, "c0000"),
        row("control", 2, STATUS_COMPLETE, "c0000"),
    ]
    assert outcome_sentences(trials, [config(None)])[-1] == (
        "No configuration has a paired estimate: of the 1 TE runs, 1 was paired with the "
        "baseline of their seed but neither run reached the target."
    )


def test_te_runs_that_diverged_or_errored_do_not_all_read_diverged():
    """Every TE run diverged *or* errored: neither sentence may say all of them did."""
    trials = [
        row("baseline", 1, STATUS_COMPLETE),
        row("te", 1, STATUS_DIVERGED, "c0000"),
        row("te", 2, STATUS_ERROR, "c0000"),
    ]
    sentences = outcome_sentences(trials, [config(None)])
    assert sentences[0] == "1 of 3 trials ended in error (1 of 2 TE runs)" + RESUME_TAIL
    assert sentences[1] == "1 of 3 trials diverged (1 of 2 TE runs)" + DIVERGED_TAIL


def test_te_runs_whose_seeds_baseline_has_not_ended_are_counted():
    """Four TE runs ended, one beside an ended baseline: three wait for theirs."""
    trials = [censored("baseline", 1)]
    trials += [
        row("baseline", 2, STATUS_UNFINISHED),
        censored("te", 1, "c0000"),
    ]
    trials += [row("te", 2, STATUS_COMPLETE, f"c000{i}") for i in (1, 2, 3)]
    assert outcome_sentences(trials, [config(None)])[-1] == (
        "No configuration has a paired estimate: of the 4 TE runs, 3 ended but the baseline "
        "of their seed did not and 1 was paired with the baseline of their seed but neither "
        "run reached the target."
    )
    three = [  # three TE runs ended, two paired (one with neither at the target), one waiting
        censored("baseline", 1),
        row("baseline", 2, STATUS_CENSORED),
        row("baseline", 3, STATUS_UNFINISHED),
        censored("te", 1, "c0000"),
        row("te", 2, STATUS_COMPLETE, "c0001"),
        row("te", 3, STATUS_COMPLETE, "c0002"),
    ]
    assert outcome_sentences(three, [config(None)])[-1] == (
        "No configuration has a paired estimate: of the 3 TE runs, 1 ended but the baseline "
        "of their seed did not and 1 was paired with the baseline of their seed but neither "
        "run reached the target."
    )


def test_the_verdict_counts_the_configurations_without_an_estimate():
    configs = [
        config(0.9),
        {**config(None), "config_id": "c1"},
        {**config(None), "config_id": "c2"},
    ]
    assert "(1 configuration with a paired estimate, 2 without)." in verdict(configs)


def test_more_trials_than_the_manifest_asks_for_say_none_is_missing():
    """A manifest older than the trials (a sweep resumed with fewer samples) counts none as
    not started: never a negative count."""
    trials = [row("baseline", 1, STATUS_COMPLETE), row("te", 1, STATUS_COMPLETE, "c0000")]
    assert outcome_sentences(trials, [config(1.0)], expected=1) == outcome_sentences(
        trials, [config(1.0)]
    )
    assert partial_sentence(trials, 1, []) == "These tables are partial."


def test_every_te_run_diverged_names_each_other_role_whatever_its_name():
    trials = [
        row("te", 1, STATUS_DIVERGED, "c0000"),
        row("baseline", 1, STATUS_DIVERGED),
        row("warmup", 1, STATUS_DIVERGED),  # a role that sorts after "te"
    ]
    assert outcome_sentences(trials, [config(None)])[0] == (
        "All TE runs diverged (1 of 1; also 1 of 1 baselines, 1 of 1 trials of role warmup)"
        + DIVERGED_TAIL
    )
