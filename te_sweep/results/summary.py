"""The end-of-sweep summary: the baselines, the configurations ranked by the lower bound of
their paired speedup's interval, how the trials ended and the plain verdict
(outcome_words.py, the same sentences as report.html's), and where the files are."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from te_sweep.core.console import cell, counts
from te_sweep.core.outcome import STATUS_ERROR
from te_sweep.core.reporting import Role
from te_sweep.results.configs import MIN_RANKED_PAIRS
from te_sweep.results.outcome_words import outcome_sentences, partial_sentence, verdict

__all__ = ["print_summary", "verdict"]  # verdict: the report's and the tests' name for it

TOP = 5
UNRANKED_NAMED = 10  # configurations named in the "not ranked" line


def _params(row: dict[str, Any], names: list[str]) -> str:
    return " ".join(
        f"{n}={row['param_' + n]:g}"
        if isinstance(row["param_" + n], float)
        else f"{n}={row['param_' + n]}"
        for n in names
    )


def _interval(row: dict[str, Any], prefix: str = "speedup") -> str:
    low, high = row[f"{prefix}_ci_low"], row[f"{prefix}_ci_high"]
    return "-" if low is None else f"[{low:.3f}, {high:.3f}]"


def print_summary(export: dict[str, Any], searched: list[str], echo: Callable[[str], None]) -> None:
    rows, configs = export["rows"], export["configs"]
    partial = "; PARTIAL (why: below)" if export["partial"] else ""
    echo(f"{len(rows)} trials ({counts([r['status'] for r in rows])}){partial}")
    baselines = [r for r in rows if r["role"] == Role.BASELINE]
    echo(
        "baselines (te_scale 0), epochs to target per seed: "
        + ", ".join(
            f"seed {r['seed']}: {cell(r['epochs_to_target_frac'], '{:.2f}')} ({r['status']})"
            for r in baselines
        )
        if baselines
        else "no baselines"
    )
    for r in rows:
        if r["status"] == STATUS_ERROR:
            echo(f"  {r['role']} trial {r['trial_id']} failed: {r['error']}")
    ranked = sorted((c for c in configs if c["rank"] is not None), key=lambda c: c["rank"])
    echo(
        f"{len(configs)} configurations ({counts([c['status'] for c in configs])}); ranked by "
        "the lower end of the 95% interval of the paired speedup (baseline epochs / TE "
        "epochs, same seed):"
        if configs
        else "no configurations"
    )
    for c in ranked[:TOP]:
        censored = c["censored_te"] + c["censored_baseline"] + c["censored_both"]
        control = (
            f", against its LR control x{c['control_speedup_mean']:.3f} "
            f"{_interval(c, 'control_speedup')}"
            if c["control_speedup_mean"] is not None
            else ""
        )
        echo(
            f"  {c['rank']}. {c['config_id']}: x{c['speedup_mean']:.3f} "
            f"{_interval(c)} over {len(c['seeds'])} seeds, P(TE faster) "
            f"{c['prob_te_faster']:.2f}, p_holm {cell(c['p_holm'], '{:.3g}')}"
            f"{f', {censored} censored pairs' if censored else ''}{control}; "
            f"overhead {cell(c['te_overhead'], '{:.2%}')}; {_params(c, searched)}"
        )
    unranked = [c["config_id"] for c in configs if c["rank"] is None]
    if unranked:
        echo(
            f"  not ranked ({len(unranked)}: not complete, or fewer than "
            f"{MIN_RANKED_PAIRS} informative pairs): {', '.join(unranked[:UNRANKED_NAMED])}"
            f"{', ...' if len(unranked) > UNRANKED_NAMED else ''}"
        )
    for sentence in outcome_sentences(rows, configs, export.get("expected")):
        echo(sentence)
    if export["partial"]:
        echo(partial_sentence(rows, export.get("expected"), export.get("damaged", [])))
    for path in export["paths"]:
        echo(f"wrote {path}")
