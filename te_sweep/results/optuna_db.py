"""optuna.db: the sweep's study in Optuna's SQLite storage, for Optuna's own tools.

`optuna-dashboard sqlite:///STORAGE/NAME/optuna.db` and `optuna.load_study(study_name=
"te-sweep", storage="sqlite:///...")` open it. It is written by the export from configs.parquet's
rows, not by the search: Tune's restore breaks when the searcher runs on a persistent Optuna
storage (platform notes), so the live study stays in memory, and a crashed sweep's export still
writes a study. One Optuna trial per configuration, in config_id order: COMPLETE with both
objectives (the means over seeds Optuna was told during the sweep), PRUNED or FAIL;
configurations still unfinished are left out. Each carries its paired statistics as user
attributes.

The file is written without SQLAlchemy: Optuna's storage makes the empty study once per Optuna
version and machine (its schema and migrations, about a second with their imports), kept in
~/.cache/te-sweep/optuna; the trials go in with plain sqlite3 (see `insert_trials`).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import os
import sqlite3
import tempfile
import warnings
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from te_sweep.core.outcome import CONFIG_COMPLETE, CONFIG_ERROR, CONFIG_PRUNED
from te_sweep.core.space import SearchSpace

OPTUNA_FILE = "optuna.db"
STUDY_NAME = "te-sweep"
METRIC_NAMES = ["objective_epochs", "te_overhead"]
# Fewer epochs to the target, less TE overhead.
DIRECTIONS: list[Literal["minimize"]] = ["minimize"] * len(METRIC_NAMES)
TEMPLATE_DIR = Path(".cache", "te-sweep", "optuna")  # under the home directory
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
# Optuna's tables as its RDB storage names them (optuna/storages/_rdb/models.py), with the columns
# `add_trials` fills; written out so that a study is written without importing SQLAlchemy.
# tests/results/test_optuna_template.py checks them against Optuna's models.
TRIAL_TABLES = {
    "trials": ("trial_id", "number", "study_id", "state", "datetime_start", "datetime_complete"),
    "trial_params": ("trial_id", "param_name", "param_value", "distribution_json"),
    "trial_values": ("trial_id", "objective", "value", "value_type"),
    "trial_user_attributes": ("trial_id", "key", "value_json"),
}


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
    """The file of the sweep's study before any trial, and the study's id in it: read from the
    machine's template when that is whole, else made by Optuna and kept as the template."""
    path = template_path()
    kept = study_template(path)
    if kept is not None:
        return kept
    made = _made_by_optuna()
    _keep(path, made[0])
    return made


def template_path() -> Path:
    """Where this machine keeps the empty study: one file per Optuna version and study layout
    (name, objectives), so that another version or layout never reads a stale one."""
    import optuna

    layout = json.dumps([STUDY_NAME, METRIC_NAMES, DIRECTIONS]).encode()
    digest = hashlib.sha256(layout).hexdigest()[:12]
    return Path.home() / TEMPLATE_DIR / f"empty-study-optuna-{optuna.__version__}-{digest}.db"


def study_template(path: Path) -> tuple[bytes, int] | None:
    """The file at `path` and the study's id in it, or None unless it is a whole SQLite file
    that holds the sweep's study and no trial (a template cut short or damaged is made again).
    Templates are only ever replaced whole (`_keep`), so the bytes read after the check are a
    whole template too."""
    try:
        with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as db:
            if db.execute("PRAGMA quick_check").fetchone() != ("ok",):
                return None
            study = db.execute(
                "SELECT study_id FROM studies WHERE study_name = ?", (STUDY_NAME,)
            ).fetchone()
            (trials,) = db.execute("SELECT COUNT(*) FROM trials").fetchone()
            data = path.read_bytes()
    except (sqlite3.Error, OSError, ValueError):  # ValueError: a relative home
        return None
    return (data, study[0]) if study is not None and trials == 0 else None


def _keep(path: Path, data: bytes) -> None:
    """Write `data` to `path` whole or not at all (a temporary file renamed over it), so that
    two exports at once, or one stopped halfway, never leave a part of a template. Best
    effort: where the home cannot hold it (read-only, full), the next export makes it again."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    except OSError:
        return
    written = Path(name)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(written, path)
    except OSError:
        written.unlink(missing_ok=True)


def _made_by_optuna() -> tuple[bytes, int]:
    """The empty study as Optuna's own storage makes it: its schema, version rows and the
    study's directions and metric names."""
    import optuna

    with tempfile.TemporaryDirectory(prefix="te-sweep-optuna-") as tmp:
        path = Path(tmp) / OPTUNA_FILE
        storage = optuna.storages.RDBStorage(f"sqlite:///{path}")
        with optuna_quiet():  # not "A new study created in RDB": it is a scratch file
            study = optuna.create_study(
                study_name=STUDY_NAME, storage=storage, directions=DIRECTIONS
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
    into Optuna's own tables (TRIAL_TABLES), stored as its column types store them: an enum by
    its name, a time as SQLite text with microseconds, a value as `stored_value` says.
    tests/results/test_optuna_db.py checks that Optuna reads back exactly what `add_trials`
    stores."""
    from optuna.distributions import distribution_to_json

    rows: dict[str, list[tuple[Any, ...]]] = {table: [] for table in TRIAL_TABLES}
    as_json: dict[str, str] = {}  # one space, so one distribution per name: encoded once
    for number, trial in enumerate(trials):
        trial_id = number + 1  # the study is empty and the only one in the file
        rows["trials"].append(
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
            rows["trial_params"].append(
                (trial_id, name, distribution.to_internal_repr(value), as_json[name])
            )
        for objective, value in enumerate(trial.values or []):
            rows["trial_values"].append((trial_id, objective, *stored_value(value)))
        rows["trial_user_attributes"].extend(
            (trial_id, key, json_scalar(value)) for key, value in trial.user_attrs.items()
        )
    for table, columns in TRIAL_TABLES.items():
        marks = ", ".join("?" * len(columns))
        db.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows[table])


def stored_value(value: float) -> tuple[float | None, str]:
    """An objective's value as Optuna's trial_values table keeps it (its
    TrialValueModel.value_to_stored_repr): an infinity as no value and its sign's type."""
    if value == math.inf:
        return None, "INF_POS"
    if value == -math.inf:
        return None, "INF_NEG"
    return value, "FINITE"


_JSON_CONSTANTS = {None: "null", True: "true", False: "false"}


def json_scalar(value: Any) -> str:
    """`json.dumps(value)`, three times faster for the finite floats, ints, booleans and None
    that user attributes hold (80,000 of them in a 10,000-configuration study)."""
    kind = type(value)
    if kind is float and math.isfinite(value):
        return float.__repr__(value)
    if kind is int:
        return int.__repr__(value)
    if kind is bool or value is None:
        return _JSON_CONSTANTS[value]
    return json.dumps(value)


def sqlite_time(moment: datetime | None) -> str | None:
    """A time as Optuna's RDB storage keeps it in SQLite (SQLAlchemy's DateTime): naive UTC
    text, microseconds always written."""
    if moment is None:
        return None
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
