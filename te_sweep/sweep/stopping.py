"""How a running sweep driver stops: Ctrl-C, SIGTERM, SIGHUP, or a reason of its own.

Batch schedulers stop jobs with SIGTERM and a grace period (Slurm's KillWait and Kubernetes'
terminationGracePeriodSeconds: 30 s by default) before SIGKILL; a closed terminal sends SIGHUP.
Ray Tune handles only SIGINT (and SIGUSR1): a SIGTERM would end the driver with Ray's stack dump
and no tables. So the driver owns all four signals for as long as `launch` or `resume` runs:

  - While Tune runs the trials (Phase.TUNE), the first stop makes Tune end its loop as Ctrl-C
    always did: running trials keep their last checkpoint, Tune saves its state, the tables are
    exported (partial) and the resume line is printed. Tune's own SIGINT handler is switched
    off (TUNE_DISABLE_SIGINT_HANDLER) and its SIGUSR1 handler, which Tune installs for every
    run, is called instead: that is the one entry into Tune's stop.
  - A second signal raises SweepStopped out of Tune at once: Tune's last state save is skipped
    (its previous one stands, as after a kill -9) and so is the report, but the tables are still
    exported and the resume line printed; only a third signal stops the export too.
  - Before Tune starts (Phase.SETUP), and in the export or report of a sweep that was not being
    stopped, a signal raises SweepStopped where the driver is, so the CLI can say what was and
    was not written.

The driver can stop itself the same way (`request_stop`: a full disk, a lost claim), from any
thread: the request is delivered to the main thread as SIGUSR1, where Tune reads it.
The exit code is 128 + the first signal's number (exit_codes.py), or the reason's own.
"""

from __future__ import annotations

import enum
import logging
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

from te_sweep.exit_codes import ExitCode, exit_code_of_signal

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
REQUEST_SIGNAL = signal.SIGUSR1  # how request_stop reaches the main thread (and Tune)
# Tune's own words when it is stopped: the driver says it once, in its own line, instead.
TUNE_STOP_MESSAGES = (
    "Stop signal received",
    "Experiment has been interrupted",
    "Trials did not complete",
)
TUNE_SIGINT_ENV = "TUNE_DISABLE_SIGINT_HANDLER"  # "1": Tune leaves SIGINT to the driver
TUNE_RUN_LOGGER = "ray.tune.tune"  # where tune.run logs them (a logger filter acts there)


@dataclass(frozen=True)
class StopCause:
    """Why the driver stops: a signal's name, or a reason of its own, and its exit code."""

    name: str  # "SIGTERM", or e.g. "disk full"
    code: ExitCode
    message: str  # the line the driver printed when the stop began


class SweepStopped(BaseException):
    """Raised where the driver is when it must stop now (outside Tune, or a second signal).

    A BaseException, like KeyboardInterrupt, so no `except Exception` in between swallows it.
    """

    def __init__(self, cause: StopCause) -> None:
        super().__init__(cause.name)
        self.cause = cause


class _QuietTuneStop(logging.Filter):
    """Drops Tune's stop messages: the driver has said why it stops, in one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(TUNE_STOP_MESSAGES)


class Phase(enum.Enum):
    """Where the driver is, which decides what a stop does (module docstring)."""

    SETUP = "setup"  # checks, claim, starting Ray, building the Tuner
    TUNE = "tune"  # Tuner.fit
    EXPORT = "export"  # writing the tables
    REPORT = "report"  # writing report.html and the figures


class StopController:
    """Owns SIGINT, SIGTERM, SIGHUP and SIGUSR1 for the life of one `launch` or `resume`."""

    def __init__(self, echo: Callable[[str], None]) -> None:
        self.echo = echo
        self.cause: StopCause | None = None  # the first stop, if any
        self.signals = 0  # stops received so far
        self.phase = Phase.SETUP
        self._request: StopCause | None = None  # a request_stop's cause, until handled
        self._previous: dict[int, Any] = {}
        self._filter = _QuietTuneStop()
        self._tune_env: str | None = None

    @property
    def hurried(self) -> bool:
        """A second stop came: skip what can be skipped (Tune's last save, the report)."""
        return self.signals >= 2

    # --- installing -------------------------------------------------------------------
    def install(self) -> StopController:
        """Take over the stop signals (main thread only), until `restore`."""
        self._tune_env = os.environ.get(TUNE_SIGINT_ENV)
        os.environ[TUNE_SIGINT_ENV] = "1"
        for signum in (*STOP_SIGNALS, REQUEST_SIGNAL):
            self._previous[signum] = signal.signal(signum, self._handle)
        logging.getLogger(TUNE_RUN_LOGGER).addFilter(self._filter)
        return self

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
        if self._tune_env is None:
            os.environ.pop(TUNE_SIGINT_ENV, None)
        else:
            os.environ[TUNE_SIGINT_ENV] = self._tune_env
        logging.getLogger(TUNE_RUN_LOGGER).removeFilter(self._filter)

    def __enter__(self) -> StopController:
        return self.install()

    def __exit__(self, *exc: Any) -> None:
        self.restore()

    def enter(self, phase: Phase) -> None:
        """The driver moves on to `phase`; a stop that came before Tune began ends it here."""
        if phase is Phase.TUNE and self.cause is not None:
            raise SweepStopped(self.cause)
        # Ray's core worker, started by ray.init, installs a C-level SIGTERM handler that
        # aborts the process (Python's own table still names ours), and Tune leaves its
        # SIGUSR1 handler installed after a run: take all of them (back) at every phase.
        for signum in (*STOP_SIGNALS, REQUEST_SIGNAL):
            signal.signal(signum, self._handle)
        self.phase = phase

    # --- stopping ---------------------------------------------------------------------
    def request_stop(self, name: str, code: ExitCode, message: str) -> None:
        """Stop the sweep for a reason of the driver's own (any thread).

        In Tune's phase the SIGUSR1 goes straight to Tune's handler, so the cause is recorded
        here; elsewhere the driver's own handler records it when the signal arrives."""
        if self.cause is not None or self._request is not None:
            return
        cause = StopCause(name, code, message)
        self._request = cause
        if self.phase is Phase.TUNE:
            self.cause = cause
            self.signals += 1
            self.echo(message)
        signal.pthread_kill(threading.main_thread().ident or 0, REQUEST_SIGNAL)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        cause = self._signal_cause(signum)
        if signum == REQUEST_SIGNAL and self._request is not None:
            cause, self._request = self._request, None
            if self.cause is cause:  # requested in Tune's phase before Tune's handler was in
                raise SweepStopped(cause)
        self.signals += 1
        first = self.cause is None
        if first:
            self.cause = cause
        tune_stop = signal.getsignal(REQUEST_SIGNAL)
        if self.phase is Phase.TUNE:
            if first and callable(tune_stop) and tune_stop != self._handle:
                self.echo(cause.message)
                tune_stop(REQUEST_SIGNAL, frame)  # Tune's handler: its loop ends after this step
                return
            self.echo(
                f"{cause.name} again: stopping at once (Tune's last state save and the "
                "report are skipped; the tables are still written)"
            )
            raise SweepStopped(self.cause or cause)
        if self.phase is Phase.EXPORT and not first and self.signals < 3:
            self.echo(
                f"{cause.name} again: writing the tables first (a third signal stops without them)"
            )
            return
        raise SweepStopped(self.cause or cause)

    def _signal_cause(self, signum: int) -> StopCause:
        name = signal.Signals(signum).name
        code = exit_code_of_signal(signum) if signum in STOP_SIGNALS else ExitCode.INTERRUPTED
        return StopCause(
            name,
            code,
            f"{name} received: stopping the sweep; finished trials are "
            "kept, running ones keep their last finished epoch (a second signal "
            "stops at once)",
        )
