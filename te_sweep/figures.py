"""The report's figures, one function each, from the Parquet tables alone (matplotlib).

Each function takes rows of configs.parquet / trials.parquet / epochs.parquet (lists of
dicts, as `pyarrow.Table.to_pylist()` gives them) and returns a matplotlib Figure; report.py
only arranges them. A figure with nothing to show says so in its own area instead of failing,
so a report of a crashed or tiny sweep still renders. Matplotlib is imported with the Agg
backend: no display is needed.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from te_sweep.configs import CONFIG_COMPLETE  # noqa: E402
from te_sweep.reporting import Role  # noqa: E402
from te_sweep.space import SearchSpace  # noqa: E402

Rows = list[dict[str, Any]]
BEST_CURVES = 3  # configurations whose learning curves are drawn
MAX_INTERVALS = 40  # configurations in the interval plot (the best ranked)
ROLE_COLOURS = {Role.TE: "tab:blue", Role.BASELINE: "tab:grey", Role.CONTROL: "tab:orange"}


def _empty(fig: Figure, ax: Any, message: str) -> Figure:
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=12, wrap=True)
    return fig


def pareto_front(configs: Rows, trials: Rows) -> Figure:
    """Mean epochs to target against TE overhead, per configuration; the front and the
    baselines (overhead 0) marked."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    done = [c for c in configs if c["status"] == CONFIG_COMPLETE]
    if not done:
        return _empty(fig, ax, "no configuration finished all its runs")
    front = sorted((c for c in done if c["pareto"]), key=lambda c: c["objective_epochs"])
    ax.scatter([c["te_overhead"] * 100 for c in done], [c["objective_epochs"] for c in done],
               s=18, alpha=0.6, label="configurations")
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
    for y, c in zip(ys, ranked):
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


def speedup_by_parameter(configs: Rows, space: SearchSpace) -> Figure:
    """The paired speedup against each searched parameter."""
    names = list(space.params)
    cols = min(2, len(names))
    rows_n = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(7, 2.8 * rows_n), squeeze=False)
    estimated = [c for c in configs if c["speedup_mean"] is not None]
    if not estimated:
        for ax in list(axes.flat)[1:]:
            ax.axis("off")
        return _empty(fig, axes.flat[0], "no configuration has a paired estimate")
    for ax, name in zip(axes.flat, names):
        param = space.params[name]
        xs = [c[f"param_{name}"] for c in estimated]
        if param.kind == "categorical":
            labels = [str(v) for v in param.choices]
            xs = [labels.index(str(x)) for x in xs]
            ax.set_xticks(range(len(labels)), labels)
        ys = [c["speedup_mean"] for c in estimated]
        low = [c["speedup_mean"] - c["speedup_ci_low"] for c in estimated]
        high = [c["speedup_ci_high"] - c["speedup_mean"] for c in estimated]
        ax.errorbar(xs, ys, yerr=[low, high], fmt="o", markersize=3, alpha=0.6,
                    elinewidth=0.8)
        ax.axhline(1.0, color="black", linewidth=1)
        if param.log:
            ax.set_xscale("log")
        ax.set_xlabel(name)
        ax.set_ylabel("paired speedup")
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.suptitle("Paired speedup against each searched parameter")
    fig.tight_layout()
    return fig


def learning_curves(configs: Rows, trials: Rows, epochs: Rows, target_metric: str,
                    target: float) -> Figure:
    """The target metric per epoch of the best configurations' runs (solid) beside the
    baselines of the same seeds (dashed)."""
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
    for ax, c in zip(axes[0], best):
        runs = [t for t in trials if t["role"] == Role.TE and t["config_id"] == c["config_id"]]
        for i, run in enumerate(sorted(runs, key=lambda t: t["seed"])):
            colour = f"C{i % 10}"
            for trial_id, style in ((run["trial_id"], "-"),
                                    (baseline_of.get(run["seed"]), "--")):
                points = sorted(curve.get(trial_id, []))
                if points:
                    ax.plot(*zip(*points), style, color=colour, linewidth=1)
        ax.axhline(target, color="black", linewidth=0.8, linestyle=":")
        ax.set_title(f"{c['config_id']} (rank {c['rank']})", fontsize=9)
        ax.set_xlabel("epoch")
    axes[0][0].set_ylabel(f"{target_metric} (solid: TE, dashed: baseline)")
    fig.suptitle("Learning curves of the best configurations, one colour per seed")
    fig.tight_layout()
    return fig


def importances(configs: Rows, space: SearchSpace) -> Figure:
    """Optuna's PED-ANOVA importance of each searched parameter, for each objective: how
    much each parameter's distribution differs between the best configurations and all
    (Watanabe et al. 2023; optuna's fANOVA would need scikit-learn)."""
    import warnings

    import optuna

    done = [c for c in configs if c["status"] == CONFIG_COMPLETE]
    fig, axes = plt.subplots(1, 2, figsize=(7, 2.8))
    if len(done) < 2 or len(space.params) < 2:
        axes[1].axis("off")
        return _empty(fig, axes[0], "parameter importance needs at least 2 finished "
                                    "configurations and 2 searched parameters")
    distributions = space.optuna_space()
    study = optuna.create_study(directions=["minimize", "minimize"])
    study.add_trials([optuna.trial.create_trial(
        params={n: c[f"param_{n}"] for n in space.params}, distributions=distributions,
        values=[c["objective_epochs"], c["te_overhead"]]) for c in done])
    for index, (ax, objective) in enumerate(zip(axes, ("epochs to target", "TE overhead"))):
        with warnings.catch_warnings():  # "experimental", and notes on its quantiles
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            warnings.simplefilter("ignore", UserWarning)
            scores = optuna.importance.get_param_importances(
                study, evaluator=optuna.importance.PedAnovaImportanceEvaluator(),
                target=lambda t, i=index: t.values[i])
        names = list(scores)[::-1]
        ax.barh(names, [scores[n] for n in names])
        ax.set_title(objective, fontsize=9)
        ax.set_xlim(0, 1)
    fig.suptitle("Parameter importance (PED-ANOVA, Optuna)")
    fig.tight_layout()
    return fig


def timeline(trials: Rows) -> Figure:
    """When each trial ran, on which node (and GPU): one lane per trial running at once."""
    timed = sorted((t for t in trials if t["started_at"] and t["finished_at"]),
                   key=lambda t: t["started_at"])
    fig, ax = plt.subplots(figsize=(7, 3.5))
    if not timed:
        return _empty(fig, ax, "no trial has start and end times")
    t0 = timed[0]["started_at"]
    lanes: dict[str, list[float]] = defaultdict(list)  # place -> end time of each lane
    bars = []
    for t in timed:
        place = (t["node_id"] or "?")[:8] + (f" gpu {t['gpu_ids']}" if t["gpu_ids"] else "")
        start = (t["started_at"] - t0).total_seconds()
        end = (t["finished_at"] - t0).total_seconds()
        ends = lanes[place]
        lane = next((i for i, free in enumerate(ends) if free <= start), len(ends))
        if lane == len(ends):
            ends.append(end)
        ends[lane] = end
        bars.append(((place, lane), start, end, t["role"]))
    y_of = {key: y for y, key in enumerate(sorted({key for key, *_ in bars}))}
    for key, start, end, role in bars:
        ax.barh(y_of[key], end - start, left=start, height=0.8,
                color=ROLE_COLOURS.get(role, "tab:purple"))
    ax.set_yticks(list(y_of.values()), [f"{p} #{lane}" for p, lane in y_of], fontsize=6)
    ax.set_xlabel("seconds since the first trial started")
    ax.set_title("Trials over time by node (blue: TE, grey: baseline, orange: LR control)")
    fig.tight_layout()
    return fig
