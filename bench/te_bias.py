"""Which bias-controlled TE: the measurement behind te_estimator "effective".

Why: consecutive training samples are independent shuffled images, so the true TE between a
penultimate unit and a logit is near 0 and the plug-in TE fed back is mostly the estimator's
upward bias, about b = 1/((W-1) ln 2) bits. A controlled estimator must average 0 without
transfer for the marginals training produces (binarised units are far from fair coins) and
keep a real transfer. Candidates, all from the same counts or one more estimate:
  - analytic: plug-in - b (the chi-square bias with all 8 cells occupied);
  - Miller-Madow: plug-in - (m_yx'x - m_yx - m_x'x + m_x) / (2 (W-1) ln 2), m = occupied cells;
  - effective (shuffle surrogate): plug-in - plug-in of the time-shuffled source.
How: independent binary series at the training's window (500) with unit rates (p_source,
p_target) from fair to rare, 2000 pairs each; the mean of each estimate in units of b (0 is
right) and its standard deviation; then the dependent case (x[t+1] copies y[t] with
probability 0.3) against pyinform's plug-in value; then the cost of the effective TE against
the plug-in for the training's shape (120 x 10 pairs, W = 500), timed side by side.

    .venv/bin/python bench/te_bias.py [--pairs 2000]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pyinform
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine_line

from te_sweep.core.te import effective_transfer_entropy, transfer_entropy

W = 500
RATES = [(0.5, 0.5), (0.1, 0.5), (0.05, 0.05), (0.02, 0.3), (0.01, 0.01), (0.3, 0.9)]


def occupied_cell_bias(src: np.ndarray, tgt: np.ndarray) -> np.ndarray:
    """Miller-Madow bias of each pair's TE from the occupied cells of its counts."""
    y, xn, x = src[:-1], tgt[1:], tgt[:-1]

    def occupied(*series: np.ndarray) -> np.ndarray:
        codes = sum(s.astype(np.int64) << i for i, s in enumerate(series))
        return np.stack([(codes == c).any(axis=0) for c in range(2 ** len(series))]).sum(0)

    cells = occupied(y, xn, x) - occupied(y, x) - occupied(xn, x) + occupied(x)
    return cells / (2 * (W - 1) * math.log(2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=2000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    generator = torch.Generator().manual_seed(0)
    b = 1 / ((W - 1) * math.log(2))
    print(machine_line())
    print(
        f"independent series, W={W}, {args.pairs} pairs per row; mean (sd) in units of the "
        f"bias b = 1/((W-1) ln 2) = {b:.5f} bits; 0 is right"
    )
    print(
        f"{'p_source':>8} {'p_target':>8} {'plug-in':>14} {'analytic':>14} "
        f"{'Miller-Madow':>14} {'effective':>14}"
    )
    for ps, pt in RATES:
        src = rng.random((W, args.pairs)) < ps
        tgt = rng.random((W, args.pairs)) < pt
        plugin = transfer_entropy(torch.from_numpy(src), torch.from_numpy(tgt)).double().numpy()
        order = torch.randperm(W, generator=generator)
        shuffled = (
            transfer_entropy(torch.from_numpy(src)[order], torch.from_numpy(tgt)).double().numpy()
        )
        estimates = [plugin, plugin - b, plugin - occupied_cell_bias(src, tgt), plugin - shuffled]
        print(
            f"{ps:>8} {pt:>8} "
            + " ".join(f"{e.mean() / b:>+7.3f} ({e.std() / b:4.2f})" for e in estimates)
        )
    src = rng.random((W, 200)) < 0.5
    copy = rng.random((W, 200)) < 0.3
    tgt = np.zeros_like(src)
    tgt[1:] = np.where(copy[1:], src[:-1], rng.random((W - 1, 200)) < 0.5)
    reference = np.array(
        [
            pyinform.transfer_entropy(src[:, i].astype(int), tgt[:, i].astype(int), k=1)
            for i in range(200)
        ]
    )
    order = torch.randperm(W, generator=generator)
    effective = (
        (
            transfer_entropy(torch.from_numpy(src), torch.from_numpy(tgt))
            - transfer_entropy(torch.from_numpy(src)[order], torch.from_numpy(tgt))
        )
        .double()
        .numpy()
    )
    print(
        f"dependent series (x[t+1] = y[t] with probability 0.3), 200 pairs: pyinform "
        f"plug-in {reference.mean():.4f} bits, effective {effective.mean():.4f} "
        f"(difference {(reference - effective).mean() / b:.2f} b)"
    )
    source = torch.rand(W, 120) < 0.3
    target = torch.rand(W, 10) < 0.3
    from te_sweep.core.te import transfer_entropy_all_pairs

    times: dict[str, list[float]] = {"plug-in": [], "effective": []}
    for _ in range(30):
        for name, fn in (
            ("plug-in", lambda: transfer_entropy_all_pairs(source, target)),
            ("effective", lambda: effective_transfer_entropy(source, target, generator)),
        ):
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    plug, eff = (statistics.median(times[n]) for n in ("plug-in", "effective"))
    print(
        f"cost, 120 x 10 pairs, W={W}, one thread, median of 30 interleaved: plug-in "
        f"{plug * 1e3:.2f} ms, effective {eff * 1e3:.2f} ms ({eff / plug:.2f}x)"
    )


if __name__ == "__main__":
    main()
