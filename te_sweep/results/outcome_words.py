"""The sentences that say how a sweep's trials ended, for the summary and for report.html.

Both print these words from the same rows (trials.parquet's rows and configs.parquet's, as
dicts), so what the terminal says and what the report says cannot drift apart. Each sentence
names one thing that happened, with its counts, and is said only when it is true.

Why "no paired estimate" has several causes, each named on its own: a configuration gets an
estimate (configs.py, statistics.py) only from a pair of one of its TE runs and the baseline of
the same seed that both *ended* (complete, censored or diverged; an errored, pruned or
unfinished run forms no pair) and of which at least one *reached the target* (in a pair where
neither did, both censored or diverged, the pair says nothing about speed and is left out).
A diverged run enters its pair as one that missed the target, like a censored one. So "every
TE run diverged" can still come with an estimate (against baselines that reached the target:
TE slower), while "every pair censored on both sides" cannot. The verdict on speed (`verdict`)
is said only where some configuration has an estimate.
"""

from __future__ import annotations

from typing import Any

from te_sweep.core.console import counts
from te_sweep.core.outcome import (
    FINAL_STATUSES,
    STATUS_CENSORED,
    STATUS_COMPLETE,
    STATUS_DIVERGED,
    STATUS_ERROR,
    STATUS_UNFINISHED,
)
from te_sweep.core.reporting import Role
from te_sweep.results.configs import SIGNIFICANCE

ROLE_NOUNS = {Role.TE: "TE runs", Role.BASELINE: "baselines", Role.CONTROL: "LR controls"}


def failed_trials(export: dict[str, Any]) -> int:
    """How many trials ended in error (after their retries), from export_sweep's return value:
    the CLI exits non-zero when there are any, since `te-sweep resume` can still run them."""
    return sum(1 for r in export["rows"] if r["status"] == STATUS_ERROR)


def verdict(configs: list[dict[str, Any]]) -> str:
    """One sentence a reader can quote: what the sweep shows about speed. The counts are of
    configurations with a paired estimate (the others are named as such), and the p-value's
    floor is that of the most pairs any estimate used, since a pair where neither run reached
    the target is left out of it (statistics.py)."""
    estimated = [c for c in configs if c["speedup_ci_low"] is not None]
    winners = [c for c in configs if c["beats_baselines"]]
    if not estimated:
        return "No configuration has a paired estimate."
    without = len(configs) - len(estimated)
    which = " with a paired estimate" if without else ""
    if winners:
        names = ", ".join(c["config_id"] for c in winners)
        return (
            f"{len(winners)} of {len(estimated)} configurations{which} reached the target "
            f"faster than their paired baselines, beyond chance over all configurations "
            f"tried (Holm-adjusted p < {SIGNIFICANCE}): {names}."
        )
    pairs = max(len(c["seeds"]) - c["censored_both"] for c in estimated)
    floor = 0.5**pairs
    why = (
        f" With at most {_plural(pairs, 'paired seed')} in a configuration's estimate, "
        f"even a speedup on every one has p = {floor:.3g}, so none can; 5 or more seeds "
        "(--repeats) can show one."
        if floor >= SIGNIFICANCE
        else ""
    )
    scope = _plural(len(estimated), "configuration") + (
        f"{which}, {without} without" if without else ""
    )
    return (
        f"No configuration is shown to reach the target faster than its baselines: "
        f"none has a Holm-adjusted p < {SIGNIFICANCE} with its interval above 1 "
        f"({scope}).{why}"
    )


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _be(count: int) -> str:
    """'1 of 6 trials is', '2 of 6 trials are': the verb agrees with the count."""
    return "is" if count == 1 else "are"


def _have(count: int) -> str:
    return "has" if count == 1 else "have"


def outcome_sentences(
    trials: list[dict[str, Any]], configs: list[dict[str, Any]], expected: int | None = None
) -> list[str]:
    """What happened to the sweep's trials, one sentence per fact, then the verdict (where a
    configuration has an estimate) or why no configuration has one. `expected`: the trials
    the sweep asks for (export.expected_trials), to tell how many never started; None when
    unknown."""
    te = [r for r in trials if r["role"] == Role.TE and r["config_id"]]
    pairs = _pairs(te, trials)
    # While trials are unfinished or not started, "all" and "every" speak of those so far.
    so_far = (
        " so far"
        if (_missing(trials, expected) or any(r["status"] == STATUS_UNFINISHED for r in trials))
        else ""
    )
    found = [
        _not_finished(trials, expected),
        _status_sentence(
            trials, STATUS_ERROR, "ended in error", "; `te-sweep resume` retries them.", so_far
        ),
        _status_sentence(
            trials,
            STATUS_DIVERGED,
            "diverged",
            ": their training loss became non-finite before they reached the "
            "target; in a pair a diverged run counts as one that missed it.",
            so_far,
        ),
        _no_baseline(trials),
        _all_censored_both(pairs, so_far),
    ]
    estimated = any(c["speedup_ci_low"] is not None for c in configs)
    found.append(verdict(configs) if estimated else _no_estimate(te, pairs))
    return [s for s in found if s]


def partial_sentence(
    trials: list[dict[str, Any]], expected: int | None, damaged: list[str] | None = None
) -> str:
    """Why the tables are marked partial (export.is_partial, or a file the export skipped):
    trials in error, unfinished, or not started, and files that could not be read. Without
    the list of skipped files (the report has only the tables) and with no other cause in
    the rows, a skipped file is the cause left: it is said so."""
    errors = sum(1 for r in trials if r["status"] == STATUS_ERROR)
    unfinished = sum(1 for r in trials if r["status"] == STATUS_UNFINISHED)
    missing = _missing(trials, expected)
    parts = []
    if errors:
        parts.append(f"{_plural(errors, 'trial')} ended in error")
    if unfinished:
        parts.append(f"{unfinished} {_be(unfinished)} unfinished")
    if missing:
        parts.append(f"{missing} asked for {_have(missing)} not started")
    if damaged:
        parts.append(f"{_plural(len(damaged), 'file')} of the sweep could not be read")
    elif damaged is None and not parts:
        parts.append("a file of the sweep could not be read when they were exported")
    return f"These tables are partial: {_listed(parts)}." if parts else "These tables are partial."


def _listed(parts: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]


# ----------------------------------------------------------------------------- the facts
def _pairs(
    te: list[dict[str, Any]], trials: list[dict[str, Any]]
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(TE run, baseline of its seed) for every TE run that ended beside an ended baseline:
    the pairs configs.py forms, before it drops the ones where neither reached the target."""
    baselines = {
        r["seed"]: r for r in trials if r["role"] == Role.BASELINE and r["status"] in FINAL_STATUSES
    }
    return [
        (r, baselines[r["seed"]])
        for r in te
        if r["status"] in FINAL_STATUSES and r["seed"] in baselines
    ]


def _of_roles(rows: list[dict[str, Any]], status: str) -> list[str]:
    """'2 of 6 TE runs', '1 of 3 baselines': per role with any such row, the known roles
    first."""
    roles = list(ROLE_NOUNS) + sorted({r["role"] for r in rows} - set(ROLE_NOUNS))
    parts = []
    for role in roles:
        of_role = [r for r in rows if r["role"] == role]
        hit = sum(1 for r in of_role if r["status"] == status)
        if hit:
            noun = ROLE_NOUNS.get(role, f"trials of role {role}")
            parts.append(f"{hit} of {len(of_role)} {noun}")
    return parts


def _status_sentence(
    trials: list[dict[str, Any]], status: str, verb: str, tail: str, so_far: str
) -> str | None:
    """'All TE runs diverged (6 of 6; also 1 of 3 baselines)...' when every TE run has the
    status, else '2 of 9 trials diverged (2 of 6 TE runs)...': a mixed sweep never reads
    'all'."""
    hit = [r for r in trials if r["status"] == status]
    if not hit:
        return None
    te = [r for r in trials if r["role"] == Role.TE]
    if te and all(r["status"] == status for r in te):
        others = _of_roles([r for r in trials if r["role"] != Role.TE], status)
        also = f"; also {', '.join(others)}" if others else ""
        return f"All TE runs{so_far} {verb} ({len(te)} of {len(te)}{also}){tail}"
    return (
        f"{len(hit)} of {len(trials)} trials {verb} ({', '.join(_of_roles(trials, status))}){tail}"
    )


def _missing(trials: list[dict[str, Any]], expected: int | None) -> int:
    """The trials asked for (export.expected_trials) that have no row: not started yet."""
    return max(0, expected - len(trials)) if expected is not None else 0


def _not_finished(trials: list[dict[str, Any]], expected: int | None) -> str | None:
    """The sweep is still running or was stopped: trials unfinished, or never started."""
    unfinished = sum(1 for r in trials if r["status"] == STATUS_UNFINISHED)
    missing = _missing(trials, expected)
    parts = []
    if unfinished:
        parts.append(f"{unfinished} of {len(trials)} trials {_be(unfinished)} unfinished")
    if missing:
        parts.append(f"{missing} of the {expected} trials asked for {_have(missing)} not started")
    if not parts:
        return None
    return (
        f"The sweep has not finished (it is still running, or was stopped): "
        f"{' and '.join(parts)}, so their pairs are not formed yet; `te-sweep resume` "
        "continues a stopped sweep."
    )


def _no_baseline(trials: list[dict[str, Any]]) -> str | None:
    """No baseline ended (errored, pruned or unfinished ones form no pair; a diverged one
    does, as a run that missed the target)."""
    baselines = [r for r in trials if r["role"] == Role.BASELINE]
    if any(r["status"] in FINAL_STATUSES for r in baselines):
        return None
    if not baselines:
        return "No baseline has started yet, so no TE run can be paired with one."
    return (
        f"None of the {len(baselines)} baselines ended with a result "
        f"({counts([r['status'] for r in baselines])}), so no TE run can be paired "
        "with one."
    )


def _all_censored_both(
    pairs: list[tuple[dict[str, Any], dict[str, Any]]], so_far: str
) -> str | None:
    """Every pair formed has both runs censored: the target or max_epochs is out of reach."""
    if not pairs or any(
        te["status"] != STATUS_CENSORED or base["status"] != STATUS_CENSORED for te, base in pairs
    ):
        return None
    first = pairs[0][0]
    return (
        f"Every pair{so_far} was censored on both sides ({len(pairs)} of {len(pairs)}): "
        f"neither the TE run nor its baseline reached the target "
        f"({first['param_target_metric']} >= {first['param_target']:g}) within max_epochs "
        f"({first['param_max_epochs']}), so no pair says anything about speed; a higher "
        "max_epochs or a lower target is needed."
    )


def _no_estimate(
    te: list[dict[str, Any]], pairs: list[tuple[dict[str, Any], dict[str, Any]]]
) -> str:
    """Why no configuration has an estimate, counting the TE runs by what stopped them."""
    if not te:
        return "No configuration has a paired estimate: no TE run has started yet."
    no_result = [r["status"] for r in te if r["status"] not in FINAL_STATUSES]
    ended = sum(1 for r in te if r["status"] in FINAL_STATUSES)
    neither = sum(
        1 for t, b in pairs if t["status"] != STATUS_COMPLETE and b["status"] != STATUS_COMPLETE
    )
    parts = []
    if no_result:
        parts.append(f"{len(no_result)} {_have(len(no_result))} no result ({counts(no_result)})")
    if ended - len(pairs):
        parts.append(f"{ended - len(pairs)} ended but the baseline of their seed did not")
    if neither:
        parts.append(
            f"{neither} {'was' if neither == 1 else 'were'} paired with the "
            "baseline of their seed but neither run reached the target"
        )
    if not parts:  # configs.parquet older than trials.parquet: nothing to say but the fact
        return "No configuration has a paired estimate."
    return f"No configuration has a paired estimate: of the {len(te)} TE runs, {_listed(parts)}."
