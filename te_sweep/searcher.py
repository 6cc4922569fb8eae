"""Optuna search through Ray Tune, with the sweep's no-TE baselines and honest pruning.

SweepSearcher is Tune's OptunaSearch (multi-objective: minimise objective_epochs and
te_overhead, seeded sampler) with three additions:
  - the first `baselines` suggestions are no-TE trials (te_scale 0, the space's fixed
    settings) with their own seeds; they are never told to Optuna;
  - every TE trial's seed cycles over the baselines' seeds, so each TE trial has a paired
    baseline that saw the same initial weights and batch order;
  - a trial stopped early by the scheduler (its last report still says "running") is told to
    Optuna as PRUNED, and a trial that failed as FAIL, never as COMPLETE with partial values.
The searcher's whole state (Optuna study included) is pickled by OptunaSearch.save, which Tune
calls, so `te-sweep resume` continues the same search.

TEOnlyASHA is ASHA that never stops a baseline: the baselines are the yardstick.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ray.tune.schedulers import ASHAScheduler, TrialScheduler
from ray.tune.search.optuna import OptunaSearch

from te_sweep.space import SearchSpace

OBJECTIVES = ["objective_epochs", "te_overhead"]


def derive_seeds(sweep_seed: int, count: int) -> list[int]:
    """`count` well-separated trial seeds from the sweep's seed (stable across versions)."""
    return [int(s) for s in np.random.SeedSequence(sweep_seed).generate_state(count)]


class SweepSearcher(OptunaSearch):
    def __init__(self, space: SearchSpace, seed: int, baselines: int, threads: int,
                 device: str | None = None) -> None:
        import optuna

        sampler = optuna.samplers.TPESampler(seed=seed)
        super().__init__(space=space.optuna_space(), metric=list(OBJECTIVES),
                         mode=["min", "min"], sampler=sampler)
        self.sweep_space = space
        self.threads = threads
        self.device = device  # overrides the space's device (e.g. "cpu" without GPUs)
        self.baseline_seeds = derive_seeds(seed, max(1, baselines))
        self.baselines_left = baselines
        self.te_trials = 0
        self.roles: dict[str, str] = {}

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if self.baselines_left > 0:
            index = len(self.baseline_seeds) - self.baselines_left
            self.baselines_left -= 1
            cfg, role = self.sweep_space.baseline_config(self.baseline_seeds[index]), "baseline"
        else:
            params = super().suggest(trial_id)
            if params is None:
                return None
            seed = self.baseline_seeds[self.te_trials % len(self.baseline_seeds)]
            self.te_trials += 1
            cfg, role = self.sweep_space.trial_config(params, seed), "te"
        if self.device is not None:
            cfg = cfg.replace(device=self.device)
        self.roles[trial_id] = role
        return {"trial": cfg.to_dict(), "role": role, "threads": self.threads}

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if self.roles.get(trial_id) == "te":
            super().on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        if self.roles.get(trial_id) != "te":
            return
        if error or (result and result.get("trial_status") == "running"):
            result = None  # OptunaSearch: no value + error -> FAIL, no value -> PRUNED
        super().on_trial_complete(trial_id, result, error)


class TEOnlyASHA(ASHAScheduler):
    """ASHA over the TE trials; baselines always run to their natural end."""

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        if trial.config.get("role") == "baseline":
            return TrialScheduler.CONTINUE
        return super().on_trial_result(tune_controller, trial, result)
