"""The sweep's searcher with real Optuna, driven by hand: seed pairing over many suggestions,
one value per configuration told to Optuna (the mean over its seeds), failures and controls."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import optuna
import pytest
from ray.tune.experiment import Trial
from ray.tune.schedulers import TrialScheduler

from te_sweep.core.reporting import FACTOR_KEY
from te_sweep.core.space import space_from_text
from te_sweep.sweep.concurrency import ConcurrencyPolicy
from te_sweep.sweep.searcher import SweepSearcher, TEOnlyASHA

SPACE = space_from_text(
    "fixed:\n  dataset: fashion-mnist\n  subset: 1000\n  max_epochs: 4\n"
    "search:\n  te_scale: {low: 0.1, high: 4.0}\n"
    "  threshold: {low: 0.5, high: 2.0}\n",
    Path("s.yaml"),
)


def searcher(configs: int, repeats: int, lr_control: bool = False) -> SweepSearcher:
    policy = ConcurrencyPolicy.for_sweep(10_000, None, 1.0, 0.0, total_trials=10_000)
    return SweepSearcher(
        SPACE,
        seed=3,
        repeats=repeats,
        configs=configs,
        threads=1,
        concurrency=policy,
        sampler="nsga2",
        lr_control=lr_control,
    )


def end(status: str, epochs: float, overhead: float = 0.05, factor: float | None = 0.9):
    return {
        "trial_status": status,
        "objective_epochs": epochs,
        "te_overhead": overhead,
        FACTOR_KEY: factor,
    }


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
    for tid, epochs in zip(first[:2], (2.0, 4.0), strict=False):
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


def test_baselines_train_at_the_unscaled_learning_rate():
    """Only a control scales the last layer's learning rate: the baselines every TE run is
    compared with train at the space's own rate (scale 1)."""
    search = searcher(configs=1, repeats=3)
    baselines = [search.suggest(f"t{i}") for i in range(3)]
    assert [c["role"] for c in baselines] == ["baseline"] * 3
    assert all(c["trial"]["last_lr_scale"] == 1.0 for c in baselines)


@pytest.mark.parametrize("in_flight, repeats, population", [(100, 3, 33), (40, 1, 40)])
def test_an_nsga2_generation_is_the_configurations_in_flight(in_flight, repeats, population):
    """NSGA-II's population is one generation of configurations in flight: the trials the
    policy expects in flight at launch, divided (rounding down) by the runs per
    configuration (samplers.py); 100 trials on 3 seeds are 33 configurations."""
    policy = ConcurrencyPolicy.for_sweep(in_flight, None, 1.0, 0.0, total_trials=10_000)
    search = SweepSearcher(
        SPACE, seed=3, repeats=repeats, configs=500, threads=1, concurrency=policy, sampler="nsga2"
    )
    assert search.study.sampler.population_size == population


def test_no_trial_goes_out_while_more_are_in_flight_than_the_limit_allows():
    """The limit is asked at every suggestion: when it drops below what is in flight (the
    cluster lost a node), nothing is handed out until enough trials have ended."""
    policy = ConcurrencyPolicy.for_sweep(4, None, 1.0, 0.0, total_trials=10_000)
    search = SweepSearcher(
        SPACE, seed=3, repeats=2, configs=5, threads=1, concurrency=policy, sampler="nsga2"
    )
    assert all(isinstance(search.suggest(f"t{i}"), dict) for i in range(4))
    assert search.suggest("t4") is None  # 4 in flight, 4 allowed
    policy.fixed = 2  # the limit the policy decides drops to 2
    search.on_trial_complete("t0", end("complete", 3.0))  # a baseline: 3 in flight
    assert search.suggest("t4") is None
    search.on_trial_complete("t1", end("complete", 3.0))  # 2 in flight
    assert search.suggest("t4") is None
    search.on_trial_complete("t2", end("complete", 3.0))  # 1 in flight
    assert isinstance(search.suggest("t4"), dict)


def test_a_new_configuration_is_asked_only_when_nothing_else_waits():
    """Optuna is asked for a configuration only once the baselines and the current
    configuration's runs are all handed out, so each suggestion sees every value told so
    far."""
    search = searcher(configs=3, repeats=2)
    handed = [search.suggest(f"t{i}") for i in range(4)]  # 2 baselines, c0000 on 2 seeds
    assert [c["config_id"] for c in handed] == [None, None, "c0000", "c0000"]
    assert len(search.study.trials) == 1
    search.on_trial_complete("t2", end("complete", 2.0))
    search.on_trial_complete("t3", end("complete", 3.0))
    assert search.suggest("t4")["config_id"] == "c0001"
    assert [t.state for t in search.study.trials] == [
        optuna.trial.TrialState.COMPLETE,
        optuna.trial.TrialState.RUNNING,
    ]


@pytest.mark.parametrize("configs, repeats", [(300, 1), (1, 300)])
def test_counts_beyond_small_integers_end_the_search_exactly(configs, repeats):
    """Hundreds of configurations, or of seeds: every configuration is told once all its
    runs are done, no configuration beyond `configs` is asked, and the search ends."""
    search = searcher(configs=configs, repeats=repeats)
    for i in range(search.max_trials()):
        config = search.suggest(f"t{i}")
        if config["role"] == "te":
            search.on_trial_complete(f"t{i}", end("complete", 3.0))
    assert search.suggest("extra") is SweepSearcher.FINISHED
    assert len(search.study.trials) == configs
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in search.study.trials)


def restored(search: SweepSearcher, path: Path) -> SweepSearcher:
    """The searcher as `te-sweep resume` gets it back: a new one, restored from a snapshot
    (unpickled strings are new objects, not the module's constants)."""
    search.save(str(path))
    again = searcher(search.configs_total, len(search.seeds), search.lr_control)
    again.restore(str(path))
    return again


def test_a_restored_searcher_continues_the_same_search(tmp_path):
    """Snapshots mid-configuration: the restored searcher hands out the TE runs with the
    configuration's parameters, tells Optuna when they end, and adds a failed
    configuration's late success as a new complete trial."""
    search = searcher(configs=1, repeats=2)
    runs = [search.suggest(f"t{i}") for i in range(3)]  # 2 baselines, c0000's first run
    assert [c["role"] for c in runs] == ["baseline", "baseline", "te"]
    search = restored(search, tmp_path / "first.pkl")  # its second run still queued
    runs = [runs[2], search.suggest("t3")]
    te_scale = search.study.trials[0].params["te_scale"]
    assert [(c["role"], c["config_id"]) for c in runs] == [("te", "c0000")] * 2
    assert all(c["trial"]["te_scale"] == pytest.approx(te_scale) for c in runs)
    search = restored(search, tmp_path / "second.pkl")
    search.on_trial_complete("t2", end("complete", 2.0))
    search.on_trial_complete("t3", None, error=True)
    assert search.study.trials[0].state == optuna.trial.TrialState.FAIL
    search = restored(search, tmp_path / "third.pkl")
    search.on_trial_complete("t3", end("complete", 4.0))  # resumed and finished after all
    late = search.study.trials[1]
    assert late.state == optuna.trial.TrialState.COMPLETE
    assert late.values[0] == pytest.approx(3.0)
    assert late.user_attrs == {"config_id": "c0000", "completed_after_failure": True}


@pytest.mark.parametrize(
    "first, state",
    [("complete", optuna.trial.TrialState.COMPLETE), ("running", optuna.trial.TrialState.PRUNED)],
)
def test_a_run_heard_of_again_adds_nothing_unless_its_configuration_failed(first, state):
    """Only a FAIL configuration enters the study again: a complete or pruned one whose
    run is reported complete once more (a resume re-running it) keeps its one Optuna
    trial, and a complete one gets no second set of controls."""
    search = searcher(configs=1, repeats=2, lr_control=True)
    assert [search.suggest(f"t{i}")["role"] for i in range(4)] == ["baseline"] * 2 + ["te"] * 2
    search.on_trial_complete("t2", end("complete", 2.0, factor=0.8))
    search.on_trial_complete("t3", end(first, 3.0, factor=0.6))
    controls = [search.suggest("c1"), search.suggest("c2")] if first == "complete" else []
    assert all(c["role"] == "control" for c in controls)
    search.on_trial_complete("t3", end("complete", 3.0, factor=0.6))
    assert [t.state for t in search.study.trials] == [state]
    if first == "complete":
        assert search.suggest("done") is SweepSearcher.FINISHED


def test_an_errored_run_fails_its_configuration_whatever_its_last_report_says():
    """Tune passes an errored trial's last report too: the run failed (FAIL), it was not
    stopped early by the scheduler (a "running" last report alone would say PRUNED)."""
    search = searcher(configs=1, repeats=1)
    assert [search.suggest(f"t{i}")["role"] for i in range(2)] == ["baseline", "te"]
    search.on_trial_complete("t1", end("running", 2.0), error=True)
    assert search.study.trials[0].state == optuna.trial.TrialState.FAIL


@pytest.mark.parametrize("device", ["cpu", None])
def test_the_device_override_replaces_the_spaces_device(device):
    """`device` (e.g. "cpu" on a cluster without GPUs) goes into every trial's config;
    without it each trial keeps the space's own device."""
    space = space_from_text(
        "fixed:\n  dataset: fashion-mnist\n  subset: 1000\n"
        "  max_epochs: 4\n  device: cuda:1\n"
        "search:\n  te_scale: {low: 0.1, high: 4.0}\n",
        Path("s.yaml"),
    )
    policy = ConcurrencyPolicy.for_sweep(10_000, None, 1.0, 0.0, total_trials=10_000)
    search = SweepSearcher(
        space,
        seed=3,
        repeats=1,
        configs=1,
        threads=1,
        concurrency=policy,
        sampler="nsga2",
        device=device,
    )
    handed = [search.suggest(f"t{i}") for i in range(2)]
    assert [c["role"] for c in handed] == ["baseline", "te"]
    assert [c["trial"]["device"] for c in handed] == [device or "cuda:1"] * 2


def stub_trial(trial_id: str, role: str) -> Trial:
    """A Tune trial as the scheduler sees it (a stub: no trainable, no Ray)."""
    return Trial("te_sweep", config={"role": role}, trial_id=trial_id, stub=True)


def test_asha_stops_te_runs_only_and_keeps_the_yardstick_out_of_its_rungs():
    """TEOnlyASHA: TE runs below the rung's cutoff are stopped; baselines and controls, even
    the worst, run on, and adding, completing or removing them never touches the rungs."""
    asha = TEOnlyASHA(
        time_attr="training_iteration",
        metric="objective_epochs",
        mode="min",
        max_t=8,
        grace_period=1,
        reduction_factor=2,
    )
    te = [stub_trial(f"te{i}", "te") for i in range(3)]
    yardstick = [stub_trial("b0", "baseline"), stub_trial("k0", "control")]
    for trial in te + yardstick:
        asha.on_trial_add(None, trial)
    actions = [
        asha.on_trial_result(None, trial, {"training_iteration": 1, "objective_epochs": 5.0 + i})
        for i, trial in enumerate(te + yardstick)
    ]  # the yardstick worst of all
    assert actions == [
        TrialScheduler.CONTINUE,
        TrialScheduler.STOP,
        TrialScheduler.STOP,
        TrialScheduler.CONTINUE,
        TrialScheduler.CONTINUE,
    ]
    for trial in yardstick:
        asha.on_trial_complete(None, trial, {"training_iteration": 8, "objective_epochs": 9.0})
    asha.on_trial_remove(None, yardstick[0])
    asha.on_trial_complete(None, te[0], {"training_iteration": 2, "objective_epochs": 1.0})
    asha.on_trial_remove(None, te[1])


def test_queued_lr_controls_go_out_before_a_new_configuration():
    """Once a configuration's runs have ended, its controls are handed out next, before the
    next configuration's runs: the controls need the seeds' factors only, and a sweep that
    stops early still has each finished configuration's control."""
    search = searcher(configs=2, repeats=2, lr_control=True)
    handed = {f"t{i}": search.suggest(f"t{i}") for i in range(4)}  # 2 baselines, c0000's runs
    te_runs = [tid for tid, c in handed.items() if c["role"] == "te"]
    assert len(te_runs) == 2
    for tid in te_runs:
        search.on_trial_complete(tid, end("complete", 2.0, factor=0.9))
    after = [search.suggest(f"n{i}") for i in range(4)]
    assert [(c["role"], c["config_id"]) for c in after] == [
        ("control", "c0000"),
        ("control", "c0000"),
        ("te", "c0001"),
        ("te", "c0001"),
    ]
