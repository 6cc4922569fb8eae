"""Resuming a sweep whose newest Tune state was cut short (a full disk, a crash mid-write).

Tune writes three files per driver session, named by the session's start time:
experiment_state-T.json (every trial: id, status, directory), search_gen_state-T.json and
searcher-state-T.pkl (the Optuna study and what it suggested); `Tuner.restore` reads the
newest of each. If the newest experiment state cannot be read, Tune cannot restore from it.
The session before it can be restored, but it does not know the trials that the damaged
session started: their configurations are suggested again, and their old directories would
then be exported beside the new ones, one run counted twice.

So the fallback (local and NFS storage) sets the damaged session's three files aside (renamed
NAME.damaged) and moves every trial directory the older state does not name into
SET_ASIDE_PREFIX-T/ inside the sweep, where neither Tune nor the export looks; those trials
are trained again (a trial is deterministic per seed, so they come out the same). Trials the
older state names continue from their own newest checkpoints, as after any interruption.
Without a readable older state there is nothing to continue from, and resume refuses.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from te_sweep.results.tune_files import (
    PARAMS_FILE,
    RESULT_FILE,
    STATE_GLOB,
    experiment_state,
    state_is_readable,
)
from te_sweep.sweep.checkpoints import PREFIX

STATE_PREFIX, STATE_SUFFIX = STATE_GLOB.split("*")
SESSION_FILES = ("experiment_state-{}.json", "search_gen_state-{}.json", "searcher-state-{}.pkl")
DAMAGED_SUFFIX = ".damaged"
SET_ASIDE_PREFIX = "set-aside"


def _is_trial_dir(directory: Path) -> bool:
    """A trial's directory (not figures/ or a set-aside folder): it holds what a trial writes
    first, its checkpoints, or what Tune writes for it."""
    return (
        (directory / PARAMS_FILE).exists()
        or (directory / RESULT_FILE).exists()
        or any(directory.glob(f"{PREFIX}*"))
        or any(directory.glob(f".{PREFIX}*"))
    )


def session_stamps(root: Path) -> list[str]:
    """The driver sessions' times, oldest first (names sort as times)."""
    return sorted(p.name[len(STATE_PREFIX) : -len(STATE_SUFFIX)] for p in root.glob(STATE_GLOB))


def newest_readable(root: Path) -> tuple[list[str], str | None]:
    """(the damaged sessions newer than the newest readable one, newest first; that one)."""
    damaged: list[str] = []
    for stamp in reversed(session_stamps(root)):
        if state_is_readable(root / SESSION_FILES[0].format(stamp)):
            return damaged, stamp
        damaged.append(stamp)
    return damaged, None


def fall_back(root: Path) -> list[str]:
    """Set aside the damaged newest sessions (see the module docstring); one line per thing
    done, none when the newest state is readable. The caller holds the sweep's claim and has
    checked that a readable state exists (`newest_readable`)."""
    damaged, readable = newest_readable(root)
    if not damaged or readable is None:
        return []
    known = {dirname for _, dirname in experiment_state(root).values()}
    lines = []
    for stamp in damaged:
        for name in SESSION_FILES:
            path = root / name.format(stamp)
            if path.exists():
                path.rename(path.with_name(path.name + DAMAGED_SUFFIX))
        lines.append(
            f"Tune's experiment state {root / SESSION_FILES[0].format(stamp)} cannot "
            f"be read (cut short by a full disk or a crash); it and its session's "
            f"search state are renamed *{DAMAGED_SUFFIX}, and the sweep continues from "
            f"the state of {readable}"
        )
    aside = root / f"{SET_ASIDE_PREFIX}-{damaged[0]}"
    unknown = sorted(
        d for d in root.iterdir() if d.is_dir() and d.name not in known and _is_trial_dir(d)
    )
    for directory in unknown:
        aside.mkdir(exist_ok=True)
        shutil.move(str(directory), str(aside / directory.name))
    if unknown:
        names = ", ".join(d.name for d in unknown)
        lines.append(
            f"{len(unknown)} trials started after that state ({names}) are moved to "
            f"{aside} and will be trained again, so none is counted twice"
        )
    return lines
