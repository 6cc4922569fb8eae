"""Tune's bookkeeping of a trial that has ended, cut to what is still read.

Tune keeps every Trial object of a sweep in the driver until the sweep ends, and writes each
one into the experiment state at every snapshot. For each number at the top of a trial's
results it keeps running statistics (max, min, mean, last, the means of the last 5 and 10
values, with the deques behind those means), and the last result holds a copy of the trial's
config. Once a trial has ended, nothing of te-sweep's reads the statistics (the searcher was
told its objectives, the export reads result.json) and Tune reads them only for its
ExperimentAnalysis "avg"/"last-5-avg" scopes, which te-sweep never asks for. Measured on 600
stand-in trials, they were most of an ended Trial (50 of its 71 KB of Python objects) and half
of the experiment state (bench/sweep_scale.py, BENCHMARKS.md §12).

So when a trial ends (completed, stopped early or errored), TrimEndedTrials empties those
statistics, drops the config copy and the per-epoch record list from its last result and
forgets the keys Tune's worker filled in before the trial's first report. The
last result keeps every other key: the live view reads the ended trials of a resumed sweep
from it (progress.py), and Tune its iteration and status keys. This runs as the last callback,
after every other one has read the full result.

When a sweep ends (and when one is restored), Tune also builds an ExperimentAnalysis, which
reads every trial's result.json into a pandas DataFrame for the ResultGrid that Tuner.fit
returns. te-sweep reads results with its own export and never looks at that grid; at 10,000
trials of 3 epochs the frames took 8.8 s and 243 MiB. `no_result_frames` skips them while
te-sweep's Tuner is built and run.

What the driver frees is mostly not given back: glibc keeps a freed block in its heap while
live blocks sit above it, and a driver that allocates ever larger buffers as the sweep grows
(Tune's snapshots are rebuilt at each one, for every trial) leaves such holes behind.
Measured on 600 stand-in trials (bench/sweep_scale.py, BENCHMARKS.md §12): the heap grew from
131 to 173 MB while its live blocks grew from 128 to 134 MB, and the driver's anonymous memory
by 104 KiB per ended trial; with glibc's malloc_trim after every HEAP_RELEASE_EVERY ended
trials, which hands the free pages back, by 40 KiB. `release_heap` does that where the C
library is glibc, and nothing elsewhere.

Ray is pinned (pyproject.toml); the attributes touched are those of that version, and tests
(tests/sweep/test_ended_trials.py, tests/sweep/test_scale.py) fail if a later Ray moves them.
Should they be missing, Tune is left as it is: a lean driver is worth having, never worth a
failed sweep.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ray.tune import Callback
from ray.tune.analysis import ExperimentAnalysis

from te_sweep.core.reporting import RECORD_KEY

CONFIG_KEY = "config"  # Tune's copy of the trial's config in each result
DROPPED_KEYS = frozenset({CONFIG_KEY, RECORD_KEY})
DEFAULT_RESULT = "_default_result_or_future"  # Trial's attribute (Ray 2.60)
FETCH_FRAMES = "_fetch_trial_dataframes"  # ExperimentAnalysis's method (Ray 2.60)
HEAP_RELEASE_EVERY = 20  # ended trials between two releases of the heap's free pages


def trim(trial: Any) -> bool:
    """Empty an ended trial's statistics and shorten its last result; False where this Ray
    keeps them elsewhere (then nothing is changed)."""
    metadata = getattr(trial, "run_metadata", None)
    needed = ("metric_analysis", "metric_n_steps", "last_result")
    if metadata is None or not all(hasattr(metadata, name) for name in needed):
        return False
    # Assigning (not clearing in place) goes through the metadata's __setattr__, which drops
    # its cached JSON, so the next snapshot writes the trimmed trial.
    metadata.metric_analysis = {}
    metadata.metric_n_steps = {}
    last = metadata.last_result or {}
    metadata.last_result = {k: v for k, v in last.items() if k not in DROPPED_KEYS}
    # The keys Tune's worker filled in (host, pid, ...), kept for a trial that has not
    # reported yet; Tune itself drops them when it pickles a trial.
    if hasattr(trial, DEFAULT_RESULT):
        setattr(trial, DEFAULT_RESULT, None)
    return True


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None where the C library has none (macOS, musl)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    function = getattr(libc, "malloc_trim", None)
    if function is None:
        return None
    function.argtypes, function.restype = [ctypes.c_size_t], ctypes.c_int
    return function  # type: ignore[no-any-return]


def release_heap() -> bool:
    """Hand the C heap's free pages back to the system (malloc_trim(0)); False where the C
    library cannot (then nothing is done)."""
    function = _malloc_trim()
    if function is None:
        return False
    function(0)
    return True


class TrimEndedTrials(Callback):
    """Trims each trial as it ends, and the heap after every HEAP_RELEASE_EVERY of them (see the
    module's docstring)."""

    # Class defaults, not __init__: a sweep launched before these counts resumes with the
    # instance pickled in its tuner.pkl, which has neither.
    ended = 0
    heap_releases = 0

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._ended(trial)

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._ended(trial)

    def _ended(self, trial: Any) -> None:
        trim(trial)
        self.ended += 1
        if self.ended % HEAP_RELEASE_EVERY == 0 and release_heap():
            self.heap_releases += 1


def _no_frames(analysis: Any) -> dict[str, Any]:
    return {}


@contextmanager
def no_result_frames() -> Iterator[bool]:
    """Within the block, Tune's ExperimentAnalysis reads no trial's result.json (its
    ResultGrid then has no metrics frames); yields whether this Ray has that method."""
    original = getattr(ExperimentAnalysis, FETCH_FRAMES, None)
    if original is None:
        yield False
        return
    setattr(ExperimentAnalysis, FETCH_FRAMES, _no_frames)
    try:
        yield True
    finally:
        setattr(ExperimentAnalysis, FETCH_FRAMES, original)
