"""The TE step's cost in kernels: compute ops dispatched per training step with the feedback on
and off, and what torch.compile makes of the step's two halves.

On a GPU each compute op is a kernel launch of several microseconds, and a training step of
the fashion-mnist CNN at batch 100 is itself a few dozen launches, so ops per step predict the
TE's overhead there better than CPU time does. Counted with TorchDispatchMode over real
training epochs (fashion-mnist preset, batch 100, `--subset` images, no evaluation), views
(metadata only) not counted. Then the two halves of the TE step -- sliding the counts over a
batch, and turning the counts into the feedback -- compiled with torch.compile (inductor),
with the kernels it generated, its compile time and the CPU time per call against eager, all
measured in this one run. Prints the machine and its CPU capability.

    .venv/bin/python bench/te_step.py [--subset N] [--no-compile]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch
from machine import machine_line
from torch.utils._python_dispatch import TorchDispatchMode

import te_sweep
from te_sweep.config import TrialConfig, resolve
from te_sweep.data import load_device_data
from te_sweep.train import Trainer

VIEW_OPS = {"slice", "view", "detach", "unbind", "permute", "transpose", "t", "expand",
            "select", "alias", "_unsafe_view", "unsqueeze", "squeeze", "split", "chunk",
            "split_with_sizes", "lift_fresh", "squeeze_", "unsqueeze_"}
TARGET_EXTRA = 0.10  # the TE step adds at most this share to a training step's kernels
CONFIGS = {
    "baseline (te_scale 0)": dict(te_scale=0.0),
    "grad  W 500  te_every 1": dict(mode="grad", window=500),
    "grad  W 4096 te_every 1": dict(mode="grad", window=4096),
    "grad  W 500  effective": dict(mode="grad", window=500, te_estimator="effective"),
    "paper W 500  te_every 1": dict(mode="paper", window=500),
    "grad  W 500  te_every 10": dict(mode="grad", window=500, te_every=10),
}


class CountOps(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.ops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket.__name__ not in VIEW_OPS:
            self.ops += 1
        return func(*args, **(kwargs or {}))


def ops_per_step(base: TrialConfig, data, changes: dict) -> tuple[float, float]:
    """(compute ops per training step, TE share of the epoch's time) over one epoch after a
    warm-up epoch (the window full)."""
    trainer = Trainer(resolve(base.replace(**changes)), data, torch.device("cpu"))
    trainer.train_epoch(evaluate=False)
    steps = -(-data.train_x.shape[0] // trainer.cfg.batch_size)
    with CountOps() as counter:
        record = trainer.train_epoch(evaluate=False)
    return counter.ops / steps, record["te_time_s"] / record["epoch_time_s"]


def best_seconds(fn, repeats: int = 30) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def compiled_halves(window: int = 500, batch: int = 100, n_source: int = 120,
                    n_target: int = 10) -> list[tuple[str, int, float, float, float]]:
    """(half, kernels inductor generated, compile s, eager ms, compiled ms) for the TE step's
    two halves at the paper's window and batch, grad mode."""
    import warnings

    from torch._inductor import metrics

    from te_sweep.feedback import grad_factor
    from te_sweep.te import bits_from_counts

    warnings.filterwarnings("ignore", message=".*lru_cache.*")  # _maps: a constant per call
    generator = torch.Generator().manual_seed(0)
    width = n_source + 1 + 4 * n_target
    ring = (torch.rand(window - 1, width, generator=generator) < 0.5).double()
    counts = ring[:, n_source + 1:].T @ ring[:, :n_source + 1]
    before = torch.rand(batch, n_source + n_target, generator=generator) < 0.5
    after = torch.rand(batch, n_source + n_target, generator=generator) < 0.5
    ones = torch.ones(batch, 1 + n_target, dtype=torch.bool)
    mask = (torch.rand(n_target, n_source, generator=generator) < 0.5).float()

    def slide(counts: torch.Tensor, block: torch.Tensor) -> None:
        counts.addmm_(block[:, n_source + 1:].T, block[:, :n_source + 1], alpha=-1)
        x, x_next = before[:, n_source:], after[:, n_source:]
        torch.cat([before[:, :n_source], ones, x_next, x, x_next & x], dim=1, out=block)
        counts.addmm_(block[:, n_source + 1:].T, block[:, :n_source + 1])

    def feedback(counts: torch.Tensor) -> tuple[torch.Tensor, ...]:
        te = bits_from_counts(counts.view(4, n_target, n_source + 1), window - 1) * mask
        factor = grad_factor(te, 1.0)
        return te.sum(), factor, (factor != 1).any(), factor.mean()

    rows = []
    for name, fn, args in (("slide the counts over a batch", slide,
                            (counts.clone(), ring[:batch].clone())),
                           ("counts -> TE -> gradient factor", feedback, (counts.clone(),))):
        eager_s = best_seconds(lambda fn=fn, args=args: fn(*args))
        torch._dynamo.reset()
        metrics.reset()
        compiled = torch.compile(fn, dynamic=False)
        start = time.perf_counter()
        compiled(*args)
        compile_s = time.perf_counter() - start
        kernels = metrics.generated_kernel_count
        compiled_s = best_seconds(lambda compiled=compiled, args=args: compiled(*args))
        rows.append((name, kernels, compile_s, 1000 * eager_s, 1000 * compiled_s))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subset", type=int, default=6000, help="training images per epoch")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    args = parser.parse_args()
    base = TrialConfig(dataset="fashion-mnist", subset=args.subset, device="cpu")
    data = load_device_data(base.dataset, base.subset, torch.device("cpu"))
    print(machine_line())
    print(f"TE step in kernels: torch {torch.__version__}, threads "
          f"{torch.get_num_threads()}, fashion-mnist, {data.train_x.shape[0]} images, batch "
          f"{resolve(base).batch_size}, one counted epoch after a warm-up epoch; te_sweep from "
          f"{Path(te_sweep.__file__).parent}")
    print(f"{'configuration':26s} {'ops/step':>9s} {'TE ops':>7s} {'extra':>7s} "
          f"{'TE time share':>14s}")
    baseline = None
    for name, changes in CONFIGS.items():
        ops, share = ops_per_step(base, data, changes)
        baseline = ops if baseline is None else baseline
        print(f"{name:26s} {ops:9.1f} {ops - baseline:7.1f} {(ops - baseline) / baseline:7.1%} "
              f"{share:14.2%}")
    print(f"target: the TE step adds at most {TARGET_EXTRA:.0%} to a training step's kernels")
    if args.no_compile:
        return
    print("\ntorch.compile (inductor) of the TE step's halves, grad mode, W 500, batch 100:")
    print(f"{'half':34s} {'kernels':>8s} {'compile s':>10s} {'eager ms':>9s} "
          f"{'compiled ms':>12s}")
    for name, kernels, compile_s, eager_ms, compiled_ms in compiled_halves():
        print(f"{name:34s} {kernels:8d} {compile_s:10.1f} {eager_ms:9.3f} {compiled_ms:12.3f}")


if __name__ == "__main__":
    main()
