"""Tune's bookkeeping of an ended trial, trimmed (te_sweep/sweep/ended_trials.py), on Ray's own
Trial objects; the same on a real sweep's experiment state: tests/sweep/test_scale.py."""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

import pytest
from ray.tune.experiment import Trial

from te_sweep.core.reporting import RECORD_KEY
from te_sweep.sweep.ended_trials import (
    DEFAULT_RESULT,
    HEAP_RELEASE_EVERY,
    TrimEndedTrials,
    no_result_frames,
    trim,
)

KEPT = {"epoch": 3, "trial_status": "complete", "objective_epochs": 3.0, "node_id": "abc"}


def reported_trial() -> Trial:
    trial = Trial("__fake", config={"role": "te", "window": 500}, stub=True)
    for epoch in (1, 2, 3):
        trial.update_last_result(
            {**KEPT, "epoch": epoch, "config": dict(trial.config), RECORD_KEY: [epoch, 0.5]}
        )
    setattr(trial, DEFAULT_RESULT, {"pid": 1, "hostname": "vm"})
    return trial


def test_an_ended_trial_keeps_its_last_result_without_statistics_or_copies():
    trial = reported_trial()
    before = json.loads(trial.get_json_state()[1])  # cached by Tune until something changes
    assert before["metric_analysis"] and before["metric_n_steps"]
    assert trim(trial)
    assert trial.run_metadata.metric_analysis == {} and trial.run_metadata.metric_n_steps == {}
    assert trial.last_result == {**KEPT, "trial_id": trial.trial_id}
    assert getattr(trial, DEFAULT_RESULT) is None
    after = json.loads(trial.get_json_state()[1])  # what the next snapshot writes
    assert after["metric_analysis"] == {} and after["last_result"] == trial.last_result
    assert trial.config == {"role": "te", "window": 500}  # the trial's own config is untouched


def test_a_trial_that_never_reported_forgets_what_the_worker_filled_in():
    trial = Trial("__fake", config={"role": "te"}, stub=True)
    setattr(trial, DEFAULT_RESULT, {"pid": 1, "hostname": "vm"})
    assert trial.last_result["pid"] == 1  # Tune's stand-in for a result not reported yet
    assert trim(trial) and trial.last_result == {"trial_id": trial.trial_id}


def test_a_ray_without_these_attributes_is_left_alone():
    other = SimpleNamespace(run_metadata=SimpleNamespace(last_result={"config": {}}))
    assert not trim(other)
    assert other.run_metadata.last_result == {"config": {}}
    assert not trim(SimpleNamespace())


def test_the_callback_trims_a_trial_when_it_completes_or_errors_and_not_before():
    callback = TrimEndedTrials()
    for hook in (callback.on_trial_complete, callback.on_trial_error):
        trial = reported_trial()
        callback.on_trial_result(iteration=3, trials=[trial], trial=trial, result=trial.last_result)
        assert trial.run_metadata.metric_n_steps and RECORD_KEY in trial.last_result  # running
        hook(iteration=4, trials=[trial], trial=trial)
        assert trial.run_metadata.metric_n_steps == {} and RECORD_KEY not in trial.last_result


def test_tunes_analysis_reads_no_result_files_within_the_block_and_again_after():
    from ray.tune.analysis import ExperimentAnalysis

    original = ExperimentAnalysis._fetch_trial_dataframes
    with pytest.raises(RuntimeError), no_result_frames() as skipped:
        assert skipped  # this Ray has the method the block replaces
        assert ExperimentAnalysis._fetch_trial_dataframes(None) == {}  # no trial is read
        raise RuntimeError("a sweep that fails")
    assert ExperimentAnalysis._fetch_trial_dataframes is original


def test_a_ray_without_that_method_runs_the_block_unchanged(monkeypatch):
    from ray.tune.analysis import ExperimentAnalysis

    monkeypatch.delattr(ExperimentAnalysis, "_fetch_trial_dataframes")
    with no_result_frames() as skipped:
        assert not skipped
        assert not hasattr(ExperimentAnalysis, "_fetch_trial_dataframes")  # nothing put there


def test_the_heap_is_released_after_every_so_many_ended_trials_completed_or_errored():
    callback = TrimEndedTrials()
    assert vars(callback) == {}  # the counts are class defaults: an older pickle has none
    hooks = (callback.on_trial_complete, callback.on_trial_error)
    for ended in range(1, 3 * HEAP_RELEASE_EVERY + 1):
        trial = reported_trial()
        hooks[ended % 2](iteration=3, trials=[trial], trial=trial)
        assert callback.ended == ended
        assert callback.heap_releases == ended // HEAP_RELEASE_EVERY  # glibc here
    assert TrimEndedTrials.ended == 0 and TrimEndedTrials().heap_releases == 0


FRAGMENTED_HEAP = """
from te_sweep.sweep.ended_trials import release_heap

def anon_kib():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon"):
            return int(line.split()[1])

big, pins = [], []
for i in range(400):
    big.append(bytearray(100_000))  # in glibc's heap (below its mmap threshold), touched
    pins.append(bytearray(1_000))  # a live block after each: the heap's top cannot shrink
del big
freed = anon_kib()
released = release_heap()
print(freed, anon_kib(), released)
"""


def test_releasing_the_heap_hands_freed_memory_back_to_the_system():
    """40 MB freed between live blocks stay in the process until release_heap (glibc's
    malloc_trim) hands their pages back: what a driver of thousands of trials gains."""
    out = subprocess.run(
        [sys.executable, "-c", FRAGMENTED_HEAP], capture_output=True, text=True, check=True
    ).stdout.split()
    freed_kib, released_kib, released = int(out[0]), int(out[1]), out[2]
    assert released == "True"
    assert freed_kib - released_kib > 30_000


TUNE_GARBAGE = """
import gc
import te_sweep.sweep.ended_trials  # Ray Tune, imported before anything is measured
from te_sweep.sweep.run import _hand_back_tune_memory

def anon_kib():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon"):
            return int(line.split()[1])

gc.disable()  # garbage in cycles waits for a collection, as Tune's may when it ends
pins = []
for i in range(400):
    cell = [bytearray(100_000)]  # in glibc's heap (below its mmap threshold), touched
    cell.append(cell)  # a cycle: only the collector frees it
    pins.append(bytearray(1_000))  # a live block after each: the heap's top cannot shrink
del cell
garbage = anon_kib()
_hand_back_tune_memory()
print(garbage, anon_kib())
"""


def test_the_driver_hands_tunes_garbage_back_before_the_export():
    """40 MB of garbage in cycles between live blocks: only collecting it and then releasing the
    heap gives the pages back (either alone leaves them: measured 148 MB before and after),
    so the export starts from what is live, not from Tune's high-water mark."""
    out = subprocess.run(
        [sys.executable, "-c", TUNE_GARBAGE], capture_output=True, text=True, check=True
    ).stdout.split()
    garbage_kib, after_kib = int(out[0]), int(out[1])
    assert garbage_kib - after_kib > 30_000
