"""Which Optuna sampler a sweep uses (`--sampler auto|tpe|nsga2|random|grid`), and how it is set up.

Why: the sweep asked Optuna for every TE trial's configuration with a plain
`TPESampler(seed=seed)`. A TPE suggestion costs more the more trials have finished: it builds
one kernel per finished trial, and for the log-int `window` optuna computes Gaussian masses in
a Python loop, one element at a time. A sweep must scale to 10000 trials with suggestion
p95 < 0.2 s and still find a good Pareto front. bench/samplers.py simulates the sweep (the
default space, both objectives minimised, 48 trials in flight, finishing out of order) and
measures the hypervolume of the noise-free front each sampler found (1.0 = the best front
possible) and what it costs. bench/samplers_results.md has the full output. One core of a
2-core AMD EPYC VM, optuna 5.0.0, 3 seeds (10 where noted):

  suggestion p95, s      500    1000    2000    3000   10000 finished trials
    TPE                 0.12    0.20    0.34    0.46    0.86   (a study filled with trials)
    NSGA-II                -   0.002       -       -   0.028   (its own sweeps)
  front hypervolume        300 trials (10 seeds)  1000 (10 seeds)   10000 trials
    TPE                    0.77 [0.40, 0.91]      0.89 (3 seeds)    not run (cost: ~1 h/seed)
    NSGA-II, pop 48        0.80                   0.89              0.981 [0.974, 0.985]
    random                 0.82                   0.87              0.950 [0.933, 0.960]

TPE's front was never better than NSGA-II's. Below 1000 trials it was no better than random
sampling, and from 1000 trials on it fails the cost target. At 1000 (seeds 0-2) the HVs were
TPE 0.887, NSGA-II 0.885, random 0.858. TPE drifts to the cheap corner of the space: in the 5
seeds inspected at 300 trials, the median pair_fraction of its last 100 suggestions was 0.03
to 0.06, against 0.14 to 0.16 for random sampling. In 3 of 10 seeds it hardly explored the
fast end at all (front HV 0.40 to 0.66). Here te_overhead is nearly noise-free and easy to push
down, while the epoch count is mostly seed noise, so the trials that look non-dominated are
the cheap ones, and TPE keeps sampling near them. The real sweep has the same mix, and its
epoch count is even coarser (an integer, censored at max_epochs + 1). NSGA-II ties random
sampling up to a few hundred trials, because its first generations are random draws. It does
better from 1000 trials on, and its suggestions stay under 0.03 s at 10000. So `auto` means
NSGA-II at every size.

`grid` is not a search: it trains every combination of a space whose searched settings are all
`{choices: [...]}` once per seed (Optuna's GridSampler, in an order drawn from the seed). It is
for a designed comparison of a few settings, replicated, such as RESULTS.md's.

Optuna is imported lazily, so the CLI stays fast to start until a sweep actually runs.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optuna.samplers import BaseSampler


class SamplerName(str, enum.Enum):
    AUTO = "auto"
    TPE = "tpe"
    NSGA2 = "nsga2"
    RANDOM = "random"
    GRID = "grid"  # every combination of categorical choices; not a search


SAMPLER_CHOICES = tuple(s.value for s in SamplerName)

# What `auto` means: NSGA-II at every sweep size measured, from 100 to 10000 TE trials (see the
# module docstring). Its cost grows linearly, about 2 microseconds per finished trial per
# suggestion (from Python scans of every trial in optuna's GA base class), so p95 would reach
# 0.2 s at roughly 70000 trials. That is beyond anything measured.
AUTO_SAMPLER = SamplerName.NSGA2

# NSGA-II population: one generation per `in_flight` trials. Measured over 10 seeds at 1000
# trials, with 8, 48 and 128 in flight, and over 3 seeds at 10000 trials with 48: a population
# of about in_flight was the best or within noise of the best (10000 trials with 48 in flight:
# HV 0.981 at 48, against 0.951 / 0.976 / 0.959 / 0.969 at 24 / 96 / 192 / 480). Half of
# in_flight made the front unstable across seeds, because parents get picked while half of
# their generation is still running. Several times in_flight spends the trials on too few
# generations.
NSGA2_POPULATION_PER_IN_FLIGHT = 1
# Lower bound for small clusters (a laptop runs 2 trials at once). With 8 in flight: 16 gave
# HV 0.897, 8 gave 0.891, and 4 was unstable (0.84, one seed 0.57). NSGAIISampler itself needs
# at least 2, the parents of a crossover.
NSGA2_MIN_POPULATION = 16


def resolve_sampler(name: str, total_trials: int) -> SamplerName:
    """The concrete sampler that `name` stands for in a sweep of `total_trials` TE trials.

    `auto` is AUTO_SAMPLER at every size. total_trials is part of the signature so that a
    size rule can go here if a measurement ever shows one; at 100 to 10000 trials, none helped.
    Other names stand for themselves. Raises ValueError for an unknown name.
    """
    try:
        choice = SamplerName(name)
    except ValueError:
        raise ValueError(
            f"unknown sampler {name!r}; choose one of {', '.join(SAMPLER_CHOICES)}"
        ) from None
    return AUTO_SAMPLER if choice is SamplerName.AUTO else choice


def nsga2_population_size(total_trials: int, in_flight: int) -> int:
    """NSGA-II generation size: `in_flight` trials, never fewer than NSGA2_MIN_POPULATION.

    total_trials has no effect: at 1000 and at 10000 trials, the best population tracked
    in_flight and not the size of the sweep (bench/samplers_results.md).
    """
    return max(NSGA2_MIN_POPULATION, NSGA2_POPULATION_PER_IN_FLIGHT * max(1, in_flight))


def grid_size(space: dict[str, Any]) -> int | None:
    """How many configurations a grid over `space` (name -> optuna distribution) has, or None
    when a setting is a range (a grid needs every searched setting to be a list of choices)."""
    from optuna.distributions import CategoricalDistribution

    size = 1
    for distribution in space.values():
        if not isinstance(distribution, CategoricalDistribution):
            return None
        size *= len(distribution.choices)
    return size


def make_sampler(
    name: str, seed: int, total_trials: int, in_flight: int, space: dict[str, Any] | None = None
) -> BaseSampler:
    """A seeded sampler for a sweep of `total_trials` TE trials, with `in_flight` at once.

    Deterministic: the same arguments and the same order of asks and tells give the same
    suggestions (checked for every sampler by `bench/samplers.py --check-determinism`, and
    across processes). Raises ValueError for an unknown name.
    """
    import optuna

    choice = resolve_sampler(name, total_trials)
    if choice is SamplerName.GRID:
        if space is None or grid_size(space) is None:
            raise ValueError("the grid sampler needs every searched setting as {choices: [...]}")
        grid = {n: list(d.choices) for n, d in space.items()}
        from te_sweep.sweep.grid_sampler import AskTellGridSampler

        return AskTellGridSampler(grid, seed=seed)
    if choice is SamplerName.TPE:
        # constant_liar: running trials count as bad ones, so the dozens of trials asked before
        # any has finished spread out rather than pile onto one spot. Measured at 1000 trials
        # with 48 in flight: HV 0.75 with it against 0.67 without after 100 trials, and
        # 0.89 / 0.88 at the end. Optuna 5 turns it on by default; it is set here explicitly
        # because earlier versions default to False. multivariate=True measured worse (0.85)
        # and no cheaper at 10000 trials (p95 0.83 s), so it keeps optuna's default (off).
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True)
    if choice is SamplerName.NSGA2:
        # Default operators: uniform crossover, and mutation that redraws the parameter at
        # random. SBXCrossover measured the same at 1000 trials (0.896 against 0.895 over 10
        # seeds) and worse at 10000 (0.969 against 0.981).
        return optuna.samplers.NSGAIISampler(
            seed=seed, population_size=nsga2_population_size(total_trials, in_flight)
        )
    return optuna.samplers.RandomSampler(seed=seed)
