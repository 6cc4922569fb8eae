"""configs.parquet: one row per configuration Optuna suggested, with its paired statistics.

A configuration was trained on the sweep's `repeats` seeds; each TE run is paired with the
no-TE baseline of its seed (and, with --lr-control, with its LR control of the same seed).
statistics.compare turns the pairs into the paired speedup with its bootstrap interval, the
probability that TE was faster and a sign-flip p-value; Holm's adjustment over every
configuration with a p-value says whether any beats its baselines once the number of
configurations tried is accounted for. Configurations are ranked by the interval's lower
bound: a configuration that is only lucky on one seed cannot rank first.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

import pyarrow as pa

# The CONFIG_* statuses are the `status` column's values; outcome.py holds the one rule that
# gives them (configuration_status), shared with the searcher.
from te_sweep.core.outcome import (
    CONFIG_COMPLETE,
    FINAL_STATUSES,
    STATUS_COMPLETE,
    configuration_status,
)
from te_sweep.core.reporting import Role
from te_sweep.core.space import Param, SearchSpace
from te_sweep.results.param_columns import param_field
from te_sweep.results.statistics import Comparison, Pair, Run, compare, holm

CONFIGS_FILE = "configs.parquet"
Row = dict[str, Any]
Rows = list[Row]
SIGNIFICANCE = 0.05  # family-wise, over the configurations (Holm)
MIN_RANKED_PAIRS = 2  # nothing is ranked on a single seed

BASE_FIELDS = [
    pa.field("sweep_id", pa.string(), nullable=False),
    pa.field("config_id", pa.string(), nullable=False),
    pa.field("rank", pa.int64()),  # 1 = highest speedup_ci_low; null: not rankable
    pa.field("status", pa.string(), nullable=False),  # complete, pruned, error, unfinished
    pa.field("repeats", pa.int64()),  # TE runs that ended (a final status)
]
STAT_FIELDS = [
    pa.field("seeds", pa.list_(pa.int64())),
    pa.field("speedups", pa.list_(pa.float64())),  # per seed; null: both sides censored
    pa.field("pair_kinds", pa.list_(pa.string())),  # statistics.PairKind per seed
    pa.field("speedup_mean", pa.float64()),  # geometric mean over the informative pairs
    pa.field("speedup_median", pa.float64()),
    pa.field("speedup_ci_low", pa.float64()),  # 95% percentile bootstrap of the mean
    pa.field("speedup_ci_high", pa.float64()),
    pa.field("prob_te_faster", pa.float64()),  # share of pairs where TE was faster
    pa.field("p_value", pa.float64()),  # one-sided exact sign-flip test
    pa.field("p_holm", pa.float64()),  # Holm-adjusted over the configurations
    pa.field("beats_baselines", pa.bool_()),  # p_holm < 0.05 and speedup_ci_low > 1
    pa.field("censored_te", pa.int64()),  # pairs where only the TE run missed the target
    pa.field("censored_baseline", pa.int64()),
    pa.field("censored_both", pa.int64()),  # left out of the estimate
    pa.field("time_speedup_median", pa.float64()),  # seconds to target, pairs both reached
    pa.field("time_speedup_min", pa.float64()),
    pa.field("time_speedup_max", pa.float64()),
    pa.field("objective_epochs", pa.float64()),  # what Optuna was told: means over seeds
    pa.field("te_overhead", pa.float64()),
    pa.field("pareto", pa.bool_()),  # on the front of the complete configurations
    pa.field("te_mean", pa.float64()),  # mean fed-back TE (bits) over its runs' epochs
    pa.field("te_factor_mean", pa.float64()),  # grad mode: mean gradient factor
    pa.field("control_last_lr_scale", pa.float64()),  # the LR controls' scale
    pa.field("control_speedup_mean", pa.float64()),  # TE against its LR control, per seed
    pa.field("control_speedup_ci_low", pa.float64()),
    pa.field("control_speedup_ci_high", pa.float64()),
    pa.field("control_p_value", pa.float64()),
]


def configs_schema(space: SearchSpace) -> pa.Schema:
    """The searched settings' columns have the settings' own types (param_columns.py)."""
    return pa.schema(BASE_FIELDS + [param_field(name) for name in space.params] + STAT_FIELDS)


def run_of(row: dict[str, Any]) -> Run:
    """A trial row as one side of a pair: fractional epochs to target, seconds to it."""
    reached = row["status"] == STATUS_COMPLETE
    return Run(
        row["epochs_to_target_frac"] if reached else None,
        row["seconds_to_target"] if reached else None,
    )


def _pairs(runs: Rows, partners: dict[int, Row]) -> list[Pair]:
    return [
        Pair(r["seed"], run_of(r), run_of(partners[r["seed"]]))
        for r in runs
        if r["seed"] in partners
    ]


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.fmean(present) if present else None


def config_rows(
    sweep_id: str, trials: list[dict[str, Any]], space: SearchSpace, repeats: int
) -> list[dict[str, Any]]:
    """configs.parquet's rows from trials.parquet's, ranked (see the module docstring)."""
    final = [t for t in trials if t["status"] in FINAL_STATUSES]
    baselines = {t["seed"]: t for t in final if t["role"] == Role.BASELINE}
    te_runs: dict[str, Rows] = defaultdict(list)
    controls: dict[str, dict[int, Row]] = defaultdict(dict)
    for t in trials:
        if t["role"] == Role.TE and t["config_id"]:
            te_runs[t["config_id"]].append(t)
        elif t["role"] == Role.CONTROL and t["status"] in FINAL_STATUSES:
            controls[t["config_id"]][t["seed"]] = t
    rows = []
    for config_id in sorted(te_runs):
        runs = sorted(te_runs[config_id], key=lambda r: r["seed"])
        ended = [r for r in runs if r["status"] in FINAL_STATUSES]
        censored_at = runs[0]["param_max_epochs"] + 1
        pairs = _pairs(ended, baselines)
        stats = compare(pairs, censored_at) if pairs else None
        control = (
            compare(_pairs(ended, controls[config_id]), censored_at)
            if controls[config_id]
            else None
        )
        status = configuration_status([r["status"] for r in runs], repeats)
        rows.append(
            {
                "sweep_id": sweep_id,
                "config_id": config_id,
                "status": status,
                "repeats": len(ended),
                **{
                    f"param_{name}": searched_value(p, runs[0][f"param_{name}"])
                    for name, p in space.params.items()
                },
                **_stat_columns(pairs, stats),
                "objective_epochs": _mean([r["objective_epochs"] for r in ended])
                if status == CONFIG_COMPLETE
                else None,
                "te_overhead": _mean([r["te_overhead"] for r in ended])
                if status == CONFIG_COMPLETE
                else None,
                "te_mean": _mean([r["te_mean"] for r in ended]),
                "te_factor_mean": _mean([r["te_factor_mean"] for r in ended]),
                "control_last_lr_scale": next(
                    (c["param_last_lr_scale"] for c in controls[config_id].values()), None
                ),
                "control_speedup_mean": control.speedup_mean if control else None,
                "control_speedup_ci_low": control.ci_low if control else None,
                "control_speedup_ci_high": control.ci_high if control else None,
                "control_p_value": control.p_value if control else None,
            }
        )
    _add_verdicts(rows)
    return rows


def searched_value(param: Param, recorded: Any) -> Any:
    """The value the search chose for a configuration whose runs recorded `recorded`.

    A null choice (`batch_size: {choices: [null, 64]}`: the preset's own) is recorded in
    trials.parquet as the value the preset filled in, which is not among the choices; every
    listed choice is recorded as itself. So configs.parquet (and optuna.db, built from it)
    names the configuration as the space file does. A preset value that is also listed makes
    the two choices one training run, and the row says the listed value."""
    if param.kind == "categorical" and None in param.choices and recorded not in param.choices:
        return None
    return recorded


def _stat_columns(pairs: list[Pair], c: Comparison | None) -> dict[str, Any]:
    return {
        "seeds": [p.seed for p in pairs],
        "speedups": list(c.speedups) if c else [],
        "pair_kinds": [p.kind.value for p in pairs],
        "speedup_mean": c.speedup_mean if c else None,
        "speedup_median": c.speedup_median if c else None,
        "speedup_ci_low": c.ci_low if c else None,
        "speedup_ci_high": c.ci_high if c else None,
        "prob_te_faster": c.prob_te_faster if c else None,
        "p_value": c.p_value if c else None,
        "censored_te": c.censored_te if c else 0,
        "censored_baseline": c.censored_baseline if c else 0,
        "censored_both": c.censored_both if c else 0,
        "time_speedup_median": c.time_speedup_median if c else None,
        "time_speedup_min": c.time_speedup_min if c else None,
        "time_speedup_max": c.time_speedup_max if c else None,
    }


def is_rankable(row: dict[str, Any]) -> bool:
    """Ranked only with all its runs ended (status complete) and at least MIN_RANKED_PAIRS
    informative pairs: one pair's interval is a single speedup, and a configuration stopped
    by the scheduler, errored or unfinished has not had all its seeds' say."""
    informative = sum(1 for s in row["speedups"] if s is not None)
    return (
        row["status"] == CONFIG_COMPLETE
        and row["speedup_ci_low"] is not None
        and informative >= MIN_RANKED_PAIRS
    )


def _add_verdicts(rows: list[dict[str, Any]]) -> None:
    """Holm over the configurations, the verdict, the rank by ci_low, the Pareto flags."""
    for row, p_holm in zip(rows, holm([r["p_value"] for r in rows]), strict=True):
        row["p_holm"] = p_holm
        row["beats_baselines"] = (
            p_holm is not None and p_holm < SIGNIFICANCE and row["speedup_ci_low"] > 1
        )
    ranked = sorted(
        (r for r in rows if is_rankable(r)),
        key=lambda r: (-r["speedup_ci_low"], -r["speedup_mean"], r["config_id"]),
    )
    for row in rows:
        row["rank"] = None
    for rank, row in enumerate(ranked, start=1):
        row["rank"] = rank
    complete = [r for r in rows if r["status"] == CONFIG_COMPLETE]
    for row in rows:
        row["pareto"] = None
    for row, flag in zip(
        complete,
        pareto_flags([(r["objective_epochs"], r["te_overhead"]) for r in complete]),
        strict=True,
    ):
        row["pareto"] = flag


def pareto_flags(points: list[tuple[float, float]]) -> list[bool]:
    """For each point (both minimised): no other point is at least as good in both and
    better in one. O(n log n): sorted by the first value, a point is on the front when its
    second value is below every second value of the points strictly before it in the first
    and, among equal first values, it has the least second value."""
    order = sorted(range(len(points)), key=lambda i: points[i])
    flags = [False] * len(points)
    best_before = float("inf")  # least second value among strictly smaller first values
    i = 0
    while i < len(order):
        j = i
        while j < len(order) and points[order[j]][0] == points[order[i]][0]:
            j += 1  # order[i:j]: one first value, second values ascending
        least = points[order[i]][1]
        for k in order[i:j]:
            flags[k] = points[k][1] == least and least < best_before
        best_before = min(best_before, least)
        i = j
    return flags
