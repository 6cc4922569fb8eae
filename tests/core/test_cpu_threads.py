"""The thread environment of te-sweep's processes (cpu_threads.py): OpenMP waits passively
unless the user chose, set before torch loads. Trials' own records are checked by the sweep
tests (test_sweep.py: a local Ray inherits it; test_sweep_faults.py: a cluster's workers get
the user's value through the job's runtime environment)."""

from __future__ import annotations

import os
import subprocess
import sys

from te_sweep.core.cpu_threads import OMP_WAIT_POLICY, prefer_passive_waiting, worker_env

# Run in a fresh interpreter: this test process imported torch long ago.
FRESH_CLI = """
import os, sys
from te_sweep.cli import main
sys.argv = ["te-sweep", "export", "--help"]
try:
    main()
except SystemExit:
    pass
print("torch loaded:", "torch" in sys.modules, "policy:", os.environ.get("OMP_WAIT_POLICY"))
"""


def fresh_cli(env_policy: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != OMP_WAIT_POLICY}
    if env_policy is not None:
        env[OMP_WAIT_POLICY] = env_policy
    done = subprocess.run(
        [sys.executable, "-c", FRESH_CLI],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


def test_the_cli_sets_passive_waiting_before_torch_loads():
    assert fresh_cli(None) == "torch loaded: False policy: PASSIVE"


def test_the_cli_keeps_a_policy_the_user_set():
    assert fresh_cli("ACTIVE") == "torch loaded: False policy: ACTIVE"


def test_a_late_call_says_torch_was_loaded_and_still_sets_it_for_children(monkeypatch):
    monkeypatch.setenv(OMP_WAIT_POLICY, "restored after the test")
    monkeypatch.delenv(OMP_WAIT_POLICY)
    assert prefer_passive_waiting() is False  # torch is loaded in this process
    assert os.environ[OMP_WAIT_POLICY] == "PASSIVE"


def test_cluster_workers_get_the_users_value_or_passive(monkeypatch):
    monkeypatch.setenv(OMP_WAIT_POLICY, "ACTIVE")
    assert worker_env() == {OMP_WAIT_POLICY: "ACTIVE"}
    monkeypatch.delenv(OMP_WAIT_POLICY)
    assert worker_env() == {OMP_WAIT_POLICY: "PASSIVE"}
