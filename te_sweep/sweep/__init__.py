"""Running a sweep on Ray Tune with Optuna: launch, search, trials, faults, the live view.

The layer that starts Ray. It runs te_sweep.core's trials as Tune trials and, when a sweep
ends, writes te_sweep.results' tables; the CLI (te_sweep.cli) sits above it. Neither lower
layer imports it (tests/test_layers.py).

- Launch and resume: launch (what a launch or resume will do, decided before Ray starts),
  run (the Tuner run and the export), ray_cluster (a private Ray or a cluster), claim (one
  driver per sweep), relocate (a moved sweep directory), stopping (signals), disk_guard.
- The search: searcher (Optuna configurations, each on several seeds beside paired
  baselines), samplers and grid_sampler, concurrency (trials in flight).
- A trial on Tune: trainable, trial_session (checkpoint then report, replay after restart),
  standin (a trainable that trains nothing, for the scale benchmarks).
- Checkpoints and state: checkpoints, retention, checkpoint_check, state_fallback,
  ended_trials (Tune's bookkeeping of an ended trial, trimmed).
- What the driver prints and logs: progress (the live view), tune_log (Tune's warnings),
  result_log (result.json without the config).
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

from te_sweep.surface import lazy_surface

# The names the layers above use, by module (tests/test_layers.py holds it to their imports).
EXPORTS = {
    "checkpoints": ("KEEP_CHOICES",),
    "launch": ("SweepOptions", "prepare_launch", "prepare_resume"),
    "run": ("run_sweep",),
    "samplers": ("AUTO_SAMPLER", "SAMPLER_CHOICES"),
    "stopping": ("Phase", "StopController", "SweepStopped"),
}

__all__, _surface = lazy_surface(__name__, EXPORTS)


def __getattr__(name: str) -> Any:
    """The surface's names (EXPORTS); and, as te_sweep.sweep was one module until the
    layers (te_sweep/moved.py), the names a sweep pickled then holds (trial_dirname in
    tuner.pkl), now in launch, run or ray_cluster. A name that is none of these and no
    submodule is an AttributeError as usual."""
    from te_sweep.moved import OLD_SWEEP_PARTS

    if name in __all__:
        return _surface(name)
    if name.startswith("__") or importlib.util.find_spec(f"{__name__}.{name}") is not None:
        raise AttributeError(name)
    for part in OLD_SWEEP_PARTS:
        module = importlib.import_module(f"{__name__}.{part}")
        if hasattr(module, name):
            return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
