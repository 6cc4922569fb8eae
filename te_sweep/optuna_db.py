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

import tempfile
import warnings
from pathlib import Path
from typing import Any

from te_sweep.configs import CONFIG_COMPLETE, CONFIG_ERROR, CONFIG_PRUNED
from te_sweep.space import SearchSpace

OPTUNA_FILE = "optuna.db"
STUDY_NAME = "te-sweep"
METRIC_NAMES = ["objective_epochs", "te_overhead"]
USER_ATTRS = ("config_id", "speedup_mean", "speedup_ci_low", "speedup_ci_high",
              "prob_te_faster", "p_holm", "beats_baselines", "repeats")


def optuna_db_bytes(configs: list[dict[str, Any]], space: SearchSpace) -> bytes:
    """The SQLite file of a study holding `configs` (see the module docstring)."""
    import optuna

    states = {CONFIG_COMPLETE: optuna.trial.TrialState.COMPLETE,
              CONFIG_PRUNED: optuna.trial.TrialState.PRUNED,
              CONFIG_ERROR: optuna.trial.TrialState.FAIL}
    distributions = space.optuna_space()
    trials = []
    for row in configs:
        state = states.get(row["status"])
        if state is None:
            continue
        values = [row[name] for name in METRIC_NAMES] \
            if state == optuna.trial.TrialState.COMPLETE else None
        trials.append(optuna.trial.create_trial(
            params={name: row[f"param_{name}"] for name in space.params},
            distributions=distributions, values=values, state=state,
            user_attrs={key: row[key] for key in USER_ATTRS}))
    with tempfile.TemporaryDirectory(prefix="te-sweep-optuna-") as tmp:
        path = Path(tmp) / OPTUNA_FILE
        storage = optuna.storages.RDBStorage(f"sqlite:///{path}")
        study = optuna.create_study(study_name=STUDY_NAME, storage=storage,
                                    directions=["minimize"] * len(METRIC_NAMES))
        with warnings.catch_warnings():  # "experimental since 3.2": stable enough to use
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(METRIC_NAMES)
        study.add_trials(trials)
        storage.engine.dispose()
        return path.read_bytes()
