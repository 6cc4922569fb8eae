"""The end-of-sweep summary: the baselines, the configurations ranked by the lower bound of
their paired speedup's interval, the plain verdict, and where the files are."""

from __future__ import annotations

from typing import Any, Callable

from te_sweep.configs import SIGNIFICANCE
from te_sweep.console import cell, counts
from te_sweep.reporting import Role

TOP = 5


def _params(row: dict[str, Any], names: list[str]) -> str:
    return " ".join(f"{n}={row['param_' + n]:g}" if isinstance(row["param_" + n], float)
                    else f"{n}={row['param_' + n]}" for n in names)


def _interval(row: dict[str, Any], prefix: str = "speedup") -> str:
    low, high = row[f"{prefix}_ci_low"], row[f"{prefix}_ci_high"]
    return "-" if low is None else f"[{low:.3f}, {high:.3f}]"


def verdict(configs: list[dict[str, Any]]) -> str:
    """One sentence a reader can quote: what the sweep shows about speed."""
    estimated = [c for c in configs if c["speedup_ci_low"] is not None]
    winners = [c for c in configs if c["beats_baselines"]]
    if not estimated:
        return "No configuration has a paired estimate yet (no TE run and baseline finished)."
    if winners:
        names = ", ".join(c["config_id"] for c in winners)
        return (f"{len(winners)} of {len(estimated)} configurations reached the target faster "
                f"than their paired baselines, beyond chance over all configurations tried "
                f"(Holm-adjusted p < {SIGNIFICANCE}): {names}.")
    repeats = max(c["repeats"] for c in estimated)
    floor = 0.5 ** repeats
    why = (f" With {repeats} seeds per configuration even a speedup on every seed has "
           f"p = {floor:.3g}, so none can; 5 or more seeds (--repeats) can show one."
           if floor >= SIGNIFICANCE else "")
    return (f"No configuration is shown to reach the target faster than its baselines: "
            f"none has a Holm-adjusted p < {SIGNIFICANCE} with its interval above 1 "
            f"({len(estimated)} configurations).{why}")


def print_summary(export: dict[str, Any], searched: list[str],
                  echo: Callable[[str], None]) -> None:
    rows, configs = export["rows"], export["configs"]
    partial = "; PARTIAL: the sweep did not finish" if export["partial"] else ""
    echo(f"{len(rows)} trials ({counts([r['status'] for r in rows])}){partial}")
    baselines = [r for r in rows if r["role"] == Role.BASELINE]
    echo("baselines (te_scale 0), epochs to target per seed: " + ", ".join(
        f"seed {r['seed']}: {cell(r['epochs_to_target_frac'], '{:.2f}')} ({r['status']})"
        for r in baselines) if baselines else "no baselines")
    for r in rows:
        if r["status"] == "error":
            echo(f"  {r['role']} trial {r['trial_id']} failed: {r['error']}")
    ranked = sorted((c for c in configs if c["rank"] is not None), key=lambda c: c["rank"])
    echo(f"{len(configs)} configurations ({counts([c['status'] for c in configs])}); ranked by "
         "the lower end of the 95% interval of the paired speedup (baseline epochs / TE "
         "epochs, same seed):" if configs else "no configurations")
    for c in ranked[:TOP]:
        censored = c["censored_te"] + c["censored_baseline"] + c["censored_both"]
        control = (f", against its LR control x{c['control_speedup_mean']:.3f} "
                   f"{_interval(c, 'control_speedup')}"
                   if c["control_speedup_mean"] is not None else "")
        echo(f"  {c['rank']}. {c['config_id']}: x{c['speedup_mean']:.3f} "
             f"{_interval(c)} over {len(c['seeds'])} seeds, P(TE faster) "
             f"{c['prob_te_faster']:.2f}, p_holm {cell(c['p_holm'], '{:.3g}')}"
             f"{f', {censored} censored pairs' if censored else ''}{control}; "
             f"overhead {cell(c['te_overhead'], '{:.2%}')}; {_params(c, searched)}")
    echo(verdict(configs))
    for path in export["paths"]:
        echo(f"wrote {path}")
