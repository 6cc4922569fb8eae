"""Stop a sweep cleanly before its storage fills up, instead of corrupting it when it does.

When a local or NFS storage runs out of space in the middle of a sweep, every writer fails at
once: trials cannot save their checkpoints, Tune cannot write its experiment state (a file cut
short is left behind) and the export cannot write the tables. So the driver watches the free
space while Tune runs, from a background thread, and stops the sweep (stopping.py, as Ctrl-C
does) while there is still room for what a clean stop writes: Tune's last experiment state,
one more checkpoint of every running trial, and the tables. Nothing is then damaged, and after
space is freed `te-sweep resume` finishes the sweep.

The room a clean stop needs is measured, not guessed: twice the newest experiment state (Tune
writes a new file before the old one goes), two checkpoints per trial in flight (a save writes
the new file before deleting the old), and RESERVE_SLACK for the tables and logs. Object stores
(s3://, gs://) have no free space to watch and are not guarded.

The space is read every CHECK_EVERY_S, and also as soon as a trial reports an epoch (DiskCheck,
a Tune callback): a report comes with a checkpoint, which is when the disk fills fastest, and a
fast sweep can otherwise finish its last trials between two timed reads. Reads are at least
MIN_GAP_S apart, so that thousands of reports a minute cost no more than one read each gap.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ray.tune import Callback

from te_sweep.results.tune_files import STATE_GLOB
from te_sweep.sweep.checkpoints import PREFIX, SUFFIX

CHECK_EVERY_S = 5.0  # how often the free space is read while Tune runs and no trial reports
MIN_GAP_S = 0.5  # the least time between two reads, however often trials report
RESERVE_SLACK = 16 * 2**20  # bytes for the tables, optuna.db, the report and Tune's logs
SAMPLED_TRIALS = 4  # trial directories looked at for the size of a checkpoint
MiB = 2**20


def _newest_size(directory: Path, pattern_start: str, pattern_end: str) -> int:
    sizes = [
        entry.stat().st_size
        for entry in os.scandir(directory)
        if entry.name.startswith(pattern_start)
        and entry.name.endswith(pattern_end)
        and entry.is_file()
    ]
    return max(sizes, default=0)


class DiskGuard:
    """Watches the free space of a local sweep directory; calls `stop(line)` once if a clean
    stop would no longer fit."""

    def __init__(
        self,
        sweep_path: Path,
        in_flight: int,
        stop: Callable[[str], None],
        every_s: float = CHECK_EVERY_S,
    ) -> None:
        self.sweep_path = sweep_path
        self.in_flight = in_flight
        self.stop = stop
        self.every_s = every_s
        self._done = threading.Event()
        self._wake = threading.Event()  # a trial reported: read the free space now
        self._thread: threading.Thread | None = None
        self._checkpoint_bytes = 0  # the largest checkpoint seen so far

    def needed(self) -> int:
        """Bytes a clean stop writes at most, measured from the files there now."""
        state = _newest_size(self.sweep_path, STATE_GLOB.split("*")[0], ".json")
        trial_dirs = (entry for entry in os.scandir(self.sweep_path) if entry.is_dir())
        for _, entry in zip(range(SAMPLED_TRIALS), trial_dirs, strict=False):
            self._checkpoint_bytes = max(
                self._checkpoint_bytes, _newest_size(Path(entry.path), PREFIX, SUFFIX)
            )
        return 2 * state + 2 * self.in_flight * self._checkpoint_bytes + RESERVE_SLACK

    def check(self) -> bool:
        """Read the free space once; stop the sweep if it is too little. True: stopped."""
        free = shutil.disk_usage(self.sweep_path).free
        needed = self.needed()
        if free >= needed:
            return False
        self.stop(
            f"Error: the storage of {self.sweep_path} is nearly full ({free / MiB:.1f} MiB "
            f"free, a clean stop needs {needed / MiB:.1f} MiB): stopping the sweep before "
            "a write fails; free space there, then run `te-sweep resume "
            f"{self.sweep_path}`"
        )
        return True

    def check_soon(self) -> None:
        """Ask the watcher for a read now (at most one per MIN_GAP_S); never blocks."""
        self._wake.set()

    def _watch(self) -> None:
        while True:
            self._wake.wait(self.every_s)
            self._wake.clear()
            if self._done.is_set():
                return
            try:
                if self.check():
                    return
            except OSError:  # the directory is being moved or is unreachable: try again later
                pass
            if self._done.wait(MIN_GAP_S):
                return

    def __enter__(self) -> DiskGuard:
        global _active
        self._thread = threading.Thread(target=self._watch, name="te-sweep-disk-guard", daemon=True)
        self._thread.start()
        _active = self
        return self

    def __exit__(self, *exc: object) -> None:
        global _active
        _active = None
        self._done.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=self.every_s + 5)


_active: DiskGuard | None = None  # the guard of the sweep this driver runs, while Tune runs


class DiskCheck(Callback):
    """Tune callback: each epoch a trial reports asks the running guard for a read.

    It holds nothing (Tune pickles callbacks with the sweep, and a resumed sweep gets the one
    it pickled), so it finds the guard of the driver it runs in through the module."""

    def on_trial_result(
        self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any
    ) -> None:
        if _active is not None:
            _active.check_soon()
