"""The driver's half of the checkpoint policy: what a trial keeps once it has finished.

A running trial keeps one checkpoint at rest (checkpoints.py). When Tune reports a trial
complete (finished, or stopped by ASHA), this callback applies `--keep-checkpoints`: `final`
keeps the newest file, `none` deletes it, so a sweep's disk use ends at its results. A trial
that errored keeps its checkpoint: `te-sweep resume` continues it from there.
"""

from __future__ import annotations

from typing import Any

from ray.tune import Callback

from te_sweep.sweep.checkpoints import KeepCheckpoints, TrialCheckpoints


class CheckpointRetention(Callback):
    def __init__(self, keep: KeepCheckpoints) -> None:
        self.keep = keep

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        storage = trial.storage  # Tune's StorageContext of the trial: filesystem and path
        TrialCheckpoints(storage.storage_filesystem, storage.trial_fs_path).finish(self.keep)
