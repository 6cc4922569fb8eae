"""One trial of TE-modulated training, free of Ray: a config in, per-epoch records out.

`run_trial(cfg, report)` trains until the target metric reaches the target or max_epochs runs
out, calling `report(record)` after every epoch (record keys: metrics.METRIC_NAMES). The step
loop is flat: forward, TE observe, backward, TE apply, optimiser step. It never reads a tensor
value on the host; losses and accuracies accumulate on the device and are read once per epoch,
which is also when divergence (a non-finite loss) is detected.

A Trainer holds everything a checkpoint needs (model, optimiser, scheduler, TE feedback state,
RNG states, epoch, records) behind state_dict / load_state_dict, so the sweep layer can
checkpoint and resume a trial at an epoch boundary with identical results.
"""

from __future__ import annotations

import contextlib
import copy
import os
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from te_sweep.core.config import TARGET_METRICS, ResolvedConfig, resolve
from te_sweep.core.data import (
    DeviceData,
    eval_batch_size,
    eval_batches,
    load_device_data,
    train_batches,
)
from te_sweep.core.feedback import TEFeedback
from te_sweep.core.metrics import clean_record
from te_sweep.core.models import build_model
from te_sweep.core.outcome import TrialResult, summarize, trial_status
from te_sweep.core.presets import PRESETS
from te_sweep.core.timing import DeviceTimer

Report = Callable[[dict[str, Any]], None]


def resolve_device(spec: str) -> torch.device:
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(spec)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return "cpu"


class Trainer:
    """Model, optimiser, schedule and TE feedback of one trial, stepped one epoch at a time."""

    def __init__(self, cfg: ResolvedConfig, data: DeviceData, device: torch.device) -> None:
        self.cfg, self.data, self.device = cfg, data, device
        preset = PRESETS[cfg.preset]
        torch.manual_seed(cfg.seed)  # weights and dropout
        self.model = build_model(
            preset.architecture, data.in_channels, data.image_hw, data.num_classes
        ).to(device)
        activation_bytes = 4 * self.model.largest_feature_map  # float32
        self.eval_batch = eval_batch_size(activation_bytes, device)
        self.optimizer = torch.optim.SGD(
            self._parameter_groups(),
            lr=cfg.lr,
            momentum=cfg.momentum,
            weight_decay=cfg.weight_decay,
        )
        self.scheduler = (
            torch.optim.lr_scheduler.StepLR(self.optimizer, preset.lr_step_epochs, preset.lr_gamma)
            if preset.lr_step_epochs
            else None
        )
        self.feedback = (
            TEFeedback(cfg, self.model, data.num_classes, device) if cfg.feedback_on else None
        )
        self.batch_generator = torch.Generator(device=device).manual_seed(cfg.seed)
        self.timer = DeviceTimer(device)
        self.epoch = 0
        self.elapsed_s = 0.0
        self.records: list[dict[str, Any]] = []
        self.start_value: float | None = None  # the target metric before training

    def _parameter_groups(self) -> list[dict[str, Any]]:
        """One group, or two when last_lr_scale != 1: the last layer's lr is scaled (the LR
        control: a no-TE run with the step a TE run's feedback gave that layer)."""
        if self.cfg.last_lr_scale == 1.0:
            return [{"params": list(self.model.parameters())}]
        last = {id(p) for p in self.model.last_fc.parameters()}
        return [
            {"params": [p for p in self.model.parameters() if id(p) not in last]},
            {
                "params": list(self.model.last_fc.parameters()),
                "lr": self.cfg.lr * self.cfg.last_lr_scale,
            },
        ]

    def measure_start(self) -> float:
        """The target metric of the untrained model (outcome.py interpolates from it); one
        evaluation of the one split it needs. Uses no random numbers, so training after it is
        the same as without it."""
        _, self.start_value = self.evaluate(*self._split(self.cfg.target_metric))
        return self.start_value

    def train_epoch(self, evaluate: bool = True) -> dict[str, Any]:
        """One pass over the training data, then evaluation; returns the epoch's record.

        `evaluate=False` skips the evaluation (its metrics are None): for benchmarks only.
        """
        model, fb, cfg = self.model, self.feedback, self.cfg
        lr = self.optimizer.param_groups[0]["lr"]
        if fb:
            fb.start_epoch(self.epoch)
        model.train()
        loss_sum = torch.zeros((), device=self.device)
        steps = 0
        with self.timer.region():
            for x, y in train_batches(
                self.data.train_x, self.data.train_y, cfg.batch_size, self.batch_generator
            ):
                z, logits = model.forward_with_hidden(x)
                loss = F.cross_entropy(logits, y)
                if fb:
                    fb.observe(z, logits)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if fb:
                    fb.apply(model.last_fc)
                self.optimizer.step()
                loss_sum += loss.detach()
                steps += 1
        epoch_time_s = self.timer.read_and_reset()  # one sync
        te_stats = (
            fb.epoch_stats()
            if fb
            else {"te_time_s": 0.0, "te_compile_s": 0.0, "te_active_fraction": 0.0, "te_mean": None}
        )
        epoch_time_s -= te_stats["te_compile_s"] or 0.0  # a one-time cost, not the epoch's
        if self.scheduler:
            self.scheduler.step()
        self.epoch += 1
        self.elapsed_s += epoch_time_s
        record = {
            "epoch": self.epoch,
            "train_loss": float(loss_sum) / max(1, steps),
            "train_acc": None,
            "test_acc": None,
            "test_loss": None,
            "epoch_time_s": epoch_time_s,
            "lr": lr,
            "elapsed_s": self.elapsed_s,
            **te_stats,
        }
        eval_timer = DeviceTimer(self.device)
        if evaluate:
            with eval_timer.region():
                self._evaluate_splits(record)
        record = clean_record({**record, "eval_time_s": eval_timer.read_and_reset()})
        self.records.append(record)
        return record

    def _evaluate_splits(self, record: dict[str, Any]) -> None:
        """Fill the record's accuracies: the target metric's split after every epoch (it
        decides when the trial ends), the other split every `other_split_every` epochs and at
        the trial's last epoch (a split not evaluated stays None, never a stale value).

        Why: evaluation was two thirds of a `make sweep` trial, mostly the 10,000-image test
        split, whose accuracy no objective reads (issue 19). Whether this epoch is the last is
        known once the target's split is evaluated (outcome.trial_status)."""
        target = self.cfg.target_metric
        self._evaluate_split(record, target)
        if self._other_split_due(record):
            self._evaluate_split(record, next(m for m in TARGET_METRICS if m != target))

    def _split(self, metric: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The images and labels an accuracy metric (TARGET_METRICS) is measured on."""
        if metric == "train_acc":
            return self.data.train_x, self.data.train_y
        return self.data.test_x, self.data.test_y

    def _evaluate_split(self, record: dict[str, Any], metric: str) -> None:
        """The metric's accuracy into the record, and the test split's loss with it."""
        loss, record[metric] = self.evaluate(*self._split(metric))
        if metric == "test_acc":
            record["test_loss"] = loss

    def _other_split_due(self, record: dict[str, Any]) -> bool:
        """The other split is evaluated this epoch: on the schedule, or the trial ends here."""
        last = trial_status(self.cfg, [clean_record(record)]) is not None
        return last or self.epoch % self.cfg.other_split_every == 0

    @torch.inference_mode()
    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
        """(mean loss, accuracy) in eval mode; one host sync."""
        self.model.eval()
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.long)
        for xb, yb in eval_batches(x, y, self.eval_batch):
            logits = self.model(xb)
            loss_sum += F.cross_entropy(logits, yb, reduction="sum")
            correct += (logits.argmax(dim=1) == yb).sum()
        n = max(1, x.shape[0])
        return float(loss_sum) / n, int(correct) / n

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue at this epoch boundary with identical results.

        A snapshot: deep-copied, so training on does not change a state already taken.
        """
        return copy.deepcopy(
            {
                "config": self.cfg.to_dict(),
                "epoch": self.epoch,
                "elapsed_s": self.elapsed_s,
                "records": list(self.records),
                "start_value": self.start_value,
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict() if self.scheduler else None,
                "feedback": self.feedback.state_dict() if self.feedback else None,
                "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else None,
                "batch_rng": self.batch_generator.get_state(),
            }
        )

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch, self.elapsed_s = state["epoch"], state["elapsed_s"]
        self.records = list(state["records"])
        self.start_value = state.get("start_value")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler:
            self.scheduler.load_state_dict(state["scheduler"])
        if self.feedback:
            self.feedback.load_state_dict(state["feedback"])
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"] is not None:
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        self.batch_generator.set_state(state["batch_rng"])


def make_cuda_deterministic() -> None:
    """Same seed, same GPU: same result, as far as torch allows. cuDNN in deterministic mode,
    cuBLAS with a fixed workspace (CUBLAS_WORKSPACE_CONFIG, read when cuBLAS starts: set here
    before the trial's first CUDA operation), and torch's deterministic algorithms, warning
    (not failing) on an operation that has none on CUDA. Unverified on a GPU so far: no GPU
    was available where this was written (docs/train.md, "Determinism")."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True, warn_only=True)


def run_trial(
    cfg: ResolvedConfig,
    report: Report,
    *,
    data: DeviceData | None = None,
    trainer_state: dict[str, Any] | None = None,
    on_epoch_end: Callable[[Trainer], None] | None = None,
) -> TrialResult:
    """Train one trial to its target or max_epochs; `report` gets each epoch's record.

    `data` skips loading (tests, benchmarks); `trainer_state` resumes from a checkpoint;
    `on_epoch_end` lets a caller checkpoint after each epoch's report.
    """
    cfg = resolve(cfg)
    device = resolve_device(cfg.device)
    if device.type == "cuda":
        make_cuda_deterministic()
    # The trial's device is the current one throughout: events, default-device ops and the
    # allocator all go to it (cuda:1 must not time or allocate on cuda:0).
    with torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext():
        data = data or load_device_data(cfg.dataset, cfg.subset, device, cfg.data_root)
        trainer = Trainer(cfg, data, device)
        if trainer_state is not None:
            trainer.load_state_dict(trainer_state)
        else:
            trainer.measure_start()
        while (status := trial_status(cfg, trainer.records)) is None:
            report(trainer.train_epoch())
            if on_epoch_end:
                on_epoch_end(trainer)
    return summarize(cfg, status, trainer.records, device_name(device), trainer.start_value)
