"""A sweep pickled before the layers still unpickles: every old module name (te_sweep.searcher,
te_sweep.sweep's functions, ...) resolves to the module it became, as pickle resolves it."""

from __future__ import annotations

import importlib
import pickle
import subprocess
import sys

import pytest

from te_sweep import moved


def old_reference(module: str, name: str) -> bytes:
    """A pickle of the global `module.name` as pickle writes one (protocol 0: GLOBAL)."""
    return f"c{module}\n{name}\n.".encode()


def test_every_old_name_is_the_module_it_became():
    for old, new in moved.OLD_NAMES.items():
        assert importlib.import_module(old) is importlib.import_module(new), old
        assert importlib.import_module(new).__spec__.name == new, "the alias took its spec"


def test_what_tune_pickled_before_the_move_unpickles_in_a_fresh_process():
    """In a fresh interpreter, as `te-sweep resume` is: the names tuner.pkl and
    searcher-state-*.pkl of a sweep launched on 2026-12-06 hold (read from those files)."""
    pickled = {
        "te_sweep.searcher": "SweepSearcher",
        "te_sweep.sweep": "trial_dirname",
        "te_sweep.space": "SearchSpace",
        "te_sweep.concurrency": "ConcurrencyPolicy",
        "te_sweep.progress": "LiveView",
        "te_sweep.retention": "CheckpointRetention",
        "te_sweep.result_log": "ResultLog",
    }
    script = (
        "import pickle, sys\n"
        "for module, name in " + repr(sorted(pickled.items())) + ":\n"
        "    obj = pickle.loads(f'c{module}\\n{name}\\n.'.encode())\n"
        "    print(obj.__module__ + '.' + obj.__qualname__)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    found = done.stdout.split()
    sweep_parts = [f"te_sweep.sweep.{part}" for part in moved.OLD_SWEEP_PARTS]
    for (module, name), where in zip(sorted(pickled.items()), found, strict=True):
        new_module, _, new_name = where.rpartition(".")
        assert new_name == name, where
        if module in moved.OLD_NAMES:
            assert new_module == moved.OLD_NAMES[module], where
        else:  # the old te_sweep.sweep
            assert new_module in sweep_parts, where


def test_the_sweep_package_forwards_only_the_old_modules_names():
    from te_sweep.sweep import launch, run

    assert pickle.loads(old_reference("te_sweep.sweep", "trial_dirname")) is run.trial_dirname
    assert pickle.loads(old_reference("te_sweep.sweep", "SweepOptions")) is launch.SweepOptions
    with pytest.raises(AttributeError, match="no_such_name"):
        pickle.loads(old_reference("te_sweep.sweep", "no_such_name"))
    from te_sweep.sweep import claim  # a submodule is imported, not looked up in launch

    assert claim.__name__ == "te_sweep.sweep.claim"


def test_a_name_that_never_existed_is_still_an_import_error():
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("te_sweep.no_such_module")


def test_a_tuner_state_naming_missing_code_is_refused_in_one_line(tmp_path):
    """A sweep pickled by a te-sweep whose modules this one has not got (say a later version's)
    is refused before Ray starts, naming the file, the missing module and what to do, instead
    of Tune's traceback; one pickled under the old names passes."""
    from te_sweep.results.storage import SweepDir
    from te_sweep.sweep.launch import TUNER_STATE, SweepStateError, check_tuner_state

    sweep_dir = SweepDir(str(tmp_path), "s")
    (tmp_path / "s").mkdir()
    manifest = {"versions": {"te-sweep": "0.2.0"}}
    (tmp_path / "s" / TUNER_STATE).write_bytes(old_reference("te_sweep.searcher", "SweepSearcher"))
    check_tuner_state(sweep_dir, manifest)
    (tmp_path / "s" / TUNER_STATE).write_bytes(old_reference("te_sweep.later_module", "Thing"))
    with pytest.raises(SweepStateError) as refused:
        check_tuner_state(sweep_dir, manifest)
    line = str(refused.value)
    assert "\n" not in line and TUNER_STATE in line and "te_sweep.later_module" in line
    assert "resume the sweep with the te-sweep that launched it (0.2.0" in line
