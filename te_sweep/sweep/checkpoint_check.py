"""The driver's check of a resumed sweep's checkpoints, before Tune starts any trial.

A trial worker verifies its checkpoint when it loads it and falls back past a damaged one
(checkpoints.py, trial_session.py), but a worker's output never reaches the sweep's console
(Ray runs with log_to_driver=False). So `te-sweep resume` (and `launch --resume-if-exists`)
first runs the same check here, on the storage, for every trial Tune will start again: it moves
each damaged newest checkpoint aside and prints one line naming it, so the user learns that a
trial restarts earlier than it had reached, and which file was damaged.

Cost at 10,000 trials: one listing of the sweep directory and one read of the newest
experiment state (the one before it if that one is unreadable); then, only for the trials
that state does not show finished (the running or
errored ones, dozens at most), one listing of the trial directory and a read of its newest
checkpoint. A finished trial's final checkpoint is never read. When no experiment state can be
read, every trial directory is checked: slower, never wrong.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs

from te_sweep.results.storage import SweepDir, reaching
from te_sweep.results.tune_files import STATE_GLOB, experiment_state
from te_sweep.sweep.checkpoints import Loader, TrialCheckpoints

FINISHED_STATUS = "TERMINATED"  # Tune's status of a trial that ran to its end
_STATE_PREFIX, _STATE_SUFFIX = STATE_GLOB.split("*")


def load_trainable_checkpoint(payload: bytes) -> Any:
    """The real trainable's loader (imported here: it brings torch), for legacy files."""
    from te_sweep.sweep.trainable import _load

    return _load(payload)


def trainable_loader(trainable: Callable[[dict[str, Any]], None] | None) -> Loader | None:
    """The loader the driver judges legacy files with: the real trainable's (trainable None),
    else none (a stand-in's or a test's trainable, whose format the driver does not know)."""
    return load_trainable_checkpoint if trainable is None else None


def _finished_trials(fs: pafs.FileSystem, root: str, listing: list[pafs.FileInfo]) -> set[str]:
    """Directory names of the trials the newest readable experiment state shows finished (an
    older state shows fewer, never a wrong one: a finished trial stays finished); none when no
    state can be read, and then every trial is checked."""
    states = sorted(
        (
            info.base_name
            for info in listing
            if info.type == pafs.FileType.File
            and info.base_name.startswith(_STATE_PREFIX)
            and info.base_name.endswith(_STATE_SUFFIX)
        ),
        reverse=True,
    )
    for name in states:  # experiment_state reads a local directory's newest: give it this one
        unreadable: list[Path] = []
        try:
            with (
                tempfile.TemporaryDirectory(prefix="te-sweep-state-") as tmp,
                fs.open_input_stream(f"{root}/{name}") as stream,
            ):
                (Path(tmp) / name).write_bytes(stream.read())
                state = experiment_state(Path(tmp), unreadable)
        except (OSError, ValueError, KeyError, IndexError, TypeError, pa.ArrowException):
            continue  # cut short by a full disk or a kill: the one before it
        if unreadable:
            continue
        return {dirname for status, dirname in state.values() if status == FINISHED_STATUS}
    return set()


def check_resumed_checkpoints(
    sweep_dir: SweepDir, load_legacy: Loader | None = load_trainable_checkpoint
) -> list[str]:
    """Move aside the damaged newest checkpoints of the sweep's unfinished trials (falling back
    as a worker would: a damaged older one goes too) and return one line per file moved.

    `load_legacy` judges a checkpoint without te-sweep's integrity header (written by an
    earlier te-sweep): the trainable's own loader; None accepts such files unread (a trainable
    whose loader the driver does not know; its workers still check them)."""
    fs, root = sweep_dir.filesystem()
    lines = []
    with reaching(sweep_dir.uri):
        listing = fs.get_file_info(pafs.FileSelector(root, allow_not_found=True))
        finished = _finished_trials(fs, root, listing)
        for info in sorted(listing, key=lambda i: i.base_name):
            if info.type != pafs.FileType.Directory or info.base_name in finished:
                continue
            checkpoints = TrialCheckpoints(fs, info.path)
            lines += checkpoints.restore(load_legacy, load_all=False).lines(info.base_name)
    return lines
