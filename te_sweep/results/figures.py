"""The report's figures, one function each, from the Parquet tables alone (matplotlib).

Each function takes rows of configs.parquet / trials.parquet / epochs.parquet (lists of
dicts, as `pyarrow.Table.to_pylist()` gives them) and returns a matplotlib Figure; report.py
only arranges them. A figure with nothing to show says so in its own area instead of failing,
so a report of a crashed or tiny sweep still renders. Every figure stays the same size and
draws in at most about a second at 10,000 configurations: no artist or label per trial or per
point (one barh per trial made the timeline alone take 40 s there). The Pareto and
parameter figures record which configuration each of their best points is (`named_points`),
so report.py can let a reader hover a point to see it (`point_areas`: the points' pixel
centres in the saved PNG). Matplotlib is imported with the Agg backend: no display is
needed.
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import StepPatch
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from te_sweep.results.configs import CONFIG_COMPLETE
from te_sweep.core.reporting import Role
from te_sweep.core.space import Param, SearchSpace

Rows = list[dict[str, Any]]
BEST_CURVES = 3  # configurations whose learning curves are drawn
MAX_INTERVALS = 40  # configurations in the interval plot (the best ranked)
ROLE_COLOURS = {Role.TE: "tab:blue", Role.BASELINE: "tab:grey", Role.CONTROL: "tab:orange"}
ROLE_NAMES = {Role.TE: "TE", Role.BASELINE: "baseline", Role.CONTROL: "LR control"}
OTHER_COLOUR = "tab:purple"  # a role the report does not know (an old or damaged table)
CROWDED = 1000  # configurations above which points are drawn smaller and fainter
NAMED_POINTS = 100  # configurations a reader can hover on a figure: the best ranked (+ front)
POINT_RADIUS_PX = 5  # of a hover area in the saved PNG
MAX_PLACE_ROWS = 24  # the timeline has one row per GPU up to this many, else one per node
MAX_ROW_LABELS = 24  # rows of the timeline's heat map that are labelled (evenly spaced)
LOG_DECADES_13 = 2.5  # a log axis over up to this many decades is labelled at 1 and 3
TIMELINE_BINS = 240  # time columns of the timeline's heat map
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


def _empty(fig: Figure, ax: Any, message: str) -> Figure:
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=12, wrap=True)
    return fig


# ----------------------------------------------------------------------------- hover areas
@dataclass(frozen=True)
class NamedPoint:
    """A plotted point and the words that name it (what a reader sees on hovering)."""

    ax: Any
    x: float
    y: float
    title: str


@dataclass(frozen=True)
class Area:
    """A named point's centre in the saved PNG, in pixels from its top left corner."""

    x: float
    y: float
    radius: float
    title: str


def describe(c: dict[str, Any]) -> str:
    """One configuration in a line: its id, rank, speedup and objectives."""
    parts = [c["config_id"]]
    if c.get("rank") is not None:
        parts.append(f"rank {c['rank']}")
    if c.get("speedup_mean") is not None:
        parts.append(f"speedup {c['speedup_mean']:.3g} [{c['speedup_ci_low']:.3g}, "
                     f"{c['speedup_ci_high']:.3g}]")
    if c.get("objective_epochs") is not None:
        parts.append(f"{c['objective_epochs']:.3g} epochs, overhead "
                     f"{c['te_overhead'] * 100:.3g}%")
    return ", ".join(parts)


def _name_points(fig: Figure, points: list[NamedPoint]) -> None:
    fig.te_sweep_points = [*named_points(fig), *points]


def named_points(fig: Figure) -> list[NamedPoint]:
    """The points a figure function named (empty for the other figures)."""
    return getattr(fig, "te_sweep_points", [])


def point_areas(fig: Figure, dpi: float) -> list[Area]:
    """The named points' centres in the PNG the figure was saved as at `dpi` (call after
    saving, so the axes' limits are final): display pixels at the figure's own dpi, scaled
    to the saved dpi, y flipped (PNG rows count from the top)."""
    scale = dpi / fig.dpi
    height = fig.get_figheight() * dpi
    areas = []
    for p in named_points(fig):
        x, y = p.ax.transData.transform((p.x, p.y))
        areas.append(Area(round(x * scale, 1), round(height - y * scale, 1), POINT_RADIUS_PX,
                          p.title))
    return areas


def _best_named(configs: Rows) -> list[dict[str, Any]]:
    """The configurations worth naming on a crowded figure: the NAMED_POINTS best ranked and
    every Pareto-front configuration."""
    ranked = sorted((c for c in configs if c.get("rank") is not None), key=lambda c: c["rank"])
    chosen = {c["config_id"]: c for c in ranked[:NAMED_POINTS]}
    chosen.update({c["config_id"]: c for c in configs if c.get("pareto")})
    return list(chosen.values())


# ----------------------------------------------------------------------------- figures
def pareto_front(configs: Rows, trials: Rows) -> Figure:
    """Mean epochs to target against TE overhead, per configuration; the front and the
    baselines (overhead 0) marked."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    done = [c for c in configs if c["status"] == CONFIG_COMPLETE]
    if not done:
        return _empty(fig, ax, "no configuration finished all its runs")
    front = sorted((c for c in done if c["pareto"]), key=lambda c: c["objective_epochs"])
    ax.scatter([c["te_overhead"] * 100 for c in done], [c["objective_epochs"] for c in done],
               s=18 if len(done) <= CROWDED else 6, alpha=0.6, label="configurations")
    ax.plot([c["te_overhead"] * 100 for c in front], [c["objective_epochs"] for c in front],
            "o-", color="tab:red", label="Pareto front")
    base = [t["objective_epochs"] for t in trials
            if t["role"] == Role.BASELINE and t["objective_epochs"] is not None]
    if base:
        mean = sum(base) / len(base)
        ax.scatter([0] * len(base), base, marker="x", color="black", label="baselines (seeds)")
        ax.axhline(mean, color="black", linestyle=":", linewidth=1,
                   label=f"baseline mean {mean:.2f}")
    ax.set_xlabel("TE overhead (% of the rest of training time)")
    ax.set_ylabel("epochs to target (mean over seeds;\ncensored runs at max_epochs + 1)")
    ax.set_title("Objectives of the configurations")
    ax.legend(fontsize=8)
    _name_points(fig, [NamedPoint(ax, c["te_overhead"] * 100, c["objective_epochs"],
                                  describe(c))
                       for c in _best_named(done)])
    fig.tight_layout()
    return fig


def speedup_intervals(configs: Rows) -> Figure:
    """Paired speedup per configuration with its 95% interval, best ranked first."""
    ranked = sorted((c for c in configs if c["rank"] is not None),
                    key=lambda c: c["rank"])[:MAX_INTERVALS]
    fig, ax = plt.subplots(figsize=(7, max(2.5, 0.22 * len(ranked) + 1.2)))
    if not ranked:
        return _empty(fig, ax, "no configuration has a paired estimate")
    ys = list(range(len(ranked)))[::-1]
    for y, c in zip(ys, ranked, strict=True):
        colour = "tab:green" if c["beats_baselines"] else "tab:blue"
        ax.plot([c["speedup_ci_low"], c["speedup_ci_high"]], [y, y], color=colour)
        ax.plot(c["speedup_mean"], y, "o", color=colour, markersize=4)
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_yticks(ys, [f"{c['config_id']} ({len(c['seeds'])} seeds)" for c in ranked],
                  fontsize=7)
    ax.set_xlabel("paired speedup: baseline epochs / TE epochs (geometric mean, 95% "
                  "bootstrap interval)")
    ax.set_title("Speedup against the baseline of the same seed (green: beats it)")
    fig.tight_layout()
    return fig


def _plain_number(value: float, _position: Any = None) -> str:
    """A tick label as a plain number (0.1, 1, 300), never 10^-1 or 2x10^-1."""
    return f"{value:g}"


def _log_ticks(param: Param) -> tuple[float, ...]:
    """Where in each decade a log axis is labelled: 1, 2, 5 over a decade or less, 1 and 3
    over up to LOG_DECADES_13 decades, else 1 only: at most about 6 labels."""
    decades = math.log10(param.high / param.low)
    return (1.0, 2.0, 5.0) if decades <= 1 else (1.0, 3.0) if decades <= LOG_DECADES_13 \
        else (1.0,)


def _parameter_axis(ax: Any, param: Param, values: list[Any]) -> list[float]:
    """Set up the x axis of one searched parameter and return the values' positions on it:
    a categorical's choice index (labelled by the choices), a log parameter on a log scale
    with plain-number labels at the decades (no crowded minor labels), always over the
    searched range so the axes of different sweeps compare."""
    if param.kind == "categorical":
        labels = [str(v) for v in param.choices]
        ax.set_xticks(range(len(labels)), labels)
        ax.set_xlim(-0.5, len(labels) - 0.5)
        return [labels.index(str(v)) for v in values]
    if param.log:
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=_log_ticks(param), numticks=12))
        ax.xaxis.set_major_formatter(FuncFormatter(_plain_number))
        ax.xaxis.set_minor_formatter(NullFormatter())
    margin = (param.high / param.low) ** 0.03 if param.log else (param.high - param.low) * 0.03
    ax.set_xlim(*((param.low / margin, param.high * margin) if param.log
                  else (param.low - margin, param.high + margin)))
    return [float(v) for v in values]


def _intervals(ax: Any, xs: list[float], configs: Rows, alpha: float) -> None:
    """Each configuration's 95% interval as a vertical bar at its x: one line broken by NaNs
    (gid "intervals"), which draws 10,000 bars in milliseconds where errorbar takes seconds."""
    n = len(xs)
    x = np.repeat(np.asarray(xs, dtype=float), 3)
    y = np.full(3 * n, np.nan)
    y[0::3] = [c["speedup_ci_low"] for c in configs]
    y[1::3] = [c["speedup_ci_high"] for c in configs]
    x[2::3] = np.nan
    line, = ax.plot(x, y, color="tab:blue", linewidth=0.8, alpha=alpha)
    line.set_gid("intervals")


def speedup_by_parameter(configs: Rows, space: SearchSpace) -> Figure:
    """The paired speedup (with its 95% interval) against each searched parameter."""
    names = list(space.params)
    cols = min(2, len(names))
    rows_n = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(7, 2.8 * rows_n), squeeze=False)
    estimated = [c for c in configs if c["speedup_mean"] is not None]
    if not estimated:
        for ax in list(axes.flat)[1:]:
            ax.axis("off")
        return _empty(fig, axes.flat[0], "no configuration has a paired estimate")
    named = {c["config_id"] for c in _best_named(estimated)}
    ys = [c["speedup_mean"] for c in estimated]
    alpha = 0.6 if len(estimated) <= CROWDED else 0.2
    for ax, name in zip(axes.flat, names, strict=False):
        xs = _parameter_axis(ax, space.params[name], [c[f"param_{name}"] for c in estimated])
        _intervals(ax, xs, estimated, alpha)
        ax.plot(xs, ys, "o", markersize=3, color="tab:blue", alpha=alpha, linestyle="none")
        ax.axhline(1.0, color="black", linewidth=1)
        ax.set_xlabel(name)
        ax.set_ylabel("paired speedup")
        _name_points(fig, [NamedPoint(ax, x, c["speedup_mean"], describe(c))
                           for x, c in zip(xs, estimated, strict=True) if c["config_id"] in named])
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.suptitle("Paired speedup against each searched parameter")
    fig.tight_layout()
    return fig


def learning_curves(configs: Rows, trials: Rows, epochs: Rows, target_metric: str,
                    target: float) -> Figure:
    """The target metric per epoch of the best configurations' runs (solid) beside the
    baselines of the same seeds (dashed). Only the drawn runs' epochs are needed: report.py
    reads just those (`curve_trial_ids`)."""
    best = sorted((c for c in configs if c["rank"] is not None),
                  key=lambda c: c["rank"])[:BEST_CURVES]
    fig, axes = plt.subplots(1, max(1, len(best)), figsize=(7, 3.2), squeeze=False)
    if not best:
        return _empty(fig, axes[0][0], "no configuration has a paired estimate")
    curve: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for e in epochs:
        if e[target_metric] is not None:
            curve[e["trial_id"]].append((e["epoch"], e[target_metric]))
    baseline_of = {t["seed"]: t["trial_id"] for t in trials if t["role"] == Role.BASELINE}
    for ax, c in zip(axes[0], best, strict=True):
        runs = [t for t in trials if t["role"] == Role.TE and t["config_id"] == c["config_id"]]
        for i, run in enumerate(sorted(runs, key=lambda t: t["seed"])):
            colour = f"C{i % 10}"
            for trial_id, style in ((run["trial_id"], "-"),
                                    (baseline_of.get(run["seed"]), "--")):
                points = sorted(curve.get(trial_id, []))
                if points:
                    ax.plot(*zip(*points, strict=True), style, color=colour, linewidth=1)
        ax.axhline(target, color="black", linewidth=0.8, linestyle=":")
        ax.set_title(f"{c['config_id']} (rank {c['rank']})", fontsize=9)
        ax.set_xlabel("epoch")
    axes[0][0].set_ylabel(f"{target_metric} (solid: TE, dashed: baseline)")
    fig.suptitle("Learning curves of the best configurations, one colour per seed")
    fig.tight_layout()
    return fig


def curve_trial_ids(configs: Rows, trials: Rows) -> set[str]:
    """The trials whose epochs learning_curves draws: the best configurations' TE runs and
    every baseline."""
    best = {c["config_id"] for c in sorted((c for c in configs if c["rank"] is not None),
                                           key=lambda c: c["rank"])[:BEST_CURVES]}
    return {t["trial_id"] for t in trials
            if t["role"] == Role.BASELINE or (t["role"] == Role.TE and t["config_id"] in best)}


# ----------------------------------------------------------------------------- importance
def importance_withheld(configs: Rows, space: SearchSpace) -> str | None:
    """Why parameter importance is not shown, in one sentence, or None when it is: it needs
    MIN_IMPORTANCE_CONFIGS complete configurations (see there: below that, the measured
    ranking is mostly noise) and 2 searched parameters."""
    done = sum(c["status"] == CONFIG_COMPLETE for c in configs)
    if len(space.params) < 2:
        return (f"Parameter importance is not shown: it compares searched parameters, and "
                f"this sweep searched {len(space.params)}.")
    if done < MIN_IMPORTANCE_CONFIGS:
        return (f"Parameter importance is not shown: {done} configurations finished all "
                f"their runs, and it needs at least {MIN_IMPORTANCE_CONFIGS}: with fewer, "
                "its top 10% holds too few configurations and even a parameter that matters "
                "is often not ranked first.")
    return None


def importance_scores(done: Rows, space: SearchSpace) -> dict[str, dict[str, float]]:
    """PED-ANOVA importance of each searched parameter for each objective (OBJECTIVES),
    from the complete configurations `done`, with Optuna's defaults (top 10% against all)."""
    import optuna

    study = optuna.create_study(directions=["minimize"] * len(OBJECTIVES))
    distributions = space.optuna_space()
    study.add_trials([optuna.trial.create_trial(
        params={n: c[f"param_{n}"] for n in space.params},
        distributions=distributions, values=[c[key] for key, _ in OBJECTIVES])
        for c in done])
    scores = {}
    for index, (key, _) in enumerate(OBJECTIVES):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            warnings.filterwarnings("ignore", EXPECTED_OPTUNA_NOTE, UserWarning)
            scores[key] = optuna.importance.get_param_importances(
                study, evaluator=optuna.importance.PedAnovaImportanceEvaluator(),
                target=lambda t, i=index: t.values[i])
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
        return _empty(fig, axes[0], reason)
    scores = importance_scores([c for c in configs if c["status"] == CONFIG_COMPLETE], space)
    for ax, (key, objective) in zip(axes, OBJECTIVES, strict=True):
        names = list(scores[key])[::-1]
        ax.barh(names, [scores[key][n] for n in names])
        ax.set_title(objective, fontsize=9)
        ax.set_xlim(0, 1)
    fig.suptitle("Parameter importance (PED-ANOVA, Optuna)")
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- timeline
@dataclass(frozen=True)
class Timed:
    """The timed trials as arrays: seconds since the first start, role and place."""

    starts: np.ndarray
    ends: np.ndarray
    roles: list[str]
    places: list[str]  # "node" or "node gpu G"


def _timed(trials: Rows) -> Timed | None:
    timed = [t for t in trials if t["started_at"] and t["finished_at"]]
    if not timed:
        return None
    t0 = min(t["started_at"] for t in timed)
    by_gpu = len({_place(t, True) for t in timed}) <= MAX_PLACE_ROWS
    return Timed(np.array([(t["started_at"] - t0).total_seconds() for t in timed]),
                 np.array([(t["finished_at"] - t0).total_seconds() for t in timed]),
                 [t["role"] for t in timed], [_place(t, by_gpu) for t in timed])


def _place(t: dict[str, Any], by_gpu: bool) -> str:
    node = (t["node_id"] or "?")[:8]
    return node + (f" gpu {t['gpu_ids']}" if by_gpu and t["gpu_ids"] else "")


def running_at(starts: np.ndarray, ends: np.ndarray, times: np.ndarray) -> np.ndarray:
    """How many of the intervals [start, end) hold each time."""
    return (np.searchsorted(np.sort(starts), times, side="right")
            - np.searchsorted(np.sort(ends), times, side="right"))


def _running_by_role(ax: Any, timed: Timed) -> None:
    """Trials running at once, stacked by role, as exact steps (a step at every start and
    end)."""
    edges = np.unique(np.concatenate([timed.starts, timed.ends]))
    roles = np.array(timed.roles)
    below = np.zeros(len(edges) - 1, dtype=int)
    order = [*ROLE_COLOURS, *sorted(set(timed.roles) - set(ROLE_COLOURS))]
    for role in order:
        mine = roles == role
        if not mine.any():
            continue
        count = running_at(timed.starts[mine], timed.ends[mine], edges[:-1])
        # added as an artist: Axes.stairs' data-limit update walks every vertex (seconds
        # at 10,000 trials); the limits are set below
        ax.add_artist(StepPatch(below + count, edges, baseline=below, fill=True, linewidth=0,
                                color=ROLE_COLOURS.get(role, OTHER_COLOUR),
                                label=f"{ROLE_NAMES.get(role, role)} ({int(mine.sum())})"))
        below = below + count
    ax.set_ylabel("trials running")
    ax.set_xlim(edges[0], edges[-1])
    ax.set_ylim(0, max(1, int(below.max())) * 1.05)
    # above the axes, not on them: at full occupancy the steps fill the whole area
    ax.legend(fontsize=7, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=3,
              frameon=False, borderaxespad=0.2)


def place_counts(timed: Timed, times: np.ndarray) -> tuple[list[str], np.ndarray]:
    """The places (rows, sorted) and the trials running at each of `times` on each."""
    places = sorted(set(timed.places))
    where = np.array(timed.places)
    counts = np.array([running_at(timed.starts[where == p], timed.ends[where == p], times)
                       for p in places])
    return places, counts


def _running_by_place(fig: Figure, ax: Any, timed: Timed) -> None:
    """A heat map: one row per node (per GPU while there are few), TIMELINE_BINS columns,
    the trials running there at each column's middle; at most MAX_ROW_LABELS labels."""
    end = float(timed.ends.max()) or 1.0
    times = (np.arange(TIMELINE_BINS) + 0.5) * end / TIMELINE_BINS
    places, counts = place_counts(timed, times)
    image = ax.imshow(counts, aspect="auto", interpolation="nearest", cmap="Blues",
                      extent=(0, end, len(places) - 0.5, -0.5), vmin=0)
    step = math.ceil(len(places) / MAX_ROW_LABELS)
    ax.set_yticks(range(0, len(places), step), places[::step], fontsize=6)
    ax.set_xlabel("seconds since the first trial started")
    ax.set_ylabel("node" + (" and GPU" if any(" gpu " in p for p in places) else ""))
    bar = fig.colorbar(image, ax=ax, label="running", pad=0.01)
    bar.locator = MaxNLocator(integer=True)
    bar.update_ticks()


def timeline(trials: Rows) -> Figure:
    """When the trials ran and where: above, how many ran at once, by role; below, how many
    ran on each node (or GPU) over time. Both stay readable at 10,000 trials."""
    timed = _timed(trials)
    if timed is None:
        fig, ax = plt.subplots(figsize=(7, 3.5))
        return _empty(fig, ax, "no trial has start and end times")
    rows = len(set(timed.places))
    height = min(4.0, 0.8 + 0.12 * rows)  # of the heat map: 0.12 inch a row, at most 4
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(7, 2.6 + height), sharex=True, layout="constrained",
        gridspec_kw={"height_ratios": (2.0, height)})
    _running_by_role(top, timed)
    fig.suptitle("Trials over time: running at once by role, and on each node")
    _running_by_place(fig, bottom, timed)
    return fig
