"""tools/select_tests.py: which tests `make mutate` runs against a mutant.

Its one duty is never to leave out a test that runs the edited code: checked on a small
package measured by real coverage.py and pytest, and on hand-made maps for each way a line
can run (in a function, at import time, in a function called at import, never).
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))

import select_tests  # noqa: E402  (tools/ is not a package)

MODULE = textwrap.dedent('''\
    LIMIT = 3


    def double(x):
        if x > LIMIT:
            return 0
        return 2 * x


    def halve(x):
        return x / 2


    def never(x):
        return x - 1


    TABLE = [double(1)]
''')

TESTS = textwrap.dedent('''\
    import pytest

    from pkg.mod import double, halve


    @pytest.fixture(scope="module")
    def doubled():
        return double(2)


    def test_double(doubled):
        assert doubled == 4


    @pytest.mark.parametrize("x", [2, 4])
    def test_halve(x):
        assert halve(x) == x / 2
''')


@pytest.fixture(scope="module")
def measured(tmp_path_factory) -> dict:
    """The map of pkg/mod.py built by real coverage.py over real pytest runs of TESTS."""
    root = tmp_path_factory.mktemp("selection")
    (root / "pkg").mkdir()
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "mod.py").write_text(MODULE)
    (root / "test_mod.py").write_text(TESTS)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("PYTHONPATH", str(root))
        select_tests.build_map(Path("pkg/mod.py"), root / "map.json",
                                 ["-q", "-p", "no:cacheprovider"], ["test_mod.py"])
    return json.loads((root / "map.json").read_text())


def line_of(text: str) -> int:
    return MODULE.splitlines().index(text) + 1


def test_each_line_maps_to_the_tests_that_ran_it(measured):
    lines = measured["lines"]
    assert lines[str(line_of("    return x / 2"))] == ["test_mod.py::test_halve[2]",
                                                       "test_mod.py::test_halve[4]"]
    # double(2) ran in a module-scoped fixture: it counts for the test that needed it
    assert lines[str(line_of("    return 2 * x"))] == ["test_mod.py::test_double"]
    assert str(line_of("    return x - 1")) not in lines  # never run
    assert line_of("LIMIT = 3") in measured["import"]


def test_a_mutant_meets_exactly_the_tests_that_run_its_line(measured):
    def tests(text: str) -> list[str] | None:
        return select_tests.tests_for(measured, MODULE, {line_of(text)})

    assert tests("    return x / 2") == ["test_mod.py::test_halve[2]",
                                         "test_mod.py::test_halve[4]"]
    assert tests("    return x - 1") == []  # no test runs it: it survives without a run
    assert tests("LIMIT = 3") is None  # import time: all tests
    assert tests("TABLE = [double(1)]") is None
    # double ran at import time (TABLE): every test may depend on what it returned
    assert tests("    return 2 * x") is None
    assert tests("def halve(x):") is None  # a signature is evaluated at import
    both = select_tests.tests_for(measured, MODULE, {line_of("    return x / 2"),
                                                        line_of("    return x - 1")})
    assert both == ["test_mod.py::test_halve[2]", "test_mod.py::test_halve[4]"]


def test_a_statement_over_several_lines_counts_every_one_of_them():
    source = "def f(x):\n    return (x +\n            1)\n"
    coverage_map = {"lines": {"2": ["t.py::test_f"]}, "import": [1]}  # coverage: first line
    assert select_tests.tests_for(coverage_map, source, {3}) == ["t.py::test_f"]


def test_edited_lines_are_found_in_the_original():
    original = "a = 1\nb = a >= 2\nc = 3\n"
    assert select_tests.edited_lines(original, "a = 1\nb = a > 2\nc = 3\n") == {2}
    assert select_tests.edited_lines(original, "a = 1\nc = 3\n") == {2}  # removed
    assert select_tests.edited_lines(original, original) == set()


def test_options_and_files_are_split_at_the_separator():
    assert select_tests.split_at_separator(["-x", "-p", "no:x", "--", "t.py"]) == (
        ["-x", "-p", "no:x"], ["t.py"])
    with pytest.raises(SystemExit):
        select_tests.split_at_separator(["-x", "t.py"])
