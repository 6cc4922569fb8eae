"""Semantic mutants: the changes a tired reviewer lets through, applied one at a time.

Why: cosmic-ray's mutants are operator-level (`>=` to `>`, `+` to `-`, a constant). The
mistakes that make a reader's number wrong are often larger and still plausible: a mean where
the docs say median, two `if` branches swapped, the raw p where Holm's adjusted one belongs, a
filter dropped from a comprehension, a list cut short, evaluation time added into a sum. Each
such change is written down in tools/semantic_mutants.toml as data:

    [[mutant]]
    module = "configs"                 # te_sweep/results/configs.py (module_file finds it)
    kind = "adjusted p -> raw p"       # which class of change (TESTING.md groups them)
    why = "..."                        # the reviewer's slip it stands for
    text = '''...'''                   # exact source text; must occur exactly once
    replacement = '''...'''            # what it becomes

The text must occur exactly once in the module as it is now: a list that no longer matches the
code fails loudly (here, and in tests/test_semantic_mutants.py) instead of silently testing
nothing. Each mutant is written into a temporary copy of the tree (tools/mutate.py's), the
module's test files (tools/mutate.py's MODULES, all of them, `-x`) run with the warm runner,
and the original is put back. Killed: the tests fail (or run past the timeout). Scored per
module, separately from cosmic-ray's score.

    .venv/bin/python tools/mutate.py --semantic-only [MODULE ...]
"""

from __future__ import annotations

import ast
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import tomllib

LIST_FILE = Path(__file__).resolve().parent / "semantic_mutants.toml"
LAYERS = ("core", "results", "sweep")  # te_sweep's subpackages, where the mutated modules live


def module_file(module: str, root: Path | None = None) -> Path:
    """te_sweep/LAYER/MODULE.py, relative to the tree (or under `root` when given): module
    names are unique across the layers, so the lists name a module by its name alone."""
    relative = next(
        (
            Path("te_sweep") / layer / f"{module}.py"
            for layer in LAYERS
            if (
                Path(__file__).resolve().parent.parent / "te_sweep" / layer / f"{module}.py"
            ).is_file()
        ),
        Path("te_sweep") / f"{module}.py",
    )
    return relative if root is None else root / relative


FIELDS = ("module", "kind", "why", "text", "replacement")


class StaleMutant(Exception):
    """A mutant's text does not occur exactly once in its module (the code changed)."""


@dataclass(frozen=True)
class Mutant:
    module: str
    kind: str
    why: str
    text: str
    replacement: str
    number: int  # its place among the module's mutants, from 1 (the list's order)

    @property
    def label(self) -> str:
        return f"{self.module} #{self.number} ({self.kind})"

    def apply(self, source: str) -> str:
        """`source` with the text replaced; StaleMutant unless it occurs exactly once."""
        count = source.count(self.text)
        if count != 1:
            where = "does not occur" if count == 0 else f"occurs {count} times"
            raise StaleMutant(
                f"{self.label}: its text {where} in {module_file(self.module)} "
                f"(update tools/semantic_mutants.toml):\n{self.text}"
            )
        return source.replace(self.text, self.replacement)

    def line(self, source: str) -> int:
        """The line of the module where the text starts (for the reports)."""
        return source[: source.find(self.text)].count("\n") + 1


def load(path: Path = LIST_FILE) -> list[Mutant]:
    """The list, in its order; each entry must have exactly FIELDS."""
    entries = tomllib.loads(path.read_text())["mutant"]
    mutants, numbers = [], {}
    for k, entry in enumerate(entries, start=1):
        if sorted(entry) != sorted(FIELDS):
            raise ValueError(
                f"{path.name}: entry {k} has {sorted(entry)}; it needs exactly {', '.join(FIELDS)}"
            )
        numbers[entry["module"]] = numbers.get(entry["module"], 0) + 1
        mutants.append(Mutant(number=numbers[entry["module"]], **entry))
    return mutants


def problems(mutants: Sequence[Mutant], root: Path) -> list[str]:
    """What is wrong with the list against the modules under `root` (empty: nothing): a text
    that occurs zero or several times, a replacement equal to the text, a mutated module that
    no longer parses."""
    found = []
    for m in mutants:
        path = module_file(m.module, root)
        if not path.is_file():
            found.append(f"{m.label}: no module {module_file(m.module)}")
            continue
        if m.replacement == m.text:
            found.append(f"{m.label}: the replacement is the text itself")
        try:
            ast.parse(m.apply(path.read_text()))
        except StaleMutant as err:
            found.append(str(err))
        except SyntaxError as err:
            found.append(f"{m.label}: the mutated module does not parse ({err})")
    return found


@dataclass
class SemanticScore:
    module: str
    mutants: int = 0
    killed: int = 0
    survivors: list[dict] = field(default_factory=list)  # line, kind, why, text, replacement
    seconds: float = 0.0

    @property
    def score(self) -> float | None:
        return self.killed / self.mutants if self.mutants else None


def run_tests(command: list[str], cwd: Path, env: dict[str, str], timeout: float) -> bool:
    """Whether the tests pass (a run past `timeout` does not: the mutant looped)."""
    try:
        done = subprocess.run(
            command,
            cwd=cwd,
            env=env,
            timeout=timeout,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:  # the warm child dies with its closed connection
        return False
    return done.returncode == 0


def run_module(
    module: str,
    mutants: Sequence[Mutant],
    copy: Path,
    test_command: list[str],
    env: dict[str, str],
    timeout: float,
) -> SemanticScore:
    """Each of the module's mutants alone in `copy`, against `test_command` (the module's
    test files); the module as it was is always written back."""
    started = time.monotonic()
    path = module_file(module, copy)
    original = path.read_text()
    if not run_tests(test_command, copy, env, timeout * 10):
        raise SystemExit(
            f"semantic mutants: {module}'s tests fail on the unmutated module; "
            f"run them: {' '.join(test_command)}"
        )
    # A surviving mutant runs every test: never cut it short on a busy machine (a timeout
    # counts as killed), so allow three times what the unmutated module took.
    timeout = max(timeout, 3 * (time.monotonic() - started))
    score = SemanticScore(module)
    for m in mutants:
        mutated = m.apply(original)  # main() checked the list; this still refuses a stale one
        path.write_text(mutated)
        try:
            passed = run_tests(test_command, copy, env, timeout)
        finally:
            path.write_text(original)
        score.mutants += 1
        if passed:
            print(f"    survived: {m.label}: {m.why}", flush=True)
            score.survivors.append(
                {
                    "number": m.number,
                    "line": m.line(original),
                    "kind": m.kind,
                    "why": m.why,
                    "text": m.text,
                    "replacement": m.replacement,
                }
            )
        else:
            score.killed += 1
    score.seconds = time.monotonic() - started
    return score


def report(scores: Sequence[SemanticScore], cosmic: dict[str, str] | None = None) -> None:
    """Per module: the semantic score, beside cosmic-ray's where it ran; then each survivor."""
    cosmic = cosmic or {}
    print(f"\n{'module':<14}{'semantic':>10}{'killed':>8}{'score':>8}{'min':>7}{'cosmic-ray':>12}")
    for s in scores:
        value = "-" if s.score is None else f"{s.score:.0%}"
        print(
            f"{s.module:<14}{s.mutants:>10}{s.killed:>8}{value:>8}{s.seconds / 60:>7.1f}"
            f"{cosmic.get(s.module, '-'):>12}"
        )
    for s in scores:
        for v in s.survivors:
            print(
                f"\nsemantic survivor {s.module} #{v['number']} (line {v['line']}, "
                f"{v['kind']}): {v['why']}"
            )
    total = sum(s.mutants for s in scores)
    print(
        f"\nsemantic mutants: {sum(s.killed for s in scores)} of {total} killed (the target: "
        "each survivor killed by a new test, or its reason given in TESTING.md)"
    )
