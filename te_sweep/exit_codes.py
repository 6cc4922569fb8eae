"""The exit codes of `te-sweep`, in one place: each says one thing a script can act on.

The signal codes follow the shell's convention (128 + the signal's number), so a batch
scheduler or a wrapper script reads a stopped sweep the same way it reads any stopped program.
"""

from __future__ import annotations

import enum
import signal


class ExitCode(enum.IntEnum):
    OK = 0  # the sweep (or command) finished and every trial ended complete or censored
    FAILURE = 1  # te-sweep could not do its work: storage full or unreachable, cluster gone
    BAD_INPUT = 2  # a bad option, file or value, refused before any work started
    TRIALS_FAILED = 3  # the sweep ran to its end, but some trials ended in error
    HANGUP = 128 + signal.SIGHUP  # 129: stopped by SIGHUP (the terminal closed)
    INTERRUPTED = 128 + signal.SIGINT  # 130: stopped by Ctrl-C (SIGINT)
    TERMINATED = 128 + signal.SIGTERM  # 143: stopped by SIGTERM (Slurm, Kubernetes, systemd)


def exit_code_of_signal(signum: int) -> ExitCode:
    """The exit code of a sweep stopped by `signum` (one of SIGHUP, SIGINT, SIGTERM)."""
    return ExitCode(128 + signum)
