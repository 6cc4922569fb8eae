"""The report's figures checked by what they plot, not by their pixels: each figure function
(te_sweep/results/figures.py) gets hand-built rows of configs.parquet / trials.parquet /
epochs.parquet, and the test reads back the plotted data (line and point coordinates, tick
labels, colours, how many axes and curves), so a figure that shows the wrong configurations,
in the wrong order, or the wrong statistic fails here. No Ray, no sweep: milliseconds each."""

from __future__ import annotations

import datetime as dt
import io
import math
import warnings
from pathlib import Path

import matplotlib.image
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.colors import to_rgba
from matplotlib.patches import StepPatch

from te_sweep.core.reporting import Role
from te_sweep.core.space import space_from_text
from te_sweep.results import figures, importance, timeline

SPACE_TEXT = """fixed:
  dataset: fashion-mnist
  max_epochs: 6
  target_metric: train_acc
  target: 0.75
search:
  pair_fraction: {low: 0.02, high: 1.0, log: true}
  threshold: {low: 0.25, high: 2.0}
  te_scale: {low: 0.05, high: 300.0, log: true}
  mode: {choices: [grad, paper]}
"""
SPACE = space_from_text(SPACE_TEXT, Path("figures.yaml"), check_trials=False)
T0 = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)
GREEN, BLUE = to_rgba("tab:green"), to_rgba("tab:blue")


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def config(
    config_id: str,
    rank: int | None = None,
    status: str = "complete",
    mean: float | None = 1.0,
    low: float | None = 0.9,
    high: float | None = 1.1,
    beats: bool = False,
    seeds: int = 3,
    epochs: float | None = 4.0,
    overhead: float | None = 0.1,
    pareto: bool | None = False,
    **params: object,
) -> dict:
    """A configs.parquet row with the columns the figures read."""
    values = {"pair_fraction": 0.1, "threshold": 1.0, "te_scale": 1.0, "mode": "grad", **params}
    return {
        "config_id": config_id,
        "rank": rank,
        "status": status,
        "speedup_mean": mean,
        "speedup_median": None if mean is None else mean * 0.97,  # never the mean
        "speedup_ci_low": low,
        "speedup_ci_high": high,
        "beats_baselines": beats,
        "seeds": list(range(seeds)),
        "objective_epochs": epochs,
        "te_overhead": overhead,
        "pareto": pareto,
        **{f"param_{k}": v for k, v in values.items()},
    }


def trial(
    trial_id: str,
    role: str,
    seed: int,
    config_id: str | None = None,
    epochs: float | None = 4.0,
    start: float | None = 0.0,
    end: float | None = 10.0,
    node: str | None = "node-a-0123456789",
    gpus: str | None = None,
) -> dict:
    """A trials.parquet row; `start`, `end` in seconds after T0 (None: not timed)."""
    return {
        "trial_id": trial_id,
        "role": role,
        "config_id": config_id,
        "seed": seed,
        "objective_epochs": epochs,
        "started_at": None if start is None else T0 + dt.timedelta(seconds=start),
        "finished_at": None if end is None else T0 + dt.timedelta(seconds=end),
        "node_id": node,
        "gpu_ids": gpus,
    }


def interval_lines(ax) -> list:
    """The interval plot's per-configuration lines (interval, then mean), without the line
    at 1."""
    return [
        line
        for line in ax.lines
        if line.get_xdata() is not None and list(line.get_xdata()) != [1.0, 1.0]
    ]


# ----------------------------------------------------------------------------- intervals
def permuted_configs(n: int) -> list[dict]:
    """n configurations whose ranks run against their ids (c000 is ranked last), so a
    figure ordered by id shows other configurations than one ordered by rank."""
    rows = []
    for i in range(n):
        rank = n - i
        mean = 1.0 + rank / 100
        rows.append(
            config(
                f"c{i:03d}",
                rank=rank,
                mean=mean,
                low=mean - 0.05,
                high=mean + 0.05,
                beats=rank % 3 == 0,
                seeds=2 + rank % 4,
            )
        )
    return rows


def test_the_interval_figure_shows_the_best_ranked_top_down():
    configs = permuted_configs(figures.MAX_INTERVALS + 7)
    configs.append(config("c999", rank=None, mean=None, low=None, high=None))  # no estimate
    fig = figures.speedup_intervals(configs)
    ax = fig.axes[0]
    best = sorted((c for c in configs if c["rank"]), key=lambda c: c["rank"])
    best = best[: figures.MAX_INTERVALS]
    ticks = sorted(zip(ax.get_yticks(), ax.get_yticklabels(), strict=False), key=lambda p: -p[0])
    assert [label.get_text() for _, label in ticks] == [
        f"{c['config_id']} ({len(c['seeds'])} seeds)" for c in best
    ]
    lines = interval_lines(ax)
    assert len(lines) == 2 * figures.MAX_INTERVALS
    by_y = {}
    for line in lines:
        by_y.setdefault(line.get_ydata()[0], []).append(line)
    for (y, _), c in zip(ticks, best, strict=False):
        interval, mean = by_y[y]
        assert list(interval.get_xdata()) == [c["speedup_ci_low"], c["speedup_ci_high"]]
        assert list(mean.get_xdata()) == [c["speedup_mean"]]
        colour = GREEN if c["beats_baselines"] else BLUE
        assert to_rgba(interval.get_color()) == colour == to_rgba(mean.get_color()), c


def test_the_interval_figure_without_estimates_says_so():
    fig = figures.speedup_intervals([config("c1", rank=None, mean=None)])
    message = fig.axes[0].texts[0]
    assert "no configuration has a paired estimate" in message.get_text()
    ax = fig.axes[0]  # nothing plotted: its data limits are (0, 1), so (0.5, 0.5) is its centre
    assert message.get_position() == (0.5, 0.5) and ax.get_xlim() == ax.get_ylim() == (0, 1)


@pytest.mark.parametrize("n, inches", [(3, 2.5), (10, 3.4), (40, 10.0), (47, 10.0)])
def test_the_interval_figure_is_as_tall_as_the_configurations_it_shows(n, inches):
    """0.22 inch a configuration (the 7-point labels do not overlap) plus 1.2 for the axis
    and its title, at least 2.5; never more than MAX_INTERVALS rows."""
    fig = figures.speedup_intervals(permuted_configs(n))
    assert fig.get_size_inches() == pytest.approx((7.0, inches))


# ----------------------------------------------------------------------------- curves
def curve_tables(n_configs: int = 5, seeds: tuple[int, ...] = (0, 1, 2)):
    """Configurations ranked against their ids, a TE run per configuration and seed, a
    baseline per seed, and epochs whose accuracies tell every trial apart."""
    configs = [config(f"c{i}", rank=n_configs - i) for i in range(n_configs)]
    trials = [trial(f"b{s}", "baseline", s) for s in seeds]
    trials += [trial(f"t{i}_{s}", "te", s, f"c{i}") for i in range(n_configs) for s in seeds]
    trials.append(trial("ctl0_0", "control", 0, "c0"))
    trials.append(trial("ctl4_0", "control", 0, "c4"))  # c4 is ranked first: a drawn one
    epochs = []
    for k, t in enumerate(trials):
        for e in (1, 2, 3):
            epochs.append(
                {"trial_id": t["trial_id"], "epoch": e, "train_acc": round(0.1 * e + 0.001 * k, 6)}
            )
    return configs, trials, epochs


def test_the_learning_curves_show_the_best_configurations_beside_their_seeds_baselines():
    configs, trials, epochs = curve_tables()
    curve_of = {}
    for e in epochs:
        curve_of.setdefault(e["trial_id"], []).append(e["train_acc"])
    trial_of = {tuple(v): k for k, v in curve_of.items()}
    seed_of = {t["trial_id"]: t["seed"] for t in trials}
    fig = figures.learning_curves(configs, trials, epochs, "train_acc", 0.75)
    best = sorted(configs, key=lambda c: c["rank"])[: figures.BEST_CURVES]
    assert len(fig.axes) == figures.BEST_CURVES
    assert [ax.get_title() for ax in fig.axes] == [
        f"{c['config_id']} (rank {c['rank']})" for c in best
    ]
    for ax, c in zip(fig.axes, best, strict=False):
        drawn = [line for line in ax.lines if len(line.get_xdata()) == 3]
        solid = {
            trial_of[tuple(line.get_ydata())]: line for line in drawn if line.get_linestyle() == "-"
        }
        dashed = {
            trial_of[tuple(line.get_ydata())]: line
            for line in drawn
            if line.get_linestyle() == "--"
        }
        assert sorted(solid) == [f"t{c['config_id'][1:]}_{s}" for s in (0, 1, 2)]
        assert sorted(dashed) == ["b0", "b1", "b2"]
        colours = set()
        for te_id, te_line in solid.items():
            partner = dashed[f"b{seed_of[te_id]}"]  # the baseline of the same seed
            assert te_line.get_color() == partner.get_color()
            colours.add(te_line.get_color())
        assert len(colours) == 3  # one colour per seed
        assert list(solid[f"t{c['config_id'][1:]}_0"].get_xdata()) == [1, 2, 3]
    assert [ax.get_ylabel() for ax in fig.axes] == [
        "train_acc (solid: TE, dashed: baseline)",
        "",
        "",
    ]  # on the first panel only


def test_the_learning_curves_read_trials_read_back_from_parquet():
    """trials.parquet's role strings are equal to Role's, not the same objects."""
    import pyarrow as pa

    configs, trials, epochs = curve_tables()
    read_back = pa.Table.from_pylist(trials).to_pylist()
    assert read_back[0]["role"] == "baseline" and read_back[0]["role"] is not Role.BASELINE
    expected = figures.learning_curves(configs, trials, epochs, "train_acc", 0.75)
    drawn = figures.learning_curves(configs, read_back, epochs, "train_acc", 0.75)
    for ax, want in zip(drawn.axes, expected.axes, strict=True):
        lines = [(ln.get_linestyle(), list(ln.get_ydata())) for ln in ax.lines]
        assert lines == [(ln.get_linestyle(), list(ln.get_ydata())) for ln in want.lines]
        assert sum(style == "--" for style, _ in lines) == 3  # the seeds' baselines


@pytest.mark.parametrize("read_back", [False, True])
def test_the_curves_read_only_the_drawn_trials_epochs(read_back):
    import pyarrow as pa

    configs, trials, _ = curve_tables()
    if read_back:  # as trials.parquet gives them: equal strings, not Role's own objects
        trials = pa.Table.from_pylist(trials).to_pylist()
    best = [f"c{i}" for i in (4, 3, 2)]
    assert figures.curve_trial_ids(configs, trials) == {"b0", "b1", "b2"} | {
        f"t{c[1:]}_{s}" for c in best for s in (0, 1, 2)
    }


# ----------------------------------------------------------------------------- Pareto
def pareto_tables():
    """Three front configurations, two dominated, one pruned (numbers as if it had some),
    and three baselines whose mean (4.5) is not their median (4.0)."""
    configs = [
        config("front-a", epochs=3.0, overhead=0.10, pareto=True),
        config("front-b", epochs=3.5, overhead=0.05, pareto=True),
        config("front-c", epochs=2.5, overhead=0.20, pareto=True),
        config("dom-d", epochs=3.6, overhead=0.20, pareto=False),
        config("dom-e", epochs=4.0, overhead=0.30, pareto=False),
        config("pruned-f", status="pruned", epochs=1.0, overhead=0.0, pareto=None),
    ]
    trials = [trial(f"b{s}", "baseline", s, epochs=e) for s, e in enumerate((3.0, 4.0, 6.5))]
    trials.append(trial("b9", "baseline", 9, epochs=None))  # not ended: no objective
    trials.append(trial("t0", "te", 0, "front-a", epochs=1.0))
    return configs, trials


def labelled(ax, label: str):
    return next(a for a in [*ax.lines, *ax.collections] if a.get_label().startswith(label))


def test_the_pareto_front_is_the_flagged_complete_configurations_in_epoch_order():
    configs, trials = pareto_tables()
    ax = figures.pareto_front(configs, trials).axes[0]
    front = labelled(ax, "Pareto front")
    assert list(front.get_ydata()) == [2.5, 3.0, 3.5]
    assert list(front.get_xdata()) == pytest.approx([20.0, 10.0, 5.0])
    points = np.asarray(labelled(ax, "configurations").get_offsets()).round(9).tolist()
    assert sorted(map(tuple, points)) == sorted(
        (round(c["te_overhead"] * 100, 9), c["objective_epochs"])
        for c in configs
        if c["status"] == "complete"
    )


def test_the_pareto_figure_marks_each_baseline_and_their_mean():
    configs, trials = pareto_tables()
    ax = figures.pareto_front(configs, trials).axes[0]
    base = np.asarray(labelled(ax, "baselines (seeds)").get_offsets()).tolist()
    assert sorted(map(tuple, base)) == [(0, 3.0), (0, 4.0), (0, 6.5)]
    mean = labelled(ax, "baseline mean")
    assert list(mean.get_ydata()) == [4.5, 4.5]  # the median would be 4.0
    assert mean.get_label() == "baseline mean 4.50"


def test_a_reader_can_hover_a_point_of_the_pareto_figure():
    """The area named after a configuration sits on that configuration's point: at its
    pixel in the saved PNG (computed from the axes' box and limits), where the PNG is the
    front's red."""
    configs, trials = pareto_tables()
    fig = figures.pareto_front(configs, trials)
    dpi = 110
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    areas = {a.title.split(",")[0]: a for a in figures.point_areas(fig, dpi)}
    assert set(areas) == {"front-a", "front-b", "front-c"}  # unranked: only the front named
    area = areas["front-a"]
    assert area.title == "front-a, speedup 1 [0.9, 1.1], 3 epochs, overhead 10%"
    ax = fig.axes[0]
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    box = ax.get_position()
    width, height = fig.get_figwidth() * dpi, fig.get_figheight() * dpi
    x = (box.x0 + (10.0 - x0) / (x1 - x0) * box.width) * width
    y = height - (box.y0 + (3.0 - y0) / (y1 - y0) * box.height) * height
    assert (area.x, area.y) == pytest.approx((x, y), abs=0.1)
    png = matplotlib.image.imread(io.BytesIO(buffer.getvalue()))
    assert png.shape[:2] == (round(height), round(width))
    assert png[round(y), round(x)][:3] == pytest.approx(to_rgba("tab:red")[:3], abs=0.05)


def test_the_hover_areas_name_the_best_ranked_and_the_front_only():
    n = figures.NAMED_POINTS + 100
    configs = [config(f"c{i:04d}", rank=n - i, pareto=i in (7, 57)) for i in range(n)]
    named = {c["config_id"] for c in figures._best_named(configs)}
    assert named == {f"c{i:04d}" for i in range(n - figures.NAMED_POINTS, n)} | {"c0007", "c0057"}


# ----------------------------------------------------------------------------- parameters
def parameter_configs() -> list[dict]:
    return [
        config(
            "c0",
            rank=1,
            mean=1.2,
            low=1.1,
            high=1.4,
            pair_fraction=0.05,
            threshold=0.5,
            te_scale=0.1,
            mode="paper",
        ),
        config(
            "c1",
            rank=2,
            mean=1.0,
            low=0.8,
            high=1.3,
            pair_fraction=0.5,
            threshold=1.5,
            te_scale=100.0,
            mode="grad",
        ),
        config("c2", rank=None, mean=None, low=None, high=None, status="pruned"),
    ]


def test_the_parameter_figure_has_one_axis_per_searched_parameter():
    configs = parameter_configs()
    fig = figures.speedup_by_parameter(configs, SPACE)
    shown = [ax for ax in fig.axes if ax.axison]
    assert [ax.get_xlabel() for ax in shown] == list(SPACE.params)
    estimated = configs[:2]
    for ax, name in zip(shown, SPACE.params, strict=False):
        param = SPACE.params[name]
        points = next(line for line in ax.lines if line.get_marker() == "o")
        values = [c[f"param_{name}"] for c in estimated]
        if param.kind == "categorical":
            assert [t.get_text() for t in ax.get_xticklabels()] == ["grad", "paper"]
            assert list(points.get_xdata()) == [list(param.choices).index(v) for v in values]
        else:
            assert list(points.get_xdata()) == values
        assert list(points.get_ydata()) == [1.2, 1.0]
        assert ax.get_xscale() == ("log" if param.log else "linear"), name
        bars = next(line for line in ax.lines if line.get_gid() == "intervals")
        x, y = bars.get_xdata(), bars.get_ydata()
        segments = [(x[i], y[i], x[i + 1], y[i + 1]) for i in range(0, len(x), 3)]
        positions = list(points.get_xdata())
        assert segments == [
            (positions[0], 1.1, positions[0], 1.4),
            (positions[1], 0.8, positions[1], 1.3),
        ]
        assert all(math.isnan(v) for v in y[2::3])


def test_log_axes_are_labelled_with_a_few_plain_numbers():
    fig = figures.speedup_by_parameter(parameter_configs(), SPACE)
    fig.canvas.draw()
    axes = {ax.get_xlabel(): ax for ax in fig.axes}
    for name, expected in (
        ("te_scale", ["0.1", "1", "10", "100"]),
        ("pair_fraction", ["0.03", "0.1", "0.3", "1"]),
    ):
        ax = axes[name]
        low, high = ax.get_xlim()
        shown = [t.get_text() for t in ax.get_xticklabels() if low <= t.get_position()[0] <= high]
        assert shown == expected, name
        assert all(t.get_text() == "" for t in ax.get_xticklabels(minor=True))


def test_a_log_axis_within_a_decade_has_no_minor_labels():
    """Matplotlib labels minor ticks itself below a decade ("2x10^-1 4x10^-1 ..." ran
    together): only the plain 1, 2, 5 of each decade are labelled."""
    space = space_from_text(
        SPACE_TEXT.replace(
            "threshold: {low: 0.25, high: 2.0}", "threshold: {low: 0.15, high: 0.9, log: true}"
        ),
        Path("narrow.yaml"),
        check_trials=False,
    )
    fig = figures.speedup_by_parameter(parameter_configs(), space)
    fig.canvas.draw()
    ax = next(ax for ax in fig.axes if ax.get_xlabel() == "threshold")
    low, high = ax.get_xlim()
    assert [t.get_text() for t in ax.get_xticklabels() if low <= t.get_position()[0] <= high] == [
        "0.2",
        "0.5",
    ]
    assert [t.get_text() for t in ax.get_xticklabels(minor=True) if t.get_text()] == []


def test_the_parameter_figure_names_its_points():
    fig = figures.speedup_by_parameter(parameter_configs(), SPACE)
    points = figures.named_points(fig)
    assert len(points) == 2 * len(SPACE.params)
    te_scale_axis = next(ax for ax in fig.axes if ax.get_xlabel() == "te_scale")
    mine = [p for p in points if p.ax is te_scale_axis]
    assert [(p.x, p.y, p.title.split(",")[0]) for p in mine] == [
        (0.1, 1.2, "c0"),
        (100.0, 1.0, "c1"),
    ]
    assert mine[0].title == "c0, rank 1, speedup 1.2 [1.1, 1.4], 4 epochs, overhead 10%"


# ----------------------------------------------------------------------------- importance
def importance_configs(n: int) -> list[dict]:
    """n complete configurations in which te_scale alone sets the epochs and pair_fraction
    alone the overhead."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        scale = float(np.exp(rng.uniform(math.log(0.05), math.log(300))))
        fraction = float(np.exp(rng.uniform(math.log(0.02), 0)))
        rows.append(
            config(
                f"c{i}",
                epochs=5 - 0.3 * math.log(scale),
                overhead=fraction,
                te_scale=scale,
                pair_fraction=fraction,
                threshold=float(rng.uniform(0.25, 2)),
                mode=str(rng.choice(["grad", "paper"])),
            )
        )
    return rows


def test_importance_is_withheld_below_the_measured_minimum():
    configs = importance_configs(importance.MIN_IMPORTANCE_CONFIGS - 1)
    configs.append(config("p", status="pruned"))
    reason = importance.importance_withheld(configs, SPACE)
    assert reason.startswith(
        f"Parameter importance is not shown: "
        f"{importance.MIN_IMPORTANCE_CONFIGS - 1} configurations finished "
        f"all their runs, and it needs at least "
        f"{importance.MIN_IMPORTANCE_CONFIGS}"
    )
    fig = importance.importances(configs, SPACE)
    assert fig.axes[0].texts[0].get_text() == reason
    one = space_from_text(
        SPACE_TEXT.split("  pair_fraction")[0] + "  threshold: {low: 0.25, high: 2.0}\n",
        Path("one.yaml"),
        check_trials=False,
    )
    assert "this sweep searched 1" in importance.importance_withheld(
        importance_configs(importance.MIN_IMPORTANCE_CONFIGS), one
    )


def test_importance_is_drawn_from_the_minimum_and_finds_the_parameter_that_matters():
    configs = importance_configs(importance.MIN_IMPORTANCE_CONFIGS)
    assert importance.importance_withheld(configs, SPACE) is None
    fig = importance.importances(configs, SPACE)
    scores = importance.importance_scores(configs, SPACE)
    for ax, (key, title) in zip(fig.axes, importance.OBJECTIVES, strict=False):
        assert ax.get_title() == title
        names = [t.get_text() for t in ax.get_yticklabels()]
        widths = {n: bar.get_width() for n, bar in zip(names, ax.patches, strict=False)}
        assert widths == pytest.approx(scores[key])
        assert sorted(names) == sorted(SPACE.params)
    assert max(scores["objective_epochs"], key=scores["objective_epochs"].get) == "te_scale"
    assert max(scores["te_overhead"], key=scores["te_overhead"].get) == "pair_fraction"


def test_importance_bars_run_from_the_most_important_on_top_down():
    fig = importance.importances(importance_configs(importance.MIN_IMPORTANCE_CONFIGS), SPACE)
    for ax in fig.axes:
        widths = [bar.get_width() for bar in sorted(ax.patches, key=lambda b: b.get_y())]
        assert len(widths) == len(SPACE.params)
        assert widths == sorted(widths) and widths[0] < widths[-1]  # bottom to top: growing


def test_importance_reads_only_the_configurations_that_finished_all_their_runs():
    """Configurations that were pruned or errored can carry objective values (of the runs
    that ended); in them the threshold alone sets the epochs. The figure must not see them:
    its bars are the scores of the complete configurations alone."""
    complete = importance_configs(importance.MIN_IMPORTANCE_CONFIGS)
    rng = np.random.default_rng(1)
    others = []
    for i in range(40):
        threshold = float(rng.uniform(0.25, 2))
        others.append(
            config(
                f"x{i}",
                status=("pruned", "error")[i % 2],
                epochs=0.5 * threshold,  # below every complete one: the top 10% are these
                overhead=0.5,
                te_scale=float(np.exp(rng.uniform(math.log(0.05), math.log(300)))),
                pair_fraction=float(np.exp(rng.uniform(math.log(0.02), 0))),
                threshold=threshold,
                mode="grad",
            )
        )
    fig = importance.importances(complete + others, SPACE)
    expected = importance.importance_scores(complete, SPACE)
    for ax, (key, _) in zip(fig.axes, importance.OBJECTIVES, strict=True):
        names = [t.get_text() for t in ax.get_yticklabels()]
        widths = {n: bar.get_width() for n, bar in zip(names, ax.patches, strict=True)}
        assert widths == pytest.approx(expected[key])
    mixed = importance.importance_scores(complete + others, SPACE)["objective_epochs"]
    assert max(mixed, key=mixed.get) == "threshold"  # so the test can tell the two apart


def test_optunas_own_warnings_about_importance_are_not_hidden(monkeypatch):
    import optuna

    original = optuna.importance.get_param_importances

    def warning_too(*args, **kwargs):
        warnings.warn(
            "Target and region quantiles select the same set of trials.", UserWarning, stacklevel=2
        )
        return original(*args, **kwargs)

    monkeypatch.setattr(optuna.importance, "get_param_importances", warning_too)
    configs = importance_configs(importance.MIN_IMPORTANCE_CONFIGS)
    with pytest.warns(UserWarning, match="select the same set"):
        importance.importance_scores(configs, SPACE)
    monkeypatch.setattr(optuna.importance, "get_param_importances", original)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        importance.importance_scores(configs, SPACE)
    assert [str(w.message) for w in caught] == []  # the expected "low target" note only


# ----------------------------------------------------------------------------- timeline
def timeline_trials() -> list[dict]:
    return [
        trial("t1", "te", 0, "c1", start=0, end=10, node="A" * 12, gpus="0"),
        trial("b1", "baseline", 0, start=0, end=5, node="A" * 12, gpus="1"),
        trial("t2", "te", 1, "c1", start=2, end=8, node="B" * 12, gpus="0"),
        trial("k1", "control", 0, "c1", start=5, end=12, node="B" * 12, gpus="0"),
        trial("t3", "te", 2, "c2", start=3, end=None, node="B" * 12),  # error: untimed
        trial("t4", "te", 3, "c2", start=None, end=None),
    ]  # never started


def hand_count(trials: list[dict], at: float, **match: object) -> int:
    return sum(
        1
        for t in trials
        if t["started_at"]
        and t["finished_at"]
        and all(t[k] == v for k, v in match.items())
        and (t["started_at"] - T0).total_seconds() <= at < (t["finished_at"] - T0).total_seconds()
    )


def role_steps(ax) -> dict[str, StepPatch]:
    colours = {to_rgba(c): role for role, c in figures.ROLE_COLOURS.items()}
    return {colours[to_rgba(p.get_facecolor())]: p for p in ax.patches if isinstance(p, StepPatch)}


def count_at(patch: StepPatch, at: float) -> int:
    values, edges, baseline = patch.get_data()
    i = int(np.searchsorted(edges, at, side="right")) - 1
    return int(values[i] - baseline[i])


def test_the_timeline_counts_the_trials_running_by_role():
    trials = timeline_trials()
    top = timeline.timeline(trials).axes[0]
    steps = role_steps(top)
    assert set(steps) == {"te", "baseline", "control"}
    for at in (0, 1, 2.5, 4.99, 5, 7, 8, 9.5, 11.9):
        for role, patch in steps.items():
            assert count_at(patch, at) == hand_count(trials, at, role=role), (role, at)
    te, base, control = steps["te"], steps["baseline"], steps["control"]
    assert list(base.get_data().baseline) == list(te.get_data().values)  # stacked
    assert list(control.get_data().baseline) == list(base.get_data().values)
    for role, patch in steps.items():  # every timed trial drawn once: seconds add up
        values, edges, baseline = patch.get_data()
        seconds = float(np.sum((values - baseline) * np.diff(edges)))
        assert seconds == sum(
            (t["finished_at"] - t["started_at"]).total_seconds()
            for t in trials
            if t["role"] == role and t["finished_at"] and t["started_at"]
        )
    legend = [t.get_text() for t in top.get_legend().get_texts()]
    assert legend == ["TE (2)", "baseline (1)", "LR control (1)"]


def test_the_timeline_counts_the_trials_running_on_each_gpu():
    trials = timeline_trials()
    bottom = timeline.timeline(trials).axes[1]
    places = ["AAAAAAAA gpu 0", "AAAAAAAA gpu 1", "BBBBBBBB gpu 0"]
    assert [t.get_text() for t in bottom.get_yticklabels()] == places
    counts = bottom.images[0].get_array()
    times = (np.arange(timeline.TIMELINE_BINS) + 0.5) * 12 / timeline.TIMELINE_BINS
    for row, (node, gpus) in enumerate((("A" * 12, "0"), ("A" * 12, "1"), ("B" * 12, "0"))):
        assert list(counts[row]) == [
            hand_count(trials, t, node_id=node, gpu_ids=gpus) for t in times
        ]


def test_the_timeline_stays_readable_at_ten_thousand_trials():
    trials = [
        trial(
            f"t{i}",
            "te",
            i,
            "c",
            start=i % 500,
            end=i % 500 + 40,
            node=f"{i % 100:03d}-node-id",
            gpus=str(i % 8),
        )
        for i in range(10_000)
    ]
    fig = timeline.timeline(trials)
    top, bottom = fig.axes[:2]
    assert count_at(role_steps(top)["te"], 100.5) == hand_count(trials, 100.5)
    labels = [t.get_text() for t in bottom.get_yticklabels()]
    assert 0 < len(labels) <= timeline.MAX_ROW_LABELS
    assert all(" gpu " not in label for label in labels)  # 800 GPUs: one row per node
    assert bottom.images[0].get_array().shape == (100, timeline.TIMELINE_BINS)
    assert len(top.patches) == 1 and len(bottom.patches) <= 1  # no artist per trial


def test_a_timeline_without_times_says_so():
    fig = timeline.timeline([trial("t", "te", 0, start=None, end=None)])
    assert fig.axes[0].texts[0].get_text() == "no trial has start and end times"


def test_importance_needs_two_searched_parameters_and_the_documented_64():
    """README documents the measured minimum, 64 complete configurations; two searched
    parameters are enough to compare."""
    assert importance.MIN_IMPORTANCE_CONFIGS == 64
    two = space_from_text(
        SPACE_TEXT.split("  threshold")[0] + "  te_scale: {low: 0.05, high: 300.0, log: true}\n",
        Path("two.yaml"),
        check_trials=False,
    )
    assert list(two.params) == ["pair_fraction", "te_scale"]
    assert importance.importance_withheld(importance_configs(64), two) is None


@pytest.mark.parametrize("gpus, by_gpu", [(24, True), (25, False)])
def test_the_heat_map_has_a_row_per_gpu_up_to_24_then_per_node(gpus, by_gpu):
    trials = [
        trial(f"t{i}", "te", i, "c", start=i, end=i + 5, node=f"node-{i // 4:03d}", gpus=str(i % 4))
        for i in range(gpus)
    ]
    labels = [t.get_text() for t in timeline.timeline(trials).axes[1].get_yticklabels()]
    assert all((" gpu " in label) == by_gpu for label in labels)
    assert len(labels) == (gpus if by_gpu else math.ceil(gpus / 4))


def test_the_heat_map_labels_every_kth_row_up_to_the_most_labels():
    """100 nodes, at most 24 labels: every 5th row (ceil(100 / 24)), from the first."""
    trials = [
        trial(f"t{i}", "te", i, "c", start=i, end=i + 5, node=f"{i:03d}-node-id", gpus="")
        for i in range(100)
    ]
    bottom = timeline.timeline(trials).axes[1]
    labels = [t.get_text() for t in bottom.get_yticklabels()]
    assert labels == [f"{i:03d}-node" for i in range(0, 100, 5)]
    assert list(bottom.get_yticks()) == list(range(0, 100, 5))


# ----------------------------------------------------------------------------- boundaries
def test_the_figures_draw_the_numbers_of_configurations_the_docs_state():
    """docs/results.md: 'the 40 best ranked', 'the 3 best configurations', 'the 100 best
    ranked' named on hover."""
    docs = (Path(__file__).resolve().parents[2] / "docs" / "results.md").read_text()
    assert figures.MAX_INTERVALS == 40 and "the 40 best ranked" in docs
    assert figures.BEST_CURVES == 3 and "the 3 best configurations" in docs
    assert figures.NAMED_POINTS == 100 and "the 100 best" in docs
    assert figures.CROWDED == 1000 and "above 1,000\nconfigurations their points" in docs


def test_the_reference_line_of_no_speedup_is_at_1():
    ax = figures.speedup_intervals(permuted_configs(3)).axes[0]
    assert [list(line.get_xdata()) for line in ax.lines if line not in interval_lines(ax)] == [
        [1.0, 1.0]
    ]
    for ax in figures.speedup_by_parameter(parameter_configs(), SPACE).axes:
        if ax.axison:
            flat = [line for line in ax.lines if line.get_linestyle() == "-" and not line.get_gid()]
            assert [list(line.get_ydata()) for line in flat] == [[1.0, 1.0]], ax.get_xlabel()


def test_each_parameter_axis_spans_its_searched_range_with_a_small_margin():
    fig = figures.speedup_by_parameter(parameter_configs(), SPACE)
    axes = {ax.get_xlabel(): ax for ax in fig.axes if ax.axison}
    assert axes["mode"].get_xlim() == pytest.approx((-0.5, 1.5))  # two choices at 0 and 1
    low, high = 0.25, 2.0  # threshold, linear: 3% of the range each side
    assert axes["threshold"].get_xlim() == pytest.approx(
        (low - 0.03 * (high - low), high + 0.03 * (high - low))
    )
    low, high = 0.05, 300.0  # te_scale, log: 3% of the decades each side
    ratio = (high / low) ** 0.03
    assert axes["te_scale"].get_xlim() == pytest.approx((low / ratio, high * ratio))


@pytest.mark.parametrize("searched, rows", [(1, 1), (3, 2), (4, 2)])
def test_the_parameter_grid_is_two_wide_and_as_tall_as_its_parameters_need(searched, rows):
    lines = SPACE_TEXT.split("search:\n")[1].splitlines()
    space = space_from_text(
        SPACE_TEXT.split("search:\n")[0] + "search:\n" + "\n".join(lines[:searched]) + "\n",
        Path("grid.yaml"),
        check_trials=False,
    )
    fig = figures.speedup_by_parameter(parameter_configs(), space)
    assert len(fig.axes) == rows * min(2, searched)
    assert sum(ax.axison for ax in fig.axes) == searched
    assert fig.get_size_inches()[1] == pytest.approx(2.8 * rows)


def crowd(n: int) -> list[dict]:
    rng = np.random.default_rng(5)
    return [
        config(
            f"c{i}",
            rank=i + 1,
            mean=float(rng.uniform(0.8, 1.2)),
            epochs=float(rng.uniform(2, 6)),
            overhead=float(rng.uniform(0, 0.3)),
            pair_fraction=float(rng.uniform(0.02, 1)),
            threshold=float(rng.uniform(0.25, 2)),
            te_scale=float(rng.uniform(0.05, 300)),
        )
        for i in range(n)
    ]


@pytest.mark.parametrize("crowded", [False, True])
def test_points_are_drawn_smaller_and_fainter_above_a_thousand_configurations(crowded):
    configs = crowd(figures.CROWDED + (1 if crowded else 0))
    points = labelled(figures.pareto_front(configs, []).axes[0], "configurations")
    assert set(points.get_sizes()) == {6 if crowded else 18}
    ax = next(ax for ax in figures.speedup_by_parameter(configs, SPACE).axes if ax.axison)
    dots = next(line for line in ax.lines if line.get_marker() == "o")
    bars = next(line for line in ax.lines if line.get_gid() == "intervals")
    assert dots.get_alpha() == bars.get_alpha() == (0.2 if crowded else 0.6)


def test_each_seeds_curves_take_the_colour_cycles_colours_in_seed_order():
    configs, trials, epochs = curve_tables(seeds=tuple(range(11)))
    fig = figures.learning_curves(configs, trials, epochs, "train_acc", 0.75)
    seed_of = {t["trial_id"]: t["seed"] for t in trials}
    ids_of = {}
    for e in epochs:
        ids_of.setdefault(e["trial_id"], []).append(e["train_acc"])
    trial_of = {tuple(v): k for k, v in ids_of.items()}
    solid = [line for line in fig.axes[0].lines if line.get_linestyle() == "-"]
    colour_of_seed = {seed_of[trial_of[tuple(line.get_ydata())]]: line for line in solid}
    assert sorted(colour_of_seed) == list(range(11))
    for seed, line in colour_of_seed.items():  # the 11th seed takes the first colour again
        assert to_rgba(line.get_color()) == to_rgba(f"C{seed % 10}"), seed


def test_the_interval_lines_break_after_every_configuration():
    fig = figures.speedup_by_parameter(parameter_configs(), SPACE)
    for ax in fig.axes:
        if ax.axison:
            bars = next(line for line in ax.lines if line.get_gid() == "intervals")
            x = np.asarray(bars.get_xdata(), dtype=float)
            assert len(x) == 3 * 2 and np.isnan(x[2::3]).all() and not np.isnan(x[0::3]).any()


@pytest.mark.parametrize(
    "low, high, subs",
    [(0.1, 1.0, (1.0, 2.0, 5.0)), (1.0, 10**2.5, (1.0, 3.0)), (1.0, 10**2.51, (1.0,))],
)
def test_log_axes_label_fewer_points_of_each_decade_as_the_range_grows(low, high, subs):
    from te_sweep.core.space import Param

    assert figures.LOG_DECADES_13 == 2.5
    param = Param("x", "float", low=low, high=high, log=True)
    assert figures._log_ticks(param) == subs


def test_the_curves_read_no_lr_control_not_even_of_a_drawn_configuration():
    configs, trials, _ = curve_tables()
    ids = figures.curve_trial_ids(configs, trials)
    assert "ctl4_0" not in ids and "t4_0" in ids  # c4 is ranked first


def test_importance_bars_are_drawn_on_the_scores_whole_range():
    fig = importance.importances(importance_configs(importance.MIN_IMPORTANCE_CONFIGS), SPACE)
    assert [ax.get_xlim() for ax in fig.axes] == [(0.0, 1.0), (0.0, 1.0)]  # scores sum to 1


def test_a_role_without_trials_leaves_the_others_stacked():
    """No baseline ran (a sweep cut short): the LR controls are still drawn, on the TE runs."""
    trials = [t for t in timeline_trials() if t["role"] != "baseline"]
    steps = role_steps(timeline.timeline(trials).axes[0])
    assert set(steps) == {"te", "control"}
    assert list(steps["control"].get_data().baseline) == list(steps["te"].get_data().values)
    for at in (1, 6, 9, 11):
        assert count_at(steps["control"], at) == hand_count(trials, at, role="control")


@pytest.mark.parametrize("only_one", [False, True])
def test_the_timelines_axes_span_the_run_and_its_peak(only_one):
    trials = timeline_trials()[:1] if only_one else timeline_trials()
    fig = timeline.timeline(trials)
    top, bottom = fig.axes[0], fig.axes[1]
    end = 10.0 if only_one else 12.0
    peak = 1 if only_one else 3  # t1, b1 and t2 at once from 2 to 5 s
    assert top.get_xlim() == pytest.approx((0.0, end))
    assert top.get_ylim() == pytest.approx((0.0, peak * 1.05))
    image = bottom.images[0]
    rows = len(image.get_array())
    assert image.get_extent() == pytest.approx([0.0, end, rows - 0.5, -0.5])
    assert image.norm.vmin == 0  # an idle place is white, whatever the busiest one
    assert fig.get_size_inches()[1] == pytest.approx(2.6 + min(4.0, 0.8 + 0.12 * rows))


def test_the_heat_map_counts_at_the_middle_of_each_column():
    """Columns' middles at (k + 1/2) * end / TIMELINE_BINS seconds, not rounded down to whole
    seconds: a hand-over at 2.5 s of 10 falls after column 59 of 240, not column 71."""
    trials = [
        trial("t1", "te", 0, "c", start=0, end=2.5, gpus="0"),
        trial("t2", "te", 1, "c", start=2.5, end=10, gpus="1"),
    ]
    counts = timeline.timeline(trials).axes[1].images[0].get_array()
    assert timeline.TIMELINE_BINS == 240
    assert list(counts[0]) == [1] * 60 + [0] * 180
    assert list(counts[1]) == [0] * 60 + [1] * 180


def test_withheld_importance_leaves_only_its_reason():
    configs = importance_configs(importance.MIN_IMPORTANCE_CONFIGS - 1)
    fig = importance.importances(configs, SPACE)
    assert [ax.axison for ax in fig.axes] == [False, False]  # no empty second panel
    assert fig.axes[0].texts[0].get_text() == importance.importance_withheld(configs, SPACE)


def test_a_parameter_figure_without_estimates_says_so_on_its_first_axis_only():
    fig = figures.speedup_by_parameter([config("c1", rank=None, mean=None)], SPACE)
    first, *others = fig.axes
    assert first.texts[0].get_text() == "no configuration has a paired estimate"
    assert len(others) >= 3 and not any(ax.axison for ax in others)


def test_the_pareto_figure_reads_tables_read_back_from_parquet():
    import pyarrow as pa

    configs, trials = pareto_tables()
    configs_back = pa.Table.from_pylist(configs).to_pylist()
    trials_back = pa.Table.from_pylist(trials).to_pylist()
    expected = figures.pareto_front(configs, trials).axes[0]
    drawn = figures.pareto_front(configs_back, trials_back).axes[0]
    for label in ("configurations", "baselines (seeds)"):
        points = labelled(drawn, label).get_offsets().tolist()
        assert points == labelled(expected, label).get_offsets().tolist()
    assert len(labelled(drawn, "configurations").get_offsets()) == 5  # the complete ones
    assert len(labelled(drawn, "baselines (seeds)").get_offsets()) == 3


def test_importance_reads_configurations_read_back_from_parquet():
    """configs.parquet's strings are not Python's interned literals: the figure compares
    statuses by value (an `is` would find no complete configuration)."""
    import pyarrow as pa

    configs = importance_configs(importance.MIN_IMPORTANCE_CONFIGS)
    read_back = pa.Table.from_pylist(configs).to_pylist()
    from te_sweep.core.outcome import CONFIG_COMPLETE

    status = read_back[0]["status"]
    assert status == CONFIG_COMPLETE and status is not CONFIG_COMPLETE  # equal, not the same
    fig = importance.importances(read_back, SPACE)
    expected = importance.importance_scores(configs, SPACE)
    for ax, (key, _) in zip(fig.axes, importance.OBJECTIVES, strict=True):
        names = [t.get_text() for t in ax.get_yticklabels()]
        widths = {n: bar.get_width() for n, bar in zip(names, ax.patches, strict=True)}
        assert widths == pytest.approx(expected[key])


@pytest.mark.parametrize("gpus", [True, False])
def test_the_heat_maps_rows_are_named_for_what_they_are(gpus):
    trials = [trial(f"t{i}", "te", i, "c", gpus="0" if gpus else None) for i in range(2)]
    bottom = timeline.timeline(trials).axes[1]
    assert bottom.get_ylabel() == ("node and GPU" if gpus else "node")


def test_the_heat_maps_colour_scale_counts_whole_trials_and_its_height_is_capped():
    nodes = [f"node-{i:02d}-0123456789" for i in range(40)]  # 40 rows, past the 4-inch cap
    trials = [trial(f"t{i}", "te", i, "c", start=i % 3, end=7, node=n) for i, n in enumerate(nodes)]
    fig = timeline.timeline(trials)
    fig.canvas.draw()
    colour_bar = fig.axes[-1]
    ticks = [t for t in colour_bar.get_yticks() if 0 <= t <= 1]
    assert ticks and all(float(t).is_integer() for t in ticks)  # 0 and 1, never 0.2, 0.4, ...
    assert fig.get_size_inches()[1] == pytest.approx(2.6 + 4.0)


def test_every_line_of_the_speedup_figures_is_drawn_visibly():
    """A width of 0 or below hides a line (the intervals, the reference at 1, the curves, the
    baselines' mean, the target) though its data is all there."""
    configs, trials, epochs = curve_tables()
    pareto_configs, pareto_trials = pareto_tables()
    drawn = [
        figures.speedup_intervals(permuted_configs(5)),
        figures.speedup_by_parameter(parameter_configs(), SPACE),
        figures.learning_curves(configs, trials, epochs, "train_acc", 0.75),
        figures.pareto_front(pareto_configs, pareto_trials),
    ]
    for fig in drawn:
        lines = [line for ax in fig.axes for line in ax.lines]
        assert lines
        for line in lines:
            assert line.get_linewidth() > 0 and line.get_alpha() in (None, 0.2, 0.6), line
