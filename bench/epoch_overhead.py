"""TE overhead in training: epoch time with the feedback on over the same epoch with it off.

Fashion-MNIST at the paper's settings (preset fashion-mnist: batch 100, lr 0.008), every
combination of mode {grad, paper} x pair fraction {0.1, 1.0} x window {500, 4096} at te_scale 1,
against the baseline (te_scale 0). All configurations run interleaved in one process, one
training epoch each per round (no evaluation), `--repeats` rounds, each a fresh trial from the
same seed: every ratio compares epochs measured side by side. Prints the median epoch_time_s,
te_time_s, the TE share of the epoch, and the ratio to the baseline: the median over rounds of
each round's ratio to that round's baseline epoch (paired, so drift in the machine's speed
between rounds cancels), with the issue's target.

    .venv/bin/python bench/epoch_overhead.py [--subset N] [--repeats R] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import itertools
import statistics

import torch

from te_sweep.core.config import TrialConfig, resolve
from te_sweep.core.data import load_device_data
from te_sweep.core.train import Trainer, device_name, resolve_device

TARGET = {"cpu": 1.10, "cuda": 1.03}  # epoch time with TE over without, at most


def configurations() -> dict[str, dict]:
    configs = {"baseline (te_scale 0)": dict(te_scale=0.0)}
    for mode, fraction, window in itertools.product(("grad", "paper"), (0.1, 1.0), (500, 4096)):
        configs[f"{mode:5s} pairs {fraction:<3} window {window}"] = dict(
            te_scale=1.0, mode=mode, pair_fraction=fraction, window=window
        )
    return configs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subset", type=int, default=None, help="training images [all 60000]")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    base = TrialConfig(dataset="fashion-mnist", subset=args.subset, device=str(device))
    data = load_device_data(base.dataset, base.subset, device)
    print(
        f"TE overhead in training: device {device_name(device)}, torch threads "
        f"{torch.get_num_threads()}, {data.train_x.shape[0]} training images, batch "
        f"{resolve(base).batch_size}, {args.repeats} interleaved rounds, medians"
    )
    configs = configurations()
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in configs}
    for _ in range(args.repeats):
        for name, changes in configs.items():
            trainer = Trainer(resolve(base.replace(**changes)), data, device)
            record = trainer.train_epoch(evaluate=False)
            times[name].append((record["epoch_time_s"], record["te_time_s"]))
    baselines = [t for t, _ in times["baseline (te_scale 0)"]]
    target = TARGET[device.type]
    print(
        f"{'configuration':30s} {'epoch_time_s':>12s} {'te_time_s':>10s} {'te share':>9s} "
        f"{'ratio':>7s}"
    )
    worst = 0.0
    for name, runs in times.items():
        epoch = statistics.median(t for t, _ in runs)
        te = statistics.median(t for _, t in runs)
        ratio = statistics.median(t / b for (t, _), b in zip(runs, baselines, strict=False))
        worst = max(worst, ratio)
        print(f"{name:30s} {epoch:12.2f} {te:10.3f} {te / epoch:9.2%} {ratio:7.3f}")
    verdict = "met" if worst <= target else "NOT met"
    print(f"target: ratio <= {target:.2f} on {device.type}; worst {worst:.3f}: {verdict}")


if __name__ == "__main__":
    main()
