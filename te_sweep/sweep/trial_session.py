"""A trial's side of its exchange with Tune: checkpoint, then report; replay after a restart.

Shared by the real trainable (trainable.py) and the benchmark's stand-in (standin.py), so both
follow the same protocol:
  - after each epoch, the trainable's state, the trial's start time and every result reported
    so far go into one checkpoint file (checkpoints.py), written before the epoch's result is
    reported to Tune;
  - when a trial starts again (Tune's retry after a lost worker or node, or `te-sweep resume`
    after the driver was killed), it loads its newest checkpoint and first reports every
    saved result again, exactly as first reported. Tune only carries a trial's result.json
    over into a new driver session for trials it holds a Tune checkpoint of, and its copy on
    the storage lags the driver's by up to a sync period, so after a restart the storage may
    hold none, some or all of the earlier lines. Replaying makes it hold all of them; the
    export keeps the last report of each epoch, and a replayed report is identical to the
    first, so nothing is lost and nothing is counted twice;
  - a checkpoint that fails its integrity check is moved aside and the trial continues from
    the previous one, or from its first epoch (checkpoints.py): never retried as is. The line
    saying so goes to the worker's stderr (its log); the driver, which alone reaches the
    sweep's console, checks the same files before a resume (checkpoint_check.py).
Torch-free: the trainable passes how its payload is written and read.
"""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Callable
from typing import Any

from te_sweep.core.config import ResolvedConfig
from te_sweep.core.cpu_threads import wait_policy
from te_sweep.core.reporting import tune_result
from te_sweep.sweep.checkpoints import TrialCheckpoints

Payload = dict[str, Any]


def placement() -> dict[str, Any]:
    """Where this trial runs: Ray node id, host, the GPU ids Ray assigned, and how its CPU
    threads wait (cpu_threads.py: "" is OpenMP's default, active waiting)."""
    import ray

    return {
        "node_id": ray.get_runtime_context().get_node_id(),
        "hostname": socket.gethostname(),
        "gpu_ids": ",".join(str(g) for g in ray.get_gpu_ids()),
        "omp_wait_policy": wait_policy(),
    }


class TrialSession:
    def __init__(
        self,
        cfg: ResolvedConfig,
        role: str,
        device: str,
        load: Callable[[bytes], Payload],
        dump: Callable[[Payload], bytes],
    ) -> None:
        self.cfg, self.role, self.device = cfg, role, device
        self.where = placement()
        self._dump = dump
        self.checkpoints = TrialCheckpoints.of_current_trial()
        self.checkpoints.discard_partial()
        restored = self.checkpoints.restore(load)
        for line in restored.lines(self.checkpoints.trial_name):
            print(line, file=sys.stderr, flush=True)
        saved = restored.newest[1] if restored.newest else {}
        self.state: Any = saved.get("state")  # the trainable's own, None on a first start
        self.started_at: float = saved.get("started_at", time.time())
        self.reported: list[dict[str, Any]] = saved.get("reported", [])

    def replay(self) -> None:
        """Report every result of the restored checkpoint again (see the module docstring)."""
        from ray import tune

        for result in self.reported:
            tune.report(dict(result))

    def end_epoch(
        self, epoch: int, records: list[dict[str, Any]], state: Any, start_value: float | None
    ) -> None:
        """Checkpoint the state after `epoch`, then report the epoch's result to Tune
        (`start_value`: the target metric before training, outcome.py)."""
        from ray import tune

        result = tune_result(
            self.cfg, records, self.role, self.where, self.device, self.started_at, start_value
        )
        self.reported.append(result)
        self.checkpoints.save(
            epoch,
            self._dump({"state": state, "started_at": self.started_at, "reported": self.reported}),
        )
        tune.report(dict(result))
