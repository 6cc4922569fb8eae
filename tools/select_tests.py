"""Which tests run a mutated line: mutation testing runs those, not all of a module's tests.

Why: `make mutate` ran every mutant against all of its module's test files. Most of a
module's tests never execute a given line, so they cannot kill its mutant; they only cost
time (te.py: 1,185 mutants x its property tests took more than an hour on 2 cores).

How: once per module, its test files run under coverage.py with one coverage context per
test (tools/coverage_contexts.py, a pytest plugin: a test's setup, call and teardown count for
it; the module is imported before the first test, so what runs at import time has the empty
context). `map` writes, per line of the module, the tests that ran it.

Per mutant, `run` compares the module on disk with the original to find the edited lines
and passes only the tests that ran them to tools/warm_pytest.py, fastest first (the map also
holds each test's seconds): pytest runs them in that order and stops at the first failure, so
a killed mutant costs the cheapest test that catches it, not the whole selection (train.py's
tests range from 0.01 s to 3.7 s of real training). When the edit is in code that runs at
import time (outside any function body, or in a function that import time called), every
measured test runs, fastest first. A line no test ran gets no tests: the mutant survives at
once. Only a run of the module's test files themselves says ALL_TESTS on stdout (which
cosmic-ray keeps with the result).

Selection can only ever miss a kill (a test that depends on a line without running it, such
as a cached value), never invent one: tools/mutate.py therefore re-runs every mutant that
survived a selection against all of the module's test files, and only those count.

    python tools/select_tests.py map MODULE_FILE MAP_JSON PYTEST-OPTIONS... -- TEST-FILES...
    python tools/select_tests.py run MAP_JSON ORIGINAL MODULE_FILE SOCKET \
        PYTEST-OPTIONS... -- TEST-FILES...

`run` imports only the standard library (it starts once per mutant).
"""

from __future__ import annotations

import ast
import difflib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

# stdout markers, kept by cosmic-ray with each result (tools/mutate.py reads ALL_TESTS).
ALL_TESTS = "select_tests: all tests"
EVERY_MEASURED = "select_tests: every measured test, fastest first"
NO_TEST = "select_tests: no test runs the edited lines"
IMPORT_ENV = "TE_SWEEP_SELECTION_IMPORT"  # read by the plugin: the module to import first
SECONDS_ENV = "TE_SWEEP_SELECTION_SECONDS"  # where the plugin writes each test's seconds
PLUGIN = "coverage_contexts"  # tools/coverage_contexts.py
SEPARATOR = "--"  # between pytest's options and the test files
FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
# pytest's exit codes when it could not find a listed test (pytest.ExitCode; `run` imports
# only the standard library): not a kill. The mutant may have changed a parametrized test's
# id, so its files are run instead.
NOT_FOUND_CODES = (4, 5)  # USAGE_ERROR ("not found: ..."), NO_TESTS_COLLECTED


# ----------------------------------------------------------------------------- the map
def build_map(module_file: Path, map_path: Path, options: list[str], files: list[str]) -> None:
    """Run the tests under coverage and write {"lines": {line: [test ids]}, "import": [lines
    run with the empty context], "seconds": {test id: seconds}} for `module_file` (relative
    to the working directory)."""
    module = ".".join(module_file.with_suffix("").parts)
    with tempfile.TemporaryDirectory(prefix="te-sweep-coverage-") as tmp:
        data, report = Path(tmp) / "coverage", Path(tmp) / "coverage.json"
        seconds_path = Path(tmp) / "seconds.json"
        env = {
            **os.environ,
            IMPORT_ENV: module,
            SECONDS_ENV: str(seconds_path),
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH")])
            ),
        }
        subprocess.run(
            [
                sys.executable,
                "-m",
                "coverage",
                "run",
                f"--data-file={data}",
                f"--include={module_file}",
                "-m",
                "pytest",
                "-p",
                PLUGIN,
                *options,
                *files,
            ],
            env=env,
            check=False,
            stdout=subprocess.DEVNULL,
        )
        subprocess.run(
            [
                sys.executable,
                "-m",
                "coverage",
                "json",
                "-q",
                f"--data-file={data}",
                "--show-contexts",
                "-o",
                str(report),
            ],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        measured = json.loads(report.read_text())["files"]
        seconds = json.loads(seconds_path.read_text()) if seconds_path.exists() else {}
    contexts = next(iter(measured.values()))["contexts"] if measured else {}
    map_path.write_text(
        json.dumps(
            {
                "lines": {line: sorted(c for c in names if c) for line, names in contexts.items()},
                "import": sorted(int(line) for line, names in contexts.items() if "" in names),
                "seconds": seconds,
            }
        )
    )


# ----------------------------------------------------------------------------- selecting
def edited_lines(original: str, mutated: str) -> set[int]:
    """Line numbers (1-based, in `original`) that the mutation replaced or removed; for an
    insertion, the line it follows."""
    lines: set[int] = set()
    matcher = difflib.SequenceMatcher(
        None, original.splitlines(), mutated.splitlines(), autojunk=False
    )
    for tag, start, end, _, _ in matcher.get_opcodes():
        if tag != "equal":
            lines.update(range(start + 1, max(end, start + 1) + 1))
    return lines


def enclosing_statement(tree: ast.Module, line: int) -> tuple[ast.AST | None, ast.stmt | None]:
    """(the innermost function whose body holds `line`, the innermost statement holding it)."""
    function, statement = None, None
    for node in ast.walk(tree):
        start, end = getattr(node, "lineno", None), getattr(node, "end_lineno", None)
        if start is None or not start <= line <= end:
            continue
        if isinstance(node, FUNCTIONS):
            body = node.body if isinstance(node.body, list) else [node.body]
            if body[0].lineno <= line <= body[-1].end_lineno and (
                function is None or node.lineno >= function.lineno
            ):
                function = node
        if isinstance(node, ast.stmt) and (
            statement is None
            or (node.lineno >= statement.lineno and node.end_lineno <= statement.end_lineno)
        ):
            statement = node
    return function, statement


def fastest_first(coverage_map: dict, tests: set[str]) -> list[str]:
    """`tests` in the order of the seconds they took when measured (a test with no time
    recorded last), ties by name."""
    seconds = coverage_map.get("seconds", {})
    return sorted(tests, key=lambda test: (seconds.get(test, float("inf")), test))


def tests_for(coverage_map: dict, original: str, lines: set[int]) -> list[str] | None:
    """The tests that ran the statements holding `lines`, fastest first; None: all of the
    module's tests."""
    tree = ast.parse(original)
    import_lines = set(coverage_map["import"])
    selected: set[str] = set()
    for line in lines:
        function, statement = enclosing_statement(tree, line)
        if function is None or statement is None:
            return None  # runs at import time (module level, a signature, a decorator)
        span = range(statement.lineno, statement.end_lineno + 1)
        if import_lines.intersection(span):
            return None  # a function that import time called
        for covered in span:
            selected.update(coverage_map["lines"].get(str(covered), ()))
    return fastest_first(coverage_map, selected)


def run(
    map_path: Path,
    original_path: Path,
    module_file: Path,
    socket_path: str,
    options: list[str],
    files: list[str],
) -> int:
    sys.path.insert(0, str(Path(__file__).parent))
    import warm_pytest

    original = original_path.read_text()
    coverage_map = json.loads(map_path.read_text())
    lines = edited_lines(original, module_file.read_text())
    tests = tests_for(coverage_map, original, lines) if lines else None
    if tests is None and coverage_map.get("seconds"):
        # Every test, as the files would run them, but fastest first. Not ALL_TESTS: the map
        # could miss a test (a crash in the measured run), so a survivor is run again on the
        # files (tools/mutate.py).
        print(EVERY_MEASURED, flush=True)
        tests = fastest_first(coverage_map, set(coverage_map["seconds"]))
    if tests == []:
        print(f"{NO_TEST} ({', '.join(map(str, sorted(lines)))})", flush=True)
        return 0
    if tests is not None:
        code = warm_pytest.run(socket_path, options + tests)
        if code not in NOT_FOUND_CODES:
            return code
    print(ALL_TESTS, flush=True)
    return warm_pytest.run(socket_path, options + files)


def split_at_separator(args: list[str]) -> tuple[list[str], list[str]]:
    """(pytest's options, the test files) of OPTIONS... -- FILES..."""
    if SEPARATOR not in args:
        raise SystemExit(f"select_tests: no {SEPARATOR!r} between the options and the files")
    at = args.index(SEPARATOR)
    return args[:at], args[at + 1 :]


def main() -> None:
    command, *args = sys.argv[1:]
    if command == "map":
        module_file, map_path, *rest = args
        build_map(Path(module_file), Path(map_path), *split_at_separator(rest))
    elif command == "run":
        map_path, original, module_file, socket_path, *rest = args
        sys.exit(
            run(
                Path(map_path),
                Path(original),
                Path(module_file),
                socket_path,
                *split_at_separator(rest),
            )
        )
    else:
        sys.exit(f"select_tests: unknown command {command!r}; use map or run")


if __name__ == "__main__":
    main()
