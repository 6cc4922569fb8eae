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

    .venv/bin/python bench/te_step.py [--subset N] [--no-compile] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import os
import re
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
from te_sweep.core.config import TrialConfig, resolve
from te_sweep.core.data import load_device_data
from te_sweep.core.train import Trainer

VIEW_OPS = {
    "slice",
    "view",
    "detach",
    "unbind",
    "permute",
    "transpose",
    "t",
    "expand",
    "select",
    "alias",
    "_unsafe_view",
    "unsqueeze",
    "squeeze",
    "split",
    "chunk",
    "split_with_sizes",
    "lift_fresh",
    "squeeze_",
    "unsqueeze_",
}
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


def ops_per_step(
    base: TrialConfig, data, changes: dict, device: torch.device
) -> tuple[float, float]:
    """(compute ops per training step, TE share of the epoch's time) over one epoch after a
    warm-up epoch (the window full)."""
    trainer = Trainer(resolve(base.replace(**changes)), data, device)
    trainer.train_epoch(evaluate=False)
    steps = -(-data.train_x.shape[0] // trainer.cfg.batch_size)
    with CountOps() as counter:
        record = trainer.train_epoch(evaluate=False)
    return counter.ops / steps, record["te_time_s"] / record["epoch_time_s"]


def best_seconds(fn, repeats: int = 30, device: torch.device | None = None) -> float:
    """The median seconds of `fn` (on CUDA: until its kernels have run)."""
    sync = torch.cuda.synchronize if device is not None and device.type == "cuda" else None
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


KERNEL_CALL = re.compile(
    r"^\s+(cpp_fused_\w+|triton_\w+|extern_kernels\.\w+|aten\.\w+)"
    r"(?:\.run)?\(",
    re.M,
)


def compiled_step(
    mode: str, device: torch.device, window: int = 500, batch: int = 100
) -> tuple[int, int, float, float, float]:
    """(kernels of a recomputing step, of any other step, compile s, eager ms per TE step,
    compiled ms per TE step): the fashion-mnist CNN's TE step with te_compile, fed random
    activations, in the steady state."""
    import warnings

    from torch._inductor.utils import run_and_get_code

    from te_sweep.core.feedback import TEFeedback
    from te_sweep.core.models import build_model

    warnings.filterwarnings("ignore", message=".*lru_cache.*")
    generator = torch.Generator().manual_seed(0)
    z = (torch.randn(batch, 120, generator=generator) * 1.2).to(device)
    logits = (torch.randn(batch, 10, generator=generator) * 4).to(device)
    results = {}
    for compiled in (False, True):
        torch.manual_seed(0)
        model = build_model("fashion-mnist", 1, (28, 28), 10).to(device)
        cfg = resolve(TrialConfig(mode=mode, window=window, te_every=2, te_compile=compiled))
        fb = TEFeedback(cfg, model, 10, device)
        model.last_fc.weight.grad = torch.ones_like(model.last_fc.weight)

        def step(fb=fb, model=model) -> None:
            fb.observe(z, logits)
            fb.apply(model.last_fc)

        while not fb.counts.full or fb.steps % cfg.te_every:  # full; the next step recomputes
            step()
        kernels, compile_s = [], 0.0
        for _ in range(2):  # a step that recomputes, then one that does not
            torch._dynamo.reset()  # every function the step calls is compiled during it
            start = time.perf_counter()
            _, codes = run_and_get_code(step)
            compile_s = compile_s or time.perf_counter() - start
            kernels.append(
                sum(len(KERNEL_CALL.findall(code[code.index("def call(") :])) for code in codes)
            )
        results[compiled] = (
            kernels,
            compile_s,
            1000 * best_seconds(step, repeats=200, device=device),
        )
    (recomputing, other), compile_s, compiled_ms = results[True]
    return recomputing, other, compile_s, results[False][2], compiled_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subset", type=int, default=6000, help="training images per epoch")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    parser.add_argument("--device", default="cpu", help="cpu or cuda [default: cpu]")
    args = parser.parse_args()
    device = torch.device(args.device)
    base = TrialConfig(dataset="fashion-mnist", subset=args.subset, device=args.device)
    data = load_device_data(base.dataset, base.subset, device)
    print(machine_line())
    print(
        f"TE step in kernels: device {args.device}, torch {torch.__version__}, threads "
        f"{torch.get_num_threads()}, fashion-mnist, {data.train_x.shape[0]} images, batch "
        f"{resolve(base).batch_size}, one counted epoch after a warm-up epoch; te_sweep from "
        f"{Path(te_sweep.__file__).parent}"
    )
    print(
        f"{'configuration':26s} {'ops/step':>9s} {'TE ops':>7s} {'extra':>7s} "
        f"{'TE time share':>14s}"
    )
    baseline = None
    for name, changes in CONFIGS.items():
        ops, share = ops_per_step(base, data, changes, device)
        baseline = ops if baseline is None else baseline
        print(
            f"{name:26s} {ops:9.1f} {ops - baseline:7.1f} {(ops - baseline) / baseline:7.1%} "
            f"{share:14.2%}"
        )
    print(f"target: the TE step adds at most {TARGET_EXTRA:.0%} to a training step's kernels")
    if args.no_compile:
        return
    print(
        "\nte_compile: the TE step (observe + apply) compiled by inductor, W 500, batch 100, "
        "te_every 2 (median of 200 steps, alternating)"
    )
    print(
        f"{'mode':6s} {'kernels/recompute':>18s} {'kernels/other':>14s} {'compile s':>10s} "
        f"{'eager ms':>9s} {'compiled ms':>12s}"
    )
    for mode in ("grad", "paper"):
        recomputing, other, compile_s, eager_ms, compiled_ms = compiled_step(mode, device)
        print(
            f"{mode:6s} {recomputing:18d} {other:14d} {compile_s:10.1f} {eager_ms:9.3f} "
            f"{compiled_ms:12.3f}"
        )


if __name__ == "__main__":
    main()
