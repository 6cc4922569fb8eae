"""What a reader sees, against behaviour, on hand-built sweeps (issue 18, item 1): the verdict
with Holm's adjustment mattering, the summary's ranked lines in their order and with their
numbers, the report's sentences on censored pairs and LR controls, and the LR control's
learning-rate scale.

Each sweep is written as Tune's files by hand (hand_files.HandSweep) and goes through the real
export, so the numbers checked are those configs.parquet, the summary and report.html carry.
A run reaches train_acc 0.8 after a chosen fractional number of epochs (`reaching`), or is
censored at max_epochs 4 (TE side then at 5 epochs)."""

from __future__ import annotations

import json
import math
import re
import statistics
from pathlib import Path

import pytest
from hand_files import MAX_EPOCHS, SPACE_TEXT, HandSweep, read_out, report, run, trial_config

from te_sweep.core.config import TrialConfig, resolve
from te_sweep.core.reporting import tune_result
from te_sweep.core.space import space_from_text
from te_sweep.results.storage import SweepDir
from te_sweep.results.summary import verdict
from te_sweep.sweep.concurrency import ConcurrencyPolicy
from te_sweep.sweep.searcher import SweepSearcher

SEEDS = (11, 22, 33, 44, 55, 66)  # six seeds: a sign-flip p can be 1/64, 2/64, 3/64
CENSORED = None


def reaching(epochs: float | None) -> list[float]:
    """train_acc per epoch of a run whose fractional epochs to 0.8 are `epochs` (in (1, 4]),
    by outcome.fractional_epochs: 0.75 the epoch before, then 0.75 + 0.05 / fraction; None:
    a run that never reaches it in MAX_EPOCHS."""
    if epochs is CENSORED:
        return [0.3, 0.4, 0.5, 0.6][:MAX_EPOCHS]
    last = math.ceil(epochs)
    assert 2 <= last <= MAX_EPOCHS
    fraction = epochs - (last - 1)
    return [*[0.3, 0.5][: last - 2], 0.75, 0.75 + 0.05 / fraction]


def hand_sweep(
    root: Path,
    baselines: dict[int, float | None],
    configs: dict[str, tuple[float, float | tuple, dict[int, float | None]]],
    controls: dict[str, tuple[float, dict[int, float | None]]] | None = None,
) -> tuple[dict, list[str], list[str]]:
    """Export a hand-written sweep, print its summary and write its report. `configs`:
    config_id -> (te_scale, TE seconds per 1 s epoch (or one per seed), {seed: epochs to
    target});
    `controls`: config_id -> (last_lr_scale, {seed: epochs}). Returns (the export, the
    summary's lines, the report's conclusions as plain text)."""
    controls = controls or {}
    sweep = HandSweep(root, num_samples=len(configs), repeats=len(baselines))
    for seed, epochs in baselines.items():
        sweep.trial(f"b{seed}", trial_config("baseline", seed), run(reaching(epochs)), "TERMINATED")
    for config_id, (scale, te, runs) in configs.items():
        per_seed = te if isinstance(te, tuple) else (te,) * len(runs)
        for (seed, epochs), seconds in zip(runs.items(), per_seed, strict=False):
            sweep.trial(
                f"{config_id}_{seed}",
                trial_config("te", seed, config_id, te_scale=scale),
                run(reaching(epochs), te=seconds),
                "TERMINATED",
            )
    for config_id, (lr_scale, runs) in controls.items():
        for seed, epochs in runs.items():
            sweep.trial(
                f"{config_id}_ctl_{seed}",
                trial_config("control", seed, config_id, te_scale=0.0, last_lr_scale=lr_scale),
                run(reaching(epochs)),
                "TERMINATED",
            )
    sweep.save_state()
    return read_out(SweepDir(str(root.parent), root.name), ["te_scale"])


# The verdict sweep. Baselines reach the target after 4 epochs on five seeds and 2 on the
# sixth. Paired speedups (baseline / TE epochs; a censored TE run counts 5 epochs):
#   c0000 2, 2, 2, 2, 2, 1.6      every seed faster: p = 1/64, Holm x3 = 0.047: a winner
#   c0001 0.8, 2, 2, 2, 2, 1.6    one small loss: p = 2/64 < 0.05, Holm x2 = 0.0625, the
#                                 interval above 1: Holm alone keeps it from the verdict
#   c0002 2.67, 3.2, 3.2, 1.14, 3.2, 0.4   p = 3/64 < 0.05, but the interval reaches below 1
#                                 (and its Holm p, 0.0625, is above 0.05 too)
# Their means rank c0000, c0002, c0001; their intervals' lower ends c0000, c0001, c0002.
VERDICT_BASELINES = dict(zip(SEEDS, (4.0, 4.0, 4.0, 4.0, 4.0, 2.0), strict=False))
VERDICT_CONFIGS = {
    "c0000": (
        1.0,
        (0.1,) * 5 + (0.5,),
        dict(zip(SEEDS, (2.0, 2.0, 2.0, 2.0, 2.0, 1.25), strict=False)),
    ),
    "c0001": (2.0, 0.2, dict(zip(SEEDS, (CENSORED, 2.0, 2.0, 2.0, 2.0, 1.25), strict=False))),
    "c0002": (3.0, 0.05, dict(zip(SEEDS, (1.5, 1.25, 1.25, 3.5, 1.25, CENSORED), strict=False))),
}
SPEEDUPS = {
    "c0000": [2.0] * 5 + [1.6],
    "c0001": [0.8] + [2.0] * 4 + [1.6],
    "c0002": [4 / 1.5, 3.2, 3.2, 4 / 3.5, 3.2, 0.4],
}


@pytest.fixture(scope="module")
def verdict_sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, list[str], list]:
    return hand_sweep(
        tmp_path_factory.mktemp("verdict") / "hand", VERDICT_BASELINES, VERDICT_CONFIGS
    )


def by_id(export: dict) -> dict[str, dict]:
    return {c["config_id"]: c for c in export["configs"]}


def geometric_mean(values: list[float]) -> float:
    return math.exp(statistics.fmean(math.log(v) for v in values))


def test_the_hand_built_speedups_are_the_intended_ones(verdict_sweep):
    """The premise of the verdict tests: the exported pairs, p-values and intervals."""
    configs = by_id(verdict_sweep[0])
    for config_id, speedups in SPEEDUPS.items():
        assert configs[config_id]["speedups"] == pytest.approx(speedups)
        assert configs[config_id]["speedup_mean"] == pytest.approx(geometric_mean(speedups))
    assert [configs[i]["p_value"] for i in SPEEDUPS] == pytest.approx([1 / 64, 2 / 64, 3 / 64])
    assert configs["c0000"]["speedup_ci_low"] > 1
    assert configs["c0001"]["speedup_ci_low"] > 1
    assert configs["c0002"]["speedup_ci_low"] < 1


def test_holm_keeps_a_raw_p_below_005_out_of_the_verdict(verdict_sweep):
    """beats_baselines needs Holm's p < 0.05 and the interval above 1: c0001's raw p (1/32)
    is below 0.05 with its interval above 1, but Holm's 2 x 1/32 is not."""
    configs = by_id(verdict_sweep[0])
    assert [configs[i]["p_holm"] for i in SPEEDUPS] == pytest.approx(
        [3 / 64, 4 / 64, 4 / 64]
    )  # 3 x 1/64; 2 x 2/64; max(2 x 2/64, 3/64)
    assert {i: configs[i]["beats_baselines"] for i in SPEEDUPS} == {
        "c0000": True,
        "c0001": False,
        "c0002": False,
    }


def test_the_verdict_sentence_names_exactly_the_winner(verdict_sweep):
    export, summary, report = verdict_sweep
    sentence = (
        "1 of 3 configurations reached the target faster than their paired baselines, "
        "beyond chance over all configurations tried (Holm-adjusted p < 0.05): c0000."
    )
    assert verdict(export["configs"]) == sentence
    assert sentence in summary
    assert sentence in report


def test_the_summary_ranks_by_the_intervals_lower_end_not_the_mean(verdict_sweep):
    export, summary, _ = verdict_sweep
    configs = by_id(export)
    means = {i: geometric_mean(s) for i, s in SPEEDUPS.items()}
    assert sorted(means, key=means.get, reverse=True) == ["c0000", "c0002", "c0001"]
    ranked = [line for line in summary if re.match(r"  \d+\. c\d{4}:", line)]
    assert [line.split(":")[0].strip() for line in ranked] == ["1. c0000", "2. c0001", "3. c0002"]
    assert [configs[i]["rank"] for i in ("c0000", "c0001", "c0002")] == [1, 2, 3]


def test_each_ranked_line_carries_its_configurations_numbers(verdict_sweep):
    """Mean, interval, seeds, P(TE faster), Holm's p, censored pairs, overhead (TE seconds
    per second of the rest of the epoch, the mean over seeds: c0000 (5 x 0.1 / 0.9 + 0.5 /
    0.5) / 6, whose median would be 11.11%; 0.2 / 0.8; 0.05 / 0.95), the parameter."""
    export, summary, _ = verdict_sweep
    configs = by_id(export)

    def interval(config_id: str) -> str:
        c = configs[config_id]
        return f"[{c['speedup_ci_low']:.3f}, {c['speedup_ci_high']:.3f}]"

    expected = [
        f"  1. c0000: x{geometric_mean(SPEEDUPS['c0000']):.3f} {interval('c0000')} over 6 "
        "seeds, P(TE faster) 1.00, p_holm 0.0469; overhead 25.93%; te_scale=1",
        f"  2. c0001: x{geometric_mean(SPEEDUPS['c0001']):.3f} {interval('c0001')} over 6 "
        "seeds, P(TE faster) 0.83, p_holm 0.0625, 1 censored pairs; overhead 25.00%; "
        "te_scale=2",
        f"  3. c0002: x{geometric_mean(SPEEDUPS['c0002']):.3f} {interval('c0002')} over 6 "
        "seeds, P(TE faster) 0.83, p_holm 0.0625, 1 censored pairs; overhead 5.26%; "
        "te_scale=3",
    ]
    assert [line for line in summary if re.match(r"  \d+\. c\d{4}:", line)] == expected
    # the intervals printed are the bootstrap's, within the pairs' range of speedups
    for config_id, speedups in SPEEDUPS.items():
        c = configs[config_id]
        assert (
            min(speedups)
            <= c["speedup_ci_low"]
            < c["speedup_mean"]
            < c["speedup_ci_high"]
            <= max(speedups)
        )


def test_a_holm_p_below_005_with_an_interval_reaching_below_1_is_no_winner(tmp_path):
    """One configuration (Holm's p is its p): 10 seeds 4/3 x faster and 2 seeds at 0.6 x (TE
    censored, baseline at 3 epochs) give p = 0.0486 but an interval from 0.956. The verdict
    needs both; with six seeds and a few configurations the two rarely disagree, so this one
    has twelve."""
    seeds = tuple(range(1, 13))
    baselines = {s: (4.0 if s <= 10 else 3.0) for s in seeds}
    runs = {s: (3.0 if s <= 10 else CENSORED) for s in seeds}
    export, summary, report = hand_sweep(tmp_path / "hand", baselines, {"c0000": (1.0, 0.1, runs)})
    c = by_id(export)["c0000"]
    assert c["p_holm"] == c["p_value"] == pytest.approx(199 / 4096)
    assert c["speedup_ci_low"] == pytest.approx(0.956, abs=1e-3)
    assert c["beats_baselines"] is False
    sentence = (
        "No configuration is shown to reach the target faster than its baselines: "
        "none has a Holm-adjusted p < 0.05 with its interval above 1 "
        "(1 configuration)."
    )
    assert verdict(export["configs"]) == sentence
    assert sentence in summary
    assert sentence in report


# --- the LR control's learning-rate scale ----------------------------------------------------


def test_the_lr_controls_scale_is_the_mean_factor_over_seeds_and_epochs():
    """README (--lr-control): a control's last-layer learning rate is scaled by the mean factor
    the configuration's feedback applied to that layer's gradients. Each TE run's last report
    (reporting.tune_result, from its epochs' te_factor_mean) goes to the searcher as Tune hands
    it over; the factors differ so that the mean over epochs is not the last epoch's and the
    mean over the three seeds is not their median."""
    # per seed, te_factor_mean of epochs 1, 2 (complete at epoch 2): run means 0.7, 0.6, 0.2
    epoch_factors = [(0.9, 0.5), (0.8, 0.4), (0.3, 0.1)]
    run_means = [statistics.fmean(f) for f in epoch_factors]
    assert statistics.fmean(run_means) != pytest.approx(statistics.median(run_means))
    cfg = resolve(
        TrialConfig(
            dataset="fashion-mnist",
            max_epochs=4,
            target_metric="train_acc",
            target=0.8,
            mode="grad",
            device="cpu",
        )
    )
    policy = ConcurrencyPolicy.for_sweep(10_000, None, 1.0, 0.0, total_trials=10_000)
    search = SweepSearcher(
        space_from_text(SPACE_TEXT, Path("s.yaml")),
        seed=3,
        repeats=3,
        configs=1,
        threads=1,
        concurrency=policy,
        sampler="nsga2",
        lr_control=True,
    )
    handed = {f"t{i}": search.suggest(f"t{i}") for i in range(6)}  # 3 baselines, 3 TE runs
    te_runs = [tid for tid, c in handed.items() if c and c["role"] == "te"]
    assert len(te_runs) == 3
    for tid, (first, second) in zip(te_runs, epoch_factors, strict=False):
        records = [
            report(1, 0.5, te=0.1, te_factor_mean=first),
            report(2, 0.9, te=0.1, te_factor_mean=second),
        ]
        result = tune_result(cfg, records, "te", {}, "cpu", 1.7e9, 0.1)
        assert result["trial_status"] == "complete"
        search.on_trial_complete(tid, result)
    controls = [search.suggest(f"c{i}") for i in range(3)]
    assert [c["role"] for c in controls] == ["control"] * 3
    assert [c["trial"]["last_lr_scale"] for c in controls] == pytest.approx([0.5] * 3)


# --- LR controls in the summary and the report -----------------------------------------------
# Three seeds, baselines at 4 epochs, every TE run at 2. Speedups against the LR control
# (control epochs / TE epochs; with 3 pairs the interval is [lowest, highest]):
#   c0000 1.5, 1.5, 1.5        faster than its control
#   c0001 0.8, 1.25, 1.6       a mean above 1 (1.17) but an interval from 0.8: not shown faster
#   c0002 0.625, 0.8, 0.625    its control was faster
#   c0003 no LR control (as a paper-mode configuration has none)
CONTROL_SEEDS = (11, 22, 33)
CONTROL_SPEEDUPS = {"c0000": [1.5] * 3, "c0001": [0.8, 1.25, 1.6], "c0002": [0.625, 0.8, 0.625]}


@pytest.fixture(scope="module")
def control_sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, list[str], list]:
    te_runs = dict.fromkeys(CONTROL_SEEDS, 2.0)
    configs = {f"c000{n}": (1.0 + n, 0.1, te_runs) for n in range(4)}
    controls = {
        config_id: (
            0.7 - 0.1 * n,
            {seed: 2.0 * s for seed, s in zip(CONTROL_SEEDS, speedups, strict=False)},
        )
        for n, (config_id, speedups) in enumerate(CONTROL_SPEEDUPS.items())
    }
    return hand_sweep(
        tmp_path_factory.mktemp("controls") / "hand",
        dict.fromkeys(CONTROL_SEEDS, 4.0),
        configs,
        controls,
    )


def test_the_report_counts_the_configurations_faster_than_their_control(control_sweep):
    _, _, report_items = control_sweep
    assert (
        "3 configurations have LR controls; 1 of them reached the target faster than "
        "their control (interval above 1)."
    ) in report_items


def test_each_configurations_control_speedup_and_scale(control_sweep):
    export, _, _ = control_sweep
    configs = by_id(export)
    for n, (config_id, speedups) in enumerate(CONTROL_SPEEDUPS.items()):
        c = configs[config_id]
        assert c["control_last_lr_scale"] == pytest.approx(0.7 - 0.1 * n)
        assert c["control_speedup_mean"] == pytest.approx(geometric_mean(speedups))
        assert (c["control_speedup_ci_low"], c["control_speedup_ci_high"]) == pytest.approx(
            (min(speedups), max(speedups))
        )
    assert configs["c0001"]["control_speedup_mean"] > 1  # the mean alone would say faster
    c = configs["c0003"]
    assert (c["control_speedup_mean"], c["control_speedup_ci_low"], c["control_last_lr_scale"]) == (
        None,
        None,
        None,
    )


def test_the_summary_names_each_configurations_control_speedup(control_sweep):
    _export, summary, _ = control_sweep
    ranked = {
        line.split(":")[0].split(". ")[1]: line
        for line in summary
        if re.match(r"  \d+\. c\d{4}:", line)
    }
    assert sorted(ranked) == ["c0000", "c0001", "c0002", "c0003"]
    for config_id, speedups in CONTROL_SPEEDUPS.items():
        assert (
            f", against its LR control x{geometric_mean(speedups):.3f} "
            f"[{min(speedups):.3f}, {max(speedups):.3f}];"
        ) in ranked[config_id]
    assert "LR control" not in ranked["c0003"]


# --- censored pairs in the report ------------------------------------------------------------
# Four seeds; the baseline of seed 44 never reaches the target. Pairs by kind:
#   c0000 TE censored on 11; both censored on 44             te 1, baseline 0, both 1
#   c0001 every TE run at 2 epochs: baseline censored on 44   te 0, baseline 1, both 0
#   c0002 TE censored on 11 and 22; baseline censored on 44   te 2, baseline 1, both 0
# so 3 + 2 pairs with one side censored, 1 with both: the three counts differ, so a count
# of the wrong kind, or of two kinds, gives another number.
CENSOR_SEEDS = (11, 22, 33, 44)
CENSOR_CONFIGS = {
    "c0000": (1.0, 0.1, dict(zip(CENSOR_SEEDS, (CENSORED, 2.0, 2.0, CENSORED), strict=False))),
    "c0001": (2.0, 0.1, dict(zip(CENSOR_SEEDS, (2.0, 2.0, 2.0, 2.0), strict=False))),
    "c0002": (3.0, 0.1, dict(zip(CENSOR_SEEDS, (CENSORED, CENSORED, 2.0, 2.0), strict=False))),
}


@pytest.fixture(scope="module")
def censor_sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, list[str], list]:
    baselines = dict(zip(CENSOR_SEEDS, (4.0, 4.0, 4.0, CENSORED), strict=False))
    return hand_sweep(tmp_path_factory.mktemp("censored") / "hand", baselines, CENSOR_CONFIGS)


def test_the_pairs_are_of_the_intended_kinds(censor_sweep):
    configs = by_id(censor_sweep[0])
    assert {
        i: (c["censored_te"], c["censored_baseline"], c["censored_both"])
        for i, c in configs.items()
    } == {"c0000": (1, 0, 1), "c0001": (0, 1, 0), "c0002": (2, 1, 0)}


def test_the_report_counts_censored_pairs_of_each_kind(censor_sweep):
    _, _, report_items = censor_sweep
    assert (
        "5 pairs had one side miss the target: they enter as bounds (the missing side at "
        "max_epochs + 1); 1 pairs where both missed are left out of the estimates."
    ) in report_items


def test_the_summary_counts_each_configurations_censored_pairs(censor_sweep):
    _, summary, _ = censor_sweep
    ranked = {
        line.split(":")[0].split(". ")[1]: line
        for line in summary
        if re.match(r"  \d+\. c\d{4}:", line)
    }
    assert ", 2 censored pairs;" in ranked["c0000"]
    assert ", 1 censored pairs;" in ranked["c0001"]
    assert ", 3 censored pairs;" in ranked["c0002"]


# --- export edge cases: LR controls not yet trained, a baseline not yet finished --------------


def lr_control_sweep(root: Path, control_seeds: tuple[int, ...]) -> tuple[dict, list[str], list]:
    """Two seeds with `--lr-control`: c0000 in grad mode (its runs report a gradient factor,
    so the searcher queues a control per seed once both ended), c0001 in paper mode (no
    factor, no controls), c0002 in grad mode with a run stopped by the scheduler (pruned: no
    controls); LR controls of c0000 present for `control_seeds` only."""
    seeds = (11, 22)
    sweep = HandSweep(root, num_samples=3, repeats=len(seeds))
    manifest = json.loads((root / "te_sweep.json").read_text())
    manifest["options"]["lr_control"] = True
    (root / "te_sweep.json").write_text(json.dumps(manifest))
    for seed in seeds:
        sweep.trial(f"b{seed}", trial_config("baseline", seed), run(reaching(4.0)), "TERMINATED")
        sweep.trial(
            f"g{seed}",
            trial_config("te", seed, "c0000", mode="grad"),
            run(reaching(2.0), te=0.1),
            "TERMINATED",
        )
        paper = [{**line, "te_factor_mean": None} for line in run(reaching(3.0), te=0.1)]
        sweep.trial(
            f"p{seed}", trial_config("te", seed, "c0001", mode="paper"), paper, "TERMINATED"
        )
        stopped = run(reaching(2.0), te=0.1)[:1] if seed == 22 else run(reaching(2.0), te=0.1)
        sweep.trial(
            f"s{seed}", trial_config("te", seed, "c0002", mode="grad"), stopped, "TERMINATED"
        )
    for seed in control_seeds:
        sweep.trial(
            f"ctl{seed}",
            trial_config("control", seed, "c0000", te_scale=0.0, last_lr_scale=0.99),
            run(reaching(3.0)),
            "TERMINATED",
        )
    sweep.save_state()
    return read_out(SweepDir(str(root.parent), root.name), ["te_scale"])


def test_lr_controls_not_yet_trained_make_the_tables_partial(tmp_path):
    export, lines, report_items = lr_control_sweep(tmp_path / "hand", control_seeds=(11,))
    assert export["expected"] == 2 * (1 + 3 + 1)  # baselines, 3 configurations, c0000's controls
    assert export["partial"] is True
    sentence = "These tables are partial: 1 asked for has not started."
    assert sentence in lines and sentence in report_items


def test_a_sweep_whose_lr_controls_all_ended_is_whole(tmp_path):
    """Neither the paper-mode nor the pruned configuration has controls, and none are
    missing for them."""
    export, lines, _ = lr_control_sweep(tmp_path / "hand", control_seeds=(11, 22))
    assert by_id(export)["c0002"]["status"] == "pruned"
    assert export["expected"] == 10 and len(export["rows"]) == 10
    assert export["partial"] is False
    assert not any("partial" in line for line in lines)
    by_config = by_id(export)
    assert by_config["c0000"]["control_speedup_mean"] == pytest.approx(1.5)
    assert by_config["c0001"]["control_speedup_mean"] is None


def test_a_te_run_is_not_paired_with_a_baseline_that_has_not_finished(tmp_path):
    """Seed 22's baseline is still running: its TE run has no pair yet (it is not counted as
    a bound against a baseline that has not ended), the configuration's estimate rests on
    seed 11 alone, and the tables are partial."""
    root = tmp_path / "hand"
    sweep = HandSweep(root, num_samples=1, repeats=2)
    sweep.trial("b11", trial_config("baseline", 11), run(reaching(4.0)), "TERMINATED")
    sweep.trial("b22", trial_config("baseline", 22), run(reaching(4.0))[:2], "RUNNING")
    for seed in (11, 22):
        sweep.trial(
            f"t{seed}", trial_config("te", seed, "c0000"), run(reaching(2.0), te=0.1), "TERMINATED"
        )
    sweep.save_state()
    export, lines, _ = read_out(SweepDir(str(root.parent), root.name), ["te_scale"])
    rows = {r["trial_id"]: r for r in export["rows"]}
    assert rows["b22"]["status"] == "unfinished"
    assert rows["t22"]["paired_baseline"] is None and rows["t22"]["paired_kind"] is None
    assert rows["t22"]["paired_speedup_epochs"] is None
    assert rows["t11"]["paired_baseline"] == "b11"
    assert rows["t11"]["paired_speedup_epochs"] == pytest.approx(2.0)
    config = export["configs"][0]
    assert config["seeds"] == [11] and config["speedups"] == pytest.approx([2.0])
    assert export["partial"] is True
    assert "These tables are partial: 1 is unfinished." in lines


# --- what is ranked -----------------------------------------------------------------------------


def test_only_complete_configurations_with_two_informative_pairs_are_ranked(tmp_path):
    """Baselines of seeds 22 and 33 miss the target. c0000 and c0003: every TE run reaches it
    (three informative pairs each: ranked, c0000 first); c0001: far faster on its seeds, but
    one run was stopped by the scheduler (pruned: not ranked, however good its estimate);
    c0002: its runs of seeds 22 and 33 miss it too, so one informative pair is left (not
    ranked: nothing is ranked on one seed)."""
    seeds = (11, 22, 33)
    root = tmp_path / "hand"
    sweep = HandSweep(root, num_samples=4, repeats=len(seeds))
    for seed, epochs in {11: 4.0, 22: CENSORED, 33: CENSORED}.items():
        sweep.trial(f"b{seed}", trial_config("baseline", seed), run(reaching(epochs)), "TERMINATED")
    runs = {
        "c0000": {11: 2.0, 22: 2.0, 33: 3.0},
        "c0001": {11: 1.25, 22: 1.25, 33: 2.0},
        "c0002": {11: 2.0, 22: CENSORED, 33: CENSORED},
        "c0003": {11: 3.0, 22: 2.5, 33: 4.0},
    }
    for config_id, per_seed in runs.items():
        for seed, epochs in per_seed.items():
            lines = run(reaching(epochs), te=0.1)
            if config_id == "c0001" and seed == 33:
                lines = lines[:1]  # stopped by the scheduler after epoch 1
            sweep.trial(
                f"{config_id}_{seed}", trial_config("te", seed, config_id), lines, "TERMINATED"
            )
    sweep.save_state()
    export, lines, _ = read_out(SweepDir(str(root.parent), root.name), ["te_scale"])
    configs = by_id(export)
    assert configs["c0001"]["status"] == "pruned" and configs["c0001"]["speedup_ci_low"] > 2
    assert configs["c0001"]["seeds"] == [11, 22]  # the stopped run is no pair, not a censored one
    assert sum(s is not None for s in configs["c0002"]["speedups"]) == 1
    assert configs["c0002"]["speedup_ci_low"] > configs["c0003"]["speedup_ci_low"]
    assert {c: configs[c]["rank"] for c in runs} == {
        "c0000": 1,
        "c0001": None,
        "c0002": None,
        "c0003": 2,
    }
    ranked = [line.split(":")[0].strip() for line in lines if re.match(r"\s+\d+\. c\d{4}:", line)]
    assert ranked == ["1. c0000", "2. c0003"]
    assert (
        "  not ranked (2: not complete, or fewer than 2 informative pairs): c0001, c0002" in lines
    )


# --- the summary's lines for what a small sweep rarely has ---------------------------------------


def ranked_lines(summary: list[str]) -> dict[str, str]:
    return {
        line.split(":")[0].split(". ")[1]: line
        for line in summary
        if re.match(r"  \d+\. c\d{4}:", line)
    }


def test_censored_pairs_of_both_kinds_add_up(tmp_path):
    """Two TE runs censored and one pair censored on both sides: 3 censored pairs (a sum, not
    any other way of combining the three counts)."""
    baselines = dict(zip(CENSOR_SEEDS, (4.0, 4.0, 4.0, CENSORED), strict=True))
    configs = {
        "c0000": (
            1.0,
            0.1,
            dict(zip(CENSOR_SEEDS, (CENSORED, CENSORED, 2.0, CENSORED), strict=True)),
        ),
        "c0001": (2.0, 0.1, dict.fromkeys(CENSOR_SEEDS, 2.0)),
    }
    export, summary, _ = hand_sweep(tmp_path / "hand", baselines, configs)
    row = by_id(export)["c0000"]
    assert (row["censored_te"], row["censored_baseline"], row["censored_both"]) == (2, 0, 1)
    assert ", 3 censored pairs;" in ranked_lines(summary)["c0000"]


@pytest.mark.parametrize("configs, named", [(10, 10), (12, 10)])
def test_the_unranked_configurations_are_named_up_to_ten(tmp_path, configs, named):
    """One seed: no configuration can be ranked, and the summary says which: ten by name,
    then "..." when there are more."""
    export, summary, _ = hand_sweep(
        tmp_path / "hand",
        {11: 4.0},
        {f"c{n:04d}": (0.1 + 0.25 * n, 0.1, {11: 2.0}) for n in range(configs)},
    )
    assert all(c["rank"] is None for c in export["configs"])
    ids = ", ".join(f"c{n:04d}" for n in range(named))
    more = ", ..." if configs > named else ""
    assert (
        f"  not ranked ({configs}: not complete, or fewer than 2 informative pairs): {ids}{more}"
    ) in summary


def test_a_searched_integer_or_choice_is_printed_as_it_is(tmp_path):
    """Float settings print with %g; an integer (window) and a choice (mode) as they are."""
    space = SPACE_TEXT.replace(
        "search:\n  te_scale: {low: 0.1, high: 4.0}\n",
        "search:\n  window: {low: 100, high: 900}\n  mode: {choices: [grad, paper]}\n",
    )
    root = tmp_path / "hand"
    sweep = HandSweep(root, num_samples=2, repeats=2, space_text=space)
    for seed in (11, 22):
        sweep.trial(f"b{seed}", trial_config("baseline", seed), run(reaching(4.0)), "TERMINATED")
        for config_id, window, mode in (("c0000", 300, "grad"), ("c0001", 700, "paper")):
            sweep.trial(
                f"{config_id}_{seed}",
                trial_config("te", seed, config_id, window=window, mode=mode),
                run(reaching(2.0), te=0.1),
                "TERMINATED",
            )
    sweep.save_state()
    _, summary, _ = read_out(SweepDir(str(root.parent), root.name), ["window", "mode"])
    lines = ranked_lines(summary)
    assert lines["c0000"].endswith("; window=300 mode=grad")
    assert lines["c0001"].endswith("; window=700 mode=paper")


def test_only_errored_trials_get_a_failed_line(tmp_path):
    """An errored TE run is named with its error; a pruned and an unfinished one are not."""
    root = tmp_path / "hand"
    sweep = HandSweep(root, num_samples=1, repeats=3)
    for seed in (11, 22, 33):
        sweep.trial(f"b{seed}", trial_config("baseline", seed), run(reaching(4.0)), "TERMINATED")
    sweep.trial(
        "t11",
        trial_config("te", 11, "c0000"),
        run(reaching(2.0), te=0.1)[:1],
        "ERROR",
        error_txt="Traceback (most recent call last):\nValueError: boom\n",
    )
    sweep.trial(
        "t22", trial_config("te", 22, "c0000"), run(reaching(2.0), te=0.1)[:1], "TERMINATED"
    )  # stopped by the scheduler
    sweep.trial("t33", trial_config("te", 33, "c0000"), run(reaching(2.0), te=0.1)[:1], "RUNNING")
    sweep.save_state()
    export, summary, _ = read_out(SweepDir(str(root.parent), root.name), ["te_scale"])
    assert sorted(r["status"] for r in export["rows"] if r["role"] == "te") == [
        "error",
        "pruned",
        "unfinished",
    ]
    failed = [line for line in summary if " failed: " in line]
    assert failed == ["  te trial t11 failed: ValueError: boom"]


def test_the_report_counts_one_sided_censoring_without_both_sided(tmp_path):
    """Three TE runs and one baseline miss the target, no pair on both sides: the report
    says 4 such pairs (a sum over the two kinds), and 0 left out."""
    seeds = (11, 22, 33, 44, 55)
    baselines = dict(zip(seeds, (4.0, 4.0, 4.0, CENSORED, 4.0), strict=True))
    configs = {
        "c0000": (1.0, 0.1, dict(zip(seeds, (CENSORED, CENSORED, CENSORED, 2.0, 2.0), strict=True)))
    }
    export, _, report_items = hand_sweep(tmp_path / "hand", baselines, configs)
    row = by_id(export)["c0000"]
    assert (row["censored_te"], row["censored_baseline"], row["censored_both"]) == (3, 1, 0)
    assert (
        "4 pairs had one side miss the target: they enter as bounds (the missing side at "
        "max_epochs + 1); 0 pairs where both missed are left out of the estimates."
    ) in report_items


def test_a_control_interval_starting_exactly_at_1_is_not_faster(tmp_path):
    """Against its LR control the speedups are 1, 1.5 and 1.5: the interval's lower end is
    exactly 1 (the bootstrap draws the tie three times in 27 in 3.7% of resamples, above the
    2.5% percentile), which is not above 1."""
    seeds = (11, 22, 33)
    export, _, report_items = hand_sweep(
        tmp_path / "hand",
        dict.fromkeys(seeds, 4.0),
        {"c0000": (1.0, 0.1, dict.fromkeys(seeds, 2.0))},
        {"c0000": (0.9, dict(zip(seeds, (2.0, 3.0, 3.0), strict=True)))},
    )
    assert by_id(export)["c0000"]["control_speedup_ci_low"] == 1.0
    assert (
        "1 configurations have LR controls; 0 of them reached the target faster than "
        "their control (interval above 1)."
    ) in report_items


def test_the_trials_asked_for_count_each_complete_grad_configurations_controls():
    """With --lr-control: a control per seed of each complete grad-mode configuration only
    (not paper mode's, without a factor; not a pruned or errored one's)."""
    from te_sweep.results.export import expected_trials

    def row(status: str, factor: float | None) -> dict:
        return {"status": status, "te_factor_mean": factor}

    configs = [
        row("complete", 0.99),
        row("complete", None),
        row("complete", None),
        row("pruned", 0.99),
        row("error", 0.99),
    ]
    options = {"repeats": 2, "num_samples": 4, "lr_control": True}
    assert expected_trials(options, configs) == 2 * (1 + 4 + 1)
    assert expected_trials({**options, "lr_control": False}, configs) == 2 * (1 + 4)
