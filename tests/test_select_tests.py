"""tools/select_tests.py: which tests `make mutate` runs against a mutant.

Its one duty is never to leave out a test that runs the edited code: checked on a small
package measured by real coverage.py and pytest, and on hand-made maps for each way a line
can run (in a function, at import time, in a function called at import, never). A mutant's
tests run fastest first (a killed one stops at the cheapest failure); a listed test pytest can
no longer find is never counted as a kill.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))

import select_tests

MODULE = textwrap.dedent("""\
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
""")

TESTS = textwrap.dedent("""\
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
""")


def write_package(root: Path, module: str = MODULE) -> None:
    (root / "pkg").mkdir()
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "mod.py").write_text(module)
    (root / "test_mod.py").write_text(TESTS)


@pytest.fixture(scope="module")
def measured(tmp_path_factory) -> dict:
    """The map of pkg/mod.py built by real coverage.py over real pytest runs of TESTS."""
    root = tmp_path_factory.mktemp("selection")
    write_package(root)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("PYTHONPATH", str(root))
        select_tests.build_map(
            Path("pkg/mod.py"), root / "map.json", ["-q", "-p", "no:cacheprovider"], ["test_mod.py"]
        )
    return json.loads((root / "map.json").read_text())


def line_of(text: str) -> int:
    return MODULE.splitlines().index(text) + 1


def test_each_line_maps_to_the_tests_that_ran_it(measured):
    lines = measured["lines"]
    assert lines[str(line_of("    return x / 2"))] == [
        "test_mod.py::test_halve[2]",
        "test_mod.py::test_halve[4]",
    ]
    # double(2) ran in a module-scoped fixture: it counts for the test that needed it
    assert lines[str(line_of("    return 2 * x"))] == ["test_mod.py::test_double"]
    assert str(line_of("    return x - 1")) not in lines  # never run
    assert line_of("LIMIT = 3") in measured["import"]
    assert sorted(measured["seconds"]) == [
        "test_mod.py::test_double",
        "test_mod.py::test_halve[2]",
        "test_mod.py::test_halve[4]",
    ]
    assert all(0 < seconds < 60 for seconds in measured["seconds"].values())


def test_a_mutant_meets_exactly_the_tests_that_run_its_line(measured):
    def tests(text: str) -> list[str] | None:  # in name order (their order is by seconds)
        found = select_tests.tests_for(measured, MODULE, {line_of(text)})
        return None if found is None else sorted(found)

    assert tests("    return x / 2") == ["test_mod.py::test_halve[2]", "test_mod.py::test_halve[4]"]
    assert tests("    return x - 1") == []  # no test runs it: it survives without a run
    assert tests("LIMIT = 3") is None  # import time: all tests
    assert tests("TABLE = [double(1)]") is None
    # double ran at import time (TABLE): every test may depend on what it returned
    assert tests("    return 2 * x") is None
    assert tests("def halve(x):") is None  # a signature is evaluated at import
    both = select_tests.tests_for(
        measured, MODULE, {line_of("    return x / 2"), line_of("    return x - 1")}
    )
    assert sorted(both) == ["test_mod.py::test_halve[2]", "test_mod.py::test_halve[4]"]


def test_a_mutants_tests_run_fastest_first():
    source = "def f(x):\n    return x + 1\n"
    coverage_map = {
        "lines": {"2": ["t.py::slow", "t.py::fast", "t.py::untimed", "t.py::a"]},
        "import": [1],
        "seconds": {"t.py::slow": 3.7, "t.py::fast": 0.01, "t.py::a": 0.01},
    }
    assert select_tests.tests_for(coverage_map, source, {2}) == [
        "t.py::a",
        "t.py::fast",
        "t.py::slow",
        "t.py::untimed",
    ]  # ties by name, untimed last


def run_against(
    root: Path, measured: dict, mutated: str, seconds: dict[str, float], capfd
) -> tuple[int, list[str], list[str]]:
    """select_tests.run on pkg/mod.py mutated to `mutated`, with the measured map but the
    given seconds: its exit code, what it said (its marker lines) and the tests pytest ran, in
    order (no warm server is listening: warm_pytest runs pytest itself)."""
    write_package(root, mutated)
    (root / "original.py").write_text(MODULE)
    (root / "map.json").write_text(json.dumps({**measured, "seconds": seconds}))
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("PYTHONPATH", str(root))
        code = select_tests.run(
            root / "map.json",
            root / "original.py",
            Path("pkg/mod.py"),
            str(root / "no-server.sock"),
            ["-v", "-p", "no:cacheprovider", "-p", "no:randomly"],
            ["test_mod.py"],
        )
    lines = capfd.readouterr().out.splitlines()
    said = [line for line in lines if line.startswith("select_tests:")]
    ran = [
        line.split()[0]
        for line in lines
        if line.endswith("]") and ("PASSED" in line or "FAILED" in line)
    ]
    return code, said, ran


def test_an_import_time_mutant_meets_every_measured_test_fastest_first(tmp_path, measured, capfd):
    code, said, ran = run_against(
        tmp_path,
        measured,
        MODULE.replace("LIMIT = 3", "LIMIT = 1"),
        {
            "test_mod.py::test_double": 0.5,
            "test_mod.py::test_halve[2]": 0.2,
            "test_mod.py::test_halve[4]": 0.1,
        },
        capfd,
    )
    assert said == [select_tests.EVERY_MEASURED]  # not ALL_TESTS: a survivor runs again
    assert ran == [
        "test_mod.py::test_halve[4]",
        "test_mod.py::test_halve[2]",
        "test_mod.py::test_double",
    ]
    assert code == 1  # double(2) is 0 once LIMIT is 1


def test_a_listed_test_that_no_longer_exists_is_not_a_kill(tmp_path, measured, capfd):
    # A map whose ids name a test the files no longer have: pytest says "not found" (exit 4);
    # the mutant then meets the files themselves, and the survivor is counted as one.
    code, said, ran = run_against(
        tmp_path,
        measured,
        MODULE.replace("LIMIT = 3", "LIMIT = 30"),
        {"test_mod.py::test_gone": 0.1},
        capfd,
    )
    assert code == 0
    assert said == [select_tests.EVERY_MEASURED, select_tests.ALL_TESTS]
    assert ran == [
        "test_mod.py::test_double",
        "test_mod.py::test_halve[2]",
        "test_mod.py::test_halve[4]",
    ]


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
        ["-x", "-p", "no:x"],
        ["t.py"],
    )
    with pytest.raises(SystemExit):
        select_tests.split_at_separator(["-x", "t.py"])
