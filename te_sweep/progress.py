"""The live table of a running sweep, printed by te-sweep itself instead of Ray's reporter.

A Tune callback keeps one row per trial (role, state, epoch, accuracy, objectives) and
prints the table: redrawn in place on a terminal, or appended at most every `interval`
seconds (and on every trial end) when the output is a log file, so a long sweep's log stays
readable.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Callable

from ray.tune import Callback

from te_sweep.console import cell, counts

COLUMNS = ("trial", "role", "state", "epoch", "train_acc", "test_acc", "epochs_obj",
           "te_overhead", "node")


def error_line(local_file: str | None, trial_dir: str | None) -> str:
    """The exception line of a trial's error file; the full traceback stays in its folder."""
    from te_sweep.export import error_line as read_error_line

    line = read_error_line(Path(local_file)) if local_file else None
    where = f"{trial_dir}/error.txt" if trial_dir else "the trial's error.txt"
    return f"{line} (traceback: {where})" if line else f"see {where}"


def _fmt(value: Any) -> str:
    return cell(value, "{:.4f}" if isinstance(value, float) else "{}")


class LiveTable(Callback):
    def __init__(self, echo: Callable[[str], None] | None = None, interval: float = 10.0,
                 tty: bool | None = None) -> None:
        self.echo = echo or (lambda line: print(line, flush=True))
        self.interval = interval
        self.tty = sys.stdout.isatty() if tty is None else tty
        self.rows: dict[str, dict[str, Any]] = {}
        self._printed_lines = 0
        self._last_print = 0.0

    # --- Tune callback hooks ------------------------------------------------------------
    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._update(trial, state="running")

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:
        self._update(trial, state="running", result=result)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        result = trial.last_result or {}
        state = result.get("trial_status", "done")
        self._update(trial, state="pruned" if state == "running" else state, force=True)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.echo(f"trial {trial.trial_id} failed: {error_line(trial.error_file, trial.path)}")
        self._update(trial, state="error", force=True)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self._print(force=True)

    # --- rendering ------------------------------------------------------------------------
    def _update(self, trial: Any, state: str, result: dict | None = None,
                force: bool = False) -> None:
        row = self.rows.setdefault(trial.trial_id, {"trial": trial.trial_id,
                                                    "role": trial.config.get("role", "?")})
        row["state"] = state
        result = result or trial.last_result or {}
        row.update({
            "epoch": result.get("epoch"),
            "train_acc": result.get("train_acc"),
            "test_acc": result.get("test_acc"),
            "epochs_obj": result.get("objective_epochs"),
            "te_overhead": result.get("te_overhead"),
            "node": (result.get("node_id") or "")[:8] or None,
        })
        self._print(force)

    def render(self) -> list[str]:
        cells = [[_fmt(row.get(c)) for c in COLUMNS] for row in self.rows.values()]
        widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(COLUMNS)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths))]
        lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in cells]
        lines.append(f"trials: {counts([row['state'] for row in self.rows.values()])}")
        return lines

    def _print(self, force: bool = False) -> None:
        now = time.monotonic()
        if not self.tty and not force and now - self._last_print < self.interval:
            return
        lines = self.render()
        if self.tty and self._printed_lines:  # move up over the previous table, clear it
            lines[0] = f"\x1b[{self._printed_lines}F\x1b[J" + lines[0]
        for line in lines:
            self.echo(line)
        self._printed_lines = len(lines)
        self._last_print = now
