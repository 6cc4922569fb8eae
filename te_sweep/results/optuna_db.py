"""optuna.db: the sweep's study in Optuna's SQLite storage, for Optuna's own tools.

`optuna-dashboard sqlite:///STORAGE/NAME/optuna.db` and `optuna.load_study(study_name=
"te-sweep", storage="sqlite:///...")` open it. It is written by the export from configs.parquet's
rows, not by the search: Tune's restore breaks when the searcher runs on a persistent Optuna
storage (platform notes), so the live study stays in memory, and a crashed sweep's export still
writes a study. One Optuna trial per configuration, in config_id order: COMPLETE with both
objectives (the means over seeds Optuna was told during the sweep), PRUNED or FAIL;
configurations still unfinished are left out. Each carries its paired statistics as user
attributes.
"""

from __future__ import annotations

import contextlib
import functools
import json
import sqlite3
import tempfile
import warnings
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from te_sweep.core.outcome import CONFIG_COMPLETE, CONFIG_ERROR, CONFIG_PRUNED
from te_sweep.core.space import SearchSpace

OPTUNA_FILE = "optuna.db"
STUDY_NAME = "te-sweep"
METRIC_NAMES = ["objective_epochs", "te_overhead"]
USER_ATTRS = (
    "config_id",
    "speedup_mean",
    "speedup_ci_low",
    "speedup_ci_high",
    "prob_te_faster",
    "p_holm",
    "beats_baselines",
    "repeats",
)


def optuna_db_bytes(configs: list[dict[str, Any]], space: SearchSpace) -> bytes:
    """The SQLite file of a study holding `configs` (see the module docstring)."""
    return study_file_bytes(frozen_trials(configs, space))


def study_file_bytes(trials: list[Any]) -> bytes:
    """The SQLite file of the sweep's study holding `trials` (Optuna FrozenTrials)."""
    template, study_id = empty_study()
    with tempfile.TemporaryDirectory(prefix="te-sweep-optuna-") as tmp:
        path = Path(tmp) / OPTUNA_FILE
        path.write_bytes(template)
        with contextlib.closing(sqlite3.connect(path)) as db, db:
            insert_trials(db, study_id, trials)
        return path.read_bytes()


@contextlib.contextmanager
def optuna_quiet() -> Iterator[None]:
    """Optuna's INFO lines off for the block (its verbosity as it was, after): export and
    report print their own lines, and Optuna's name a temporary file the user never sees."""
    import optuna

    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(before)


@functools.cache
def empty_study() -> tuple[bytes, int]:
    """The file of the sweep's study before any trial, and the study's id in it: made once per
    process by Optuna itself (its schema and migrations take about a second to set up)."""
    import optuna

    with tempfile.TemporaryDirectory(prefix="te-sweep-optuna-") as tmp:
        path = Path(tmp) / OPTUNA_FILE
        storage = optuna.storages.RDBStorage(f"sqlite:///{path}")
        with optuna_quiet():  # not "A new study created in RDB": it is a scratch file
            study = optuna.create_study(
                study_name=STUDY_NAME, storage=storage, directions=["minimize"] * len(METRIC_NAMES)
            )
        with warnings.catch_warnings():  # "experimental since 3.2": stable enough to use
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(METRIC_NAMES)
        storage.engine.dispose()
        return path.read_bytes(), study._study_id


def frozen_trials(configs: list[dict[str, Any]], space: SearchSpace) -> list[Any]:
    """One Optuna trial per finished configuration, built (and checked) by Optuna itself."""
    import optuna

    states = {
        CONFIG_COMPLETE: optuna.trial.TrialState.COMPLETE,
        CONFIG_PRUNED: optuna.trial.TrialState.PRUNED,
        CONFIG_ERROR: optuna.trial.TrialState.FAIL,
    }
    distributions = space.optuna_space()
    trials = []
    for row in configs:
        state = states.get(row["status"])
        if state is None:
            continue
        values = (
            [row[name] for name in METRIC_NAMES]
            if state == optuna.trial.TrialState.COMPLETE
            else None
        )
        trials.append(
            optuna.trial.create_trial(
                params={name: row[f"param_{name}"] for name in space.params},
                distributions=distributions,
                values=values,
                state=state,
                user_attrs={key: row[key] for key in USER_ATTRS},
            )
        )
    return trials


def insert_trials(db: sqlite3.Connection, study_id: int, trials: list[Any]) -> None:
    """Write `trials` into an empty study with one executemany per table, in one transaction.

    Why not `study.add_trials`: Optuna's RDB storage writes a trial with dozens of ORM queries
    (about 25 ms each here), so a 10,000-configuration sweep's export spent minutes on this file
    alone; and not SQLAlchemy's bulk insert either: binding 140,000 rows through it took 2 of
    the 3 seconds of a 10,000-configuration file. The rows are the ones `add_trials` writes,
    into Optuna's own tables (their names from its models), stored as its column types store
    them: an enum by its name, a time as SQLite text with microseconds.
    tests/results/test_optuna_db.py checks that Optuna reads back exactly what `add_trials`
    stores."""
    from optuna.distributions import distribution_to_json
    from optuna.storages._rdb import models

    trial_rows: list[tuple[Any, ...]] = []
    param_rows: list[tuple[Any, ...]] = []
    value_rows: list[tuple[Any, ...]] = []
    attr_rows: list[tuple[Any, ...]] = []
    as_json: dict[str, str] = {}  # one space, so one distribution per name: encoded once
    for number, trial in enumerate(trials):
        trial_id = number + 1  # the study is empty and the only one in the file
        trial_rows.append(
            (
                trial_id,
                number,
                study_id,
                trial.state.name,
                sqlite_time(trial.datetime_start),
                sqlite_time(trial.datetime_complete),
            )
        )
        for name, value in trial.params.items():
            distribution = trial.distributions[name]
            if name not in as_json:
                as_json[name] = distribution_to_json(distribution)
            param_rows.append((trial_id, name, distribution.to_internal_repr(value), as_json[name]))
        for objective, value in enumerate(trial.values or []):
            stored, kind = models.TrialValueModel.value_to_stored_repr(value)
            value_rows.append((trial_id, objective, stored, kind.name))
        attr_rows.extend(
            (trial_id, key, json.dumps(value)) for key, value in trial.user_attrs.items()
        )
    for model, columns, rows in (
        (
            models.TrialModel,
            "trial_id, number, study_id, state, datetime_start, datetime_complete",
            trial_rows,
        ),
        (
            models.TrialParamModel,
            "trial_id, param_name, param_value, distribution_json",
            param_rows,
        ),
        (models.TrialValueModel, "trial_id, objective, value, value_type", value_rows),
        (models.TrialUserAttributeModel, "trial_id, key, value_json", attr_rows),
    ):
        marks = ", ".join("?" * (columns.count(",") + 1))
        db.executemany(f"INSERT INTO {model.__tablename__} ({columns}) VALUES ({marks})", rows)


def sqlite_time(moment: datetime | None) -> str | None:
    """A time as Optuna's RDB storage keeps it in SQLite (SQLAlchemy's DateTime): naive UTC
    text, microseconds always written."""
    if moment is None:
        return None
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
