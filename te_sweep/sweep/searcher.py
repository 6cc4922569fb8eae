"""The sweep's search: Optuna configurations, each trained on several seeds beside paired
baselines, driven through Ray Tune; and ASHA over the TE trials only.

SweepSearcher is a Tune Searcher over its own in-memory Optuna study (two objectives, both
minimised; the sampler chosen by samplers.py, seeded). Tune asks it for one trial at a time;
it hands out, in this order of priority:
  - the `repeats` no-TE baselines first, one per seed (te_scale 0, the space's fixed
    settings); every configuration is trained on these same seeds, so each TE run has a
    baseline with the same initial weights and batch order, trained once and shared;
  - learning-rate controls (with `lr_control`, grad mode only): once all runs of a
    configuration have finished, a no-TE run per seed whose last layer's learning rate is
    scaled by the mean factor the configuration's feedback applied to that layer's gradients,
    so a sweep can tell a TE effect from a smaller step;
  - the runs of the current configuration, one per seed;
  - else a new configuration from Optuna (`configs` of them in all).
Optuna is told one value per configuration, once all its runs are done, never one noisy value
per seed: the mean over seeds of objective_epochs (fractional epochs to the target, censored
runs at max_epochs + 1) and of te_overhead. A configuration with a run stopped early by the
scheduler is told PRUNED; with a failed run, FAIL. If its failed runs finish after all (an
errored trial continued by `te-sweep resume`), the configuration enters the study again, as a
new COMPLETE trial with the same parameters, so its result is not lost.

How many trials are in flight (running or waiting for resources) is decided at every
suggestion by a ConcurrencyPolicy (concurrency.py), not frozen at launch: on a cluster that
grows, new nodes get trials as they join. The whole searcher (Optuna study included) is
pickled at each Tune experiment snapshot, so `te-sweep resume` continues the same search.

TEOnlyASHA is ASHA that never stops a baseline or a control, nor records them in its rungs:
they are the yardstick.
"""

from __future__ import annotations

import logging
import pickle
import statistics
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ray.tune.schedulers import ASHAScheduler, TrialScheduler
from ray.tune.search import Searcher

from te_sweep.core.outcome import (
    CONFIG_ERROR,
    CONFIG_PRUNED,
    FINAL_STATUSES,
    STATUS_ERROR,
    STATUS_PRUNED,
    configuration_status,
)
from te_sweep.core.reporting import FACTOR_KEY, Role
from te_sweep.core.space import SearchSpace
from te_sweep.sweep.concurrency import ConcurrencyPolicy
from te_sweep.sweep.samplers import make_sampler

OBJECTIVES = ("objective_epochs", "te_overhead")
PRUNED, FAILED = STATUS_PRUNED, STATUS_ERROR  # a run's end besides FINAL_STATUSES
COMPLETE = "complete"  # a configuration told to Optuna with its values
logger = logging.getLogger(__name__)


def derive_seeds(sweep_seed: int, count: int) -> list[int]:
    """`count` well-separated trial seeds from the sweep's seed (stable across versions)."""
    return [int(s) for s in np.random.SeedSequence(sweep_seed).generate_state(count)]


def config_label(number: int) -> str:
    """A configuration's id in the tables: c0000, c0001, ... (Optuna's trial number)."""
    return f"c{number:04d}"


@dataclass
class RunEnd:
    """How one TE run ended, as far as the search needs to know."""

    status: str  # a FINAL_STATUSES value, PRUNED or FAILED
    values: tuple[float, float] | None = None  # OBJECTIVES, for a final status
    factor: float | None = None  # mean gradient factor over its epochs (grad mode)


@dataclass
class Configuration:
    """One Optuna suggestion and its runs, one per seed."""

    number: int  # Optuna's trial number
    params: dict[str, Any]
    distributions: dict[str, Any]
    ends: dict[int, RunEnd] = field(default_factory=dict)  # seed -> how its run ended
    told: str | None = None  # None (not yet), COMPLETE, PRUNED or FAILED
    controls_queued: bool = False


@dataclass(frozen=True)
class Job:
    """One Tune trial to hand out."""

    role: str
    seed: int
    config_number: int | None = None
    last_lr_scale: float = 1.0


class SweepSearcher(Searcher):
    def __init__(
        self,
        space: SearchSpace,
        seed: int,
        repeats: int,
        configs: int,
        threads: int,
        concurrency: ConcurrencyPolicy,
        sampler: str = "auto",
        lr_control: bool = False,
        device: str | None = None,
    ) -> None:
        import optuna

        super().__init__(metric=None, mode=None)
        self.sweep_space = space
        self.threads = threads
        self.device = device  # overrides the space's device (e.g. "cpu" without GPUs)
        self.concurrency = concurrency
        self.lr_control = lr_control
        self.seeds = derive_seeds(seed, repeats)
        self.configs_total = configs
        in_flight_configs = max(1, concurrency.expected_in_flight() // max(1, repeats))
        self.study = optuna.create_study(
            directions=["minimize"] * len(OBJECTIVES),
            sampler=make_sampler(sampler, seed, configs, in_flight_configs, space.optuna_space()),
        )
        self.queue: deque[Job] = deque(Job(Role.BASELINE, s) for s in self.seeds)
        self.controls: deque[Job] = deque()
        self.configurations: dict[int, Configuration] = {}
        self.jobs: dict[str, Job] = {}  # Tune trial id -> its job
        self.live: set[str] = set()  # handed out and not yet complete

    # --- handing out trials -------------------------------------------------------------
    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if len(self.live) >= self.concurrency.limit():
            return None  # Tune asks again at its next step
        job = self._next_job()
        if job is None:
            # None: controls may come. Ray's Searcher.suggest is annotated Optional[Dict], though
            # it documents Searcher.FINISHED (a str) as an answer too.
            return Searcher.FINISHED if self._finished() else None  # type: ignore[return-value]
        self.jobs[trial_id] = job
        self.live.add(trial_id)
        return self._tune_config(job)

    def _next_job(self) -> Job | None:
        if self.controls:
            return self.controls.popleft()
        if not self.queue and len(self.configurations) < self.configs_total:
            self._ask()
        return self.queue.popleft() if self.queue else None

    def _finished(self) -> bool:
        """Every run handed out, and no control can be queued any more."""
        asked_all = len(self.configurations) == self.configs_total
        controls_settled = not self.lr_control or all(
            c.told is not None for c in self.configurations.values()
        )
        return asked_all and not self.queue and not self.controls and controls_settled

    def max_trials(self) -> int:
        """An upper bound on the Tune trials this search hands out (Tune's num_samples)."""
        return trials_bound(self.configs_total, len(self.seeds), self.lr_control)

    def _ask(self) -> None:
        trial = self.study.ask(self.sweep_space.optuna_space())
        self.configurations[trial.number] = Configuration(
            trial.number, dict(trial.params), dict(trial.distributions)
        )
        self.queue.extend(Job(Role.TE, s, trial.number) for s in self.seeds)

    def _tune_config(self, job: Job) -> dict[str, Any]:
        if job.role == Role.TE:
            assert job.config_number is not None  # a TE job belongs to a configuration (_ask)
            params = self.configurations[job.config_number].params
            cfg = self.sweep_space.trial_config(params, job.seed)
        else:
            cfg = self.sweep_space.baseline_config(job.seed).replace(
                last_lr_scale=job.last_lr_scale
            )
        if self.device is not None:
            cfg = cfg.replace(device=self.device)
        label = None if job.config_number is None else config_label(job.config_number)
        return {
            "trial": cfg.to_dict(),
            "role": job.role,
            "config_id": label,
            "threads": self.threads,
        }

    # --- hearing back -------------------------------------------------------------------
    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        self.live.discard(trial_id)
        job = self.jobs.get(trial_id)
        if job is None or job.role != Role.TE:
            return
        assert job.config_number is not None  # a TE job belongs to a configuration (_ask)
        configuration = self.configurations[job.config_number]
        configuration.ends[job.seed] = run_end(result, error)
        if len(configuration.ends) == len(self.seeds):
            self._tell(configuration)

    def _tell(self, configuration: Configuration) -> None:
        import optuna

        ends = list(configuration.ends.values())
        status = configuration_status([end.status for end in ends], len(self.seeds))
        if status == CONFIG_ERROR:
            state, told, values = optuna.trial.TrialState.FAIL, FAILED, None
        elif status == CONFIG_PRUNED:
            state, told, values = optuna.trial.TrialState.PRUNED, PRUNED, None
        else:  # every seed has ended (on_trial_complete), so CONFIG_COMPLETE
            state, told = optuna.trial.TrialState.COMPLETE, COMPLETE
            objectives = [end.values for end in ends if end.values is not None]
            assert len(objectives) == len(ends)  # a final status carries its values (run_end)
            values = [statistics.fmean(o[i] for o in objectives) for i in range(len(OBJECTIVES))]
        if configuration.told is None:
            # By number: the study itself knows its running trials (a restored searcher, too).
            self.study.tell(configuration.number, values, state=state)
            configuration.told = told
        elif configuration.told == FAILED and values is not None:
            self.study.add_trial(
                optuna.trial.create_trial(
                    params=configuration.params,
                    distributions=configuration.distributions,
                    values=values,
                    user_attrs={
                        "config_id": config_label(configuration.number),
                        "completed_after_failure": True,
                    },
                )
            )
            configuration.told = COMPLETE
            logger.info(
                "configuration %s finished after an earlier failure; told to Optuna "
                "as a new complete trial",
                config_label(configuration.number),
            )
        if values is not None and self.lr_control and not configuration.controls_queued:
            self._queue_controls(configuration)

    def _queue_controls(self, configuration: Configuration) -> None:
        factors = [end.factor for end in configuration.ends.values() if end.factor is not None]
        if not factors:
            return  # paper mode: the feedback is not a gradient factor, there is no control
        scale = statistics.fmean(factors)
        self.controls.extend(Job(Role.CONTROL, s, configuration.number, scale) for s in self.seeds)
        configuration.controls_queued = True

    # --- Tune's snapshots ---------------------------------------------------------------
    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as file:
            pickle.dump(self.__dict__, file)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as file:
            self.__dict__.update(pickle.load(file))


def trials_bound(configs: int, repeats: int, lr_control: bool) -> int:
    """Tune trials a sweep hands out at most: a baseline per seed, a TE run per configuration
    and seed, and with LR controls as many again (paper-mode configurations get none)."""
    return repeats + configs * repeats * (2 if lr_control else 1)


def run_end(result: dict[str, Any] | None, error: bool) -> RunEnd:
    """What a TE run's last report says about how it ended."""
    if error or not result:
        return RunEnd(FAILED)
    if result.get("trial_status") not in FINAL_STATUSES:
        return RunEnd(PRUNED)  # still "running": stopped early by the scheduler
    epochs, overhead = (float(result[m]) for m in OBJECTIVES)
    return RunEnd(result["trial_status"], (epochs, overhead), result.get(FACTOR_KEY))


class TEOnlyASHA(ASHAScheduler):
    """ASHA over the TE trials; baselines and controls run to their end, outside the rungs."""

    @staticmethod
    def _yardstick(trial: Any) -> bool:
        return trial.config.get("role") in (Role.BASELINE, Role.CONTROL)

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        if not self._yardstick(trial):
            super().on_trial_add(tune_controller, trial)

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        if self._yardstick(trial):
            return TrialScheduler.CONTINUE
        return super().on_trial_result(tune_controller, trial, result)

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> None:
        if not self._yardstick(trial):
            super().on_trial_complete(tune_controller, trial, result)

    def on_trial_remove(self, tune_controller: Any, trial: Any) -> None:
        if not self._yardstick(trial):
            super().on_trial_remove(tune_controller, trial)
