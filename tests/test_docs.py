"""The documentation stays true to the code: every command's options, every trial setting and
every column of the tables is documented where README sends a reader; README stays short and
every link in it and in docs/ leads to a file that exists."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from te_sweep.cli import cli
from te_sweep.core.config import TrialConfig
from te_sweep.results.configs import BASE_FIELDS, STAT_FIELDS
from te_sweep.results.export import EPOCHS_SCHEMA, PARAM_FIELDS, TRIALS_SCHEMA

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README_MAX_LINES = 200
# Where README sends a reader for each command's options.
COMMAND_DOCS = {
    "launch": "sweeps.md",
    "resume": "sweeps.md",
    "export": "results.md",
    "report": "results.md",
    "train": "train.md",
}
LINK = re.compile(r"\]\(([^)#]+)(?:#[^)]*)?\)")


def doc(name: str) -> str:
    return (DOCS / name).read_text()


def test_every_command_has_its_page():
    assert set(cli.commands) == set(COMMAND_DOCS), "a new command needs its page in docs/"


@pytest.mark.parametrize("command", sorted(COMMAND_DOCS))
def test_every_option_of_a_command_is_documented_on_its_page(command):
    text = doc(COMMAND_DOCS[command])
    options = [p.opts[0] for p in cli.commands[command].params if p.opts[0].startswith("--")]
    missing = [o for o in options if f"`{o}" not in text]
    assert options and not missing, f"{command}: {missing} not in docs/{COMMAND_DOCS[command]}"


def test_every_trial_setting_is_documented():
    """As `te-sweep train`'s option or as the key of a config file or space."""
    text = doc("train.md")
    missing = [
        f.name
        for f in dataclasses.fields(TrialConfig)
        if f"`--{f.name.replace('_', '-')}" not in text and f"`{f.name}`" not in text
    ]
    assert not missing, missing


@pytest.mark.parametrize(
    "columns",
    [
        [f.name for f in TRIALS_SCHEMA if f not in PARAM_FIELDS],
        [f.name for f in EPOCHS_SCHEMA],  # the epoch record's keys: on train.md, linked
        [f.name for f in BASE_FIELDS + STAT_FIELDS],
    ],
    ids=["trials", "epochs", "configs"],
)
def test_every_column_is_documented(columns):
    text = doc("results.md") + doc("train.md")
    missing = [c for c in columns if f"`{c}`" not in text]
    assert columns and not missing, missing
    assert "`param_<setting>`" in text  # the trial settings' columns, one per setting


def test_readme_is_short_and_has_the_commands_ci_runs():
    text = (ROOT / "README.md").read_text()
    assert text.count("\n") <= README_MAX_LINES
    assert "make test" in text and "make sweep" in text


@pytest.mark.parametrize(
    "page", ["README.md", *sorted(f"docs/{p.name}" for p in DOCS.glob("*.md"))]
)
def test_every_link_leads_to_a_file(page):
    path = ROOT / page
    targets = [t for t in LINK.findall(path.read_text()) if "://" not in t]
    missing = [t for t in targets if not (path.parent / t).exists()]
    assert not missing, f"{page}: {missing}"
