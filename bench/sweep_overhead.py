"""Sweep overhead: wall time of N fixed-length trials through `te-sweep launch` against N times
one trial's own time, in seconds of overhead per trial. Target: <= 1 s.

Why: a sweep is worth running on Ray Tune only if the machinery (CLI, Ray start, trial actors,
Tune's bookkeeping, per-epoch checkpoints and reports, the Parquet export) costs little next
to the trials themselves. This measures that cost with the real command a user runs.

How: a space file in a temp dir over real Fashion-MNIST (a stratified `subset` of 600 images,
max_epochs 2, target 1.0 so every trial runs both epochs; only te_scale is searched), so every
trial has the same fixed length, a few seconds (mostly evaluating the 10000-image test split).
  - One trial's own time: the same trial configs run in this process with `run_trial` (data
    loading included, as a sweep trial loads its data too), with one torch thread as a sweep
    trial has with --cpus-per-trial 1. A TE trial and a baseline (te_scale 0), median of
    `--repeats` rounds, the rounds interleaved with the sweeps. The very first run, which
    reads the data files (they are cached per process afterwards), is reported apart.
  - Sweeps: `te-sweep launch SPACE --num-samples N-1 --baselines 1 --max-concurrent 1`, i.e.
    N trials one after the other, in a subprocess, storage in the temp dir; the wall time of
    the whole command (Python and Ray start-up, Tune, Ray shutdown, export, summary). N = 1
    (`--num-samples 1 --baselines 0`) and each N of `--n` (default 8 and 16).
  - overhead(N) = sweep wall - (one baseline + (N-1) TE trials of own time), fitted as
    a + b*N by least squares over the sweeps: a is the fixed cost, b the cost per trial. The
    target is checked on b and, measured rather than extrapolated, on the total overhead
    amortised over each sweep's N trials, overhead(N) / N.
  - Where it goes, from the sweep's output (each line time-stamped as it arrives) and the
    trials' result.json files (Tune's time_total_s per trial, the worker pid per result):
    CLI + Ray start to the "launching sweep" line; inside the trainables beyond the trial's
    own time, split into slower training + evaluation (the records' epoch_time_s +
    eval_time_s against in-process: CPU taken by Ray's own processes or other load) and the
    rest (checkpoint and report per epoch; the first trial in a fresh worker reading the data
    files and paying torch's one-off import of torch._dynamo at its first optimiser); in Tune but
    outside any trainable (actor start, scheduling); after the last trial (Ray shutdown,
    export, summary, exit). The distinct worker pids show whether Tune reused one actor
    (reuse_actors=True), and with it data.py's per-process cache of the raw arrays.

    .venv/bin/python bench/sweep_overhead.py [--n N [N ...]] [--repeats R] [--quick]

About 4 minutes on a 2-core CPU with the defaults (--n 8 16); --quick: N = 2, one round.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from te_sweep.core.config import TrialConfig
from te_sweep.core.train import run_trial

TE_SWEEP = str(Path(sys.executable).parent / "te-sweep")
SUBSET, MAX_EPOCHS = 600, 2
SPACE = f"""description: sweep_overhead benchmark, fixed-length trials (target 1.0 never reached)
fixed:
  dataset: fashion-mnist
  subset: {SUBSET}
  max_epochs: {MAX_EPOCHS}
  target_metric: train_acc
  target: 1.0
  mode: grad
search:
  te_scale: {{low: 0.1, high: 4.0, log: true}}
"""
TE_SCALE = 0.63  # about the geometric middle of the searched range (TE cost hardly depends on it)
TARGET_S = 1.0


def trial_config(te_scale: float) -> TrialConfig:
    return TrialConfig(
        dataset="fashion-mnist",
        subset=SUBSET,
        max_epochs=MAX_EPOCHS,
        target_metric="train_acc",
        target=1.0,
        mode="grad",
        te_scale=te_scale,
        device="cpu",
    )


def compute_seconds(records: list[dict]) -> float:
    """Training and evaluation seconds of a trial's epochs, as the trial itself measures them."""
    return sum(r["epoch_time_s"] + r["eval_time_s"] for r in records)


def own_time(te_scale: float) -> tuple[float, float]:
    """(wall seconds, training + evaluation seconds) of one trial in this process, data loading
    included in the wall time."""
    start = time.perf_counter()
    result = run_trial(trial_config(te_scale), lambda record: None)
    return time.perf_counter() - start, compute_seconds(result.records)


@dataclass
class Sweep:
    n: int  # trials: 1 baseline + n-1 TE trials, or 1 TE trial when n == 1
    wall: float = 0.0
    startup: float = 0.0  # start to the "launching sweep" line (CLI, checks, Ray start)
    fit_end: float = 0.0  # start to the last live-table line (Tune finished)
    trainables: float = 0.0  # sum of Tune's time_total_s over the trials
    compute: float = 0.0  # sum of the trials' epoch_time_s + eval_time_s
    pids: set = field(default_factory=set)
    trials: int = 0


def run_sweep(tmp: Path, space: Path, n: int) -> Sweep:
    """`te-sweep launch` as a user runs it; time-stamps every line of its output."""
    samples, baselines = (1, 0) if n == 1 else (n - 1, 1)
    name = f"n{n}"
    cmd = [
        TE_SWEEP,
        "launch",
        str(space),
        "--num-samples",
        str(samples),
        "--baselines",
        str(baselines),
        "--max-concurrent",
        "1",
        "--storage",
        str(tmp / "storage"),
        "--name",
        name,
    ]
    stamped: list[tuple[float, str]] = []
    with open(tmp / f"{name}.stderr", "w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            stamped.append((time.perf_counter() - start, line.rstrip("\n")))
        code = proc.wait()
        wall = time.perf_counter() - start
        if code != 0:
            err.seek(0)
            tail = "\n".join(err.read().splitlines()[-15:])
            out = "\n".join(line for _, line in stamped[-15:])
            sys.exit(f"te-sweep launch exited {code}: {' '.join(cmd)}\n{out}\n{tail}")
    sweep = Sweep(n, wall=wall)
    summary = next(i for i, (_, line) in enumerate(stamped) if line.split(" trials (")[0].isdigit())
    sweep.startup = next(t for t, line in stamped if line.startswith("launching sweep"))
    sweep.fit_end = stamped[summary - 1][0]
    for result_file in (tmp / "storage" / name).glob("*/result.json"):
        results = [json.loads(line) for line in result_file.read_text().splitlines() if line]
        sweep.trainables += results[-1]["time_total_s"]
        sweep.compute += compute_seconds(results)
        sweep.pids.update(r["pid"] for r in results)
        sweep.trials += 1
    if sweep.trials != n:
        sys.exit(f"expected {n} trials under {tmp / 'storage' / name}, found {sweep.trials}")
    return sweep


def fit_line(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares a + b*x."""
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=False)) / sum(
        (x - mx) ** 2 for x in xs
    )
    return my - b * mx, b


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--n",
        type=int,
        nargs="+",
        default=[8, 16],
        help="trials in the larger sweeps (each >= 2); N=1 always runs",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="rounds of in-process trials (TE + baseline); medians are reported",
    )
    parser.add_argument("--quick", action="store_true", help="--n 2 --repeats 1")
    args = parser.parse_args()
    if args.quick:
        args.n, args.repeats = [2], 1
    if min(args.n) < 2 or args.repeats < 1:
        parser.error("--n must be at least 2 and --repeats at least 1")
    sizes = [1, *sorted(set(args.n))]
    torch.set_num_threads(1)  # as a sweep trial with --cpus-per-trial 1

    te_times: list[tuple[float, float]] = []
    base_times: list[tuple[float, float]] = []

    def round_of_trials() -> None:
        te_times.append(own_time(TE_SCALE))
        base_times.append(own_time(0.0))

    sweeps: list[Sweep] = []
    with tempfile.TemporaryDirectory(prefix="te-sweep-bench-sweep-") as tmp_name:
        tmp = Path(tmp_name)
        space = tmp / "fixed_length.yaml"
        space.write_text(SPACE)
        cold, _ = own_time(TE_SCALE)  # reads the data files; later runs use the cached arrays
        # Rounds of in-process trials interleaved with the sweeps, spread over the gaps before,
        # between and after them, so drift in the machine's speed hits both sides alike.
        gaps = len(sizes) + 1
        slots = [i * gaps // args.repeats for i in range(args.repeats)]
        for gap in range(gaps):
            for _ in range(slots.count(gap)):
                round_of_trials()
            if gap < len(sizes):
                sweeps.append(run_sweep(tmp, space, sizes[gap]))

    t_te, t_base = (statistics.median(t for t, _ in times) for times in (te_times, base_times))
    c_te, c_base = (statistics.median(c for _, c in times) for times in (te_times, base_times))

    def reference(sweep: Sweep, te: float, base: float) -> float:
        return te if sweep.n == 1 else base + (sweep.n - 1) * te

    def components(s: Sweep) -> dict[str, float]:
        ref, ref_compute = reference(s, t_te, t_base), reference(s, c_te, c_base)
        return {
            "sweep wall (whole command)": s.wall,
            "trials' own time (in-process)": ref,
            "overhead = wall - own time": s.wall - ref,
            "  CLI + checks + Ray start": s.startup,
            "  in trainables beyond own time": s.trainables - ref,
            "    slower training + evaluation": s.compute - ref_compute,
            "    rest: checkpoints, cold start": (s.trainables - s.compute) - (ref - ref_compute),
            "  in Tune outside trainables": (s.fit_end - s.startup) - s.trainables,
            "  Ray shutdown, export, summary": s.wall - s.fit_end,
            "overhead per trial = overhead / N": (s.wall - ref) / s.n,
        }

    table = [components(s) for s in sweeps]
    print(
        f"torch {torch.__version__}, {os.cpu_count()} CPUs, 1 torch thread per trial; trial: "
        f"Fashion-MNIST subset {SUBSET}, {MAX_EPOCHS} epochs, evaluating 10000 test images"
    )
    print(
        f"one trial's own time (median of {len(te_times)}): TE {t_te:.2f} s, baseline "
        f"{t_base:.2f} s, of which training + evaluation {c_te:.2f} s, {c_base:.2f} s; first "
        f"in-process run (reads the files, first optimiser) {cold:.2f} s"
    )
    print("sweeps: N=1 (1 TE trial), then N trials = 1 baseline + N-1 TE, --max-concurrent 1")
    print()
    print(
        f"{'seconds':34s}"
        + "".join(f"{f'N={s.n}':>8s}" for s in sweeps)
        + f"{'per trial (slope)':>19s}"
    )
    for key in table[0]:
        values = [row[key] for row in table]
        slope = (
            ""
            if key.startswith("overhead per")
            else f"{fit_line([s.n for s in sweeps], values)[1]:19.2f}"
        )
        print(f"{key:34s}" + "".join(f"{v:8.2f}" for v in values) + slope)
    for s in sweeps:
        if s.trials == 1:
            continue
        reuse = (
            "one actor reused for all, so the files are read once (data.py caches "
            "the raw arrays per process)"
            if len(s.pids) == 1
            else "actors not (all) reused: each new one reads the files again"
        )
        print(f"N={s.n}: {s.trials} trials ran in {len(s.pids)} worker process(es), {reuse}")
    overheads = [row["overhead = wall - own time"] for row in table]
    fixed, slope = fit_line([s.n for s in sweeps], overheads)
    print(
        f"least-squares fit overhead(N) = a + b*N over N = {', '.join(str(n) for n in sizes)}:"
        f" a = {fixed:.2f} s fixed, b = {slope:.2f} s per trial"
    )
    if slope < TARGET_S:
        print(
            f"amortised overhead falls to {TARGET_S:g} s per trial from N >= "
            f"a / ({TARGET_S:g} - b) = {fixed / (TARGET_S - slope):.1f} trials"
        )
    print(
        f"target: per-trial overhead b <= {TARGET_S:g} s: {slope:.2f} s, "
        f"{'met' if slope <= TARGET_S else 'NOT met'}"
    )
    for s, row in zip(sweeps[1:], table[1:], strict=False):
        per_trial = row["overhead per trial = overhead / N"]
        print(
            f"target: overhead amortised over N={s.n} trials, (wall - own time) / N <= "
            f"{TARGET_S:g} s: {per_trial:.2f} s, {'met' if per_trial <= TARGET_S else 'NOT met'}"
        )


if __name__ == "__main__":
    main()
