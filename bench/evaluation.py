"""Where a trial's time goes: a training epoch against evaluating each split, in both memory
orders (issue 19, item 2; BENCHMARKS.md section 10).

On `make sweep`'s data (Fashion-MNIST, a stratified 3000 training images, the 10,000-image
test split, the paper's CNN and TE feedback, one torch thread), one process times, in
alternating rounds so that all see the same load:
  - a training epoch (TE on; evaluation excluded);
  - evaluating the training split and the test split, each in channels-last order (what
    data.py gives every split now) and channels-first (what a grey array with a stride-0
    channel axis gave torch before: the test split, and a whole training split);
  - a training epoch channels-first, for the full-split case.
Then the share of a trial's time spent training, for a trial of E epochs evaluating the other
split every K epochs and at its last, from the medians:
    share = E * train / (E * train + (E + 1) * eval_target + n_other * eval_other)
(the +1: the start value before training), n_other = the epochs evaluated on the schedule.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python bench/evaluation.py [--rounds 3] [--epochs 5]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine_line

from te_sweep.core.config import TrialConfig, resolve
from te_sweep.core.data import load_device_data
from te_sweep.core.train import Trainer

CPU = torch.device("cpu")


def channels_first(x: torch.Tensor) -> torch.Tensor:
    """The same values with the strides torch read as channels-first (a stride-0 channel)."""
    _n, c, h, w = x.shape
    assert c == 1
    return x.as_strided(x.shape, (h * w, 0, w, 1))


def seconds(work) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5, help="epochs of the modelled trial")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(machine_line())
    cfg = resolve(TrialConfig(dataset="fashion-mnist", subset=3000, device="cpu"))
    data = load_device_data(cfg.dataset, cfg.subset, CPU)
    first = dataclasses.replace(
        data, train_x=channels_first(data.train_x), test_x=channels_first(data.test_x)
    )
    trainer = Trainer(cfg, data, CPU)
    trainer_first = Trainer(cfg, first, CPU)
    cases = {
        "train epoch, channels-last": lambda: trainer.train_epoch(evaluate=False),
        "train epoch, channels-first": lambda: trainer_first.train_epoch(evaluate=False),
        "eval train split (3000), channels-last": lambda: trainer.evaluate(
            data.train_x, data.train_y
        ),
        "eval train split (3000), channels-first": lambda: trainer.evaluate(
            first.train_x, data.train_y
        ),
        "eval test split (10000), channels-last": lambda: trainer.evaluate(
            data.test_x, data.test_y
        ),
        "eval test split (10000), channels-first": lambda: trainer.evaluate(
            first.test_x, data.test_y
        ),
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.rounds):
        for name, work in cases.items():
            times[name].append(seconds(work))
    median = {name: statistics.median(t) for name, t in times.items()}
    print(f"one torch thread, median of {args.rounds} rounds, seconds:")
    for name, value in median.items():
        print(f"  {name:42s} {value:7.3f}")
    train = median["train epoch, channels-last"]
    epochs = args.epochs
    print(
        f"share of a {epochs}-epoch trial spent training (train_acc target, a --subset "
        "training split):"
    )
    scenarios = (
        ("before issue 19: test split channels-first, every epoch", "first", 1),
        ("the schedule alone: test split channels-first", "first", 5),
        ("channels-last alone, every epoch", "last", 1),
        ("both (now)", "last", 5),
    )
    for label, test_order, every in scenarios:
        eval_target = median["eval train split (3000), channels-last"]  # a subset's copy
        eval_other = median[f"eval test split (10000), channels-{test_order}"]
        n_other = len({e for e in range(1, epochs + 1) if e % every == 0} | {epochs})
        total = epochs * train + (epochs + 1) * eval_target + n_other * eval_other
        print(f"  {label:58s} other split every {every}: {epochs * train / total:.0%}")


if __name__ == "__main__":
    main()
