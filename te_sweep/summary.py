"""The end-of-sweep summary: Pareto front, best speedups, where the Parquet files are."""

from __future__ import annotations

from typing import Any, Callable

from te_sweep.console import cell, counts

TOP = 5


def _params(row: dict[str, Any], names: list[str]) -> str:
    return " ".join(f"{n}={row['param_' + n]:g}" if isinstance(row["param_" + n], float)
                    else f"{n}={row['param_' + n]}" for n in names)


def print_summary(export: dict[str, Any], searched: list[str],
                  echo: Callable[[str], None]) -> None:
    rows = export["rows"]
    partial = "; PARTIAL: the sweep did not finish" if export["partial"] else ""
    echo(f"{len(rows)} trials ({counts([r['status'] for r in rows])}){partial}")
    baselines = [r for r in rows if r["role"] == "baseline"]
    echo("baselines (te_scale 0): " + ", ".join(
        f"seed {r['seed']}: {cell(r['epochs_to_target'], '{}')} epochs ({r['status']})"
        for r in baselines) if baselines else "no baselines")
    for r in rows:
        if r["status"] == "error":
            echo(f"  {r['role']} trial {r['trial_id']} failed: {r['error']}")
    front = sorted((r for r in rows if r["pareto"]),
                   key=lambda r: (r["objective_epochs"], r["te_overhead"]))
    echo("Pareto front (objective_epochs, te_overhead):" + ("" if front else " none (no TE "
                                                          "trial finished)"))
    for r in front:
        echo(f"  {r['trial_id']}: {r['objective_epochs']} epochs"
             f"{' (censored)' if r['censored'] else ''}, overhead {r['te_overhead']:.3%}, "
             f"{_params(r, searched)}")
    ranked = sorted((r for r in rows if r["speedup_epochs"] is not None
                     and r["status"] == "complete"), key=lambda r: -r["speedup_epochs"])[:TOP]
    echo("best speedups against the median baseline:"
         + ("" if ranked else " none (no TE trial reached the target)"))
    for r in ranked:
        echo(f"  {r['trial_id']}: epochs x{r['speedup_epochs']:.2f}, time x"
             f"{cell(r['speedup_time'], '{:.2f}')}, paired x"
             f"{cell(r['paired_speedup_epochs'], '{:.2f}')}, {_params(r, searched)}")
    for path in export["paths"]:
        echo(f"wrote {path}")
