"""Transfer-entropy feedback into training: the method of the paper, made cheap.

A TEFeedback is attached to one trial. Each training step it
  1. `observe(z, logits)` after the forward pass: binarises this batch's activations (one
     row per training sample, in loader order: that order is the TE's time axis) and slides
     the window of the most recent `window` samples over them, updating the TE's counts of
     every pair on the device (te_window.SlidingCounts: two small matrix products a step);
  2. every `te_every` steps once the window is full, turns the counts into the TE of every
     pair (te.bits_from_counts), masked to the sampled pairs;
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

import math
from typing import Any

import torch
from torch import Tensor, nn

from te_sweep.core.config import ResolvedConfig
from te_sweep.core.te import bits_from_groups, bits_fused, count_maps
from te_sweep.core.te_compile import StepFunction, compile_wanted
from te_sweep.core.te_window import SlidingCounts, slide
from te_sweep.core.timing import DeviceTimer
from te_sweep.errors import ConfigError

TE_DROP_FLOOR = 1e-8  # paper mode: TE drops below this count as no drop (authors' code)
PAIR_SEED_SALT = 0x7E5EED  # keeps the pair draw's stream apart from the weights' stream
SHUFFLE_SEED_SALT = 0x5AFF1E  # and the effective TE's shuffles apart from both
_BELOW_DROP_FLOOR = math.nextafter(TE_DROP_FLOOR, 0.0)  # threshold() keeps x > this: x >= floor


def grad_factor(te: Tensor, scale: float) -> Tensor:
    """Grad mode's factor on the last layer's weight gradient from the TE in the weight's
    layout (n_target, n_source): 1 - s * TE, clipped at 0 so that a strong TE stops a weight's
    step but never reverses it."""
    return (1 - scale * te).clamp_(min=0)


def paper_mixing(te_prev: Tensor, te: Tensor, scale: float, te_every: int, mask: Tensor) -> Tensor:
    """Paper mode's T: s * (TE_prev - TE_now) / te_every where the TE dropped by at least
    TE_DROP_FLOOR (smaller drops and rises count as none), clipped to [0, 1], and 0 outside
    the sampled pairs."""
    drop = torch.nn.functional.threshold(te_prev - te, _BELOW_DROP_FLOOR, 0.0)
    return (drop * (scale / te_every)).clamp_(0, 1) * mask


# The TE step's tensor work, as pure functions of tensors and host numbers: run as they are, or
# compiled into a few fused kernels (te_compile.py), from the same code.
def binarise_batch(
    z: Tensor | None, logits: Tensor, thresholds: Tensor, mode: str, hidden_rule: str
) -> Tensor:
    """(B, n_source + n_target) bool: the sources' then the targets' states this batch."""
    if mode == "paper":  # logits two-sided, softmax one-sided
        values = torch.cat([logits.abs(), logits.softmax(dim=1)], dim=1)
    elif z is None:
        raise ValueError("grad mode binarises the hidden layer: z is needed")
    elif hidden_rule == "two_sided":
        values = torch.cat([z, logits], dim=1).abs()
    else:  # the post-ReLU output: a silent unit is 0
        values = torch.cat([z, logits.abs()], dim=1)
    return values >= thresholds


def observe_batch(
    store: Tensor,
    counts: Tensor,
    last: Tensor,
    z: Tensor | None,
    logits: Tensor,
    ones: Tensor,
    thresholds: Tensor,
    new_at: int,
    leave_at: int,
    leaving: int,
    n_source: int,
    mode: str,
    hidden_rule: str,
) -> Tensor:
    """Binarise a batch and slide the full window's counts over it; returns its last sample."""
    samples = binarise_batch(z, logits, thresholds, mode, hidden_rule)
    slide(
        store,
        counts,
        torch.cat([last, samples[:-1]]),
        samples,
        ones,
        new_at,
        leave_at,
        leaving,
        n_source,
    )
    return samples[-1:]


def masked_te(
    counts: Tensor,
    cell_map: Tensor,
    signs: Tensor,
    weight_mask: Tensor,
    te_sum: Tensor,
    pair_weights: Tensor,
    fused: bool = False,
) -> Tensor:
    """The sampled pairs' plug-in TE from the counts ((4 n_target, n_source + 1)); adds its
    mean over them (pair_weights: the mask over the number of pairs) to te_sum.  `fused`: the
    elementwise form, for torch.compile."""
    groups = counts.view(4, weight_mask.shape[0], counts.shape[1])
    te = bits_fused(groups, signs) if fused else bits_from_groups(groups, cell_map, signs)
    return sampled(te, weight_mask, te_sum, pair_weights)


def sampled(te: Tensor, weight_mask: Tensor, te_sum: Tensor, pair_weights: Tensor) -> Tensor:
    """The TE of the sampled pairs (0 elsewhere); adds its mean over them to te_sum."""
    te = te * weight_mask
    te_sum.add_(torch.dot(te.flatten(), pair_weights.flatten()))
    return te


def grad_update(te: Tensor, scale: float) -> tuple[Tensor, Tensor, Tensor]:
    """Grad mode's factor, whether it changes anything, and its mean."""
    factor = grad_factor(te, scale)
    return factor, (factor != 1).any(), factor.mean()


def grad_recompute(
    counts: Tensor,
    cell_map: Tensor,
    signs: Tensor,
    weight_mask: Tensor,
    te_sum: Tensor,
    pair_weights: Tensor,
    scale: float,
    fused: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    te = masked_te(counts, cell_map, signs, weight_mask, te_sum, pair_weights, fused)
    return grad_update(te, scale)


def paper_recompute(
    counts: Tensor,
    cell_map: Tensor,
    signs: Tensor,
    weight_mask: Tensor,
    te_sum: Tensor,
    pair_weights: Tensor,
    te_prev: Tensor,
    eye: Tensor,
    pending_map: Tensor,
    scale: float,
    te_every: int,
    fused: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    """Paper mode after its first recompute: (TE, T, whether T acts); I - T into pending_map."""
    te = masked_te(counts, cell_map, signs, weight_mask, te_sum, pair_weights, fused)
    pending = paper_mixing(te_prev, te, scale, te_every, weight_mask)
    return te, pending, mixing_map(eye, pending, pending_map)


def mixing_map(eye: Tensor, pending: Tensor, pending_map: Tensor) -> Tensor:
    """I - T into pending_map (the weight's layout); returns whether T acts (T >= 0: where it
    is not 0)."""
    torch.sub(eye, pending, out=pending_map)
    return pending.any()


def apply_grad(
    grad: Tensor,
    factor: Tensor,
    active: Tensor,
    factor_mean: Tensor,
    active_steps: Tensor,
    factor_sum: Tensor,
) -> None:
    grad.mul_(factor)
    active_steps.add_(active)
    factor_sum.add_(factor_mean)


def apply_paper(weight: Tensor, pending_map: Tensor, active: Tensor, active_steps: Tensor) -> None:
    weight.copy_(pending_map @ weight)
    active_steps.add_(active)


class TEFeedback:
    """The TE feedback of one trial.  TE tensors are kept in the last layer's weight layout,
    (n_target, n_source), so that feeding them back needs no transpose; `mask` is the pair
    draw in (n_source, n_target), as drawn."""

    def __init__(
        self, cfg: ResolvedConfig, model: nn.Module, num_classes: int, device: torch.device
    ) -> None:
        self.cfg = cfg
        if cfg.mode == "grad":
            penultimate = getattr(model, "penultimate_fc", None)
            if not isinstance(penultimate, nn.Linear):
                raise ConfigError(
                    "mode",
                    "'grad' needs a model with at least two fully "
                    f"connected layers and preset {cfg.preset!r} has one; "
                    "use mode 'paper' or a two-FC preset (fashion-mnist, usps)",
                )
            n_source = penultimate.out_features
        else:
            n_source = num_classes
        self.counts = SlidingCounts(cfg.window, n_source, num_classes, device)
        # Each unit's threshold, so that one comparison binarises a batch: the targets of
        # paper mode are softmax outputs, at `prob_threshold`; every other unit at `threshold`.
        target_threshold = cfg.prob_threshold if cfg.mode == "paper" else cfg.threshold
        self.thresholds = torch.tensor(
            [cfg.threshold] * n_source + [target_threshold] * num_classes, device=device
        )
        self.generator = torch.Generator().manual_seed(cfg.seed ^ PAIR_SEED_SALT)
        self._set_mask(self._draw_pairs(n_source, num_classes).to(device))
        self.shuffles = (
            torch.Generator(device=device).manual_seed(cfg.seed ^ SHUFFLE_SEED_SALT)
            if cfg.te_estimator == "effective"
            else None
        )
        self.factor: Tensor | None = None  # grad mode: (n_target, n_source) gradient factor
        self.factor_mean: Tensor | None = None  # grad mode: its mean over the weights
        self.factor_active = self._zero_bool(device)  # grad mode: does the factor change anything
        self.te_prev: Tensor | None = None  # paper mode: last TE, for the drop
        self.pending: Tensor | None = None  # paper mode: T, applied at every step
        paper = cfg.mode == "paper"  # its I and I - T, float32 as the weight
        self._eye = torch.eye(num_classes, device=device) if paper else None
        self._pending_map = torch.empty(num_classes, num_classes, device=device) if paper else None
        self._maps = count_maps(device, self.counts.length)
        self.steps = 0
        self.timer = DeviceTimer(device)
        self._zero = torch.zeros((), device=device)
        self._reset_stats()
        compiled = compile_wanted(cfg.te_compile, device)
        required = bool(cfg.te_compile)
        self._observe = StepFunction(observe_batch, compiled, required)
        # The effective TE's shuffle draws from a generator, which compiled code cannot.
        self._grad_recompute = StepFunction(
            grad_recompute, compiled and self.shuffles is None, required
        )
        self._paper_recompute = StepFunction(paper_recompute, compiled, required)
        self._apply_grad = StepFunction(apply_grad, compiled, required)
        self._apply_paper = StepFunction(apply_paper, compiled, required)
        self._step_functions = (
            self._observe,
            self._grad_recompute,
            self._paper_recompute,
            self._apply_grad,
            self._apply_paper,
        )

    @property
    def compiled(self) -> bool:
        """The step runs compiled (te_compile, and no failed compile since)."""
        return self._observe.compiled

    @staticmethod
    def _zero_bool(device: torch.device) -> Tensor:
        return torch.zeros((), dtype=torch.bool, device=device)

    def _draw_pairs(self, n_source: int, n_target: int) -> Tensor:
        n_pairs = n_source * n_target
        k = max(1, round(self.cfg.pair_fraction * n_pairs))
        mask = torch.zeros(n_pairs, dtype=torch.bool)
        mask[torch.randperm(n_pairs, generator=self.generator)[:k]] = True
        return mask.view(n_source, n_target)

    def _set_mask(self, mask: Tensor) -> None:
        """The pair draw, and what the steps use of it: the weight-layout mask as a factor,
        and as the weights of a mean over the sampled pairs (made once per draw)."""
        self.mask = mask
        self.weight_mask = mask.T.to(torch.float32).contiguous()
        self.pair_weights = self.weight_mask.double() / int(mask.sum())  # a mean over pairs

    def _reset_stats(self) -> None:
        self.active_steps = self._zero.clone()
        self.factor_sum = self._zero.clone()  # grad mode: the steps' mean factors, summed
        self.te_sum = self._zero.clone()
        self.te_count = 0
        self.epoch_steps = 0

    def start_epoch(self, epoch: int) -> None:
        if self.cfg.redraw_pairs and epoch > 0:
            self._set_mask(self._draw_pairs(*self.mask.shape).to(self.mask.device))

    def binarise(self, z: Tensor | None, logits: Tensor) -> Tensor:
        """(B, n_source + n_target) bool: the sources' then the targets' states this batch."""
        return binarise_batch(
            None if z is None else z.detach(),
            logits.detach(),
            self.thresholds,
            self.cfg.mode,
            self.cfg.hidden_rule,
        )

    def observe(self, z: Tensor | None, logits: Tensor) -> None:
        """Record this batch (after forward); recompute the TE when due."""
        with self.timer.region():
            counts, entering = self.counts, logits.shape[0]
            if counts.full and entering < counts.length:  # the steady state: one step function
                new_at, leave_at, leaving = counts.reserve(entering)
                counts.last = self._observe(
                    counts.store,
                    counts.counts,
                    counts.last,
                    None if z is None else z.detach(),
                    logits.detach(),
                    counts.ones_for(entering),
                    self.thresholds,
                    new_at,
                    leave_at,
                    leaving,
                    counts.n_source,
                    self.cfg.mode,
                    self.cfg.hidden_rule,
                )
                counts.advance(entering)
            else:  # filling the window, or a batch longer than it
                counts.push(self.binarise(z, logits))
            if counts.full and self.steps % self.cfg.te_every == 0:
                self._recompute()
            self.steps += 1
            self.epoch_steps += 1

    def _recompute(self) -> None:
        cfg, counts = self.cfg, self.counts
        self.te_count += 1
        if self.shuffles is not None:  # effective TE: the plug-in TE less the shuffled one's
            both = counts.te_with_shuffled(self.shuffles)
            te = sampled(
                both[:, : counts.n_source] - both[:, counts.n_source :],
                self.weight_mask,
                self.te_sum,
                self.pair_weights,
            )
            self.factor, self.factor_active, self.factor_mean = grad_update(te, cfg.te_scale)
        elif cfg.mode == "grad":
            self.factor, self.factor_active, self.factor_mean = self._grad_recompute(
                counts.counts,
                *self._maps,
                self.weight_mask,
                self.te_sum,
                self.pair_weights,
                cfg.te_scale,
                self._grad_recompute.compiled,
            )
        elif self.te_prev is None:  # paper mode's first TE: no drop yet
            self.te_prev = masked_te(
                counts.counts, *self._maps, self.weight_mask, self.te_sum, self.pair_weights
            )
        else:
            self.te_prev, self.pending, self.pending_active = self._paper_recompute(
                counts.counts,
                *self._maps,
                self.weight_mask,
                self.te_sum,
                self.pair_weights,
                self.te_prev,
                self._eye,
                self._pending_map,
                cfg.te_scale,
                cfg.te_every,
                self._paper_recompute.compiled,
            )
            self.pending_map = self._pending_map

    def _prepare_pending(self) -> None:
        """I - T in the weight's layout and whether T acts (a restored checkpoint's T)."""
        assert self._eye is not None and self._pending_map is not None
        assert self.pending is not None
        self.pending_active = mixing_map(self._eye, self.pending, self._pending_map)
        self.pending_map = self._pending_map

    def apply(self, last_fc: nn.Linear) -> None:
        """Feed the TE back (after backward, before the optimiser step)."""
        with self.timer.region():
            if self.cfg.mode == "grad":
                if self.factor is not None:
                    self._apply_grad(
                        last_fc.weight.grad,
                        self.factor,
                        self.factor_active,
                        self.factor_mean,
                        self.active_steps,
                        self.factor_sum,
                    )
                else:
                    self.factor_sum += 1.0  # no feedback yet: the gradient as it is
            elif self.pending is not None:  # the latest recompute's T, at every step
                self._apply_paper(
                    last_fc.weight.data, self.pending_map, self.pending_active, self.active_steps
                )

    def epoch_stats(self) -> dict[str, float | None]:
        """te_time_s, te_compile_s, te_active_fraction, te_mean, te_factor_mean of the epoch;
        host syncs once per epoch. Resets them. te_time_s leaves out te_compile_s, the seconds
        the step's calls spent compiling (te_compile.py), which its timer also saw."""
        compile_s = sum(f.take_compile_seconds() for f in self._step_functions)
        stats = {
            "te_time_s": max(0.0, self.timer.read_and_reset() - compile_s),
            "te_compile_s": compile_s,
            "te_active_fraction": float(self.active_steps) / max(1, self.epoch_steps),
            "te_mean": float(self.te_sum) / self.te_count if self.te_count else None,
            "te_factor_mean": float(self.factor_sum) / max(1, self.epoch_steps)
            if self.cfg.mode == "grad"
            else None,
        }
        self._reset_stats()
        return stats

    def state_dict(self) -> dict[str, Any]:
        return {
            "counts": self.counts.state_dict(),
            "mask": self.mask,
            "factor": self.factor,
            "te_prev": self.te_prev,
            "pending": self.pending,
            "steps": self.steps,
            "generator": self.generator.get_state(),
            "shuffles": self.shuffles.get_state() if self.shuffles is not None else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        device = self.mask.device
        self._set_mask(state["mask"].to(device))
        te_prev, pending = state["te_prev"], state["pending"]
        if "counts" in state:
            self.counts.load_state_dict(state["counts"])
        else:  # a checkpoint of te-sweep before SlidingCounts: its sample rings, TE transposed
            self.counts.push(_samples_of_rings(state["source"], state["target"]).to(device))
            te_prev = None if te_prev is None else te_prev.T.contiguous()
            pending = None if pending is None else pending.T.contiguous()
        self.factor = None if state["factor"] is None else state["factor"].to(device)
        self.te_prev = None if te_prev is None else te_prev.to(device)
        self.pending = None if pending is None else pending.to(device)
        if self.pending is not None:
            self._prepare_pending()
        if self.factor is not None:
            self.factor_active = (self.factor != 1).any()
            self.factor_mean = self.factor.mean()
        self.steps = state["steps"]
        self.generator.set_state(state["generator"])
        if self.shuffles is not None and state.get("shuffles") is not None:
            self.shuffles.set_state(state["shuffles"])


def _samples_of_rings(*rings: tuple[Tensor, int, int]) -> Tensor:
    """The samples that older checkpoints' ring buffers held, (data, next row, rows filled)
    each, oldest first, sources' then targets' columns."""
    series = []
    for data, pos, filled in rings:
        ordered = torch.cat([data[pos:], data[:pos]])
        series.append(ordered[len(ordered) - filled :])
    return torch.cat(series, dim=1)
