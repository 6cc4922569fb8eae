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
- Checkpoints and state: checkpoints, retention, checkpoint_check, state_fallback.
- What the driver prints and logs: progress (the live view), tune_log (Tune's warnings),
  result_log (result.json without the config).
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any


def __getattr__(name: str) -> Any:
    """te_sweep.sweep was one module until the layers (te_sweep/moved.py): a sweep pickled
    then names its functions here (trial_dirname in tuner.pkl), now in launch, run or
    ray_cluster. A name that is neither a submodule nor defined in those is an AttributeError
    as usual."""
    from te_sweep.moved import OLD_SWEEP_PARTS

    if name.startswith("__") or importlib.util.find_spec(f"{__name__}.{name}") is not None:
        raise AttributeError(name)
    for part in OLD_SWEEP_PARTS:
        module = importlib.import_module(f"{__name__}.{part}")
        if hasattr(module, name):
            return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
