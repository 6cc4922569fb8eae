"""How many trials a sweep keeps in flight (running, or queued waiting for resources).

Three cases, decided again at every suggestion (the searcher asks `limit()`):
  - `--max-concurrent N`: exactly N, anywhere. On a cluster, trials beyond what it holds
    wait in Ray's queue, which is the demand an autoscaler acts on.
  - a private local Ray: what the machine holds (CPUs / cpus_per_trial, GPUs /
    gpus_per_trial). A machine does not grow, and a queued trial there is only a suggestion
    made with less information. (Measured: a queue of 6 beyond 48 at once changed nothing
    for Tune's reuse of finished trials' workers, bench/sweep_scale.py --max-concurrent,
    300 stand-in trials of 27 s: each freed slot idle 0.06 s without it, 0.08 s with it.)
  - a cluster without --max-concurrent: what the cluster holds right now plus a queue of as
    many again (at least QUEUE_MIN, at most QUEUE_MAX), re-read every REFRESH_S seconds. On a
    cluster that grows, the limit grows with it and new nodes get trials as they join; the
    queue is what makes an autoscaler add nodes, roughly doubling the cluster per round of
    node starts until its max_workers, without asking Optuna for hundreds of configurations
    ahead of any result. Reading the cluster's size at launch only (a head with 0 CPUs and
    no workers yet: 1 trial at a time, forever) is the mistake this replaces.
Tune itself lets a searcher have only one trial pending at a time unless told otherwise
(TUNE_MAX_PENDING_TRIALS_PG); launch.py raises that bound to MAX_PENDING, and this policy is
what limits the sweep.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

QUEUE_MIN = 8  # trials queued beyond a cluster's current size, at least ...
QUEUE_MAX = 64  # ... and at most (each is a pending placement group in Ray)
REFRESH_S = 5.0  # how often a cluster's size is re-read (one GCS call)
MAX_PENDING = 1024  # Tune's own bound on pending trials; the policy stays below it


def trials_held(resources: dict[str, float], cpus_per_trial: float, gpus_per_trial: float) -> int:
    """How many trials `resources` (Ray's totals) hold at once; 0 when none fits."""
    by_cpu = math.floor(resources.get("CPU", 0.0) / cpus_per_trial + 1e-9)
    if gpus_per_trial <= 0:
        return by_cpu
    return min(by_cpu, math.floor(resources.get("GPU", 0.0) / gpus_per_trial + 1e-9))


def cluster_queue(held: int) -> int:
    """Trials to keep queued on a cluster that holds `held` now."""
    return min(QUEUE_MAX, max(QUEUE_MIN, held))


@dataclass
class ConcurrencyPolicy:
    cpus_per_trial: float
    gpus_per_trial: float
    fixed: int | None = None  # --max-concurrent, or a local machine's capacity
    total_trials: int | None = None  # never more in flight than the sweep has trials
    _held: int = field(default=0, repr=False)
    _read_at: float = field(default=float("-inf"), repr=False)

    @classmethod
    def for_sweep(
        cls,
        max_concurrent: int | None,
        local_resources: dict[str, float] | None,
        cpus_per_trial: float,
        gpus_per_trial: float,
        total_trials: int,
    ) -> ConcurrencyPolicy:
        """The policy of a sweep on a local Ray declaring `local_resources`, or on a cluster
        (`local_resources` None: its size is read from Ray while the sweep runs)."""
        policy = cls(cpus_per_trial, gpus_per_trial, max_concurrent, total_trials)
        if max_concurrent is None and local_resources is not None:
            policy.fixed = max(1, trials_held(local_resources, cpus_per_trial, gpus_per_trial))
        return policy

    def held(self) -> int:
        """Trials the cluster (or machine) holds now, re-read at most every REFRESH_S."""
        now = time.monotonic()
        if now - self._read_at >= REFRESH_S:
            import ray

            # ray.cluster_resources is unannotated in ray's source (no stubs)
            resources = ray.cluster_resources()
            self._held = trials_held(resources, self.cpus_per_trial, self.gpus_per_trial)
            self._read_at = now
        return self._held

    def limit(self) -> int:
        """Trials allowed in flight now (at least 1)."""
        if self.fixed is not None:
            limit = self.fixed
        else:
            held = self.held()
            limit = held + cluster_queue(held)
        return max(1, min(limit, self.total_trials or limit))

    def expected_in_flight(self) -> int:
        """A guess for samplers that adapt to parallelism (the limit at launch)."""
        return self.limit()

    def describe(self) -> str:
        """One phrase for the launch line."""
        if self.fixed is not None:
            return f"{self.fixed} trials at once"
        return (
            f"as many trials as the cluster holds (now {self.held()}) plus a queue of "
            f"{cluster_queue(self.held())} for the autoscaler"
        )

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_read_at"] = float("-inf")  # monotonic clocks do not survive a restart
        return state
