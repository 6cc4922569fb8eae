"""Threads on a shared machine: OpenMP's waiting policy, with and without a busy neighbour,
and the CPU kernel probe's choice (issue 19, item 3; BENCHMARKS.md section 9).

Each case runs in a fresh interpreter (OpenMP reads OMP_WAIT_POLICY once, when torch loads):
  - training steps of the fashion-mnist CNN at batch 100 with the paper's TE feedback (grad
    mode, window 500, all pairs) on random images, two torch threads, timed per step (median
    of the steps after a warm-up), under OMP_WAIT_POLICY unset (OpenMP's active waiting) and
    PASSIVE, with no neighbour and with one busy process (a Python spin loop) beside it;
  - the probe that chooses the CPU layer-pair kernel (te._measure_cpu_kernels, now on one
    thread), run in PROBES fresh processes per case: which kernel it chose and its timings,
    beside the same probe run on two threads (as before issue 19).
Both cases of a pair run one after the other in the same run, so they share the machine's
state; the script prints the machine first. "no neighbour" is only as idle as the machine is:
say what else ran.

    OMP_WAIT_POLICY= .venv/bin/python bench/cpu_threads.py [--steps 40] [--probes 5]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine_line

STEPS_CODE = """
import json, statistics, sys, time, torch
import torch.nn.functional as F
torch.set_num_threads(2)
from te_sweep.core.config import TrialConfig, resolve
from te_sweep.core.feedback import TEFeedback
from te_sweep.core.models import build_model
from te_sweep.core.presets import PRESETS
steps = int(sys.argv[1])
cfg = resolve(TrialConfig(dataset="fashion-mnist", window=500, device="cpu"))
torch.manual_seed(0)
model = build_model(PRESETS[cfg.preset].architecture, 1, (28, 28), 10)
fb = TEFeedback(cfg, model, 10, torch.device("cpu"))
opt = torch.optim.SGD(model.parameters(), lr=cfg.lr)
x, y = torch.rand(100, 1, 28, 28), torch.randint(0, 10, (100,))
fb.start_epoch(0)
times = []
for step in range(steps):
    start = time.perf_counter()
    z, logits = model.forward_with_hidden(x)
    loss = F.cross_entropy(logits, y)
    fb.observe(z, logits)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    fb.apply(model.last_fc)
    opt.step()
    times.append(time.perf_counter() - start)
print(json.dumps({"step_ms": 1000 * statistics.median(times[steps // 4:])}))
"""

PROBE_CODE = """
import json, sys, torch
torch.set_num_threads(2)
from te_sweep.core import te
if sys.argv[1] == "two-threads":  # the probe as it ran before issue 19
    kernel, best = te._time_cpu_kernels()
else:
    kernel, best = te._measure_cpu_kernels()
print(json.dumps({"kernel": kernel.value, **{k.value: 1000 * v for k, v in best.items()}}))
"""


def run(code: str, policy: str | None, *args: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    done = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


@contextmanager
def neighbour(busy: bool) -> Iterator[None]:
    """One process spinning on a core beside the measurement, or none."""
    if not busy:
        yield
        return
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    time.sleep(0.5)
    try:
        yield
    finally:
        spinner.kill()
        spinner.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--probes", type=int, default=5)
    args = parser.parse_args()
    print(machine_line())
    print(
        f"training step, TE on (grad, W 500, all pairs), 2 torch threads, median of "
        f"{args.steps - args.steps // 4} steps, ms:"
    )
    for busy in (False, True):
        with neighbour(busy):
            row = {
                policy or "unset": run(STEPS_CODE, policy, str(args.steps))["step_ms"]
                for policy in (None, "PASSIVE")
            }
        ratio = row["unset"] / row["PASSIVE"]
        print(
            f"  {'busy neighbour' if busy else 'no neighbour  '}: unset {row['unset']:8.2f}"
            f"  PASSIVE {row['PASSIVE']:8.2f}  unset/PASSIVE x{ratio:.2f}"
        )
    print(f"kernel probe, {args.probes} fresh processes each, busy neighbour, policy unset:")
    with neighbour(True):
        for how in ("two-threads", "one-thread"):
            found = [run(PROBE_CODE, None, how) for _ in range(args.probes)]
            kernels = [f["kernel"] for f in found]
            spans = {
                k: (min(f[k] for f in found), max(f[k] for f in found)) for k in ("int8", "float")
            }
            print(
                f"  probe on {how:11s}: chose {kernels}; int8 {spans['int8'][0]:.3f}-"
                f"{spans['int8'][1]:.3f} ms, float {spans['float'][0]:.3f}-"
                f"{spans['float'][1]:.3f} ms"
            )


if __name__ == "__main__":
    main()
