"""A pytest plugin for tools/select_tests.py: one coverage.py context per test, and its time.

Setup, call and teardown of a test all count for it (a module-scoped fixture's work counts
for the test that first needs it); anything else, and what happens before the first test,
has the empty context. With $TE_SWEEP_SELECTION_IMPORT set, that module is imported before
any test, so its import-time lines have the empty context too, whichever test imports it
first. With $TE_SWEEP_SELECTION_SECONDS set, the seconds each test took (setup to teardown,
under coverage) are written there as JSON when the session ends: select_tests.py runs a
mutant's tests fastest first, so that a killed mutant stops at the cheapest test that fails.
"""

from __future__ import annotations

import importlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import coverage
import pytest

IMPORT_ENV = "TE_SWEEP_SELECTION_IMPORT"
SECONDS_ENV = "TE_SWEEP_SELECTION_SECONDS"
_seconds: dict[str, float] = {}


def pytest_configure(config: pytest.Config) -> None:
    module = os.environ.get(IMPORT_ENV)
    if module:
        importlib.import_module(module)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    measuring = coverage.Coverage.current()
    if measuring is not None:
        measuring.switch_context(item.nodeid)
    started = time.perf_counter()
    yield
    _seconds[item.nodeid] = time.perf_counter() - started
    if measuring is not None:
        measuring.switch_context("")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    path = os.environ.get(SECONDS_ENV)
    if path:
        Path(path).write_text(json.dumps(_seconds))
