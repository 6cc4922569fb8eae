"""optuna.db, written with bulk inserts (te_sweep/results/optuna_db.py), holds exactly what Optuna's own
`study.add_trials` stores for the same configurations: read back by Optuna, every trial's
number, state, parameters, distributions, values, user attributes and times agree."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import optuna
import pytest

from te_sweep.core.outcome import CONFIG_COMPLETE, CONFIG_ERROR, CONFIG_PRUNED, CONFIG_UNFINISHED
from te_sweep.core.space import space_from_text
from te_sweep.results.optuna_db import (
    METRIC_NAMES,
    STUDY_NAME,
    USER_ATTRS,
    frozen_trials,
    optuna_db_bytes,
    study_file_bytes,
)

SPACE = space_from_text(
    "fixed:\n  dataset: fashion-mnist\n  subset: 1000\n  max_epochs: 9\n"
    "search:\n  te_scale: {low: 0.1, high: 4.0}\n"
    "  pair_fraction: {low: 0.02, high: 1.0, log: true}\n"
    "  window: {low: 100, high: 800, step: 100}\n"
    "  te_estimator: {choices: [plugin, effective]}\n",
    Path("s.yaml"),
)


def config(
    index: int, status: str, objective_epochs: float = 4.5, te_overhead: float = 0.25
) -> dict:
    return {
        "config_id": f"c{index:04d}",
        "status": status,
        "param_te_scale": 0.5 + 0.5 * index,
        "param_pair_fraction": 0.05 * (index + 1),
        "param_window": 100 * (index + 1),
        "param_te_estimator": ("plugin", "effective")[index % 2],
        "objective_epochs": objective_epochs,
        "te_overhead": te_overhead,
        "speedup_mean": 1.1,
        "speedup_ci_low": None if index % 2 else 0.9,
        "speedup_ci_high": 1.3,
        "prob_te_faster": 0.75,
        "p_holm": 1.0,
        "beats_baselines": index == 0,
        "repeats": 3,
    }


CONFIGS = [
    config(0, CONFIG_COMPLETE, 3.25, 0.125),
    config(1, CONFIG_PRUNED),
    config(2, CONFIG_UNFINISHED),
    config(3, CONFIG_ERROR),
    config(4, CONFIG_COMPLETE, 10.0, 0.0),
]


def study_in(path: Path) -> optuna.Study:
    return optuna.load_study(study_name=STUDY_NAME, storage=f"sqlite:///{path}")


def comparable(trial: optuna.trial.FrozenTrial) -> tuple:
    return (
        trial.number,
        trial.state,
        trial.params,
        trial.distributions,
        trial.values,
        trial.user_attrs,
        trial.datetime_start,
        trial.datetime_complete,
    )


@pytest.fixture(scope="module")
def both(tmp_path_factory) -> tuple[optuna.Study, optuna.Study]:
    root = tmp_path_factory.mktemp("db")
    ours = root / "ours.db"
    ours.write_bytes(optuna_db_bytes(CONFIGS, SPACE))
    reference = optuna.create_study(
        study_name=STUDY_NAME,
        storage=f"sqlite:///{root / 'reference.db'}",
        directions=["minimize"] * len(METRIC_NAMES),
    )
    # The same trials through Optuna's own path, times included (read from our file).
    trials = frozen_trials(CONFIGS, SPACE)
    for trial, written in zip(trials, study_in(ours).trials, strict=False):
        trial.datetime_start, trial.datetime_complete = (
            written.datetime_start,
            written.datetime_complete,
        )
    reference.add_trials(trials)
    return study_in(ours), study_in(root / "reference.db")


def test_every_finished_configuration_reads_back_as_optuna_itself_stores_it(both):
    ours, reference = both
    assert [comparable(t) for t in ours.trials] == [comparable(t) for t in reference.trials]


def test_states_values_and_attributes_per_configuration(both):
    ours, _ = both
    states = optuna.trial.TrialState
    assert [(t.user_attrs["config_id"], t.state) for t in ours.trials] == [
        ("c0000", states.COMPLETE),
        ("c0001", states.PRUNED),
        ("c0003", states.FAIL),
        ("c0004", states.COMPLETE),
    ]  # the unfinished c0002 is left out
    first, _, failed, last = ours.trials
    assert first.values == [3.25, 0.125] and last.values == [10.0, 0.0]
    assert failed.values is None
    assert first.params == {
        "te_scale": 0.5,
        "pair_fraction": 0.05,
        "window": 100,
        "te_estimator": "plugin",
    }
    assert set(first.user_attrs) == set(USER_ATTRS)
    assert first.user_attrs["beats_baselines"] is True and first.user_attrs["repeats"] == 3
    assert ours.trials[1].user_attrs["speedup_ci_low"] is None
    assert ours.metric_names == METRIC_NAMES
    assert ours.directions == [optuna.study.StudyDirection.MINIMIZE] * 2
    assert all(t.datetime_start is not None for t in ours.trials)


def test_the_best_trials_are_optunas_pareto_front(both):
    ours, _ = both
    assert [t.user_attrs["config_id"] for t in ours.best_trials] == ["c0000", "c0004"]


def test_a_sweep_with_no_finished_configuration_writes_an_empty_study(tmp_path):
    path = tmp_path / "empty.db"
    path.write_bytes(optuna_db_bytes([config(0, CONFIG_UNFINISHED)], SPACE))
    assert study_in(path).trials == []


def test_times_are_stored_to_the_microsecond(tmp_path):
    trials = frozen_trials(CONFIGS, SPACE)
    for k, trial in enumerate(trials):
        trial.datetime_start = dt.datetime(2026, 12, 1, 10, 0, k, 123456)
        trial.datetime_complete = dt.datetime(2026, 12, 1, 11, 0, k, 654321)
    path = tmp_path / "times.db"
    path.write_bytes(study_file_bytes(trials))
    assert [(t.datetime_start, t.datetime_complete) for t in study_in(path).trials] == [
        (t.datetime_start, t.datetime_complete) for t in trials
    ]


def test_trial_ids_are_the_ones_optunas_add_trials_gives(both):
    """Each trial's storage id (what optuna-dashboard's URLs and `storage.get_trial(id)` use)
    is the one `add_trials` gives it in the empty study: 1, 2, ... in trial-number order."""
    ids = [
        [
            study._storage.get_trial_id_from_study_id_trial_number(study._study_id, t.number)
            for t in study.trials
        ]
        for study in both
    ]
    assert ids[0] == ids[1] == [1, 2, 3, 4]
    ours = both[0]
    assert [ours._storage.get_trial(i).user_attrs["config_id"] for i in ids[0]] == [
        "c0000",
        "c0001",
        "c0003",
        "c0004",
    ]
