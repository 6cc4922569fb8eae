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


class InputError(TESweepError):
    """Bad input whose message already names the value and the fix (a file, a path, a space
    file, a storage location); the CLI prints it as one line and exits 2."""
