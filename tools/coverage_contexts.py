"""A pytest plugin for tools/select_tests.py: one coverage.py context per test.

Setup, call and teardown of a test all count for it (a module-scoped fixture's work counts
for the test that first needs it); anything else, and what happens before the first test,
has the empty context. With $TE_SWEEP_SELECTION_IMPORT set, that module is imported before
any test, so its import-time lines have the empty context too, whichever test imports it
first.
"""

from __future__ import annotations

import importlib
import os
from typing import Iterator

import coverage
import pytest

IMPORT_ENV = "TE_SWEEP_SELECTION_IMPORT"


def pytest_configure(config: pytest.Config) -> None:
    module = os.environ.get(IMPORT_ENV)
    if module:
        importlib.import_module(module)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    measuring = coverage.Coverage.current()
    if measuring is not None:
        measuring.switch_context(item.nodeid)
    yield
    if measuring is not None:
        measuring.switch_context("")
