"""TE estimator: te_sweep.core.te against a per-pair pyinform loop (what a user would write).

For each window W in {500, 4096}:
  (a) P independent (source, target) pair series, P in {100, 1200, 10000}: te.transfer_entropy;
  (b) the training case, every pair between two layers of 1000 x 10 units (10000 pairs):
      te.transfer_entropy_all_pairs.
Series are random {0,1} with a random bias per column; about half the targets (a), or the first
5 destination units (b), are noisy one-step-delayed copies of a source, so both near-zero and
large TE values occur.  "max |diff|" is the timed result (float32, from bool input) against
pyinform's float64 over all pairs compared; "(float64)" repeats the comparison for float64 input
(untimed), which shows the counting is exact.

te.py is timed from the realistic input of the training step: bool tensors already on the
device (inputs are created and moved before timing; result stays on the device).  On CUDA the
timing brackets each call with torch.cuda.synchronize().  The reference is
    [pyinform.transfer_entropy(src[:, p], tgt[:, p], k=1) for p in range(P)]
(for (b): over all (i, j) pairs) on numpy int32 arrays in column-major order, so every column
slice is already contiguous int32 and pyinform makes no copy: the fastest form of that loop.
Timings are medians; te.py and pyinform are timed in alternating rounds so that both see the same
machine load.  Targets apply at W = 4096 with 10000 pairs.

OpenMP: unless --omp-default is given (or OMP_WAIT_POLICY is already set), the script sets
OMP_WAIT_POLICY=PASSIVE before torch loads.  On a shared machine, with another process holding a
core, libgomp's default spin-waiting makes every multi-threaded torch op wait for a descheduled
thread (measured here: 2 ms -> 270 ms for one call at W=500).  Passive waiting avoids that but
pays a thread wake-up per parallel op, which shows on an idle machine (measured: W=4096 (a)
6.7 -> 8.1 ms, (b) 0.9 -> 1.6 ms, small cases up to 5x): use --omp-default on an idle machine.
--threads 1 avoids OpenMP altogether.

    .venv/bin/python bench/te_estimator.py [--device cpu|cuda] [--quick] [--threads N]
        [--ref-pairs N] [--omp-default]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

if "--omp-default" not in sys.argv:  # must precede the first torch import (libgomp reads it once)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import pyinform
import torch

import te_sweep.core.te as te_module
from te_sweep.core.te import cpu_layer_kernel, transfer_entropy, transfer_entropy_all_pairs

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine_line

WINDOWS = (500, 4096)
PAIR_COUNTS = (100, 1200, 10000)
LAYERS = (1000, 10)
TARGETS = {"cpu": {"a": 10.0, "b": 50.0}, "cuda": {"a": 1000.0, "b": 1000.0}}


def random_series(rng: np.random.Generator, W: int, n: int) -> np.ndarray:
    """(W, n) bool, column j has its own P(1) drawn from [0.02, 0.98]."""
    return rng.random((W, n)) < rng.uniform(0.02, 0.98, size=n)


def delayed_copy(rng: np.random.Generator, src: np.ndarray) -> np.ndarray:
    """x_{t+1} = y_t flipped with a per-column probability in [0, 0.3]; x_0 random."""
    out = np.empty_like(src)
    out[0] = rng.random(src.shape[1]) < 0.5
    out[1:] = src[:-1] ^ (rng.random(out[1:].shape) < rng.uniform(0.0, 0.3, size=src.shape[1]))
    return out


def make_case(rng: np.random.Generator, case: str, W: int, P: int) -> tuple[np.ndarray, np.ndarray]:
    if case == "a":
        src, tgt = random_series(rng, W, P), random_series(rng, W, P)
        dep = rng.random(P) < 0.5
        tgt[:, dep] = delayed_copy(rng, src[:, dep])
    else:
        src, tgt = random_series(rng, W, LAYERS[0]), random_series(rng, W, LAYERS[1])
        tgt[:, :5] = delayed_copy(rng, src[:, :5])
    return src, tgt


def pyinform_loop(src: np.ndarray, tgt: np.ndarray, pairs: list[tuple[int, int]]) -> list[float]:
    return [pyinform.transfer_entropy(src[:, i], tgt[:, j], k=1) for i, j in pairs]


def device_label(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"cpu ({model}, {os.cpu_count()} logical cores)"


def run_case(
    case: str,
    W: int,
    P: int,
    device: torch.device,
    rounds: int,
    te_per_round: int,
    max_ref_pairs: int | None,
    seed: int,
) -> dict:
    rng = np.random.default_rng(seed)
    src, tgt = make_case(rng, case, W, P)
    if case == "a":
        fn, pairs = transfer_entropy, [(p, p) for p in range(P)]
    else:
        fn = transfer_entropy_all_pairs
        pairs = [(i, j) for i in range(src.shape[1]) for j in range(tgt.shape[1])]
    s, t = torch.from_numpy(src).to(device), torch.from_numpy(tgt).to(device)
    src_ref, tgt_ref = np.asfortranarray(src, np.int32), np.asfortranarray(tgt, np.int32)
    ref_pairs = pairs if max_ref_pairs is None else pairs[:max_ref_pairs]
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def time_te() -> float:
        sync()
        start = time.perf_counter()
        fn(s, t)
        sync()
        return time.perf_counter() - start

    out = fn(s, t)  # warm-up (and the values compared)
    fn(s, t)
    te_times, ref_times = [], []
    for _ in range(rounds):
        te_times += [time_te() for _ in range(te_per_round)]
        start = time.perf_counter()
        ref = pyinform_loop(src_ref, tgt_ref, ref_pairs)
        ref_times.append((time.perf_counter() - start) * len(pairs) / len(ref_pairs))
    ref = np.asarray(ref)
    got = out.reshape(-1).double().cpu().numpy()[: len(ref_pairs)]
    got64 = fn(s.double(), t.double()).reshape(-1).cpu().numpy()[: len(ref_pairs)]  # untimed
    return dict(
        case=case,
        W=W,
        pairs=len(pairs),
        te_s=statistics.median(te_times),
        ref_s=statistics.median(ref_times),
        scaled_from=len(ref_pairs) if len(ref_pairs) < len(pairs) else None,
        max_diff=float(np.max(np.abs(got - ref))),
        max_diff64=float(np.max(np.abs(got64 - ref))),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument(
        "--ref-pairs",
        type=int,
        default=None,
        help="time pyinform on this many pairs per case and scale linearly",
    )
    parser.add_argument(
        "--omp-default",
        action="store_true",
        help="leave OMP_WAIT_POLICY alone (see the module docstring)",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device visible to torch")
    rounds, te_per_round = (3, 3) if args.quick else (7, 5)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"device {device_label(device)}; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, OMP_WAIT_POLICY="
        f"{os.environ.get('OMP_WAIT_POLICY', '(unset)')}; load average before start {load:.2f}"
    )
    print(machine_line())
    if device.type == "cpu":
        kernel, best = te_module._measure_cpu_kernels()
        probe = ", ".join(f"{k.value} {v * 1e3:.2f} ms" for k, v in best.items())
        print(
            f"CPU layer-pair kernel chosen by measurement: {cpu_layer_kernel().value} "
            f"(probe {te_module._PROBE_T} x {te_module._PROBE_D} by {te_module._PROBE_S}: "
            f"{probe or 'torch._int_mm missing'}; this run: {kernel.value})"
        )
    print(
        f"te.py from bool tensors on {device.type}; medians of {rounds * te_per_round} te.py "
        f"and {rounds} pyinform timings (alternating rounds)"
    )
    targets = TARGETS[device.type]
    rows = []
    for W in WINDOWS:
        for case, P in [("a", p) for p in PAIR_COUNTS] + [("b", LAYERS[0] * LAYERS[1])]:
            rows.append(
                run_case(
                    case, W, P, device, rounds, te_per_round, args.ref_pairs, seed=W * 100003 + P
                )
            )
    header = (
        f"{'case':26s} {'W':>5s} {'pairs':>6s} {'te.py s':>10s} {'pyinform s':>11s} "
        f"{'speedup':>8s} {'max |diff|':>10s} {'(float64)':>9s}  target"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        name = (
            "(a) independent pairs" if r["case"] == "a" else f"(b) layers {LAYERS[0]}x{LAYERS[1]}"
        )
        speedup = r["ref_s"] / r["te_s"]
        target = "-"
        if r["W"] == 4096 and r["pairs"] == 10000:
            goal = targets[r["case"]]
            target = f">= {goal:g}x {'met' if speedup >= goal else 'NOT met'}"
        ref = f"{r['ref_s']:.4f}" + ("*" if r["scaled_from"] else "")
        print(
            f"{name:26s} {r['W']:5d} {r['pairs']:6d} {r['te_s']:10.5f} {ref:>11s} "
            f"{speedup:7.1f}x {r['max_diff']:10.1e} {r['max_diff64']:9.1e}  {target}"
        )
    scaled = sorted({r["scaled_from"] for r in rows if r["scaled_from"]})
    if scaled:
        print(
            f"* pyinform timed on the first {scaled[0]} pairs of the case and scaled linearly "
            "to all pairs; max |diff| over those pairs"
        )
    load_end = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    if max(load, load_end) > (os.cpu_count() or 1) - 0.5:
        print(
            f"note: load average {load:.2f} -> {load_end:.2f} on {os.cpu_count()} cores: other "
            "processes share the CPU: timings are noisier (te.py and pyinform alike)"
        )


if __name__ == "__main__":
    main()
