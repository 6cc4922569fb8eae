"""Transfer-entropy feedback into training: the method of the paper, made cheap.

A TEFeedback is attached to one trial. Each training step it
  1. `observe(z, logits)` after the forward pass: binarises this batch's activations and
     writes them into ring buffers on the device holding the most recent `window` samples
     (one row per training sample, in loader order: that order is the TE's time axis);
  2. every `te_every` steps once the window is full, recomputes the TE of the sampled pairs
     with one batched estimate (te.transfer_entropy_all_pairs);
  3. `apply(last_fc)` after backward, before the optimiser step, feeds the latest TE back, at
     every step whatever `te_every` is (it sets how fresh the TE is, not how strong the
     feedback is):
     - mode "grad" (default): pairs (unit i of the penultimate FC layer -> logit j); the
       weight gradient of each sampled pair is multiplied by (1 - s * TE_ij), clipped at 0:
       the feedforward paper's dw = -lr (1 - te) dE/dw;
     - mode "paper": the authors' published code; pairs (logit i -> softmax output j),
       T = s * max(0, TE_prev - TE_now) / te_every (a drop below 1e-8 counts as none)
       clipped to [0, 1], and at every step the last layer's weights become W <- (I - T)^T W.
       With te_every 1 this is the authors' code (TE recomputed and applied every batch);
       with te_every k the drop over the k steps is spread evenly over the next k steps, so
       over k steps the weights are mixed by about the same T as with te_every 1, and in both
       modes te_every says only how often the TE is re-estimated.
The hidden layer's series (grad mode's sources) are binarised two-sided, |pre-activation| >=
threshold, as the authors' code binarises logits; `hidden_rule: one_sided` takes the unit's
post-ReLU output >= threshold instead, so a silent (strongly negative) unit counts 0. The
published code feeds back logits -> softmax only (paper mode): logits two-sided (|z| >= 1),
softmax outputs one-sided (p >= 0.9).
The TE is the plug-in estimate (te_estimator "plugin", the paper's) or the effective TE
("effective"): the plug-in TE minus the plug-in TE of the same window with the source's
samples shuffled in time (Marschinski & Kantz 2002). Consecutive samples are independent
shuffled images, so the plug-in TE here is mostly the estimator's upward bias, about
1/((W-1) ln 2) bits; the shuffled source has the same marginals and no transfer, so the
difference averages 0 without transfer and keeps a real one (bench/te_bias.py measures it). It
can be negative; a grad-mode factor 1 - s * TE above 1 then raises that gradient a little, and
without transfer the factors average 1 instead of cutting the last layer's step.
Nothing here reads a tensor value on the host: the step loop stays free of syncs, and the
per-epoch statistics are device accumulators read once by `epoch_stats`.
With te_scale 0 no TEFeedback exists at all (the baseline has no cost).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from te_sweep.config import TrialConfig
from te_sweep.errors import ConfigError
from te_sweep.te import (
    binarize_abs,
    binarize_prob,
    effective_transfer_entropy,
    transfer_entropy_all_pairs,
)
from te_sweep.timing import DeviceTimer

TE_DROP_FLOOR = 1e-8  # paper mode: TE drops below this count as no drop (authors' code)
PAIR_SEED_SALT = 0x7E5EED  # keeps the pair draw's stream apart from the weights' stream
SHUFFLE_SEED_SALT = 0x5AFF1E  # and the effective TE's shuffles apart from both


def grad_factor(te: Tensor, scale: float) -> Tensor:
    """Grad mode's factor on the last layer's weight gradient, (n_target, n_source) like the
    weight: 1 - s * TE, clipped at 0 so that a strong TE stops a weight's step but never
    reverses it."""
    return (1 - scale * te).clamp_(min=0).T.contiguous()


def paper_mixing(te_prev: Tensor, te: Tensor, scale: float, te_every: int,
                 mask: Tensor) -> Tensor:
    """Paper mode's T: s * (TE_prev - TE_now) / te_every where the TE dropped by at least
    TE_DROP_FLOOR (smaller drops and rises count as none), clipped to [0, 1], and 0 outside
    the sampled pairs."""
    drop = te_prev - te
    drop = torch.where(drop < TE_DROP_FLOOR, 0.0, drop)
    return (scale * drop / te_every).clamp_(0, 1) * mask


class RingBuffer:
    """The most recent `window` rows of a (time, units) bool series, on the device."""

    def __init__(self, window: int, units: int, device: torch.device) -> None:
        self.data = torch.zeros(window, units, dtype=torch.bool, device=device)
        self.window = window
        self.pos = 0  # next row to write; host int, so no sync to track it
        self.filled = 0

    def push(self, rows: Tensor) -> None:
        """Append rows (B, units); only the last `window` of them are kept when B > window."""
        rows = rows[-self.window:]
        n = rows.shape[0]
        first = min(n, self.window - self.pos)
        self.data[self.pos:self.pos + first] = rows[:first]
        self.data[:n - first] = rows[first:]
        self.pos = (self.pos + n) % self.window
        self.filled = min(self.window, self.filled + n)

    @property
    def full(self) -> bool:
        return self.filled == self.window

    def ordered(self) -> Tensor:
        """(window, units), oldest row first, so the wrap point is not taken as a transition."""
        return torch.cat((self.data[self.pos:], self.data[:self.pos]))


class TEFeedback:
    def __init__(self, cfg: TrialConfig, model: nn.Module, num_classes: int,
                 device: torch.device) -> None:
        assert cfg.window is not None, "resolve() the config first"
        self.cfg = cfg
        if cfg.mode == "grad":
            if getattr(model, "penultimate_fc", None) is None:
                raise ConfigError("mode", "'grad' needs a model with at least two fully "
                                  f"connected layers and preset {cfg.preset!r} has one; "
                                  "use mode 'paper' or a two-FC preset (fashion-mnist, usps)")
            n_source = model.penultimate_fc.out_features
        else:
            n_source = num_classes
        self.source = RingBuffer(cfg.window, n_source, device)
        self.target = RingBuffer(cfg.window, num_classes, device)
        self.generator = torch.Generator().manual_seed(cfg.seed ^ PAIR_SEED_SALT)
        self.mask = self._draw_pairs(n_source, num_classes).to(device)  # (n_source, n_target)
        self.shuffles = (torch.Generator(device=device).manual_seed(cfg.seed ^ SHUFFLE_SEED_SALT)
                         if cfg.te_estimator == "effective" else None)
        self.factor: Tensor | None = None  # grad mode: (n_target, n_source) gradient factor
        self.factor_mean: Tensor | None = None  # grad mode: its mean over the weights
        self.factor_active = self._zero_bool(device)  # grad mode: does the factor change anything
        self.te_prev: Tensor | None = None  # paper mode: last TE, for the drop
        self.pending: Tensor | None = None  # paper mode: T, applied at every step
        self.steps = 0
        self.timer = DeviceTimer(device)
        self._zero = torch.zeros((), device=device)
        self._reset_stats()

    @staticmethod
    def _zero_bool(device: torch.device) -> Tensor:
        return torch.zeros((), dtype=torch.bool, device=device)

    def _draw_pairs(self, n_source: int, n_target: int) -> Tensor:
        n_pairs = n_source * n_target
        k = max(1, round(self.cfg.pair_fraction * n_pairs))
        mask = torch.zeros(n_pairs, dtype=torch.bool)
        mask[torch.randperm(n_pairs, generator=self.generator)[:k]] = True
        return mask.view(n_source, n_target)

    def _reset_stats(self) -> None:
        self.active_steps = self._zero.clone()
        self.factor_sum = self._zero.clone()  # grad mode: the steps' mean factors, summed
        self.te_sum = self._zero.clone()
        self.te_count = 0
        self.epoch_steps = 0

    def start_epoch(self, epoch: int) -> None:
        if self.cfg.redraw_pairs and epoch > 0:
            self.mask = self._draw_pairs(*self.mask.shape).to(self.mask.device)

    def observe(self, z: Tensor | None, logits: Tensor) -> None:
        """Record this batch (after forward); recompute the TE when due."""
        with self.timer.region():
            logits = logits.detach()
            if self.cfg.mode == "grad":
                hidden = z.detach()
                self.source.push(binarize_abs(hidden, self.cfg.threshold)
                                 if self.cfg.hidden_rule == "two_sided"
                                 else hidden >= self.cfg.threshold)
                self.target.push(binarize_abs(logits, self.cfg.threshold))
            else:
                self.source.push(binarize_abs(logits, self.cfg.threshold))
                self.target.push(binarize_prob(logits.softmax(dim=1), self.cfg.prob_threshold))
            if self.target.full and self.steps % self.cfg.te_every == 0:
                self._recompute()
            self.steps += 1
            self.epoch_steps += 1

    def _recompute(self) -> None:
        source, target = self.source.ordered(), self.target.ordered()
        te = (transfer_entropy_all_pairs(source, target) if self.shuffles is None
              else effective_transfer_entropy(source, target, self.shuffles))
        te = te * self.mask  # (n_source, n_target), 0 outside the sampled pairs
        self.te_sum += te.sum() / self.mask.sum()
        self.te_count += 1
        if self.cfg.mode == "grad":
            self.factor = grad_factor(te, self.cfg.te_scale)
            self.factor_active = (self.factor != 1).any()
            self.factor_mean = self.factor.mean()
        else:
            if self.te_prev is not None:
                self.pending = paper_mixing(self.te_prev, te, self.cfg.te_scale,
                                            self.cfg.te_every, self.mask)
                self._prepare_pending()
            self.te_prev = te

    def _prepare_pending(self) -> None:
        """(I - T)^T and whether T acts, once per recompute: apply() then launches 3 ops."""
        t = self.pending
        eye = torch.eye(t.shape[0], device=t.device, dtype=t.dtype)
        self.pending_map = (eye - t).T.contiguous()
        self.pending_active = (t > 0).any()

    def apply(self, last_fc: nn.Linear) -> None:
        """Feed the TE back (after backward, before the optimiser step)."""
        with self.timer.region():
            if self.cfg.mode == "grad":
                if self.factor is not None:
                    last_fc.weight.grad.mul_(self.factor)
                    self.active_steps += self.factor_active
                    self.factor_sum += self.factor_mean
                else:
                    self.factor_sum += 1.0  # no feedback yet: the gradient as it is
            elif self.pending is not None:  # the latest recompute's T, at every step
                with torch.no_grad():
                    last_fc.weight.copy_(self.pending_map @ last_fc.weight)
                self.active_steps += self.pending_active

    def epoch_stats(self) -> dict[str, float | None]:
        """te_time_s, te_active_fraction, te_mean, te_factor_mean of the epoch; host syncs
        once per epoch. Resets them."""
        stats = {
            "te_time_s": self.timer.read_and_reset(),
            "te_active_fraction": float(self.active_steps) / max(1, self.epoch_steps),
            "te_mean": float(self.te_sum) / self.te_count if self.te_count else None,
            "te_factor_mean": float(self.factor_sum) / max(1, self.epoch_steps)
            if self.cfg.mode == "grad" else None,
        }
        self._reset_stats()
        return stats

    def state_dict(self) -> dict[str, Any]:
        return {
            "source": (self.source.data, self.source.pos, self.source.filled),
            "target": (self.target.data, self.target.pos, self.target.filled),
            "mask": self.mask, "factor": self.factor, "te_prev": self.te_prev,
            "pending": self.pending,
            "steps": self.steps, "generator": self.generator.get_state(),
            "shuffles": self.shuffles.get_state() if self.shuffles is not None else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for buffer, (data, pos, filled) in ((self.source, state["source"]),
                                           (self.target, state["target"])):
            buffer.data.copy_(data)
            buffer.pos, buffer.filled = pos, filled
        device = self.mask.device
        self.mask = state["mask"].to(device)
        self.factor = None if state["factor"] is None else state["factor"].to(device)
        self.te_prev = None if state["te_prev"] is None else state["te_prev"].to(device)
        self.pending = None if state["pending"] is None else state["pending"].to(device)
        if self.pending is not None:
            self._prepare_pending()
        if self.factor is not None:
            self.factor_active = (self.factor != 1).any()
            self.factor_mean = self.factor.mean()
        self.steps = state["steps"]
        self.generator.set_state(state["generator"])
        if self.shuffles is not None and state.get("shuffles") is not None:
            self.shuffles.set_state(state["shuffles"])
