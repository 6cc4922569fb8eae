"""The report's figures of speedups, one function each, from the Parquet tables alone
(matplotlib); the importance figure is importance.py's, the timeline timeline.py's.

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
import weakref
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from te_sweep.core.outcome import CONFIG_COMPLETE
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
LOG_DECADES_13 = 2.5  # a log axis over up to this many decades is labelled at 1 and 3


def empty(fig: Figure, ax: Any, message: str) -> Figure:
    """The figure with `message` in place of a plot (a figure with nothing to show)."""
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
        parts.append(
            f"speedup {c['speedup_mean']:.3g} [{c['speedup_ci_low']:.3g}, "
            f"{c['speedup_ci_high']:.3g}]"
        )
    if c.get("objective_epochs") is not None:
        parts.append(f"{c['objective_epochs']:.3g} epochs, overhead {c['te_overhead'] * 100:.3g}%")
    return ", ".join(parts)


# The points each figure named, kept beside the figure (not on it: a Figure has no such field)
# for as long as the figure lives.
_NAMED: weakref.WeakKeyDictionary[Figure, list[NamedPoint]] = weakref.WeakKeyDictionary()


def _name_points(fig: Figure, points: list[NamedPoint]) -> None:
    _NAMED[fig] = [*named_points(fig), *points]


def named_points(fig: Figure) -> list[NamedPoint]:
    """The points a figure function named (empty for the other figures)."""
    return _NAMED.get(fig, [])


def point_areas(fig: Figure, dpi: float) -> list[Area]:
    """The named points' centres in the PNG the figure was saved as at `dpi` (call after
    saving, so the axes' limits are final): display pixels at the figure's own dpi, scaled
    to the saved dpi, y flipped (PNG rows count from the top)."""
    scale = dpi / fig.dpi
    height = fig.get_figheight() * dpi
    areas = []
    for p in named_points(fig):
        x, y = p.ax.transData.transform((p.x, p.y))
        areas.append(
            Area(round(x * scale, 1), round(height - y * scale, 1), POINT_RADIUS_PX, p.title)
        )
    return areas


def _ranked(configs: Rows) -> Rows:
    """The configurations with a paired estimate, best ranked first (configs.parquet's rank:
    by the interval's lower end)."""
    return sorted((c for c in configs if c.get("rank") is not None), key=lambda c: c["rank"])


def _best_named(configs: Rows) -> list[dict[str, Any]]:
    """The configurations worth naming on a crowded figure: the NAMED_POINTS best ranked and
    every Pareto-front configuration."""
    chosen = {c["config_id"]: c for c in _ranked(configs)[:NAMED_POINTS]}
    chosen.update({c["config_id"]: c for c in configs if c.get("pareto")})
    return list(chosen.values())


# ----------------------------------------------------------------------------- figures
def pareto_front(configs: Rows, trials: Rows) -> Figure:
    """Mean epochs to target against TE overhead, per configuration; the front and the
    baselines (overhead 0) marked."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    done = [c for c in configs if c["status"] == CONFIG_COMPLETE]
    if not done:
        return empty(fig, ax, "no configuration finished all its runs")
    front = sorted((c for c in done if c["pareto"]), key=lambda c: c["objective_epochs"])
    ax.scatter(
        [c["te_overhead"] * 100 for c in done],
        [c["objective_epochs"] for c in done],
        s=18 if len(done) <= CROWDED else 6,
        alpha=0.6,
        label="configurations",
    )
    ax.plot(
        [c["te_overhead"] * 100 for c in front],
        [c["objective_epochs"] for c in front],
        "o-",
        color="tab:red",
        label="Pareto front",
    )
    base = [
        t["objective_epochs"]
        for t in trials
        if t["role"] == Role.BASELINE and t["objective_epochs"] is not None
    ]
    if base:
        mean = sum(base) / len(base)
        ax.scatter([0] * len(base), base, marker="x", color="black", label="baselines (seeds)")
        ax.axhline(
            mean, color="black", linestyle=":", linewidth=1, label=f"baseline mean {mean:.2f}"
        )
    ax.set_xlabel("TE overhead (% of the rest of training time)")
    ax.set_ylabel("epochs to target (mean over seeds;\ncensored runs at max_epochs + 1)")
    ax.set_title("Objectives of the configurations")
    ax.legend(fontsize=8)
    _name_points(
        fig,
        [
            NamedPoint(ax, c["te_overhead"] * 100, c["objective_epochs"], describe(c))
            for c in _best_named(done)
        ],
    )
    fig.tight_layout()
    return fig


def speedup_intervals(configs: Rows) -> Figure:
    """Paired speedup per configuration with its 95% interval, best ranked first."""
    ranked = _ranked(configs)[:MAX_INTERVALS]
    fig, ax = plt.subplots(figsize=(7, max(2.5, 0.22 * len(ranked) + 1.2)))
    if not ranked:
        return empty(fig, ax, "no configuration has a paired estimate")
    ys = list(range(len(ranked)))[::-1]
    for y, c in zip(ys, ranked, strict=True):
        colour = "tab:green" if c["beats_baselines"] else "tab:blue"
        ax.plot([c["speedup_ci_low"], c["speedup_ci_high"]], [y, y], color=colour)
        ax.plot(c["speedup_mean"], y, "o", color=colour, markersize=4)
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_yticks(ys, [f"{c['config_id']} ({len(c['seeds'])} seeds)" for c in ranked], fontsize=7)
    ax.set_xlabel(
        "paired speedup: baseline epochs / TE epochs (geometric mean, 95% bootstrap interval)"
    )
    ax.set_title("Speedup against the baseline of the same seed (green: beats it)")
    fig.tight_layout()
    return fig


def _plain_number(value: float, _position: Any = None) -> str:
    """A tick label as a plain number (0.1, 1, 300), never 10^-1 or 2x10^-1."""
    return f"{value:g}"


def _log_ticks(param: Param) -> tuple[float, ...]:
    """Where in each decade a log axis is labelled: 1, 2, 5 over a decade or less, 1 and 3
    over up to LOG_DECADES_13 decades, else 1 only: at most about 6 labels."""
    low, high = param.bounds
    decades = math.log10(high / low)
    return (1.0, 2.0, 5.0) if decades <= 1 else (1.0, 3.0) if decades <= LOG_DECADES_13 else (1.0,)


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
    low, high = param.bounds
    margin = (high / low) ** 0.03 if param.log else (high - low) * 0.03
    ax.set_xlim(*((low / margin, high * margin) if param.log else (low - margin, high + margin)))
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
    (line,) = ax.plot(x, y, color="tab:blue", linewidth=0.8, alpha=alpha)
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
        return empty(fig, axes.flat[0], "no configuration has a paired estimate")
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
        _name_points(
            fig,
            [
                NamedPoint(ax, x, c["speedup_mean"], describe(c))
                for x, c in zip(xs, estimated, strict=True)
                if c["config_id"] in named
            ],
        )
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    fig.suptitle("Paired speedup against each searched parameter")
    fig.tight_layout()
    return fig


def learning_curves(
    configs: Rows, trials: Rows, epochs: Rows, target_metric: str, target: float
) -> Figure:
    """The target metric per epoch of the best configurations' runs (solid) beside the
    baselines of the same seeds (dashed). Only the drawn runs' epochs are needed: report.py
    reads just those (`curve_trial_ids`)."""
    best = _ranked(configs)[:BEST_CURVES]
    fig, axes = plt.subplots(1, max(1, len(best)), figsize=(7, 3.2), squeeze=False)
    if not best:
        return empty(fig, axes[0][0], "no configuration has a paired estimate")
    curve: dict[str | None, list[tuple[int, float]]] = defaultdict(list)
    for e in epochs:
        if e[target_metric] is not None:
            curve[e["trial_id"]].append((e["epoch"], e[target_metric]))
    baseline_of = {t["seed"]: t["trial_id"] for t in trials if t["role"] == Role.BASELINE}
    for ax, c in zip(axes[0], best, strict=True):
        runs = [t for t in trials if t["role"] == Role.TE and t["config_id"] == c["config_id"]]
        for i, run in enumerate(sorted(runs, key=lambda t: t["seed"])):
            colour = f"C{i % 10}"
            for trial_id, style in ((run["trial_id"], "-"), (baseline_of.get(run["seed"]), "--")):
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
    best = {c["config_id"] for c in _ranked(configs)[:BEST_CURVES]}
    return {
        t["trial_id"]
        for t in trials
        if t["role"] == Role.BASELINE or (t["role"] == Role.TE and t["config_id"] in best)
    }
