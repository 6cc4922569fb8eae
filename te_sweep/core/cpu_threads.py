"""How te-sweep's processes wait for torch's CPU threads: passively, unless the user chose.

Why: OpenMP's default (active) waiting makes each of torch's worker threads spin for a while
after every parallel region. On a machine with a busy neighbour (a second trial, a test run,
a colleague's job) the spinning threads and the neighbour take turns on the cores, and every op
becomes 20-40x slower: on this project's 2-core machine, with two torch threads and one busy
process beside it, the TE estimate on 10,000 pairs took 259 ms instead of 13 ms (issue 19).
OMP_WAIT_POLICY=PASSIVE makes idle threads sleep instead. OpenMP reads it once, when torch
loads its runtime, so it must be in the environment before `import torch`: the CLI sets it
first thing, a private local Ray's processes inherit it from the driver, and on a cluster it
goes to the workers in the job's runtime environment. A value the user set is kept.
"""

from __future__ import annotations

import os
import sys

OMP_WAIT_POLICY = "OMP_WAIT_POLICY"
PASSIVE = "PASSIVE"


def prefer_passive_waiting() -> bool:
    """Set OMP_WAIT_POLICY=PASSIVE in this process's environment unless it is set already;
    False when torch was imported before (too late for this process; its children still
    inherit the setting)."""
    os.environ.setdefault(OMP_WAIT_POLICY, PASSIVE)
    return "torch" not in sys.modules


def worker_env() -> dict[str, str]:
    """The environment variables trials get on a cluster (Ray's runtime_env env_vars)."""
    return {OMP_WAIT_POLICY: os.environ.get(OMP_WAIT_POLICY, PASSIVE)}


def wait_policy() -> str:
    """This process's OMP_WAIT_POLICY as a trial records it ("" when unset: OpenMP's default,
    active waiting)."""
    return os.environ.get(OMP_WAIT_POLICY, "")
