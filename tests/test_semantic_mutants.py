"""tools/semantic_mutants.toml stays true to the code: every entry's text occurs exactly once
in its module, its replacement differs and the mutated module still parses; every module
`make mutate` covers has at least five. A failure here means the code changed under a mutant:
update its entry (tools/semantic.py says how the list works)."""

from __future__ import annotations

import ast
import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import mutate  # noqa: E402  (tools/)
import semantic  # noqa: E402  (tools/)

MUTANTS = semantic.load()


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.label for m in MUTANTS])
def test_each_mutant_applies_once_and_parses(mutant):
    source = semantic.module_file(mutant.module, ROOT).read_text()
    assert source.count(mutant.text) == 1, (
        f"{mutant.label}: its text occurs {source.count(mutant.text)} times; update "
        "tools/semantic_mutants.toml"
    )
    assert mutant.replacement != mutant.text
    mutated = mutant.apply(source)
    assert mutated != source
    ast.parse(mutated)
    assert mutant.why.strip() and mutant.kind.strip()


def test_the_list_has_no_problems_as_the_runner_sees_it():
    assert semantic.problems(MUTANTS, ROOT) == []


def test_every_covered_module_has_five_and_no_entry_names_another():
    per_module = Counter(m.module for m in MUTANTS)
    assert set(per_module) <= set(mutate.MODULES), set(per_module) - set(mutate.MODULES)
    assert {m: per_module[m] for m in mutate.MODULES if per_module[m] < 5} == {}


def test_no_two_entries_make_the_same_change():
    changes = Counter((m.module, m.text, m.replacement) for m in MUTANTS)
    assert [c for c, n in changes.items() if n > 1] == []


def test_a_stale_text_is_refused_loudly():
    mutant = semantic.Mutant("summary", "kind", "why", "x = 1\n", "x = 2\n", 1)
    for source, count in (("y = 1\n", "does not occur"), ("x = 1\nx = 1\n", "occurs 2 times")):
        with pytest.raises(semantic.StaleMutant, match=count):
            mutant.apply(source)
    assert mutant.apply("x = 1\ny = 1\n") == "x = 2\ny = 1\n"


def test_an_entry_without_its_fields_is_refused(tmp_path):
    listed = tmp_path / "list.toml"
    listed.write_text("[[mutant]]\nmodule = 'summary'\ntext = 'a'\nreplacement = 'b'\n")
    with pytest.raises(ValueError, match="needs exactly"):
        semantic.load(listed)


def test_every_test_a_module_is_mutated_against_exists():
    """tools/mutate.py names its modules' tests by path: a moved or renamed test file must be
    renamed there too, or its mutants would meet no test at all."""
    for module, names in mutate.MODULES.items():
        assert semantic.module_file(module, ROOT).is_file(), module
        for name in names:
            file, _, test = name.partition("::")
            assert (ROOT / file).is_file(), f"{module}: {file}"
            assert not test or f"def {test}(" in (ROOT / file).read_text(), f"{module}: {name}"
