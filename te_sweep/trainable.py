"""The Ray Tune trainable: one sweep trial = one `run_trial`, reported to Tune every epoch.

This is the only place the training core meets Ray. After every epoch it calls
`ray.tune.report` with the epoch's record, the trial's running status and objectives, where it
runs (node, GPU ids, device), and a checkpoint of the whole Trainer state (model, optimiser,
TE feedback state, RNG states, records). When Tune restarts a trial after a worker failure,
or `te-sweep resume` restores a killed sweep, training continues from the last checkpoint
with the same results as an uninterrupted run.

The config Tune passes is {"trial": TrialConfig as a dict, "role": "te" | "baseline",
"threads": torch threads}; the searcher (searcher.py) builds it.
"""

from __future__ import annotations

import socket
import tempfile
from pathlib import Path
from typing import Any

import torch

from te_sweep.config import TrialConfig, resolve
from te_sweep.objectives import censored_score, te_overhead
from te_sweep.train import Trainer, device_name, run_trial, summarize, trial_status

CHECKPOINT_FILE = "trainer.pt"
RUNNING = "running"


def placement() -> dict[str, Any]:
    """Where this trial runs: Ray node id, host, the GPU ids Ray assigned."""
    import ray

    return {
        "node_id": ray.get_runtime_context().get_node_id(),
        "hostname": socket.gethostname(),
        "gpu_ids": ",".join(str(g) for g in ray.get_gpu_ids()),
    }


def tune_result(cfg: TrialConfig, trainer: Trainer, role: str,
                where: dict[str, Any]) -> dict[str, Any]:
    """The dict reported to Tune after an epoch: the record plus the trial's running state."""
    records = trainer.records
    status = trial_status(cfg, records) or RUNNING
    outcome = summarize(status, records, device_name(trainer.device))
    return {
        **records[-1],
        "role": role,
        "trial_status": status,
        "epochs_to_target": outcome.epochs_to_target,
        "seconds_to_target": outcome.seconds_to_target,
        "objective_epochs": censored_score(outcome.epochs_to_target, cfg.max_epochs),
        "te_overhead": te_overhead(records),
        "device_name": outcome.device,
        **where,
    }


def train_function(config: dict[str, Any]) -> None:
    """Tune entry point (a plain function of config, reporting once per epoch)."""
    from ray import tune

    torch.set_num_threads(max(1, int(config.get("threads", 1))))
    cfg = resolve(TrialConfig.from_dict(config["trial"]))
    role = config["role"]
    where = placement()
    state = None
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            state = torch.load(Path(directory) / CHECKPOINT_FILE, weights_only=False,  # ours
                               map_location="cpu")  # RNG states must stay on the CPU

    def report(trainer: Trainer) -> None:
        with tempfile.TemporaryDirectory() as directory:
            torch.save(trainer.state_dict(), Path(directory) / CHECKPOINT_FILE)
            tune.report(tune_result(cfg, trainer, role, where),
                        checkpoint=tune.Checkpoint.from_directory(directory))

    run_trial(cfg, lambda record: None, trainer_state=state, on_epoch_end=report)
