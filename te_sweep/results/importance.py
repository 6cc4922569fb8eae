"""The report's parameter-importance figure: PED-ANOVA importance of each searched parameter
for each objective, drawn only where the sweep has enough configurations for it to mean
something (MIN_IMPORTANCE_CONFIGS, measured) and otherwise withheld with the reason.
Optuna is imported only when the figure is drawn.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # no display needed (as figures.py)
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from te_sweep.core.outcome import CONFIG_COMPLETE
from te_sweep.core.space import SearchSpace
from te_sweep.results.figures import Rows, empty

if TYPE_CHECKING:
    import optuna

# PED-ANOVA importance is drawn from this many complete configurations up. Measured with
# `bench/report_scale.py --importance` (2026-12-06, 2-core Xeon, optuna's defaults: top 10%
# against all): synthetic sweeps of n configurations x 3 seeds in which te_scale alone sets
# the epochs to target (up to 30% or 10% faster, or not at all) and pair_fraction alone the
# overhead; 40 independent sweeps per n; the share whose epochs importance ranks te_scale
# first (chance: 0.2, five parameters), and the mean top score with no effect:
#     n     30% effect   10% effect   no effect   top score, no effect
#     4        0.60         0.47         0.28          0.40
#     8        0.60         0.50         0.33          0.39
#     16       0.75         0.47         0.20          0.68
#     32       0.93         0.57         0.25          0.56
#     41       1.00         0.65           -             -
#     50       1.00         0.72           -             -
#     64       1.00         0.95         0.20          0.48
#     128      1.00         0.97         0.30          0.50
#     256      1.00         1.00         0.12          0.49
# Below 10 configurations the top 10% is one configuration: the ranking then hardly depends
# on the data (pairs of sweeps with no effect agree at Spearman 0.8) and both objectives can
# get the same bars. 64 is the least n measured where a 10% effect is found in 95% of
# sweeps, and its top 10% holds 7 configurations (Optuna's documentation advises at least 5).
# The scores are normalised to sum to 1, so a top bar near 0.5 appears even when nothing
# matters: the caption says so.
MIN_IMPORTANCE_CONFIGS = 64
# Optuna's note when a `target` is given: "computes the importances ... to achieve low
# `target` values". Both objectives are minimised, so it is expected; every other warning
# (e.g. "Target and region quantiles select the same set of trials") is let through.
EXPECTED_OPTUNA_NOTE = r".*to achieve low `target` values.*"
OBJECTIVES = (("objective_epochs", "epochs to target"), ("te_overhead", "TE overhead"))


def importance_withheld(configs: Rows, space: SearchSpace) -> str | None:
    """Why parameter importance is not shown, in one sentence, or None when it is: it needs
    MIN_IMPORTANCE_CONFIGS complete configurations (see there: below that, the measured
    ranking is mostly noise) and 2 searched parameters."""
    done = sum(c["status"] == CONFIG_COMPLETE for c in configs)
    if len(space.params) < 2:
        return (
            f"Parameter importance is not shown: it compares searched parameters, and "
            f"this sweep searched {len(space.params)}."
        )
    if done < MIN_IMPORTANCE_CONFIGS:
        return (
            f"Parameter importance is not shown: {done} configurations finished all "
            f"their runs, and it needs at least {MIN_IMPORTANCE_CONFIGS}: with fewer, "
            "its top 10% holds too few configurations and even a parameter that matters "
            "is often not ranked first."
        )
    return None


def _objective(index: int) -> Callable[[optuna.trial.FrozenTrial], float]:
    """The importance target: a trial's value of objective `index`."""
    return lambda trial: trial.values[index]


def importance_scores(done: Rows, space: SearchSpace) -> dict[str, dict[str, float]]:
    """PED-ANOVA importance of each searched parameter for each objective (OBJECTIVES),
    from the complete configurations `done`, with Optuna's defaults (top 10% against all)."""
    import optuna

    study = optuna.create_study(directions=["minimize"] * len(OBJECTIVES))
    distributions = space.optuna_space()
    study.add_trials(
        [
            optuna.trial.create_trial(
                params={n: c[f"param_{n}"] for n in space.params},
                distributions=distributions,
                values=[c[key] for key, _ in OBJECTIVES],
            )
            for c in done
        ]
    )
    scores = {}
    for index, (key, _) in enumerate(OBJECTIVES):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            warnings.filterwarnings("ignore", EXPECTED_OPTUNA_NOTE, UserWarning)
            scores[key] = optuna.importance.get_param_importances(
                study,
                evaluator=optuna.importance.PedAnovaImportanceEvaluator(),
                target=_objective(index),
            )
    return scores


def importances(configs: Rows, space: SearchSpace) -> Figure:
    """Optuna's PED-ANOVA importance of each searched parameter, for each objective: how
    much each parameter's distribution differs between the best configurations and all
    (Watanabe et al. 2023; optuna's fANOVA would need scikit-learn). Drawn only where the
    data can support it (importance_withheld)."""
    fig, axes = plt.subplots(1, 2, figsize=(7, 2.8))
    reason = importance_withheld(configs, space)
    if reason:
        axes[1].axis("off")
        return empty(fig, axes[0], reason)
    scores = importance_scores([c for c in configs if c["status"] == CONFIG_COMPLETE], space)
    for ax, (key, objective) in zip(axes, OBJECTIVES, strict=True):
        names = list(scores[key])[::-1]
        ax.barh(names, [scores[key][n] for n in names])
        ax.set_title(objective, fontsize=9)
        ax.set_xlim(0, 1)
    fig.suptitle("Parameter importance (PED-ANOVA, Optuna)")
    fig.tight_layout()
    return fig
