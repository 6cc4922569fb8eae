"""How many trials a sweep keeps in flight (te_sweep/sweep/concurrency.py), without Ray: a local
machine's capacity, --max-concurrent, the cap at the sweep's own size and a cluster's size as
last read plus its queue."""

from __future__ import annotations

import pickle
import time

import pytest

from te_sweep.sweep.concurrency import (
    QUEUE_MAX,
    QUEUE_MIN,
    ConcurrencyPolicy,
    cluster_queue,
    trials_held,
)


def local(
    cpus: float,
    gpus: float = 0.0,
    cpus_per_trial: float = 1.0,
    gpus_per_trial: float = 0.0,
    total: int = 10_000,
) -> ConcurrencyPolicy:
    return ConcurrencyPolicy.for_sweep(
        None, {"CPU": cpus, "GPU": gpus}, cpus_per_trial, gpus_per_trial, total_trials=total
    )


def test_trials_held_is_the_scarcer_resource_rounded_down():
    assert trials_held({"CPU": 48.0}, 1.0, 0.0) == 48
    assert trials_held({"CPU": 7.0}, 2.0, 0.0) == 3
    assert trials_held({"CPU": 16.0, "GPU": 2.0}, 1.0, 0.25) == 8
    assert trials_held({"CPU": 16.0, "GPU": 2.0}, 4.0, 0.25) == 4
    assert trials_held({"CPU": 0.6}, 0.2, 0.0) == 3  # no float rounding loss
    assert trials_held({"CPU": 16.0}, 1.0, 0.5) == 0  # GPUs asked for, none there


@pytest.mark.parametrize("held", [1, 2, 48, 1000])
def test_a_local_machine_runs_what_it_holds_and_queues_nothing(held):
    policy = local(float(held))
    assert (policy.fixed, policy.limit()) == (held, held)
    assert policy.describe() == f"{held} trials at once"


def test_a_local_machine_counts_gpus_when_trials_ask_for_them():
    assert local(16.0, gpus=2.0, gpus_per_trial=0.5).limit() == 4
    assert local(2.0, gpus=4.0, gpus_per_trial=0.5).limit() == 2


def test_a_machine_too_small_for_one_trial_still_runs_one():
    assert local(1.0, cpus_per_trial=2.0).limit() == 1


def test_max_concurrent_is_exactly_what_is_in_flight_anywhere():
    for resources in ({"CPU": 48.0}, None):
        policy = ConcurrencyPolicy.for_sweep(5, resources, 1.0, 0.0, total_trials=100)
        assert policy.limit() == 5
        assert policy.describe() == "5 trials at once"


def test_never_more_in_flight_than_the_sweep_has_trials():
    assert local(48.0, total=10).limit() == 10
    assert ConcurrencyPolicy.for_sweep(50, None, 1.0, 0.0, total_trials=3).limit() == 3


def test_a_cluster_holds_its_current_size_plus_a_queue_of_as_many_between_8_and_64():
    assert [cluster_queue(h) for h in (0, 5, 8, 30, 64, 500)] == [
        QUEUE_MIN,
        QUEUE_MIN,
        8,
        30,
        QUEUE_MAX,
        QUEUE_MAX,
    ]
    policy = ConcurrencyPolicy.for_sweep(None, None, 1.0, 0.0, total_trials=10_000)
    for held, limit in ((0, 8), (16, 32), (100, 164)):
        policy._held, policy._read_at = held, time.monotonic()  # as if just read from Ray
        assert policy.limit() == limit


def test_a_pickled_policy_reads_the_cluster_again_after_a_restart():
    policy = ConcurrencyPolicy.for_sweep(None, None, 1.0, 0.0, total_trials=100)
    policy._held, policy._read_at = 16, time.monotonic()
    restored = pickle.loads(pickle.dumps(policy))
    assert restored._read_at == float("-inf") and restored._held == 16
    assert pickle.loads(pickle.dumps(local(8.0))).limit() == 8
