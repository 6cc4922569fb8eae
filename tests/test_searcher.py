"""The sweep's searcher with real Optuna, driven by hand: seed pairing over many suggestions,
one value per configuration told to Optuna (the mean over its seeds), failures and controls."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import optuna
import pytest

from te_sweep.concurrency import ConcurrencyPolicy
from te_sweep.reporting import FACTOR_KEY
from te_sweep.searcher import SweepSearcher
from te_sweep.space import space_from_text

SPACE = space_from_text("fixed:\n  dataset: fashion-mnist\n  subset: 1000\n  max_epochs: 4\n"
                        "search:\n  te_scale: {low: 0.1, high: 4.0}\n"
                        "  threshold: {low: 0.5, high: 2.0}\n", Path("s.yaml"))


def searcher(configs: int, repeats: int, lr_control: bool = False) -> SweepSearcher:
    policy = ConcurrencyPolicy.for_sweep(10_000, None, 1.0, 0.0, total_trials=10_000)
    return SweepSearcher(SPACE, seed=3, repeats=repeats, configs=configs, threads=1,
                         concurrency=policy, sampler="nsga2", lr_control=lr_control)


def end(status: str, epochs: float, overhead: float = 0.05, factor: float | None = 0.9):
    return {"trial_status": status, "objective_epochs": epochs, "te_overhead": overhead,
            FACTOR_KEY: factor}


def test_every_configuration_runs_once_on_each_baseline_seed():
    search = searcher(configs=40, repeats=3)
    handed = {f"t{i}": search.suggest(f"t{i}") for i in range(search.max_trials())}
    baseline_seeds = [c["trial"]["seed"] for c in handed.values() if c["role"] == "baseline"]
    assert len(baseline_seeds) == len(set(baseline_seeds)) == 3
    seeds_of: dict[str, list[int]] = defaultdict(list)
    for config in handed.values():
        if config["role"] == "te":
            seeds_of[config["config_id"]].append(config["trial"]["seed"])
    assert len(seeds_of) == 40
    for config_id, seeds in seeds_of.items():
        assert sorted(seeds) == sorted(baseline_seeds), config_id  # each seed once, paired
    assert search.suggest("extra") is SweepSearcher.FINISHED


def test_optuna_is_told_the_mean_over_seeds_once_per_configuration():
    search = searcher(configs=2, repeats=3)
    handed = {f"t{i}": search.suggest(f"t{i}") for i in range(search.max_trials())}
    te = [(tid, c) for tid, c in handed.items() if c["role"] == "te"]
    first = [tid for tid, c in te if c["config_id"] == "c0000"]
    for tid, epochs in zip(first[:2], (2.0, 4.0)):
        search.on_trial_complete(tid, end("complete", epochs, overhead=0.1))
    assert search.study.trials[0].state == optuna.trial.TrialState.RUNNING  # 2 of 3 seeds
    search.on_trial_complete(first[2], end("censored", 5.0, overhead=0.4))
    told = search.study.trials[0]
    assert told.state == optuna.trial.TrialState.COMPLETE
    assert told.values == pytest.approx([(2.0 + 4.0 + 5.0) / 3, (0.1 + 0.1 + 0.4) / 3])
    assert len(search.study.trials) == 2  # one Optuna trial per configuration, not per run


def test_a_failed_run_fails_its_configuration_and_a_late_success_is_added():
    search = searcher(configs=1, repeats=2)
    handed = {f"t{i}": search.suggest(f"t{i}") for i in range(search.max_trials())}
    runs = [tid for tid, c in handed.items() if c["role"] == "te"]
    search.on_trial_complete(runs[0], end("complete", 2.0))
    search.on_trial_complete(runs[1], None, error=True)
    assert search.study.trials[0].state == optuna.trial.TrialState.FAIL
    search.on_trial_complete(runs[1], end("complete", 4.0))  # resumed and finished after all
    complete = [t for t in search.study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 1 and complete[0].values[0] == pytest.approx(3.0)


def test_lr_controls_use_the_mean_factor_on_the_same_seeds():
    search = searcher(configs=1, repeats=2, lr_control=True)
    handed = {f"t{i}": search.suggest(f"t{i}") for i in range(3)}  # 2 baselines, 2 TE runs
    handed.update({f"t{i}": search.suggest(f"t{i}") for i in range(3, 4)})
    runs = [tid for tid, c in handed.items() if c and c["role"] == "te"]
    seeds = sorted(handed[t]["trial"]["seed"] for t in runs)
    assert search.suggest("waiting") is None  # controls wait for the configuration's factors
    search.on_trial_complete(runs[0], end("complete", 2.0, factor=0.8))
    search.on_trial_complete(runs[1], end("complete", 3.0, factor=0.6))
    controls = [search.suggest("c1"), search.suggest("c2")]
    assert [c["role"] for c in controls] == ["control", "control"]
    assert sorted(c["trial"]["seed"] for c in controls) == seeds
    assert all(c["trial"]["last_lr_scale"] == pytest.approx(0.7) for c in controls)
    assert all(c["trial"]["te_scale"] == 0.0 for c in controls)
    assert search.suggest("done") is SweepSearcher.FINISHED


@pytest.mark.parametrize("lr_control, per_run", [(False, 1), (True, 2)])
def test_the_bound_on_trials_is_exactly_what_a_grad_sweep_hands_out(lr_control, per_run):
    """A baseline per seed, a TE run per configuration and seed, a control beside each TE
    run with --lr-control: 3 + 4 x 3 (x 2). The searcher hands out that many, then none."""
    search = searcher(configs=4, repeats=3, lr_control=lr_control)
    assert search.max_trials() == 3 + 4 * 3 * per_run
    handed = []
    for i in range(search.max_trials()):
        handed.append(search.suggest(f"t{i}"))
        if handed[-1]["role"] in ("te", "control"):
            search.on_trial_complete(f"t{i}", end("complete", 3.0))
    assert all(isinstance(c, dict) for c in handed)
    assert not isinstance(search.suggest("extra"), dict)
