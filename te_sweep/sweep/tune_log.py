"""Ray Tune's warnings, as one line each on the sweep's output; its tracebacks stay on disk.

Tune logs multi-line messages: a traceback for every failed attempt of a trial (the live view
already prints one line per failure, and the traceback is in the trial's error.txt), and
paragraphs of advice. Silencing its loggers altogether would also hide the warnings a user must
see: that no trial can be placed on the cluster (a sweep that would wait forever without a
word), or that a result was dropped. So every warning or error Tune logs is printed as one
line, each distinct one at most once per REPEAT_S seconds, except the trial-failure tracebacks.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from typing import TextIO

TUNE_LOGGERS = ("ray.tune", "ray.train", "ray.air")
INSUFFICIENT_RESOURCES_LOGGER = "ray.tune.execution.insufficient_resources_manager"
# Messages the sweep's own output already says better: a failed attempt (the live view prints
# one line), and the trials that did not complete (the end-of-sweep summary lists them).
SAID_BY_TE_SWEEP = ("Trial task failed for trial", "Trials did not complete")
MAX_CHARS = 300
REPEAT_S = 300.0
# Ray colours a "(raylet)" prefix unless this is "0"; it reads it each time it prints a line.
RAY_COLOR_ENV, RAY_COLOR_OFF = "RAY_COLOR_PREFIX", "0"


def one_line(record: logging.LogRecord) -> str:
    """The record's message as one line, with te-sweep's advice where Tune's is about Ray."""
    if record.name == INSUFFICIENT_RESOURCES_LOGGER:
        return (
            "warning: no trial could start for a while: no node has the CPUs/GPUs one "
            "trial asks for. If the cluster is autoscaling, wait; otherwise stop the sweep "
            "(Ctrl-C, then `te-sweep resume` later) and lower --cpus-per-trial / "
            "--gpus-per-trial or add nodes"
        )
    message = " ".join(record.getMessage().split())
    if len(message) > MAX_CHARS:
        message = message[: MAX_CHARS - 3] + "..."
    return f"{record.levelname.lower()} (Ray Tune): {message}"


class OneLineHandler(logging.Handler):
    def __init__(
        self, echo: Callable[[str], None], clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(level=logging.WARNING)
        self.echo = echo
        self.clock = clock
        self._last_shown: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if record.getMessage().startswith(SAID_BY_TE_SWEEP):
                return
            line = one_line(record)
            now = self.clock()
            if now - self._last_shown.get(line, float("-inf")) < REPEAT_S:
                return
            self._last_shown[line] = now
            self.echo(line)
        except Exception:  # a log line must never break the sweep
            self.handleError(record)


def plain_ray_lines(stream: TextIO | None = None) -> None:
    """Ray's own "(raylet)" lines without colour codes when `stream` (stdout, where Ray prints
    them) is not a terminal; a value the user set for RAY_COLOR_PREFIX is kept."""
    stream = stream or sys.stdout
    isatty = getattr(stream, "isatty", None)
    if not (isatty and isatty()):
        os.environ.setdefault(RAY_COLOR_ENV, RAY_COLOR_OFF)


def route_tune_logs(echo: Callable[[str], None]) -> OneLineHandler:
    """Send Tune's warnings and errors through `echo`, one line each; returns the handler.
    Ray's "(raylet)" lines, which it prints itself, lose their colour codes in a log file."""
    plain_ray_lines()
    handler = OneLineHandler(echo)
    for name in TUNE_LOGGERS:
        log = logging.getLogger(name)
        log.handlers = [handler]
        log.setLevel(logging.WARNING)
        log.propagate = False
    return handler
