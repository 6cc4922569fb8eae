"""Which Optuna sampler a sweep uses (`--sampler auto|tpe|nsga2|random`), and how it is set up.

Why this exists: the sweep asked Optuna for every TE trial's configuration with a plain
`TPESampler(seed=seed)`, whose cost per suggestion grows with the number of finished trials
(its Parzen estimators have one kernel per finished trial, and the log-int `window` is
evaluated through a per-element Python loop in optuna's truncated-normal code). A sweep must
scale to 10000 trials with suggestion p95 < 0.2 s. bench/samplers.py measures front quality
and cost on a simulated sweep (the default space, two minimised objectives, 48 in flight,
told out of order); its results are in bench/samplers_results.md. In short (one core of a
2-core AMD EPYC VM, optuna 5.0.0):

  RESULTS_PLACEHOLDER

So `auto` is TPE for small sweeps, where it finds good configurations soonest and costs little,
and NSGA-II from AUTO_TPE_MAX_TRIALS + 1 trials on, where it is as good or better at a
hundredth of the cost and stays cheap at 10000. Optuna is imported lazily: this module is
imported by the CLI, which must start fast and stay torch- and optuna-free until a sweep runs.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from optuna.samplers import BaseSampler


class SamplerName(str, enum.Enum):
    AUTO = "auto"
    TPE = "tpe"
    NSGA2 = "nsga2"
    RANDOM = "random"


SAMPLER_CHOICES = tuple(s.value for s in SamplerName)

# Largest sweep (TE trials) that `auto` gives to TPE. Measured: TPE's suggestion p95 is about
# 0.1 s at 500 finished trials and 0.2 s (the target) at 1000, and by 1000 trials NSGA-II's
# front is as good as TPE's; below that TPE's front is better (see the module docstring).
AUTO_TPE_MAX_TRIALS = 500

# NSGA-II population: one generation per `in_flight` trials. Measured at 1000 trials with 8, 48
# and 128 in flight: a population of about in_flight is the best or within noise of it;
# half of in_flight makes the front unstable across seeds (parents are chosen while half the
# generation is still running), and several times in_flight spends the trials on fewer
# generations (at 10 * in_flight it is no better than random sampling).
NSGA2_POPULATION_PER_IN_FLIGHT = 1
# Floor for small clusters (a laptop runs 2 trials at once): with 8 in flight, 16 was as good
# as 8 and steadier across seeds; 4 was unstable. NSGAIISampler needs at least 2 (its
# crossover's parents).
NSGA2_MIN_POPULATION = 16


def resolve_sampler(name: str, total_trials: int) -> SamplerName:
    """The concrete sampler `name` stands for in a sweep of `total_trials` TE trials.

    `auto` is TPE up to AUTO_TPE_MAX_TRIALS trials, NSGA-II above; other names stand for
    themselves. Raises ValueError for an unknown name.
    """
    try:
        choice = SamplerName(name)
    except ValueError:
        raise ValueError(f"unknown sampler {name!r}; choose one of "
                         f"{', '.join(SAMPLER_CHOICES)}") from None
    if choice is not SamplerName.AUTO:
        return choice
    return SamplerName.TPE if total_trials <= AUTO_TPE_MAX_TRIALS else SamplerName.NSGA2


def nsga2_population_size(total_trials: int, in_flight: int) -> int:
    """NSGA-II generation size: in_flight trials, at least NSGA2_MIN_POPULATION.

    total_trials does not enter: measured at 1000 and 10000 trials, the best population
    followed in_flight, not the sweep's size (bench/samplers_results.md).
    """
    return max(NSGA2_MIN_POPULATION, NSGA2_POPULATION_PER_IN_FLIGHT * max(1, in_flight))


def make_sampler(name: str, seed: int, total_trials: int, in_flight: int) -> "BaseSampler":
    """A seeded sampler for a sweep of `total_trials` TE trials with `in_flight` at once.

    The same (name, seed, total_trials, in_flight) and the same order of asks and tells give the
    same suggestions. Raises ValueError for an unknown name.
    """
    import optuna

    choice = resolve_sampler(name, total_trials)
    if choice is SamplerName.TPE:
        # constant_liar: running trials count as bad ones, so the dozens of trials asked
        # before any of them finishes spread out instead of piling onto one spot (measured at
        # 1000 trials with 48 in flight: front hypervolume 0.94 with it, 0.90 without). It is
        # optuna 5's default; set explicitly because earlier optunas defaulted to False.
        # multivariate stays off (optuna's default for several objectives): measured no better
        # and no cheaper here.
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True)
    if choice is SamplerName.NSGA2:
        # Default operators (uniform crossover, random-resampling mutation): SBX crossover
        # measured the same front at 1000 trials.
        return optuna.samplers.NSGAIISampler(
            seed=seed, population_size=nsga2_population_size(total_trials, in_flight))
    return optuna.samplers.RandomSampler(seed=seed)
