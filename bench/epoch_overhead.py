"""TE overhead in training: epoch time with the feedback on over the same epoch with it off.

Fashion-MNIST at the paper's settings (preset fashion-mnist: batch 100, lr 0.008, window 500),
the full training split unless --subset is given. Configurations are run interleaved in one
process, `--repeats` rounds, each a fresh trial of one epoch from the same seed, so every ratio
compares epochs measured side by side. Prints epoch_time_s, te_time_s, the TE share of the
epoch and the ratio to the baseline (median over rounds).

    .venv/bin/python bench/epoch_overhead.py [--subset N] [--repeats R] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import statistics

import torch

from te_sweep.config import TrialConfig, resolve
from te_sweep.data import load_device_data
from te_sweep.train import Trainer, device_name, resolve_device

CONFIGS = {
    "baseline (te_scale 0)": dict(te_scale=0.0),
    "grad, te_scale 1, pairs 1.0": dict(te_scale=1.0, mode="grad"),
    "grad, te_scale 1, pairs 0.1": dict(te_scale=1.0, mode="grad", pair_fraction=0.1),
    "paper, te_scale 1": dict(te_scale=1.0, mode="paper"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subset", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--window", type=int, default=None)
    args = parser.parse_args()
    device = resolve_device(args.device)
    base = TrialConfig(dataset="fashion-mnist", subset=args.subset, max_epochs=1,
                       device=str(device), window=args.window)
    data = load_device_data(base.dataset, base.subset, device)
    print(f"device {device_name(device)}, torch threads {torch.get_num_threads()}, "
          f"{data.train_x.shape[0]} training images, window {resolve(base).window}")
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in CONFIGS}
    for _ in range(args.repeats):
        for name, changes in CONFIGS.items():
            record = Trainer(resolve(base.replace(**changes)), data, device).train_epoch()
            times[name].append((record["epoch_time_s"], record["te_time_s"]))
    baseline = statistics.median(t for t, _ in times["baseline (te_scale 0)"])
    print(f"{'configuration':32s} {'epoch_time_s':>12s} {'te_time_s':>10s} {'te share':>9s} "
          f"{'ratio':>7s}")
    for name, runs in times.items():
        epoch = statistics.median(t for t, _ in runs)
        te = statistics.median(t for _, t in runs)
        print(f"{name:32s} {epoch:12.2f} {te:10.3f} {te / epoch:9.2%} {epoch / baseline:7.3f}")


if __name__ == "__main__":
    main()
