"""One exception hierarchy for te-sweep.

Library code raises these; only cli.py turns them into exit codes and one-line messages,
so every message must already state the rule, the value received and the fix.
"""

from __future__ import annotations


class TESweepError(Exception):
    """Base of every error te-sweep raises on purpose."""


class ConfigError(TESweepError, ValueError):
    """A trial setting is invalid. `field` names the TrialConfig field at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message

    def __str__(self) -> str:
        return f"Invalid value for '{self.field}': {self.message}"


def yaml_problem(err: Exception) -> str:
    """' at line L, column C (problem)' of a yaml.YAMLError, for a one-line message."""
    mark = getattr(err, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    return f"{where} ({problem})"


class InputError(TESweepError):
    """Bad input whose message already names the value and the fix (a file, a path, a space
    file, a storage location); the CLI prints it as one line and exits 2."""
