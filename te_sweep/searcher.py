"""Optuna search through Ray Tune, with the sweep's no-TE baselines and honest bookkeeping.

SweepSearcher is Tune's OptunaSearch (multi-objective: minimise objective_epochs and
te_overhead; the sampler chosen by samplers.py, seeded) with these additions:
  - the first `baselines` suggestions are no-TE trials (te_scale 0, the space's fixed
    settings) with their own seeds; they are never told to Optuna;
  - every TE trial's seed cycles over the baselines' seeds, so each TE trial has a paired
    baseline that saw the same initial weights and batch order;
  - a trial stopped early by the scheduler (its last report still says "running") is told to
    Optuna as PRUNED, and a trial that failed as FAIL, never as COMPLETE with partial values;
  - a trial told FAIL that finishes after all (an errored trial continued by `te-sweep
    resume`) enters the study as a new COMPLETE trial with the same parameters, so its result
    is not lost (OptunaSearch itself drops a second completion with a warning);
  - how many trials are in flight (running or waiting for resources) is decided at every
    suggestion by a ConcurrencyPolicy (concurrency.py), not frozen at launch: on a cluster
    that grows, new nodes get trials as they join.
The searcher's whole state (Optuna study included) is pickled by OptunaSearch.save, which Tune
calls at each experiment snapshot, so `te-sweep resume` continues the same search.

TEOnlyASHA is ASHA over the TE trials only: baselines are the yardstick, never stopped and
never recorded in its rungs.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from ray.tune.schedulers import ASHAScheduler, TrialScheduler
from ray.tune.search.optuna import OptunaSearch

from te_sweep.concurrency import ConcurrencyPolicy
from te_sweep.reporting import RUNNING, Role
from te_sweep.samplers import make_sampler
from te_sweep.space import SearchSpace

OBJECTIVES = ["objective_epochs", "te_overhead"]
logger = logging.getLogger(__name__)


def derive_seeds(sweep_seed: int, count: int) -> list[int]:
    """`count` well-separated trial seeds from the sweep's seed (stable across versions)."""
    return [int(s) for s in np.random.SeedSequence(sweep_seed).generate_state(count)]


class SweepSearcher(OptunaSearch):
    def __init__(self, space: SearchSpace, seed: int, baselines: int, threads: int,
                 concurrency: ConcurrencyPolicy, sampler: str = "auto", te_trials: int = 8,
                 device: str | None = None) -> None:
        super().__init__(space=space.optuna_space(), metric=list(OBJECTIVES),
                         mode=["min", "min"],
                         sampler=make_sampler(sampler, seed, te_trials,
                                              concurrency.expected_in_flight()))
        self.sweep_space = space
        self.threads = threads
        self.device = device  # overrides the space's device (e.g. "cpu" without GPUs)
        self.concurrency = concurrency
        self.baseline_seeds = derive_seeds(seed, max(1, baselines))
        self.baselines_left = baselines
        self.te_trials = 0
        self.roles: dict[str, str] = {}
        self.live: set[str] = set()  # suggested and not yet complete

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if len(self.live) >= self.concurrency.limit():
            return None  # Tune asks again at its next step
        if self.baselines_left > 0:
            index = len(self.baseline_seeds) - self.baselines_left
            self.baselines_left -= 1
            cfg, role = self.sweep_space.baseline_config(self.baseline_seeds[index]), \
                Role.BASELINE
        else:
            params = super().suggest(trial_id)
            if params is None:
                return None
            seed = self.baseline_seeds[self.te_trials % len(self.baseline_seeds)]
            self.te_trials += 1
            cfg, role = self.sweep_space.trial_config(params, seed), Role.TE
        if self.device is not None:
            cfg = cfg.replace(device=self.device)
        self.roles[trial_id] = role
        self.live.add(trial_id)
        return {"trial": cfg.to_dict(), "role": role, "threads": self.threads}

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if self.roles.get(trial_id) == Role.TE:
            super().on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        self.live.discard(trial_id)
        if self.roles.get(trial_id) != Role.TE:
            return
        if error or (result and result.get("trial_status") == RUNNING):
            result = None  # OptunaSearch: no value + error -> FAIL, no value -> PRUNED
        if trial_id in self._completed_trials:
            self._completed_after_failure(trial_id, result)
            return
        super().on_trial_complete(trial_id, result, error)

    def _completed_after_failure(self, trial_id: str, result: dict | None) -> None:
        """A trial already told to Optuna finished again (resumed after an error)."""
        import optuna

        if result is None:
            return
        asked = self._ot_trials[trial_id]
        told = self._ot_study.get_trials(deepcopy=False)[asked.number]
        if told.state != optuna.trial.TrialState.FAIL:
            return  # its values are in the study already
        self._ot_study.add_trial(optuna.trial.create_trial(
            params=told.params, distributions=told.distributions,
            values=[result[m] for m in OBJECTIVES],
            user_attrs={"tune_trial_id": trial_id, "completed_after_failure": True}))
        logger.info("trial %s finished after an earlier failure; its result was told to "
                    "Optuna as a new complete trial", trial_id)


class TEOnlyASHA(ASHAScheduler):
    """ASHA over the TE trials; baselines always run to their natural end, outside the rungs."""

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        if trial.config.get("role") != Role.BASELINE:
            super().on_trial_add(tune_controller, trial)

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        if trial.config.get("role") == Role.BASELINE:
            return TrialScheduler.CONTINUE
        return super().on_trial_result(tune_controller, trial, result)

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict) -> None:
        if trial.config.get("role") != Role.BASELINE:
            super().on_trial_complete(tune_controller, trial, result)

    def on_trial_remove(self, tune_controller: Any, trial: Any) -> None:
        if trial.config.get("role") != Role.BASELINE:
            super().on_trial_remove(tune_controller, trial)
