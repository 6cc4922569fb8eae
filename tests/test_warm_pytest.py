"""tools/warm_pytest.py, the test command of `make mutate`: a wrong exit code, or a module
that a child imports stale, would turn every mutant into a false kill or a false survivor.
A real server, real forked pytest runs, on a small project this test writes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

RUNNER = Path(__file__).resolve().parent.parent / "tools" / "warm_pytest.py"
START_S = 300.0


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("warm")
    socket_path = root / "server.sock"
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    process = subprocess.Popen(
        [sys.executable, str(RUNNER), "serve", str(socket_path)], env=env, stdout=subprocess.DEVNULL
    )
    deadline = time.monotonic() + START_S
    while not socket_path.exists():
        assert process.poll() is None and time.monotonic() < deadline, "server did not start"
        time.sleep(0.2)
    yield socket_path
    process.kill()
    process.wait()


def run(socket_path: Path, project: Path, *args: str) -> int:
    return subprocess.run(
        [
            sys.executable,
            str(RUNNER),
            "run",
            str(socket_path),
            "-q",
            "-p",
            "no:cacheprovider",
            *args,
        ],
        cwd=project,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    ).returncode


def project(tmp_path: Path, value: int) -> Path:
    (tmp_path / "subject.py").write_text(f"VALUE = {value}\n")
    (tmp_path / "test_subject.py").write_text(
        "import subject\n\ndef test_value():\n    assert subject.VALUE == 1\n"
    )
    return tmp_path


def test_a_passing_run_exits_0_and_a_failing_one_1(server, tmp_path):
    assert run(server, project(tmp_path, 1)) == 0
    assert run(server, project(tmp_path, 2)) == 1


def test_each_run_imports_the_module_as_it_is_on_disk_now(server, tmp_path):
    """Same size, same second: the edit a mutant makes; a stale import would pass both."""
    folder = project(tmp_path, 1)
    results = []
    for value in (1, 2, 1, 3):
        (folder / "subject.py").write_text(f"VALUE = {value}\n")
        results.append(run(server, folder))
    assert results == [0, 1, 0, 1]


def test_no_tests_collected_is_not_a_pass(server, tmp_path):
    (tmp_path / "test_nothing.py").write_text("X = 1\n")
    assert run(server, tmp_path) == 5  # pytest's "no tests collected"


def test_without_a_server_the_run_falls_back_to_plain_pytest(tmp_path):
    folder = project(tmp_path, 1)
    assert run(tmp_path / "absent.sock", folder) == 0
    (folder / "subject.py").write_text("VALUE = 2\n")
    assert run(tmp_path / "absent.sock", folder) == 1
