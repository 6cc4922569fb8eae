"""GPU benchmarks: epoch time of each preset, and trials per hour with trials packed on a GPU.

1. Presets: for each of the five presets, training steps at its published batch size on
   synthetic images of its data set's shape (the GPU machines reach no network, so the real
   CIFAR-10/SVHN/STL-10/USPS files are not there), te_scale 0 and 1 side by side; prints ms per
   step, the epoch time extrapolated to the data set's size, and the TE ratio.
2. Packing: K trials at a time on one GPU, K in 1, 2, 4, 8, the same number of fixed-length
   trials each time, on a synthetic Fashion-MNIST-shaped .npz; prints aggregate trials per
   hour and the ratio to K = 1 (target: >= 3x at K = 4). Each trial is its own process on the
   shared GPU, which is what Ray does with --gpus-per-trial 1/K; Ray itself is left out
   because its wheel cannot be carried to the lent GPU machines.

Needs only torch and numpy (runs there as `PYTHONPATH=. python3 bench/gpu.py`). Runs on a CPU
too (`--device cpu --quick`) to check the mechanics; only the CUDA numbers mean anything.

    .venv/bin/python bench/gpu.py [--device cuda|cpu] [--steps N] [--trials N] [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from te_sweep.core.config import TrialConfig, resolve
from te_sweep.core.data import DeviceData
from te_sweep.core.presets import PRESETS
from te_sweep.core.sources import KNOWN_DATASETS
from te_sweep.core.train import Trainer, device_name, resolve_device

ROOT = Path(__file__).resolve().parent.parent


def synthetic(name: str, n: int, device: torch.device) -> DeviceData:
    h, w, c = KNOWN_DATASETS[name].image_shape
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, c, h, w, generator=g).to(device)
    y = torch.randint(0, 10, (n,), generator=g).to(device)
    return DeviceData(x, y, x[:10], y[:10], 10)


def preset_times(device: torch.device, steps: int, repeats: int) -> None:
    print(
        f"{'preset':14s} {'batch':>5s} {'ms/step te0':>11s} {'ms/step te1':>11s} "
        f"{'ratio':>6s} {'epoch_s te0':>11s}"
    )
    for name, preset in PRESETS.items():
        data = synthetic(name, preset.batch_size * steps, device)
        mode = "grad" if name in ("fashion-mnist", "usps") else "paper"
        per_step = {}
        for scale in (0.0, 1.0):
            cfg = resolve(
                TrialConfig(
                    dataset=name,
                    device=str(device),
                    te_scale=scale,
                    mode=mode,
                    window=min(preset.window, preset.batch_size * steps // 2),
                )
            )
            runs = []
            for _ in range(repeats):
                record = Trainer(cfg, data, device).train_epoch(evaluate=False)
                runs.append(record["epoch_time_s"] / steps * 1000)
            per_step[scale] = statistics.median(runs)
        epoch_s = per_step[0.0] / 1000 * KNOWN_DATASETS[name].train_size / preset.batch_size
        print(
            f"{name:14s} {preset.batch_size:5d} {per_step[0.0]:11.2f} {per_step[1.0]:11.2f} "
            f"{per_step[1.0] / per_step[0.0]:6.3f} {epoch_s:11.1f}"
        )


def write_npz(directory: Path) -> Path:
    """A Fashion-MNIST-shaped .npz of random images (the GPU machines reach no network)."""
    rng = np.random.default_rng(0)
    labels = np.arange(6000) % 10
    images = rng.integers(0, 255, size=(6000, 28, 28), dtype=np.uint8)
    npz = directory / "fashion-shaped.npz"
    np.savez(
        npz,
        train_images=images,
        train_labels=labels,
        test_images=images[:1000],
        test_labels=labels[:1000],
    )
    return npz


def packing(device: torch.device, trials: int, epochs: int) -> None:
    """K trial processes at a time on one device, as Ray's --gpus-per-trial 1/K packs them.

    Ray itself is not used here: its wheel does not fit the lent GPU machines' carry limit,
    and what is measured is the device's throughput with K trials sharing it. Each trial is a
    `python -m te_sweep train` process (its start-up included, as for a sweep trial without
    actor reuse).
    """
    print(f"{'trials/GPU':>10s} {'trials':>6s} {'wall_s':>7s} {'trials/hour':>11s} {'ratio':>6s}")
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    base = None
    with tempfile.TemporaryDirectory() as tmp:
        npz = write_npz(Path(tmp))
        for per_gpu in (1, 2, 4, 8):
            start = time.perf_counter()
            for wave in range(0, trials, per_gpu):
                procs = [
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "te_sweep",
                            "train",
                            "--dataset",
                            str(npz),
                            "--epochs",
                            str(epochs),
                            "--target",
                            "1.0",
                            "--te-scale",
                            "1",
                            "--device",
                            device.type,
                            "--seed",
                            str(seed),
                        ],
                        env=env,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.PIPE,
                        text=True,
                    )
                    for seed in range(wave, min(trials, wave + per_gpu))
                ]
                for proc in procs:
                    if proc.wait() != 0:
                        raise SystemExit(f"a trial failed: {proc.stderr.read()[-2000:]}")
            wall = time.perf_counter() - start
            rate = trials / wall * 3600
            base = base or rate
            print(f"{per_gpu:10d} {trials:6d} {wall:7.1f} {rate:11.0f} {rate / base:6.2f}")
    print("target: >= 3x trials/hour at 4 trials per GPU against 1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", type=int, default=50, help="training steps per timing")
    parser.add_argument("--trials", type=int, default=16, help="trials per packing run")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per packing trial")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    device = resolve_device(args.device)
    print(f"device {device_name(device)}, torch {torch.__version__}")
    preset_times(device, args.steps if not args.quick else 5, 1 if args.quick else 3)
    packing(device, args.trials if not args.quick else 2, args.epochs if not args.quick else 1)


if __name__ == "__main__":
    main()
