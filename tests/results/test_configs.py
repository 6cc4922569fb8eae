"""configs.parquet's rows from hand-built trial rows: ranking, Holm, the verdict, the Pareto
flag and the configuration's status, each on a case whose answer is known by hand."""

from __future__ import annotations

import math
from pathlib import Path

import pyarrow as pa
import pytest

from te_sweep.core.outcome import CONFIG_COMPLETE, CONFIG_ERROR, CONFIG_UNFINISHED
from te_sweep.core.space import space_from_text
from te_sweep.results.configs import (
    config_rows,
    configs_schema,
    pareto_flags,
)

SPACE = space_from_text(
    "fixed:\n  dataset: fashion-mnist\n  subset: 1000\n  max_epochs: 9\n"
    "search:\n  te_scale: {low: 0.1, high: 4.0}\n",
    Path("s.yaml"),
)
MAX_EPOCHS = 9
SEEDS = tuple(range(100, 106))  # six seeds: enough for Holm to let a clear effect through


def row(
    role: str,
    seed: int,
    epochs: float | None,
    config_id: str | None = None,
    status: str | None = None,
    overhead: float = 0.05,
    lr_scale: float = 1.0,
) -> dict:
    """A trials.parquet row with what config_rows reads; epochs None: censored."""
    status = status or ("complete" if epochs is not None else "censored")
    return {
        "role": role,
        "seed": seed,
        "config_id": config_id,
        "status": status,
        "epochs_to_target_frac": epochs,
        "seconds_to_target": None if epochs is None else 10.0 * epochs,
        "param_max_epochs": MAX_EPOCHS,
        "param_te_scale": 1.0,
        "param_last_lr_scale": lr_scale,
        "objective_epochs": epochs if epochs is not None else MAX_EPOCHS + 1.0,
        "te_overhead": overhead,
        "te_mean": 0.01,
        "te_factor_mean": 0.99,
    }


def baselines(epochs: float = 6.0) -> list[dict]:
    return [row("baseline", s, epochs) for s in SEEDS]


def configuration(config_id: str, epochs: list[float | None], overhead: float = 0.05) -> list:
    return [
        row("te", s, e, config_id, overhead=overhead) for s, e in zip(SEEDS, epochs, strict=False)
    ]


def rows_by_id(trials: list[dict], repeats: int = len(SEEDS)) -> dict[str, dict]:
    return {r["config_id"]: r for r in config_rows("s", trials, SPACE, repeats)}


def test_ranked_by_the_lower_end_of_the_interval_not_the_mean():
    steady = configuration("c0000", [5.0, 5.1, 4.9, 5.0, 5.05, 4.95])  # about 1.2x, tight
    lucky = configuration("c0001", [2.0, 9.0, 2.5, 8.0, 2.2, 7.5])  # higher mean, wide
    rows = rows_by_id(baselines() + steady + lucky)
    assert rows["c0001"]["speedup_mean"] > rows["c0000"]["speedup_mean"]
    assert rows["c0000"]["speedup_ci_low"] > rows["c0001"]["speedup_ci_low"]
    assert (rows["c0000"]["rank"], rows["c0001"]["rank"]) == (1, 2)


def test_a_clear_speedup_beats_baselines_after_holm_and_no_effect_does_not():
    clear = configuration("c0000", [4.0] * 6)  # 1.5x on every seed: p = 1/64
    none = configuration("c0001", [6.0] * 6)  # exactly the baselines
    rows = rows_by_id(baselines() + clear + none)
    assert rows["c0000"]["p_value"] == pytest.approx(1 / 64)
    assert rows["c0000"]["p_holm"] == pytest.approx(2 / 64)  # the smaller p, times 2
    assert rows["c0000"]["beats_baselines"] is True
    assert rows["c0001"]["beats_baselines"] is False
    assert rows["c0001"]["speedup_ci_low"] == pytest.approx(1.0)


def test_censoring_on_either_side_is_counted_as_a_bound():
    runs = configuration("c0000", [None, 3.0, 5.0, 6.0, 6.0, 6.0])
    trials = (
        [row("baseline", SEEDS[0], 6.0), row("baseline", SEEDS[1], None)]
        + [row("baseline", s, 6.0) for s in SEEDS[2:]]
        + runs
    )
    r = rows_by_id(trials)["c0000"]
    assert r["pair_kinds"][:2] == ["te_censored", "baseline_censored"]
    assert r["censored_te"] == 1 and r["censored_baseline"] == 1 and r["censored_both"] == 0
    assert r["speedups"][0] == pytest.approx(6.0 / (MAX_EPOCHS + 1))  # an upper bound, < 1
    assert r["speedups"][1] == pytest.approx((MAX_EPOCHS + 1) / 3.0)  # a lower bound, > 1
    assert r["objective_epochs"] == pytest.approx((MAX_EPOCHS + 1 + 3 + 5 + 6 + 6 + 6) / 6)


def test_pareto_flags_for_dominated_tied_and_equal_points():
    points = [(5.0, 0.10), (4.0, 0.20), (4.0, 0.30), (6.0, 0.05), (5.0, 0.10), (7.0, 0.06)]
    #          front        front         same epochs,   front         equal to   worse in
    #                                     more overhead                the first  both than (6, .05)
    assert pareto_flags(points) == [True, True, False, True, True, False]
    # weakly dominated: the same overhead in more epochs, or the same epochs at more overhead
    assert pareto_flags([(4.0, 0.1), (5.0, 0.1)]) == [True, False]
    assert pareto_flags([(5.0, 0.1), (5.0, 0.2), (4.0, 0.3)]) == [True, False, True]
    assert pareto_flags([]) == [] and pareto_flags([(1.0, 1.0)]) == [True]


def test_equal_values_are_equal_however_they_were_computed():
    """The front groups points by equal epochs: equal values from different computations
    (different float objects) are one group, as equal literals are."""
    points = [(float("5.0"), 0.2), (2.5 * 2, float("0.1")), (4.0, 0.3), (float("5"), 0.1)]
    assert pareto_flags(points) == [False, True, True, True]  # the two equal points: both


def test_every_configuration_row_names_its_sweep_configuration_and_status():
    schema = configs_schema(SPACE)
    assert [schema.field(n).nullable for n in ("sweep_id", "config_id", "status")] == [False] * 3
    assert schema.field("rank").nullable


def test_a_configuration_without_an_estimate_has_no_rank():
    both_censored = configuration("c0000", [None] * 6)
    rows = rows_by_id([row("baseline", s, None) for s in SEEDS] + both_censored)
    assert rows["c0000"]["speedup_ci_low"] is None and rows["c0000"]["rank"] is None
    assert rows["c0000"]["censored_both"] == 6


def test_a_control_still_running_is_not_compared_yet():
    runs = configuration("c0000", [5.0] * 6)
    controls = [row("control", s, 4.0, "c0000", lr_scale=0.7) for s in SEEDS[:3]] + [
        row("control", s, 2.0, "c0000", status="running", lr_scale=0.7) for s in SEEDS[3:]
    ]
    r = rows_by_id(baselines() + runs + controls)["c0000"]
    assert r["control_speedup_mean"] == pytest.approx(4.0 / 5.0)


def test_only_complete_configurations_are_on_the_front():
    fast = configuration("c0000", [4.0] * 6, overhead=0.2)
    cheap = configuration("c0001", [5.0] * 6, overhead=0.01)
    dominated = configuration("c0002", [5.5] * 6, overhead=0.3)
    unfinished = configuration("c0003", [3.0] * 3, overhead=0.001)  # 3 of 6 seeds so far
    rows = rows_by_id(baselines() + fast + cheap + dominated + unfinished)
    assert [rows[c]["pareto"] for c in ("c0000", "c0001", "c0002")] == [True, True, False]
    assert rows["c0003"]["status"] == CONFIG_UNFINISHED and rows["c0003"]["pareto"] is None
    assert rows["c0003"]["objective_epochs"] is None
    assert rows["c0000"]["status"] == CONFIG_COMPLETE


def test_an_errored_run_marks_its_configuration():
    runs = [*configuration("c0000", [5.0] * 5), row("te", SEEDS[5], None, "c0000", "error")]
    r = rows_by_id(baselines() + runs)["c0000"]
    assert r["status"] == CONFIG_ERROR and r["repeats"] == 5 and r["pareto"] is None


def test_lr_controls_are_compared_with_the_baselines_of_their_seeds():
    runs = configuration("c0000", [5.0] * 6)
    controls = [row("control", s, 4.0, "c0000", lr_scale=0.7) for s in SEEDS]
    r = rows_by_id(baselines() + runs + controls)["c0000"]
    assert r["control_last_lr_scale"] == pytest.approx(0.7)
    assert r["control_speedup_mean"] == pytest.approx(4.0 / 5.0)  # the control was faster


def test_equal_lower_ends_are_ranked_by_the_mean():
    """With 3 pairs the 95% interval is exactly [lowest, highest] ratio (test_statistics), so
    both have ci_low 0.9; the one with the higher geometric mean ranks first."""
    seeds = SEEDS[:3]
    base = [row("baseline", s, 6.0) for s in seeds]
    lower = [row("te", s, 6.0 / r, "c0000") for s, r in zip(seeds, (0.9, 1.0, 1.5), strict=False)]
    higher = [row("te", s, 6.0 / r, "c0001") for s, r in zip(seeds, (0.9, 1.2, 1.3), strict=False)]
    rows = rows_by_id(base + lower + higher, repeats=3)
    assert rows["c0000"]["speedup_ci_low"] == pytest.approx(rows["c0001"]["speedup_ci_low"])
    assert rows["c0001"]["speedup_mean"] > rows["c0000"]["speedup_mean"]
    assert (rows["c0001"]["rank"], rows["c0000"]["rank"]) == (1, 2)


def test_time_speedups_come_from_the_seconds_of_runs_that_reached_the_target():
    runs = configuration("c0000", [4.0, 3.0, 6.0, 5.0, None, 4.0])  # row(): 10 s per epoch
    r = rows_by_id(baselines() + runs)["c0000"]
    assert r["time_speedup_median"] == pytest.approx(1.5)  # of 1.5, 2, 1, 1.2, 1.5
    assert (r["time_speedup_min"], r["time_speedup_max"]) == pytest.approx((1.0, 2.0))


@pytest.mark.parametrize(
    "choices, arrow_type",
    [
        ("[true, false]", pa.bool_()),
        ("[16, 32]", pa.int64()),
        ("[1, 2.5]", pa.float64()),
        ("[0.5, 2.0]", pa.float64()),
        ("[plugin, effective]", pa.string()),
    ],
)
def test_a_categorical_parameter_keeps_its_type_in_configs_parquet(choices, arrow_type):
    space = space_from_text(
        "fixed:\n  dataset: fashion-mnist\n  subset: 1000\n"
        f"search:\n  {CATEGORICAL[arrow_type]}: {{choices: {choices}}}\n",
        Path("s.yaml"),
    )
    (name,) = space.params
    assert configs_schema(space).field(f"param_{name}").type == arrow_type


CATEGORICAL = {
    pa.bool_(): "redraw_pairs",
    pa.int64(): "te_every",
    pa.float64(): "te_scale",
    pa.string(): "te_estimator",
}


def test_the_rows_do_not_depend_on_the_order_of_the_trials():
    """trials.parquet's row order is Tune's, not a promise: baselines, TE runs and LR controls
    sharing seeds, in any order, give the same configurations. (A role test that let a TE run
    or a control stand in for the baseline of its seed depends on which row comes last.)"""
    trials = (
        baselines()
        + configuration("c0000", [4.0, 5.0, None, 4.5, 5.5, 3.0])
        + configuration("c0001", [6.5, 7.0, 5.0, 6.0, 8.0, 6.0])
        + [row("control", s, 4.0 + 0.3 * k, "c0000", lr_scale=0.7) for k, s in enumerate(SEEDS)]
    )
    forward = config_rows("s", trials, SPACE, len(SEEDS))
    assert forward[0]["speedups"][0] == pytest.approx(6.0 / 4.0)  # against the baseline
    assert forward[0]["control_speedup_mean"] is not None
    for order in (
        trials[::-1],
        trials[len(SEEDS) :] + trials[: len(SEEDS)],
        sorted(trials, key=lambda t: (t["seed"], t["role"])),
    ):
        assert config_rows("s", order, SPACE, len(SEEDS)) == forward


def test_a_significant_p_with_an_interval_reaching_below_1_does_not_beat_the_baselines():
    """The sign-flip p is one-sided, the interval two-sided: 10 seeds 1.22x faster and 2 seeds
    1.35x slower give p = 0.049 but an interval from 0.99. Both must hold for the verdict."""
    seeds = range(200, 212)
    ratios = [math.exp(0.2)] * 10 + [math.exp(-0.3)] * 2
    trials = [row("baseline", s, 6.0) for s in seeds] + [
        row("te", s, 6.0 / r, "c0000") for s, r in zip(seeds, ratios, strict=False)
    ]
    r = rows_by_id(trials, repeats=12)["c0000"]
    assert r["p_holm"] == r["p_value"] == pytest.approx(0.0486, abs=1e-4)
    assert r["speedup_ci_low"] == pytest.approx(0.9917, abs=1e-4)
    assert r["beats_baselines"] is False


def test_a_configuration_with_no_baseline_yet_counts_no_censored_pairs():
    """No seed of the configuration has a finished baseline: no pair at all, so no pair of any
    kind, censored or not (not one of each)."""
    runs = configuration("c0000", [None, 4.0, None, 5.0, 6.0, 3.0])
    r = rows_by_id(runs + [row("baseline", s, 6.0, status="running") for s in SEEDS])["c0000"]
    assert r["pair_kinds"] == [] and r["speedups"] == [] and r["speedup_mean"] is None
    assert (r["censored_te"], r["censored_baseline"], r["censored_both"]) == (0, 0, 0)


def test_a_null_choice_is_the_configurations_value_and_the_table_builds():
    """`batch_size: {choices: [null, 64]}` (the preset's own, 100, or 64): trials.parquet
    records what ran (100, 64); configs.parquet names the configurations as the space does
    (null, 64), in the setting's own type."""
    space = space_from_text(
        "fixed:\n  dataset: fashion-mnist\n  subset: 1000\n  max_epochs: 9\n"
        "search:\n  batch_size: {choices: [null, 64]}\n",
        Path("s.yaml"),
    )
    schema = configs_schema(space)
    assert schema.field("param_batch_size").type == pa.int64()
    trials = [
        {**t, "param_batch_size": size}
        for size, config_id in ((100, "c0000"), (64, "c0001"))
        for t in configuration(config_id, [5.0] * 6)
    ] + baselines()
    table = pa.Table.from_pylist(config_rows("s", trials, space, len(SEEDS)), schema=schema)
    assert table.column("param_batch_size").to_pylist() == [None, 64]


def test_the_front_of_many_configurations_is_found():
    """300 configurations (more than CPython's cached small ints, so loop bounds are compared
    by value): on the line epochs + 100 * overhead = 10 every point is on the front; the
    same points each moved 0.5 epochs later are all dominated."""
    line = [(4.0 + 0.02 * k, (6.0 - 0.02 * k) / 100) for k in range(300)]
    later = [(e + 0.5, o) for e, o in line]
    flags = pareto_flags(line + later)
    assert flags == [True] * 300 + [False] * 300


def test_a_configuration_whose_runs_ended_each_way_is_complete():
    """One run reached the target, one was censored, one diverged: every run has ended, so
    the configuration is complete (its statuses are all three final ones at once)."""
    runs = [
        row("te", SEEDS[0], 4.0, "c0000"),
        row("te", SEEDS[1], None, "c0000"),
        row("te", SEEDS[2], None, "c0000", status="diverged"),
    ]
    r = rows_by_id(baselines() + runs, repeats=3)["c0000"]
    assert r["status"] == CONFIG_COMPLETE and r["repeats"] == 3
    assert r["te_overhead"] == pytest.approx(0.05) and r["pareto"] is True


def test_an_unfinished_configuration_has_no_objectives_yet():
    runs = configuration("c0000", [4.0, 5.0, 4.5], overhead=0.1)  # 3 of 6 seeds so far
    r = rows_by_id(baselines() + runs)["c0000"]
    assert r["status"] == CONFIG_UNFINISHED
    assert r["objective_epochs"] is None and r["te_overhead"] is None
    assert r["te_mean"] == pytest.approx(0.01)  # what the runs so far measured is shown
