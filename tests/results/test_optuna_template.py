"""The empty study that optuna.db is written into (te_sweep/results/optuna_db.py): made by Optuna
once per version and machine, kept under ~/.cache/te-sweep/optuna, and made again whenever the
kept file is not a whole, empty study. Real files, real SQLite, real processes; HOME points at a
directory of the test's own."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from conftest import tmpfs
from test_optuna_db import CONFIGS, SPACE, comparable, study_in

from te_sweep.results import optuna_db
from te_sweep.results.optuna_db import empty_study, optuna_db_bytes, study_template, template_path

EXPECTED_IDS = ["c0000", "c0001", "c0003", "c0004"]  # CONFIGS' finished configurations


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home directory of the test's own, and no empty study remembered by this process."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    empty_study.cache_clear()
    yield home
    empty_study.cache_clear()


def config_ids(data: bytes, tmp_path: Path) -> list[str]:
    path = tmp_path / "written.db"
    path.write_bytes(data)
    return [t.user_attrs["config_id"] for t in study_in(path).trials]


def test_the_template_lives_under_home_and_names_its_optuna_version(home):
    path = template_path()
    assert path.parent == home / ".cache" / "te-sweep" / "optuna"
    assert f"optuna-{optuna.__version__}-" in path.name


def test_the_first_export_keeps_a_whole_empty_study(home, tmp_path):
    assert not template_path().exists()
    assert config_ids(optuna_db_bytes(CONFIGS, SPACE), tmp_path) == EXPECTED_IDS
    kept = study_template(template_path())
    assert kept is not None and kept[0] == empty_study()[0]
    assert [p.name for p in template_path().parent.iterdir()] == [template_path().name]


WRITE_STUDY = """
import sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from test_optuna_db import CONFIGS, SPACE
from te_sweep.results.optuna_db import optuna_db_bytes
Path(sys.argv[1]).write_bytes(optuna_db_bytes(CONFIGS, SPACE))
print("sqlalchemy" in sys.modules)
"""


def test_a_later_process_writes_the_same_study_without_sqlalchemy(home, tmp_path):
    """Optuna's storage (and the SQLAlchemy and alembic it imports, about a second) is needed
    only by the first export on a machine; the study a later one writes reads back the same."""
    script = WRITE_STUDY.format(tests=str(Path(__file__).parent))
    env = {**os.environ, "HOME": str(home)}
    imported = []
    for name in ("first.db", "second.db"):
        done = subprocess.run(
            [sys.executable, "-c", script, str(tmp_path / name)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        imported.append(done.stdout.strip())
    assert imported == ["True", "False"]
    first, second = (study_in(tmp_path / name).trials for name in ("first.db", "second.db"))
    assert [comparable(t)[:6] for t in first] == [comparable(t)[:6] for t in second]
    assert [t.user_attrs["config_id"] for t in second] == EXPECTED_IDS


def with_a_lost_page(template: Path) -> bytes:
    """The template one page longer, the page owned by no table: every query still answers,
    and only SQLite's check of its pages ("Page 29 is never used") finds it."""
    data = bytearray(template.read_bytes())
    pages = int.from_bytes(data[28:32], "big")  # the header's page count (SQLite file format)
    data[28:32] = (pages + 1).to_bytes(4, "big")
    return bytes(data + bytes(len(data) // pages))


def damaged_templates(template: Path, written_study: bytes) -> dict[str, bytes]:
    whole = template.read_bytes()
    return {
        "garbage": b"not a database at all" * 100,
        "cut short": whole[: len(whole) // 2],
        "empty": b"",
        "a lost page": with_a_lost_page(template),
        "a study with trials": written_study,  # reused, it would hold every trial twice
    }


@pytest.mark.parametrize(
    "kind", ["garbage", "cut short", "empty", "a lost page", "a study with trials"]
)
def test_a_damaged_template_is_made_again(home, tmp_path, kind):
    whole = optuna_db_bytes(CONFIGS, SPACE)
    template_path().write_bytes(damaged_templates(template_path(), whole)[kind])
    assert study_template(template_path()) is None
    empty_study.cache_clear()
    assert config_ids(optuna_db_bytes(CONFIGS, SPACE), tmp_path) == EXPECTED_IDS
    kept = study_template(template_path())
    assert kept is not None
    with sqlite3.connect(template_path()) as db:
        assert db.execute("SELECT COUNT(*) FROM trials").fetchone() == (0,)


def test_a_home_that_cannot_keep_it_still_gets_its_study(home, tmp_path):
    (home / ".cache").write_text("a file where the cache directory would be")
    assert config_ids(optuna_db_bytes(CONFIGS, SPACE), tmp_path) == EXPECTED_IDS
    assert (home / ".cache").read_text() == "a file where the cache directory would be"


def test_a_full_disk_leaves_no_part_of_a_template(home, tmp_path):
    """A 64 KiB tmpfs cannot hold the ~110 KiB template: the export still writes its study,
    and neither a partial template nor the temporary file is left behind."""
    with tmpfs(home / ".cache", "64k"):
        assert config_ids(optuna_db_bytes(CONFIGS, SPACE), tmp_path) == EXPECTED_IDS
        assert list(template_path().parent.iterdir()) == []


NUMBERS = [0.0, -0.0, 1.5, 1e300, -2.5e-310, float("nan"), float("inf"), float("-inf"), 0, 3, -7]


@pytest.mark.parametrize("value", [*NUMBERS, True, False, None, "c0001", 'a "quoted" id', "ünï"])
def test_json_scalar_is_json_dumps(value):
    import json

    assert optuna_db.json_scalar(value) == json.dumps(value)


@pytest.mark.parametrize("value", [0.0, 2.75, -1.0, 1e308, float("inf"), float("-inf")])
def test_stored_value_is_optunas(value):
    from optuna.storages._rdb.models import TrialValueModel

    stored, kind = TrialValueModel.value_to_stored_repr(value)
    assert optuna_db.stored_value(value) == (stored, kind.name)


def test_trial_tables_are_optunas():
    """TRIAL_TABLES names Optuna's own tables and columns (written without its models)."""
    from optuna.storages._rdb import models

    tables = {
        model.__tablename__: {column.name for column in model.__table__.columns}
        for model in (
            models.TrialModel,
            models.TrialParamModel,
            models.TrialValueModel,
            models.TrialUserAttributeModel,
        )
    }
    assert set(optuna_db.TRIAL_TABLES) == set(tables)
    for table, columns in optuna_db.TRIAL_TABLES.items():
        assert set(columns) <= tables[table], table
