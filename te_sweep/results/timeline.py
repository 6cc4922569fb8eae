"""The report's timeline: trials running at once by role, and by GPU or node over time.

Drawn from trials.parquet's start and end times and placement alone, at a cost that does not
grow with the number of trials beyond sorting their times: stacked step patches for the roles,
a fixed-size heat map (TIMELINE_BINS columns) for the places, with at most MAX_ROW_LABELS
labelled rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display needed (as figures.py)
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import StepPatch
from matplotlib.ticker import MaxNLocator

from te_sweep.results.figures import OTHER_COLOUR, ROLE_COLOURS, ROLE_NAMES, Rows, empty

MAX_PLACE_ROWS = 24  # the timeline has one row per GPU up to this many, else one per node
MAX_ROW_LABELS = 24  # rows of the timeline's heat map that are labelled (evenly spaced)
TIMELINE_BINS = 240  # time columns of the timeline's heat map


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
    return Timed(
        np.array([(t["started_at"] - t0).total_seconds() for t in timed]),
        np.array([(t["finished_at"] - t0).total_seconds() for t in timed]),
        [t["role"] for t in timed],
        [_place(t, by_gpu) for t in timed],
    )


def _place(t: dict[str, Any], by_gpu: bool) -> str:
    node = (t["node_id"] or "?")[:8]
    return node + (f" gpu {t['gpu_ids']}" if by_gpu and t["gpu_ids"] else "")


def running_at(starts: np.ndarray, ends: np.ndarray, times: np.ndarray) -> np.ndarray:
    """How many of the intervals [start, end) hold each time."""
    return np.searchsorted(np.sort(starts), times, side="right") - np.searchsorted(
        np.sort(ends), times, side="right"
    )


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
        # (baseline takes an array, as matplotlib's docs say; its stub says float only)
        ax.add_artist(
            StepPatch(
                below + count,
                edges,
                baseline=below,  # type: ignore[arg-type]
                fill=True,
                linewidth=0,
                color=ROLE_COLOURS.get(role, OTHER_COLOUR),
                label=f"{ROLE_NAMES.get(role, role)} ({int(mine.sum())})",
            )
        )
        below = below + count
    ax.set_ylabel("trials running")
    ax.set_xlim(edges[0], edges[-1])
    ax.set_ylim(0, max(1, int(below.max())) * 1.05)
    # above the axes, not on them: at full occupancy the steps fill the whole area
    ax.legend(
        fontsize=7,
        loc="lower right",
        bbox_to_anchor=(1.0, 1.0),
        ncol=3,
        frameon=False,
        borderaxespad=0.2,
    )


def place_counts(timed: Timed, times: np.ndarray) -> tuple[list[str], np.ndarray]:
    """The places (rows, sorted) and the trials running at each of `times` on each."""
    places = sorted(set(timed.places))
    where = np.array(timed.places)
    counts = np.array(
        [running_at(timed.starts[where == p], timed.ends[where == p], times) for p in places]
    )
    return places, counts


def _running_by_place(fig: Figure, ax: Any, timed: Timed) -> None:
    """A heat map: one row per node (per GPU while there are few), TIMELINE_BINS columns,
    the trials running there at each column's middle; at most MAX_ROW_LABELS labels."""
    end = float(timed.ends.max()) or 1.0
    times = (np.arange(TIMELINE_BINS) + 0.5) * end / TIMELINE_BINS
    places, counts = place_counts(timed, times)
    image = ax.imshow(
        counts,
        aspect="auto",
        interpolation="nearest",
        cmap="Blues",
        extent=(0, end, len(places) - 0.5, -0.5),
        vmin=0,
    )
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
        return empty(fig, ax, "no trial has start and end times")
    rows = len(set(timed.places))
    height = min(4.0, 0.8 + 0.12 * rows)  # of the heat map: 0.12 inch a row, at most 4
    fig, (top, bottom) = plt.subplots(
        2,
        1,
        figsize=(7, 2.6 + height),
        sharex=True,
        layout="constrained",
        gridspec_kw={"height_ratios": (2.0, height)},
    )
    _running_by_role(top, timed)
    fig.suptitle("Trials over time: running at once by role, and on each node")
    _running_by_place(fig, bottom, timed)
    return fig
