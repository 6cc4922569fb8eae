"""Mutation testing of the modules that decide what a user reads (`make mutate`).

Why: a test suite can run every line and still pass when a number is wrong. Mutation testing
changes the code one small edit at a time (a `>=` to `>`, a `+ 1` to `- 1`, a constant, a
dropped call) and runs the tests that cover the module; a mutant the tests do not catch is a
number the suite does not protect. Targets (TESTING.md): at least 90% killed per module, and
every survivor listed there with why it is equivalent or not worth a test.

How: cosmic-ray (on PyPI), one session per module, each mutant tested by the module's own test
files (MODULES below, the fast tests that exercise it; never the whole suite). Cosmic-ray
edits files in place, so everything runs in temporary copies of the repository's tracked
files (one per worker: --jobs modules at once, default one per core): the working tree is
never touched, and a sweep running from it meanwhile is safe. The test command is
tools/warm_pytest.py: pytest forked from an interpreter that imported torch, pyarrow, optuna
and pytest once (configs' tests, three runs side by side on this 2-core machine: 12.5-14.2 s
as `python -m pytest`, 4.6-4.9 s warm; a killed mutant stops at its first failure, so most
take 1.5-3 s).

Each mutant first meets only the tests that run its edited lines (tools/select_tests.py,
from one coverage run of the module's tests per test); the mutants that survive those run
again against all of the module's test files, and that verdict is the one counted, so the
selection saves time and cannot change a score. Mutants inside type annotations are not run
(annotation_spans). A mutant whose tests run past its timeout counts as killed, so the timeout
is three times what the module's unmutated tests took (timed_baseline), never less than 60 s.
A module that cannot be scored (its tests fail unmutated, a cosmic-ray step fails) is said the
moment it happens; the other modules go on, and the run exits 1 naming it.

Beside cosmic-ray's operator-level mutants, the semantic mutants of tools/semantic_mutants.toml
(tools/semantic.py): larger changes a reviewer could let through (a mean for a median, two
branches swapped, the raw p for Holm's), each run once against all of its module's test files
and scored apart. Both run by default; --semantic-only runs just the list (minutes), and
--cosmic-ray-only just cosmic-ray.

    .venv/bin/python tools/mutate.py [MODULE ...] [--jobs N] [--keep DIR] [--resume DIR]
                                     [--survivors-of DIR]
                                     [--semantic-only | --cosmic-ray-only]

MODULE: te, feedback, ... (default: all of MODULES). Prints, per module, the mutants, how many
were killed, the score, how many ran again with all tests, and each survivor (line and the
edit); writes the same as JSON to
mutation-results.json (kept with --keep DIR, beside the copies and their sessions). All
modules: about 3,000 mutants, TESTING.md says how long they took.

--resume DIR continues a run that was stopped (a session that ended, a kill): DIR is its
working directory (printed at its start, /tmp/te-sweep-mutate-*, left behind when a run is
killed) or a --keep DIR. Each module whose session is there and whose source has not changed
goes on from the mutants that have no verdict yet; the others run in full.

--survivors-of DIR takes the sessions an earlier run kept with --keep DIR and runs only their
survivors again, against all of each module's tests as they are now: the check that new tests
kill what they were written for, in minutes instead of the module's whole run. It refuses a
module whose source changed since that run (the mutants' positions would no longer match).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import json
import os
import queue
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import semantic  # tools/: the semantic mutants' list and runner
from select_tests import ALL_TESTS  # tools/: the marker its `run` prints when it selects all

ROOT = Path(__file__).resolve().parent.parent
TARGET_SCORE = 0.90
# Per mutant: a run past its timeout counts as killed (the mutant loops), so the timeout is
# never below three times what the module's unmutated tests took on this machine at this load
# (timed_baseline): te_compile's tests compile, 35-40 s on 2 busy cores, minutes with a cold
# inductor cache, and a survivor cut short there would be scored as killed.
TIMEOUT_S = 60.0
MUTANT_TIMEOUT_FACTOR = 3  # the timeout, in multiples of the unmutated tests' time
BASELINE_TIMEOUT_S = 600.0  # the unmutated tests themselves
# Hypothesis draws fewer examples per mutant (tests/core/test_properties.py reads this
# variable): the properties still run, in a fraction of the time.
PROPERTY_EXAMPLES_ENV, PROPERTY_EXAMPLES = "TE_SWEEP_PROPERTY_EXAMPLES", "15"
# The test command: pytest forked from an interpreter that has imported torch, pyarrow, optuna
# and pytest once (tools/warm_pytest.py); a cold start cost more than most modules' tests.
WARM_RUNNER = Path("tools") / "warm_pytest.py"
# Each mutant first meets only the tests that run its lines (tools/select_tests.py).
SELECTOR = Path("tools") / "select_tests.py"
# Minutes per module as last measured (TESTING.md: make mutate on a fresh clone, sixth
# session): the longest modules start first, so that the workers finish together.
MINUTES_HINT = {
    "train": 22.4,
    "configs": 17.5,
    "te": 17.2,
    "export": 7.5,
    "feedback": 6.5,
    "tune_files": 2.9,
    "report_lines": 2.0,
    "statistics": 2.2,
    "optuna_db": 1.8,
    "searcher": 1.4,
    "outcome": 1.0,
    "objectives": 0.4,
}
SERVER_START_S = 600.0  # generous: the imports take a minute on a busy 2-core machine

# module -> the test files that exercise it (fast ones: no Ray, no sweeps; a file's single test
# where the rest of the file starts Ray), under tests/: core/, results/ or sweep/ as the module.
CORE, RESULTS, SWEEP = "core/test_", "results/test_", "sweep/test_"
TESTS: dict[str, list[str]] = {
    "te": [CORE + "te", CORE + "properties", CORE + "te_bias"],
    "feedback": [CORE + "feedback", CORE + "properties", CORE + "te_compile"],
    "te_window": [CORE + "feedback", CORE + "properties"],
    "te_compile": [CORE + "te_compile"],
    "outcome": [CORE + "outcome", RESULTS + "export_files", RESULTS + "objective_agreement"],
    "objectives": [
        CORE + "outcome",
        RESULTS + "export_files",
        RESULTS + "objective_agreement",
        RESULTS + "reader_facing",
    ],
    "statistics": [
        RESULTS + "statistics",
        CORE + "properties",
        RESULTS + "configs",
        RESULTS + "reader_facing",
    ],
    "configs": [
        RESULTS + "configs",
        RESULTS + "export_files",
        RESULTS + "objective_agreement",
        RESULTS + "reader_facing",
    ],
    "export": [
        RESULTS + "export_files",
        RESULTS + "export_rows",
        RESULTS + "outcome_words",
        RESULTS + "objective_agreement",
        RESULTS + "reader_facing",
    ],
    "outcome_words": [RESULTS + "outcome_words"],
    "optuna_db": [RESULTS + "optuna_db", RESULTS + "optuna_template"],
    "tune_files": [RESULTS + "export_files", RESULTS + "export_rows"],
    "report_lines": [RESULTS + "export_files", RESULTS + "export_rows"],
    "searcher": [
        SWEEP + "searcher",
        "test_validation",
        RESULTS + "objective_agreement",
        RESULTS + "reader_facing",
    ],
    "train": [CORE + "train"],
    "ended_trials": [SWEEP + "ended_trials"],
    # What a reader sees last (issue 18). results/test_reader_facing.py and
    # results/test_outcome_words.py export hand-written sweeps, print their summary and write
    # their report (figures included); results/test_report.py's other tests run sweeps on Ray.
    "summary": [RESULTS + "reader_facing", RESULTS + "outcome_words"],
    "reporting": [
        RESULTS + "reader_facing",
        RESULTS + "objective_agreement",
        RESULTS + "export_files",
    ],
    "report": [
        RESULTS + "reader_facing",
        RESULTS + "outcome_words",
        RESULTS + "report.py::test_report_without_tables_exits_2",
        RESULTS + "report_page",
        RESULTS + "figures",
    ],
    "figures": [RESULTS + "reader_facing", RESULTS + "outcome_words", RESULTS + "figures"],
    "importance": [RESULTS + "figures", RESULTS + "report_page", RESULTS + "reader_facing"],
    "timeline": [RESULTS + "figures", RESULTS + "report_page"],
}


def test_path(name: str) -> str:
    """tests/NAME.py, or tests/FILE.py::TEST as named."""
    file, _, test = name.partition(".py::")
    return f"tests/{file}.py" + (f"::{test}" if test else "")


MODULES: dict[str, list[str]] = {
    module: [test_path(name) for name in names] for module, names in TESTS.items()
}


def test_files(module: str) -> list[str]:
    """The test files (or single tests) run against `module`'s mutants (every one exists:
    tests/test_semantic_mutants.py checks it)."""
    return MODULES[module]


@dataclass
class ModuleScore:
    module: str
    mutants: int = 0
    killed: int = 0
    incompetent: int = 0  # the mutant could not even run (not counted either way)
    in_annotations: int = 0  # inside a type annotation: equivalent (annotation_spans)
    survivors: list[str] = field(default_factory=list)
    rerun_with_all_tests: int = 0  # survived their selected tests, so ran again with all
    seconds: float = 0.0

    @property
    def score(self) -> float | None:
        tested = self.killed + len(self.survivors)
        return self.killed / tested if tested else None


def copy_tree(destination: Path) -> None:
    """The repository's tracked (and untracked, not ignored) files, into `destination`."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    for name in listed.splitlines():
        source = ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


# Plugins are named, not found: pytest's search of every installed package's entry points cost
# 1.7 s of each run (PYTEST_DISABLE_PLUGIN_AUTOLOAD below); hypothesis's is the one the tests use.
PYTEST_OPTIONS = "-x -q -p no:cacheprovider -p no:randomly -p _hypothesis_pytestplugin"


def config_text(module: str, test_command: str, timeout: float) -> str:
    return textwrap.dedent(f"""\
        [cosmic-ray]
        module-path = "{semantic.module_file(module)}"
        timeout = {timeout}
        excluded-modules = []
        test-command = "{test_command}"

        [cosmic-ray.distributor]
        name = "local"
        """)


@dataclass(frozen=True)
class ModuleRun:
    """The files of one module's mutation run inside a copy of the tree."""

    module: str
    copy: Path
    socket_path: Path

    @property
    def module_file(self) -> Path:
        return semantic.module_file(self.module)

    def path(self, suffix: str) -> Path:
        return self.copy / f"mutate-{self.module}{suffix}"

    def all_tests_command(self) -> str:
        return (
            f"{sys.executable} {self.copy / WARM_RUNNER} run {self.socket_path} "
            f"{PYTEST_OPTIONS} {' '.join(test_files(self.module))}"
        )

    def selected_tests_command(self) -> str:
        return (
            f"{sys.executable} {self.copy / SELECTOR} run {self.path('-coverage.json')} "
            f"{self.path('-original.py')} {self.module_file} {self.socket_path} "
            f"{PYTEST_OPTIONS} -- {' '.join(test_files(self.module))}"
        )


def cosmic_ray(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    tool = Path(sys.executable).with_name("cosmic-ray")
    return subprocess.run([str(tool), *args], cwd=cwd, env=env, capture_output=True, text=True)


def survivor_line(record: dict) -> str:
    """'line N: OPERATOR (occurrence K)' of a surviving mutant, from cosmic-ray's dump."""
    item = record[0] if isinstance(record, list) else record.get("work_item", record)
    mutation = item["mutations"][0]
    return (
        f"line {mutation['start_pos'][0]}: {mutation['operator_name']} "
        f"(occurrence {mutation['occurrence']})"
    )


def annotation_spans(source: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """(start, end) (line, column) of every type annotation in `source`.

    With `from __future__ import annotations` (every te_sweep module) an annotation is never
    evaluated, so a mutant inside one (`float | None` -> `float + None`) is equivalent by
    construction: it is counted apart, neither killed nor survived."""
    spans = []
    for node in ast.walk(ast.parse(source)):
        annotations = []
        if isinstance(node, ast.arg) and node.annotation is not None:
            annotations.append(node.annotation)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns:
            annotations.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            annotations.append(node.annotation)
        spans += [((a.lineno, a.col_offset), (a.end_lineno, a.end_col_offset)) for a in annotations]
    return spans


def in_spans(position: tuple[int, int], spans: list) -> bool:
    return any(start <= position < end for start, end in spans)


def in_annotation(item: dict, spans: list) -> bool:
    return in_spans(tuple(item["mutations"][0]["start_pos"]), spans)


def score_session(module: str, session: Path, cwd: Path, env: dict[str, str]) -> ModuleScore:
    dump = cosmic_ray("dump", str(session), cwd=cwd, env=env)
    spans = annotation_spans(semantic.module_file(module, cwd).read_text())
    score = ModuleScore(module)
    for line in dump.stdout.splitlines():
        record = json.loads(line)
        item, result = record if isinstance(record, list) else (record, record.get("result"))
        if not result:
            continue
        score.mutants += 1
        if in_annotation(item, spans):
            score.in_annotations += 1
        elif (
            result.get("worker_outcome") == "exception"
            or result.get("test_outcome") == "incompetent"
        ):
            score.incompetent += 1
        elif result.get("test_outcome") == "survived":
            score.survivors.append(survivor_line([item]))
        else:  # killed, or a timeout (the mutant hangs: the tests noticed)
            score.killed += 1
    return score


def skip_annotation_mutants(session: Path, module_source: str) -> int:
    """Mark the mutants inside type annotations as done without running them (equivalent by
    construction, see annotation_spans); returns how many."""
    spans = annotation_spans(module_source)
    with contextlib.closing(sqlite3.connect(session)) as db, db:
        jobs = [
            job
            for job, line, column in db.execute(
                "SELECT job_id, start_pos_row, start_pos_col FROM mutation_specs"
            )
            if in_spans((line, column), spans)
        ]
        db.executemany(
            "INSERT INTO work_results (worker_outcome, output, test_outcome, diff, "
            "job_id) VALUES ('SKIPPED', 'in a type annotation', 'INCOMPETENT', '', ?)",
            [(job,) for job in jobs],
        )
    return len(jobs)


def forget_selected_survivors(session: Path) -> int:
    """Drop the results of the mutants that survived only the tests selected for them (not
    all of the module's): the next exec runs those again; returns how many."""
    with contextlib.closing(sqlite3.connect(session)) as db, db:
        dropped = db.execute(
            "DELETE FROM work_results WHERE test_outcome = 'SURVIVED' AND "
            "instr(coalesce(output, ''), ?) = 0",
            (ALL_TESTS,),
        )
        return dropped.rowcount


def earlier_session(kept: Path, module: str) -> Path | None:
    """The session of `module` in a run kept with --keep (in one of its repo copies), with the
    module's source it mutated beside it."""
    found = [
        session
        for session in sorted(kept.glob(f"repo*/mutate-{module}.sqlite"))
        if session.with_name(f"mutate-{module}-original.py").exists()
    ]
    return found[0] if found else None


def cosmic_ray_step(module: str, *step: str, cwd: Path, env: dict[str, str]) -> None:
    """One cosmic-ray command (init, baseline, exec) of a module's run; stops on a failure."""
    done = cosmic_ray(*step, cwd=cwd, env=env)
    if done.returncode != 0:
        raise SystemExit(
            f"cosmic-ray {step[0]} failed for {module}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )


def timed_baseline(run: ModuleRun, env: dict[str, str]) -> float:
    """The module's tests, unmutated, through cosmic-ray (a failure stops the module's run);
    returns each mutant's timeout: MUTANT_TIMEOUT_FACTOR times what they took, at least
    TIMEOUT_S."""
    config = run.path(".toml")
    config.write_text(config_text(run.module, run.all_tests_command(), BASELINE_TIMEOUT_S))
    started = time.monotonic()
    cosmic_ray_step(run.module, "baseline", str(config), cwd=run.copy, env=env)
    return max(TIMEOUT_S, MUTANT_TIMEOUT_FACTOR * (time.monotonic() - started))


def rerun_survivors(run: ModuleRun, env: dict[str, str], kept: Path) -> ModuleScore:
    """The earlier run's session with its survivors' verdicts dropped, executed again against
    all of the module's tests: every other verdict stands, as the module has not changed."""
    started = time.monotonic()
    previous = earlier_session(kept, run.module)  # main() checked that there is one
    original = previous.with_name(f"mutate-{run.module}-original.py")
    if original.read_text() != (run.copy / run.module_file).read_text():
        raise SystemExit(
            f"{run.module_file} changed since the run in {kept}: its "
            "mutants no longer match the source; run the module in full"
        )
    config, session = run.path(".toml"), run.path(".sqlite")
    shutil.copyfile(previous, session)
    shutil.copyfile(original, run.path("-original.py"))  # so that this run can be re-run too
    with contextlib.closing(sqlite3.connect(session)) as db, db:
        rerun = db.execute("DELETE FROM work_results WHERE test_outcome = 'SURVIVED'").rowcount
    timeout = timed_baseline(run, env)
    config.write_text(config_text(run.module, run.all_tests_command(), timeout))
    cosmic_ray_step(run.module, "exec", str(config), str(session), cwd=run.copy, env=env)
    score = score_session(run.module, session, run.copy, env)
    score.rerun_with_all_tests = rerun
    score.seconds = time.monotonic() - started
    return score


def mutate_module(run: ModuleRun, env: dict[str, str], resume: Path | None = None) -> ModuleScore:
    """Init, baseline (all tests, unmutated), the coverage map and a second baseline (every
    measured test, fastest first), then exec twice: every mutant against the tests that run
    its lines (tools/select_tests.py), then the survivors of that against all of the
    module's test files. Only the second verdict of a survivor counts."""
    started = time.monotonic()
    config, session = run.path(".toml"), run.path(".sqlite")
    source = (run.copy / run.module_file).read_text()
    previous = earlier_session(resume, run.module) if resume else None
    if previous and previous.with_name(f"mutate-{run.module}-original.py").read_text() == source:
        return _resumed(run, env, previous, started)
    run.path("-original.py").write_text(source)

    def step(*args: str) -> None:
        cosmic_ray_step(run.module, *args, cwd=run.copy, env=env)

    config.write_text(config_text(run.module, run.all_tests_command(), TIMEOUT_S))
    step("init", str(config), str(session))
    skip_annotation_mutants(session, source)
    timeout = timed_baseline(run, env)
    subprocess.run(
        [
            sys.executable,
            str(run.copy / SELECTOR),
            "map",
            str(run.module_file),
            str(run.path("-coverage.json")),
            *PYTEST_OPTIONS.split(),
            "--",
            *test_files(run.module),
        ],
        cwd=run.copy,
        env=env,
        check=True,
    )
    # The unmutated module against every measured test fastest first (select_tests.py with
    # no edit): a failure there is a test that needs another test to have run before it, and
    # would count every mutant as killed.
    ordered = subprocess.run(
        shlex.split(run.selected_tests_command()),
        cwd=run.copy,
        env=env,
        capture_output=True,
        text=True,
    )
    if ordered.returncode != 0:
        raise SystemExit(
            f"{run.module}'s tests fail on the unmutated module when run fastest "
            f"first (exit {ordered.returncode}): one depends on another running "
            "before it; run them in that order to find it:\n"
            f"{ordered.stdout[-2000:]}"
        )
    config.write_text(config_text(run.module, run.selected_tests_command(), timeout))
    step("exec", str(config), str(session))
    rerun = forget_selected_survivors(session)
    config.write_text(config_text(run.module, run.all_tests_command(), timeout))
    step("exec", str(config), str(session))
    score = score_session(run.module, session, run.copy, env)
    score.rerun_with_all_tests = rerun
    score.seconds = time.monotonic() - started
    return score


def _resumed(run: ModuleRun, env: dict[str, str], previous: Path, started: float) -> ModuleScore:
    """mutate_module's last steps on a stopped run's session: its verdicts stand (the module
    has not changed); the mutants without one meet their selected tests (mapped again: the
    tests may have changed), and the survivors of those all of the module's tests."""
    config, session = run.path(".toml"), run.path(".sqlite")
    for suffix in (".sqlite", "-original.py"):
        shutil.copyfile(previous.with_name(f"mutate-{run.module}{suffix}"), run.path(suffix))
    print(f"  {run.module}: resuming {previous}", flush=True)
    # The coverage map afresh: the tests may have changed since (new ones select too).
    subprocess.run(
        [
            sys.executable,
            str(run.copy / SELECTOR),
            "map",
            str(run.module_file),
            str(run.path("-coverage.json")),
            *PYTEST_OPTIONS.split(),
            "--",
            *test_files(run.module),
        ],
        cwd=run.copy,
        env=env,
        check=True,
    )
    timeout = timed_baseline(run, env)
    config.write_text(config_text(run.module, run.selected_tests_command(), timeout))
    cosmic_ray_step(run.module, "exec", str(config), str(session), cwd=run.copy, env=env)
    rerun = forget_selected_survivors(session)
    config.write_text(config_text(run.module, run.all_tests_command(), timeout))
    cosmic_ray_step(run.module, "exec", str(config), str(session), cwd=run.copy, env=env)
    score = score_session(run.module, session, run.copy, env)
    score.rerun_with_all_tests = rerun
    score.seconds = time.monotonic() - started
    return score


@contextlib.contextmanager
def warm_server(copy: Path, env: dict[str, str]) -> Iterator[Path]:
    """tools/warm_pytest.py serving in the copy for as long as the block runs."""
    socket_path = copy.parent / f"{copy.name}.sock"
    server = subprocess.Popen(
        [sys.executable, str(copy / WARM_RUNNER), "serve", str(socket_path)], cwd=copy, env=env
    )
    deadline = time.monotonic() + SERVER_START_S
    while not socket_path.exists():
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            raise SystemExit(f"tools/warm_pytest.py did not start (exit {server.poll()})")
        time.sleep(0.2)
    try:
        yield socket_path
    finally:
        server.kill()
        server.wait()


def report(scores: list[ModuleScore]) -> None:
    print(
        f"{'module':<12}{'mutants':>8}{'in ann.':>8}{'killed':>8}{'survived':>9}"
        f"{'score':>8}{'re-run':>8}{'min':>7}"
    )
    for s in scores:
        value = "-" if s.score is None else f"{s.score:.0%}"
        print(
            f"{s.module:<12}{s.mutants:>8}{s.in_annotations:>8}{s.killed:>8}"
            f"{len(s.survivors):>9}{value:>8}{s.rerun_with_all_tests:>8}"
            f"{s.seconds / 60:>7.1f}"
        )
    for s in scores:
        if s.survivors:
            print(f"\nsurvivors in {semantic.module_file(s.module)}:")
            for line in s.survivors:
                print(f"  {line}")
    below = [s.module for s in scores if s.score is not None and s.score < TARGET_SCORE]
    print(
        f"\ntarget >= {TARGET_SCORE:.0%} per module: "
        + ("met" if not below else f"NOT met by {', '.join(below)}; see TESTING.md")
    )


COSMIC_RAY, SEMANTIC = "cosmic-ray", "semantic"  # the two kinds of task a worker takes


@dataclass
class RunResults:
    """What the workers found, filled in as each task ends (list.append is thread-safe)."""

    scores: list[ModuleScore] = field(default_factory=list)
    semantic_scores: list[semantic.SemanticScore] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # tasks that could not be scored


def run_task(
    kind: str,
    run: ModuleRun,
    env: dict[str, str],
    results: RunResults,
    survivors_of: Path | None,
    resume: Path | None,
) -> None:
    """One task of a worker: a module's semantic mutants, or its cosmic-ray run."""
    module = run.module
    if kind == SEMANTIC:
        mutants = [m for m in semantic.load() if m.module == module]
        done = semantic.run_module(
            module, mutants, run.copy, shlex.split(run.all_tests_command()), env, TIMEOUT_S
        )
        results.semantic_scores.append(done)
        print(
            f"  {module} (semantic): {done.killed} of {done.mutants} killed "
            f"({done.seconds / 60:.1f} min)",
            flush=True,
        )
        return
    score = (
        rerun_survivors(run, env, survivors_of) if survivors_of else mutate_module(run, env, resume)
    )
    results.scores.append(score)
    print(
        f"  {module}: {score.killed} of {score.killed + len(score.survivors)} killed "
        f"({score.seconds / 60:.1f} min)",
        flush=True,
    )


def mutate_in_copy(
    copy: Path,
    pending: queue.Queue[tuple[str, str]],
    results: RunResults,
    survivors_of: Path | None,
    resume: Path | None = None,
) -> None:
    """One worker: its own copy of the tree and warm server, tasks (kind, module) from
    `pending` until none is left: a module's cosmic-ray run, or its semantic mutants. A copy
    per worker, because both write each mutant into the copy's files: two modules mutated in
    one copy would each be tested against the other's mutants."""
    copy_tree(copy)
    # Bytecode that checks its source's hash at every import: an unchanged module loads without
    # a compile, a mutated one (same size, same second) is always compiled afresh.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "compileall",
            "-q",
            "--invalidation-mode",
            "checked-hash",
            "te_sweep",
            "tests",
            "tools",
        ],
        cwd=copy,
        check=True,
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(copy),
        PROPERTY_EXAMPLES_ENV: PROPERTY_EXAMPLES,
        "OMP_NUM_THREADS": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
    }
    with warm_server(copy, env) as socket_path:
        while True:
            try:
                kind, module = pending.get_nowait()
            except queue.Empty:
                return
            try:
                run_task(
                    kind, ModuleRun(module, copy, socket_path), env, results, survivors_of, resume
                )
            except (SystemExit, subprocess.CalledProcessError) as err:
                # Said now, not when the run ends: the other modules go on meanwhile.
                results.failures.append(f"{module} ({kind}): {err}")
                print(f"  {module} ({kind}): not scored: {err}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "modules", nargs="*", metavar="MODULE", help=f"any of {', '.join(MODULES)} [default: all]"
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="modules mutated at once, each in its own copy [default: cores]",
    )
    parser.add_argument("--keep", type=Path, help="keep the copies (and sessions) here")
    parser.add_argument(
        "--resume",
        type=Path,
        metavar="DIR",
        help="continue a stopped run from its working directory (or a --keep DIR)",
    )
    parser.add_argument(
        "--survivors-of",
        type=Path,
        metavar="DIR",
        help="run again only the survivors of a run kept with --keep DIR (no semantic mutants)",
    )
    only = parser.add_mutually_exclusive_group()
    only.add_argument(
        "--semantic-only",
        action="store_true",
        help="only the semantic mutants of tools/semantic_mutants.toml",
    )
    only.add_argument("--cosmic-ray-only", action="store_true", help="only cosmic-ray's mutants")
    args = parser.parse_args()
    unknown = [m for m in args.modules if m not in MODULES]
    if unknown:
        parser.error(f"unknown module {unknown[0]!r}; choose from {', '.join(MODULES)}")
    if args.jobs < 1:
        parser.error(f"--jobs {args.jobs}: must be at least 1")
    modules = args.modules or list(MODULES)
    if args.resume and args.survivors_of:
        parser.error("--resume continues a run; --survivors-of reruns a finished one's survivors")
    if args.resume and not args.resume.is_dir():
        parser.error(f"--resume {args.resume}: no such directory")
    if args.semantic_only and args.survivors_of:
        parser.error("--survivors-of reruns cosmic-ray survivors; it has no semantic part")
    with_cosmic_ray = not args.semantic_only
    with_semantic = not (args.cosmic_ray_only or args.survivors_of)
    if with_semantic:  # before any work: a list gone stale is an error, not a skipped mutant
        stale = semantic.problems([m for m in semantic.load() if m.module in modules], ROOT)
        if stale:
            raise SystemExit(
                "tools/semantic_mutants.toml does not match the code:\n" + "\n".join(stale)
            )
    if with_cosmic_ray and args.survivors_of:
        for module in modules:  # before any work: a missing session is an input error
            if earlier_session(args.survivors_of, module) is None:
                parser.error(
                    f"--survivors-of {args.survivors_of}: no session of {module} "
                    "there; run it in full, or keep a run with --keep DIR"
                )
    workdir = Path(tempfile.mkdtemp(prefix="te-sweep-mutate-"))
    pending: queue.Queue[tuple[str, str]] = queue.Queue()
    if with_cosmic_ray:
        for module in sorted(modules, key=lambda m: -MINUTES_HINT.get(m, 0)):  # longest first
            pending.put((COSMIC_RAY, module))
    if with_semantic:  # a few minutes in all: they fill the workers' tail
        for module in modules:
            pending.put((SEMANTIC, module))
    jobs = min(args.jobs, pending.qsize())
    kinds = " and ".join(
        kind for kind, on in ((COSMIC_RAY, with_cosmic_ray), (SEMANTIC, with_semantic)) if on
    )
    print(
        f"mutation testing {', '.join(modules)} ({kinds}), {jobs} at once, in copies under "
        f"{workdir}",
        flush=True,
    )
    results = RunResults()
    with ThreadPoolExecutor(jobs) as pool:
        for done in [
            pool.submit(
                mutate_in_copy,
                workdir / f"repo{k}",
                pending,
                results,
                args.survivors_of,
                args.resume,
            )
            for k in range(jobs)
        ]:
            done.result()
    scores = sorted(results.scores, key=lambda s: modules.index(s.module))
    semantic_scores = sorted(results.semantic_scores, key=lambda s: modules.index(s.module))
    (workdir / "mutation-results.json").write_text(
        json.dumps(
            {
                "cosmic_ray": [{**asdict(s), "score": s.score} for s in scores],
                "semantic": [{**asdict(s), "score": s.score} for s in semantic_scores],
                "not_scored": results.failures,
            },
            indent=2,
        )
    )
    if scores:
        report(scores)
    if semantic_scores:
        semantic.report(
            semantic_scores,
            {s.module: "-" if s.score is None else f"{s.score:.0%}" for s in scores},
        )
    if args.keep:
        shutil.copytree(
            workdir, args.keep, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.sock")
        )
    shutil.rmtree(workdir, ignore_errors=True)
    if results.failures:
        raise SystemExit("not scored:\n" + "\n".join(results.failures))


if __name__ == "__main__":
    main()
