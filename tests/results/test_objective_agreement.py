"""What Optuna is told during a sweep is what the tables say afterwards (issue 18, item 1).

The live values are computed by the trainable after every epoch (reporting.tune_result) and
handed to the searcher, which tells Optuna; the exported ones are recomputed from Tune's files
by export.py and configs.py, and optuna.db is written from configs.parquet. Here the same
records go both ways, with evaluation time, TE time, a start value and a first-epoch crossing
present (each would move one side if it were counted differently), and a configuration's
status comes from how its runs ended, by one rule for the study and the table.

The records are what train.py's Trainer.run_epoch returns; the searcher is real (real Optuna),
driven by hand; the Tune files are written by hand (hand_files.HandSweep) and exported for real.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import optuna
import pytest
from hand_files import SPACE_TEXT, HandSweep

from te_sweep.core.config import TrialConfig, resolve
from te_sweep.core.outcome import (
    CONFIG_COMPLETE,
    CONFIG_ERROR,
    CONFIG_PRUNED,
    CONFIG_UNFINISHED,
    STATUS_CENSORED,
    STATUS_COMPLETE,
    STATUS_DIVERGED,
    STATUS_ERROR,
    STATUS_PRUNED,
    STATUS_UNFINISHED,
    configuration_status,
)
from te_sweep.core.reporting import record_value, tune_result
from te_sweep.core.space import space_from_text
from te_sweep.results.configs import config_rows
from te_sweep.sweep.concurrency import ConcurrencyPolicy
from te_sweep.sweep.searcher import OBJECTIVES, SweepSearcher

SPACE = space_from_text(SPACE_TEXT, Path("space.yaml"))
REPEATS = 3
WHERE = {"node_id": "n1", "hostname": "h", "gpu_ids": ""}
# Optuna's state of a configuration, for each configs.parquet status.
OPTUNA_STATE = {
    CONFIG_COMPLETE: optuna.trial.TrialState.COMPLETE,
    CONFIG_PRUNED: optuna.trial.TrialState.PRUNED,
    CONFIG_ERROR: optuna.trial.TrialState.FAIL,
    CONFIG_UNFINISHED: optuna.trial.TrialState.RUNNING,
}


def searcher(configs: int) -> SweepSearcher:
    policy = ConcurrencyPolicy.for_sweep(10_000, None, 1.0, 0.0, total_trials=10_000)
    return SweepSearcher(
        SPACE,
        seed=5,
        repeats=REPEATS,
        configs=configs,
        threads=1,
        concurrency=policy,
        sampler="nsga2",
    )


def records(
    accuracies: list[float | None], te_s: float, epoch_s: float = 2.0, eval_s: float = 7.0
) -> list[dict]:
    """A Trainer's epoch records; evaluation takes longer than training on purpose (an
    objective that counted it would move), and None is a diverged epoch (no loss)."""
    out, elapsed = [], 0.0
    for epoch, acc in enumerate(accuracies, start=1):
        elapsed += epoch_s
        out.append(
            {
                "epoch": epoch,
                "train_loss": None if acc is None else 1.0 / epoch,
                "train_acc": acc,
                "test_acc": None if acc is None else acc - 0.05,
                "test_loss": 1.0,
                "epoch_time_s": epoch_s,
                "lr": 0.01,
                "eval_time_s": eval_s,
                "elapsed_s": elapsed,
                "te_time_s": te_s,
                "te_active_fraction": 1.0 if te_s else 0.0,
                "te_mean": 0.01 if te_s else None,
                "te_factor_mean": 0.98 if te_s else None,
            }
        )
    return out


def live_reports(config: dict, epochs: list[dict], start_value: float) -> list[dict]:
    """What the trainable reports to Tune after each epoch (Tune adds training_iteration)."""
    cfg = resolve(TrialConfig.from_dict(config["trial"]))
    return [
        {
            **tune_result(cfg, epochs[:n], config["role"], WHERE, "cpu", 1.7e9, start_value),
            "training_iteration": n,
        }
        for n in range(1, len(epochs) + 1)
    ]


# Per seed: (accuracies per epoch, TE seconds per epoch, start value). The target is 0.8 in
# at most 4 epochs: the first run crosses it in epoch 1 from its start value (frac 0.75: a
# start value ignored would give 1.0), the second in epoch 3, the third is censored.
TE_RUNS = [([0.85], 0.3, 0.6), ([0.5, 0.7, 0.9], 0.5, 0.1), ([0.5, 0.6, 0.7, 0.75], 0.2, 0.1)]
BASELINE_RUN = ([0.5, 0.75, 0.82], 0.0, 0.1)


@pytest.fixture(scope="module")
def agreed(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[SweepSearcher, dict, dict, dict, Path]:
    """One configuration's three seeds, the baselines, the searcher told as the sweep tells
    it, and the same reports written as Tune's files and exported."""
    search = searcher(configs=1)
    handed = {f"t{i}": search.suggest(f"t{i}") for i in range(search.max_trials())}
    sweep = HandSweep(tmp_path_factory.mktemp("agree") / "hand", num_samples=1, repeats=REPEATS)
    te = iter(TE_RUNS)
    live: dict[str, list[dict]] = {}
    for trial_id, config in handed.items():
        accuracies, te_s, start = next(te) if config["role"] == "te" else BASELINE_RUN
        live[trial_id] = live_reports(config, records(accuracies, te_s), start)
        sweep.trial(trial_id, config, live[trial_id], "TERMINATED")
        search.on_trial_complete(trial_id, live[trial_id][-1])
    sweep.save_state()
    trials, _, configs, _ = sweep.export()
    return search, live, {t["trial_id"]: t for t in trials}, configs[0], sweep.root


def test_the_hand_built_runs_are_the_intended_ones(agreed):
    _, _, trials, config, _ = agreed
    te = sorted((t for t in trials.values() if t["role"] == "te"), key=lambda t: t["seed"])
    assert sorted(t["status"] for t in te) == [STATUS_CENSORED, STATUS_COMPLETE, STATUS_COMPLETE]
    assert config["status"] == CONFIG_COMPLETE


@pytest.mark.parametrize("column", ["objective_epochs", "te_overhead"])
def test_each_trials_exported_value_is_its_last_live_report(agreed, column):
    """What the searcher was told (the live objectives; epochs_to_target and the like are no
    longer reported to Tune, reporting.py) against trials.parquet."""
    _, live, trials, _, _ = agreed
    for trial_id, reports in live.items():
        assert trials[trial_id][column] == pytest.approx(reports[-1][column], abs=0.0), (
            trial_id,
            column,
        )


def test_the_values_are_the_hand_computed_ones(agreed):
    """Start value placed (0.6 -> 0.85 across 0.8: 0.8 of epoch 1), evaluation time left out
    of the overhead (0.3 s of TE per 1.7 s of the rest of training), censoring at 4 + 1."""
    _, live, trials, _, _ = agreed
    by_start = {
        round(record_value(r[-1], "start_value"), 3): trials[tid]
        for tid, r in live.items()
        if r[-1]["role"] == "te"
    }
    first = by_start[0.6]
    assert first["epochs_to_target_frac"] == pytest.approx((0.8 - 0.6) / (0.85 - 0.6))
    assert first["seconds_to_target"] == pytest.approx(2.0)  # training only, not evaluation
    te_seconds = [t["seconds_to_target"] for t in trials.values() if t["role"] == "te"]
    assert sorted(te_seconds, key=lambda v: (v is None, v)) == [2.0, 6.0, None]
    assert first["te_overhead"] == pytest.approx(0.3 / 1.7)
    te_objectives = sorted(t["objective_epochs"] for t in trials.values() if t["role"] == "te")
    assert te_objectives == pytest.approx([0.8, 2 + 0.1 / 0.2, 5.0])


def test_optuna_is_told_what_configs_parquet_says(agreed):
    search, _, trials, config, _ = agreed
    told = search.study.trials[0]
    assert told.state == optuna.trial.TrialState.COMPLETE
    assert told.values == pytest.approx([config[name] for name in OBJECTIVES], abs=0.0)
    te = [t for t in trials.values() if t["role"] == "te"]
    assert told.values[0] == pytest.approx(statistics.fmean(t["objective_epochs"] for t in te))


def test_optuna_db_holds_the_values_the_searcher_told(agreed):
    search, _, _, _, sweep_dir = agreed
    stored = optuna.load_study(study_name=None, storage=f"sqlite:///{sweep_dir / 'optuna.db'}")
    assert [t.values for t in stored.trials] == [search.study.trials[0].values]


# --- one rule for a configuration's status ----------------------------------------------------

ENDINGS = [
    ((STATUS_COMPLETE, STATUS_CENSORED, STATUS_DIVERGED), CONFIG_COMPLETE),
    ((STATUS_ERROR, STATUS_PRUNED, STATUS_COMPLETE), CONFIG_ERROR),
    ((STATUS_PRUNED, STATUS_ERROR, STATUS_COMPLETE), CONFIG_ERROR),
    ((STATUS_PRUNED, STATUS_COMPLETE, STATUS_CENSORED), CONFIG_PRUNED),
    ((STATUS_COMPLETE, STATUS_COMPLETE), CONFIG_UNFINISHED),
    ((STATUS_COMPLETE, STATUS_UNFINISHED, STATUS_COMPLETE), CONFIG_UNFINISHED),
]


def live_end(status: str) -> tuple[dict | None, bool]:
    """How the searcher hears of a run that ended so (on_trial_complete's result, error)."""
    if status == STATUS_ERROR:
        return None, True
    reported = "running" if status == STATUS_PRUNED else status
    return {"trial_status": reported, "objective_epochs": 3.0, "te_overhead": 0.1}, False


def table_row(status: str, seed: int) -> dict:
    """The same run as a trials.parquet row."""
    epochs = 3.0 if status == STATUS_COMPLETE else None
    return {
        "role": "te",
        "seed": seed,
        "config_id": "c0000",
        "status": status,
        "epochs_to_target_frac": epochs,
        "seconds_to_target": epochs,
        "param_max_epochs": 4,
        "param_te_scale": 1.0,
        "param_last_lr_scale": 1.0,
        "objective_epochs": 3.0,
        "te_overhead": 0.1,
        "te_mean": 0.01,
        "te_factor_mean": 0.99,
    }


@pytest.mark.parametrize("statuses, expected", ENDINGS)
def test_the_study_and_the_table_give_a_configuration_the_same_status(statuses, expected):
    assert configuration_status(statuses, REPEATS) == expected
    search = searcher(configs=1)
    handed = {f"t{i}": search.suggest(f"t{i}") for i in range(search.max_trials())}
    runs = [(tid, c["trial"]["seed"]) for tid, c in handed.items() if c["role"] == "te"]
    rows = []
    for (trial_id, seed), status in zip(runs, statuses, strict=False):
        if status != STATUS_UNFINISHED:  # a run still going has not been heard of
            search.on_trial_complete(trial_id, *live_end(status))
        rows.append(table_row(status, seed))
    baselines = [
        {**table_row(STATUS_COMPLETE, seed), "role": "baseline", "config_id": None}
        for _, seed in runs
    ]
    [config] = config_rows("s", rows + baselines, SPACE, REPEATS)
    assert config["status"] == expected
    assert search.study.trials[0].state == OPTUNA_STATE[expected]
