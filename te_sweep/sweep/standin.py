"""A stand-in trainable that trains nothing: the sweep's driver path at scale, without torch.

The scale benchmark (bench/sweep_scale.py) and the scale tests run thousands of trials through
the real driver (space file, searcher, scheduler, live view, checkpoint policy, export) on a
2-core machine. A real trial would measure training, not the driver. The stand-in waits
`epoch_seconds` per epoch, then reports exactly what the real trainable reports
(reporting.tune_result over records with every metric of metrics.EPOCH_METRICS) and saves a
checkpoint of `checkpoint_bytes` through the same TrialSession, resuming from it the same
way. Its accuracy rises to a plateau at a rate that depend on the seed only, so a TE run and the
baseline of its seed are identical unless `te_effect` plants a real effect (TE runs' accuracy
rises that much faster); its TE overhead depends on the pairs and the window, so Optuna has a
front to find, and some trials reach the target while others are censored. It imports neither
torch nor the training code, so each of dozens of Ray workers stays small.
"""

from __future__ import annotations

import math
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from te_sweep.core.config import ResolvedConfig, TrialConfig, resolve
from te_sweep.core.metrics import clean_record
from te_sweep.core.outcome import trial_status
from te_sweep.core.reporting import Role
from te_sweep.sweep.trial_session import TrialSession

PAYLOAD_BYTES = 4096  # about what the records and reports add to the padding (epochs <= 3)
START_ACCURACY = 0.1  # an untrained 10-class network


class StandInFailure(RuntimeError):
    """The failure a test asked the stand-in for."""


@dataclass(frozen=True)
class StandIn:
    epoch_seconds: float = 0.5  # wall time each epoch waits
    checkpoint_bytes: int = 1 << 20  # size of each checkpoint file
    fail_while: str | None = None  # tests: TE trials fail after epoch 1 while this file exists
    te_effect: float = 0.0  # TE runs' accuracy rises this much faster (0.2: 20% faster)

    def trainable(self) -> Callable[[dict[str, Any]], None]:
        """A Tune function trainable with these settings (pickled by value with its closure)."""
        settings = self

        def standin_function(config: dict[str, Any]) -> None:
            run_standin(config, settings)

        return standin_function


def _seed_unit(seed: int) -> float:
    """A number in [0, 1) from the trial seed: seeds differ, as real seeds do."""
    return ((seed * 2654435761) % 2**32) / 2**32


def fake_record(
    cfg: ResolvedConfig, epoch: int, epoch_s: float, te_effect: float
) -> dict[str, Any]:
    """A plausible epoch record: accuracy rising to a seed-dependent plateau; a TE run rises
    `te_effect` faster. TE overhead and TE values as the real feedback's have them."""
    u = _seed_unit(cfg.seed)
    plateau = 0.76 + 0.04 * u
    rate = 0.6 * (1 + 0.1 * (u - 0.5)) * (1 + (te_effect if cfg.feedback_on else 0.0))
    accuracy = plateau * (1 - math.exp(-rate * epoch))
    te_share = (
        0.01 + 0.04 * cfg.pair_fraction * math.sqrt(500 / cfg.window) if cfg.feedback_on else 0.0
    )
    bias_bits = 1 / ((cfg.window - 1) * math.log(2))  # what the plug-in TE mostly is
    return clean_record(
        {
            "epoch": epoch,
            "train_loss": 2.3 * (1 - accuracy),
            "train_acc": accuracy,
            "test_acc": accuracy - 0.01,
            "test_loss": 2.3 * (1.01 - accuracy),
            "epoch_time_s": epoch_s,
            "te_time_s": te_share * epoch_s,
            "te_active_fraction": 1.0 if cfg.feedback_on else 0.0,
            "te_mean": bias_bits if cfg.feedback_on else None,
            "te_factor_mean": max(0.0, 1 - cfg.te_scale * bias_bits * cfg.pair_fraction)
            if cfg.feedback_on and cfg.mode == "grad"
            else None,
            "lr": cfg.lr,
            "eval_time_s": 0.0,
            "elapsed_s": epoch * epoch_s,
        }
    )


def run_standin(config: dict[str, Any], settings: StandIn) -> None:
    """The stand-in's trial: the real trainable's protocol, with waiting instead of training."""
    cfg = resolve(TrialConfig.from_dict(config["trial"]))
    session = TrialSession(cfg, config["role"], "cpu", pickle.loads, pickle.dumps)
    records: list[dict[str, Any]] = session.state["records"] if session.state else []
    padding = bytes(max(0, settings.checkpoint_bytes - PAYLOAD_BYTES))
    session.replay()
    while trial_status(cfg, records) is None:
        if (
            settings.fail_while
            and records
            and config["role"] == Role.TE
            and Path(settings.fail_while).exists()
        ):
            raise StandInFailure(f"{settings.fail_while} exists")
        time.sleep(settings.epoch_seconds)
        epoch = len(records) + 1
        records.append(fake_record(cfg, epoch, settings.epoch_seconds, settings.te_effect))
        session.end_epoch(
            epoch, records, {"records": records, "padding": padding}, start_value=START_ACCURACY
        )
