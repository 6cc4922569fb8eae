"""The live view of a running sweep, printed by te-sweep itself instead of Ray's reporter.

It stays the same size whether a sweep has 10 trials or 10,000, and does O(1) work per event
(Tune hands every callback the whole trial list at each call; it is never looked at):
  - counts of trials by state, kept incrementally;
  - the running trials (at most MAX_RUNNING_ROWS rows, the most recently reported first);
  - the best few finished TE trials so far (BEST_ROWS), by epochs to target, then overhead:
    only complete and censored ones (a censored one behind every complete one); a diverged
    or errored trial is never "best", though its objective is a number (max_epochs + 1).
On a terminal this table is redrawn in place at most every TTY_REFRESH_S seconds, and failures
are printed above it. In a log file (not a terminal) it prints one status line every
LOG_STATUS_S seconds and one line per finished or failed trial, so a log grows by about one
line per trial, never by the table.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ray.tune import Callback
from ray.tune.experiment import Trial

from te_sweep.core.console import cell
from te_sweep.core.outcome import STATUS_CENSORED, STATUS_COMPLETE
from te_sweep.core.reporting import RUNNING, Role

MAX_RUNNING_ROWS = 8
ERROR_TUNE_STATUS = Trial.ERROR
ENDED_TUNE_STATUSES = (Trial.TERMINATED, Trial.ERROR)  # a restored trial that will not run
BEST_ROWS = 5
TTY_REFRESH_S = 2.0
LOG_STATUS_S = 30.0
BEST_STATES = (STATUS_COMPLETE, STATUS_CENSORED)  # never diverged, errored, pruned or running
COLUMNS = (
    "trial",
    "role",
    "state",
    "epoch",
    "train_acc",
    "test_acc",
    "epochs_obj",
    "te_overhead",
    "node",
)


class State:
    """A trial's state in the live view (Tune's states, with the sweep's outcomes)."""

    PENDING = "pending"
    RUNNING = "running"
    PRUNED = "pruned"
    ERROR = "error"


def error_line(local_file: str | None, trial_dir: str | None) -> str:
    """The exception line of a trial's error file; the full traceback stays in its folder."""
    from te_sweep.results.tune_files import error_line as read_error_line

    line = read_error_line(Path(local_file)) if local_file else None
    where = f"{trial_dir}/error.txt" if trial_dir else "the trial's error.txt"
    return f"{line} (traceback: {where})" if line else f"see {where}"


def _fmt(value: Any) -> str:
    return cell(value, "{:.4f}" if isinstance(value, float) else "{}")


def _row(trial: Any, state: str, result: dict[str, Any]) -> dict[str, Any]:
    return {
        "trial": trial.trial_id,
        "role": trial.config.get("role", "?"),
        "state": state,
        "epoch": result.get("epoch"),
        "train_acc": result.get("train_acc"),
        "test_acc": result.get("test_acc"),
        "epochs_obj": result.get("objective_epochs"),
        "te_overhead": result.get("te_overhead"),
        "node": (result.get("node_id") or "")[:8] or None,
    }


def render_table(rows: list[dict[str, Any]]) -> list[str]:
    """Aligned lines: a header, then one line per row."""
    cells = [[_fmt(row.get(c)) for c in COLUMNS] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(COLUMNS)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return lines


def _best_key(row: dict[str, Any]) -> tuple[Any, ...]:
    """The order of the best rows: the TE runs that reached the target first, by epochs then
    overhead; a censored one only behind all of them (its objective, max_epochs + 1, already
    puts it there; the key does not rely on that)."""
    return (
        row["state"] != STATUS_COMPLETE,
        row["epochs_obj"],
        row["te_overhead"] if row["te_overhead"] is not None else float("inf"),
        row["trial"],
    )


class LiveView(Callback):
    def __init__(
        self,
        echo: Callable[[str], None] | None = None,
        total: int | None = None,
        tty: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
        total_is_bound: bool = False,
    ) -> None:
        self.echo = echo or (lambda line: print(line, flush=True))
        self.total = total
        self.total_is_bound = total_is_bound  # LR controls: paper-mode configurations get none
        self._tty = tty  # None: decided at the first line (a resumed sweep's may differ)
        self.clock = clock
        self.states: dict[str, str] = {}
        self.counts: Counter[str] = Counter()
        self.running: dict[str, dict[str, Any]] = {}  # insertion order = least recent first
        self.best: list[tuple[tuple[Any, ...], dict[str, Any]]] = []  # sorted, at most BEST_ROWS
        self._drawn_lines = 0
        self._last_draw = float("-inf")
        self._restored_counted = False  # trials that ended before a resume: counted once

    @property
    def tty(self) -> bool:
        if self._tty is None:
            self._tty = sys.stdout.isatty()
        return self._tty

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles callbacks; a resumed sweep decides the terminal anew and counts the
        # trials that ended before it.
        return {**self.__dict__, "_tty": None, "_restored_counted": False}

    def __setstate__(self, state: dict[str, Any]) -> None:
        # A sweep launched by an earlier te-sweep is resumed with the view it pickled: what
        # that version did not have takes its default.
        self.__dict__.update({"total_is_bound": False, "_restored_counted": False, **state})
        # An older view may have kept a diverged trial among the best, under an older key.
        self.best = sorted(
            ((_best_key(row), row) for _, row in self.best if row["state"] in BEST_STATES),
            key=lambda pair: pair[0],
        )

    # --- Tune callback hooks (each O(1) in the number of trials) -------------------------
    def on_step_begin(self, iteration: int, trials: list[Any], **info: Any) -> None:
        """Once per driver session (O(trials), once): the trials a resumed sweep restored as
        ended, which no other hook reports, enter the counts and the best rows."""
        if self._restored_counted:
            return
        self._restored_counted = True
        for trial in trials:
            if trial.trial_id in self.states or trial.status not in ENDED_TUNE_STATUSES:
                continue
            if trial.status == ERROR_TUNE_STATUS:
                self._set_state(trial.trial_id, State.ERROR)
                continue
            self._finished(trial, trial.last_result or {})

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._running(trial, trial.last_result or {})

    def on_trial_result(
        self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any
    ) -> None:
        self._running(trial, result)

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        result = trial.last_result or {}
        state, row = self._finished(trial, result)
        self.running.pop(trial.trial_id, None)
        if not self.tty:
            self._line(
                f"trial {row['trial']} ({row['role']}) {state}: "
                f"epochs_obj {_fmt(row['epochs_obj'])}, overhead "
                f"{_fmt(row['te_overhead'])}, {row['epoch'] or 0} epochs "
                f"{self._progress()}"
            )
        self._maybe_draw()

    def on_trial_recover(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self.running.pop(trial.trial_id, None)
        self._set_state(trial.trial_id, State.PENDING)
        self._line(
            f"trial {trial.trial_id} failed, retrying from its last checkpoint: "
            f"{error_line(trial.error_file, trial.path)}"
        )

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self.running.pop(trial.trial_id, None)
        self._drop_best(trial.trial_id)  # a trial that errored is never "best"
        self._set_state(trial.trial_id, State.ERROR)
        self._line(
            f"trial {trial.trial_id} failed: {error_line(trial.error_file, trial.path)}"
            f" {self._progress()}"
        )
        self._maybe_draw()

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        self._draw(final=True)

    # --- state ----------------------------------------------------------------------------
    def _finished(self, trial: Any, result: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        status = result.get("trial_status", "done")
        state = State.PRUNED if status == RUNNING else status
        self._set_state(trial.trial_id, state)
        row = _row(trial, state, result)
        if row["role"] == Role.TE and state in BEST_STATES and row["epochs_obj"] is not None:
            self._consider_best(row)
        return state, row

    def _set_state(self, trial_id: str, state: str) -> None:
        old = self.states.get(trial_id)
        if old is not None:
            self.counts[old] -= 1
            if not self.counts[old]:
                del self.counts[old]
        self.states[trial_id] = state
        self.counts[state] += 1

    def _running(self, trial: Any, result: dict[str, Any]) -> None:
        self._set_state(trial.trial_id, State.RUNNING)
        self.running.pop(trial.trial_id, None)  # re-insert: most recent last
        self.running[trial.trial_id] = _row(trial, State.RUNNING, result)
        self._maybe_draw()

    def _consider_best(self, row: dict[str, Any]) -> None:
        key = _best_key(row)
        if len(self.best) == BEST_ROWS and key >= self.best[-1][0]:
            return
        self.best.append((key, row))
        self.best.sort(key=lambda pair: pair[0])
        del self.best[BEST_ROWS:]

    def _drop_best(self, trial_id: str) -> None:
        self.best = [(key, row) for key, row in self.best if row["trial"] != trial_id]

    # --- output ---------------------------------------------------------------------------
    def status_line(self) -> str:
        counted = ", ".join(f"{n} {s}" for s, n in sorted(self.counts.items()))
        seen = sum(self.counts.values())
        of = f" of {'at most ' if self.total_is_bound else ''}{self.total}" if self.total else ""
        best = self.best[0][1] if self.best else None
        lead = (
            (
                f"; best {best['trial']}: epochs_obj {_fmt(best['epochs_obj'])}, overhead "
                f"{_fmt(best['te_overhead'])}"
            )
            if best
            else ""
        )
        return f"trials: {seen}{of} started ({counted or 'none yet'}){lead}"

    def _progress(self) -> str:
        done = sum(n for s, n in self.counts.items() if s not in (State.RUNNING, State.PENDING))
        return f"[{done}/{self.total}]" if self.total else f"[{done} done]"

    def render(self) -> list[str]:
        """The terminal table: running trials, the best so far, the counts (bounded)."""
        running = list(self.running.values())[::-1][:MAX_RUNNING_ROWS]
        hidden = len(self.running) - len(running)
        lines = render_table(running) if running else ["no trial running"]
        if hidden:
            lines.append(f"... and {hidden} more running")
        if self.best:
            lines.append("best so far:")
            lines += render_table([row for _, row in self.best])[1:]
        lines.append(self.status_line())
        return lines

    def _line(self, text: str) -> None:
        """A line above the table (terminal) or in the log."""
        if not self.tty:
            self.echo(text)
            return
        self.echo((f"\x1b[{self._drawn_lines}F\x1b[J" if self._drawn_lines else "") + text)
        self._drawn_lines = 0
        self._draw()  # the table again, below the line

    def _maybe_draw(self) -> None:
        period = TTY_REFRESH_S if self.tty else LOG_STATUS_S
        if self.clock() - self._last_draw >= period:
            self._draw()

    def _draw(self, final: bool = False) -> None:
        self._last_draw = self.clock()
        if not self.tty:
            self.echo(self.status_line())
            return
        lines = self.render()
        if self._drawn_lines:  # move up over the previous table and clear it
            lines[0] = f"\x1b[{self._drawn_lines}F\x1b[J" + lines[0]
        for line in lines:
            self.echo(line)
        self._drawn_lines = 0 if final else len(lines)
