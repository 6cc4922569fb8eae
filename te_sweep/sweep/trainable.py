"""The Ray Tune trainable: one sweep trial = one `run_trial`, reported to Tune every epoch.

This is the only place the training core meets Ray. After every epoch the trial's
TrialSession (trial_session.py) checkpoints the whole Trainer (model, optimiser, TE feedback
state, RNG states, records) into the trial's directory on the sweep's storage, then reports the
epoch's record, the trial's running status and objectives and where it runs (reporting.py).
When the trial starts again (Tune retrying it after a worker or node failure, or `te-sweep
resume` after the driver was killed) it replays its reports and continues from its newest
checkpoint with the same results as an uninterrupted run.

The config Tune passes is {"trial": TrialConfig as a dict, "role": Role.TE | Role.BASELINE,
"threads": torch threads}; the searcher (searcher.py) builds it.
"""

from __future__ import annotations

import io
from typing import Any

import torch

from te_sweep.core.config import TrialConfig, resolve
from te_sweep.core.train import Trainer, device_name, resolve_device, run_trial
from te_sweep.sweep.trial_session import TrialSession


def _load(payload: bytes) -> dict[str, Any]:
    # Our own file, written by _dump below; RNG states must stay on the CPU.
    state: dict[str, Any] = torch.load(io.BytesIO(payload), weights_only=False, map_location="cpu")
    return state


def _dump(state: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def train_function(config: dict[str, Any]) -> None:
    """Tune entry point (a plain function of config, reporting once per epoch)."""
    torch.set_num_threads(max(1, int(config.get("threads", 1))))
    cfg = resolve(TrialConfig.from_dict(config["trial"]))
    session = TrialSession(
        cfg, config["role"], device_name(resolve_device(cfg.device)), _load, _dump
    )

    def end_epoch(trainer: Trainer) -> None:
        # Whether the TE step ran compiled (a failed compile falls back to eager).
        session.where["te_compiled"] = trainer.feedback.compiled if trainer.feedback else None
        session.end_epoch(trainer.epoch, trainer.records, trainer.state_dict(), trainer.start_value)

    session.replay()
    run_trial(cfg, lambda record: None, trainer_state=session.state, on_epoch_end=end_epoch)
