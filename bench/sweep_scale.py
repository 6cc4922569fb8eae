"""Sweep scale: the real driver path at 100, 1,000 and 10,000 trials, with stand-in trials.

Why: te-sweep is for large sweeps on clusters. Everything the driver does per event, per trial
or per epoch (suggesting, scheduling, the live view, checkpointing, snapshots, the export) must
stay flat as a sweep grows, or a 10,000-trial sweep spends its time in bookkeeping.

How: `te-sweep launch`'s own code (sweep.prepare_launch + sweep.run_sweep: the space file, the
SweepSearcher and its sampler, the concurrency policy, the live view writing to a log file, the
checkpoint policy, Tune's snapshots, the Parquet export) with the stand-in trainable of
te_sweep/sweep/standin.py, which trains nothing: it waits --epoch-seconds per epoch, reports the
real trainable's keys and saves a checkpoint of --checkpoint-mib through the same code. The local
Ray declares --concurrency logical CPUs (TE_SWEEP_LOGICAL_CPUS), so that many one-CPU trials
run at once on this 2-core machine (a stand-in worker is about 150 MB: memory, not cores,
bounds it). Each N runs in a fresh subprocess (its own Ray, its own peak RSS). Measured:
  - wall: run_sweep from the call to its return (Ray start to export); ideal: the trials' own
    waiting, sum(epochs x epoch-seconds) / concurrency;
  - overhead per trial: the i-th trial to start (i > concurrency) takes the slot freed by the
    (i - concurrency)-th to finish, so start[i] - finish[i - concurrency] is the time that slot
    stood idle (the driver noticing the end, telling Optuna, asking for a new suggestion,
    Tune starting the trial on a reused actor); plus the trial's own time beyond its waiting
    (reports, checkpoint writes). Means over the first and the last 10% of trials;
  - suggestion p50/p95: the searcher's Optuna ask timed in the driver, over the last 10% of
    the sweep's configurations (i.e. with about N trials finished, one run each by default:
    --repeats 1, so N trials are N Optuna trials); tell: the searcher's on_trial_complete;
  - seconds from the call until `concurrency` trials ran at once (from started_at/finished_at),
    and the most that ever ran at once;
  - the driver's CPU seconds per trial, its peak RSS, and its RSS growth per finished trial
    (between a tenth and nine tenths of the trials finished: what 10,000 trials cost beyond
    a small sweep);
  - output: bytes and lines the live view wrote to the log, per trial;
  - disk: bytes under the sweep directory at the end, per trial, and the most checkpoint
    files any trial held, sampled every 20 s during the run and at the end;
  - Tune's experiment snapshots: how many, their total and last duration, the size of the last
    experiment_state-*.json and searcher-state-*.pkl;
  - export: export_sweep re-run on the finished sweep.
Then the export alone on a sweep directory synthesised in Tune's on-disk format from the
finished run's files: --export-trials trials x --export-epochs epochs (default 10,000 x 50).

Targets: suggestion p95 < 0.2 s at 10,000 finished trials; overhead per trial at 10,000 within
1.5x of that at 100; full concurrency within 30 s; output <= 0.5 KB per trial plus a constant;
<= 2 checkpoints per trial; export of 10,000 x 50 < 10 s.

    .venv/bin/python bench/sweep_scale.py [--quick] [--n 100 1000 10000] [--concurrency 48]
                                          [--compare-untrimmed] [--compare-heap]

--compare-untrimmed runs each N twice, one after the other: first with Tune's bookkeeping of
ended trials as Tune keeps it (te_sweep/sweep/ended_trials.py switched off in that driver: its
statistics and copies kept, its ResultGrid's frames read, the heap never released), then as
te-sweep launches it; the targets are checked on the last. --compare-heap runs each N first
with everything but the heap's release (ended_trials.release_heap off), then as launched.

--quick: N = 100 and 1,000 and an export of 1,000 x 50. The full run takes about two hours on
2 cores (10,000 trials at 48 / 36 s: the trials' own time; run nothing else meanwhile, the
numbers move with any other load) and writes about 12 GB (1 MiB final checkpoints: 10,000 x
1 MiB, plus the export's synthesised 860 MB); everything is under --workdir (a temporary
directory by default), which is deleted at the end unless --keep.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine_line

REPEATS = 1  # one run per configuration: N trials are N Optuna trials (the hardest case)
SPACE = """description: sweep_scale benchmark space (stand-in trials)
fixed:
  dataset: fashion-mnist
  subset: 3000
  max_epochs: {epochs}
  target_metric: train_acc
  target: 0.65
  mode: grad
search:
  pair_fraction: {{low: 0.02, high: 1.0, log: true}}
  window: {{low: 100, high: 4096, log: true}}
  threshold: {{low: 0.25, high: 2.0}}
  te_scale: {{low: 0.05, high: 300.0, log: true}}
"""
TARGETS = {
    "suggest_p95_s": 0.2,
    "overhead_growth": 1.5,
    "full_concurrency_s": 30.0,
    "output_bytes_per_trial": 512,
    "checkpoints_per_trial": 2,
    "export_s": 10.0,
    "driver_peak_mib": 1e9 / 2**20,  # issue 19: 1 GB (953.7 MiB), Tune and its export together
}
CHECKPOINT_SCAN_S = 20.0


# ------------------------------------------------------------------ one sweep (subprocess)
class Timings:
    """Driver-side timings collected by wrapping the searcher's and Tune's methods."""

    def __init__(self, n: int) -> None:
        self.finished = 0
        self.suggest: list[tuple[int, float]] = []  # (trials finished so far, seconds)
        self.tell: list[float] = []
        self.snapshots: list[float] = []
        # The driver's RSS when a tenth and when nine tenths of the trials had finished.
        self.rss_at = {max(1, n // 10): 0.0, max(2, 9 * n // 10): 0.0}
        # When the sweep's own export starts: the driver's peak so far (Tune's), its RSS then.
        self.peak_tune_mib = float("nan")
        self.rss_before_export_mib = float("nan")

    def install(self) -> None:
        from ray.tune.execution.tune_controller import TuneController

        import te_sweep.results.export as export
        from te_sweep.sweep.searcher import SweepSearcher

        timings = self
        ask, complete = SweepSearcher._ask, SweepSearcher.on_trial_complete
        save = TuneController.save_to_dir

        def timed_ask(searcher: Any) -> None:
            start = time.perf_counter()
            ask(searcher)
            timings.suggest.append((timings.finished, time.perf_counter() - start))

        def timed_complete(searcher: Any, *args: Any, **kwargs: Any) -> None:
            start = time.perf_counter()
            complete(searcher, *args, **kwargs)
            timings.tell.append(time.perf_counter() - start)
            timings.finished += 1
            if timings.finished in timings.rss_at:
                timings.rss_at[timings.finished] = current_rss_mib()

        def timed_save(controller: Any) -> None:
            start = time.perf_counter()
            save(controller)
            timings.snapshots.append(time.perf_counter() - start)

        def first_export(*args: Any, **kwargs: Any) -> Any:
            timings.peak_tune_mib = peak_rss_mib()
            timings.rss_before_export_mib = current_rss_mib()
            export.export_sweep = export_sweep  # the bench's own export is not the driver's
            return export_sweep(*args, **kwargs)

        SweepSearcher._ask, SweepSearcher.on_trial_complete = timed_ask, timed_complete
        TuneController.save_to_dir = timed_save
        export_sweep = export.export_sweep
        export.export_sweep = first_export


def peak_rss_mib() -> float:
    """This process's largest resident memory so far (Linux), MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mib() -> float:
    """This process's resident memory now (Linux), MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def run_label(n: int, untrimmed: bool, keep_heap: bool = False) -> str:
    """How a run is named in the table and its directory: N; Nu for the untrimmed side, Nh for
    the side that never releases the heap."""
    return f"{n}{'u' if untrimmed else ''}{'h' if keep_heap else ''}"


def rss_growth_kib(rss_at: dict[int, float]) -> float:
    """The driver's memory per extra finished trial, between a tenth and nine tenths."""
    (first, at_first), (last, at_last) = sorted(rss_at.items())
    return (at_last - at_first) * 1024 / (last - first)


class LogFile:
    """The live view's output as a log file (picklable: Tune pickles its callbacks)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, line: str) -> None:
        with self.path.open("a") as log:
            log.write(line + "\n")


def checkpoint_counts(sweep: Path) -> int:
    """The most checkpoint files any trial directory holds right now."""
    from te_sweep.sweep.checkpoints import PREFIX

    most = 0
    for entry in os.scandir(sweep):
        if entry.is_dir():
            most = max(most, sum(1 for f in os.scandir(entry.path) if f.name.startswith(PREFIX)))
    return most


def directory_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def slot_overheads(rows: list[dict], concurrency: int, epoch_s: float) -> list[float]:
    """Per trial, in start order: idle time of its slot before it + its time beyond waiting."""
    timed = [r for r in rows if r["started_at"] and r["finished_at"]]
    starts = sorted(r["started_at"].timestamp() for r in timed)
    finishes = sorted(r["finished_at"].timestamp() for r in timed)
    by_start = sorted(timed, key=lambda r: r["started_at"])
    extra = [
        (r["finished_at"] - r["started_at"]).total_seconds() - r["epochs_run"] * epoch_s
        for r in by_start
    ]
    return [
        starts[i] - finishes[i - concurrency] + extra[i] for i in range(concurrency, len(by_start))
    ]


def concurrency_reached(rows: list[dict], concurrency: int, t0: float) -> tuple[float | None, int]:
    """Seconds after t0 when `concurrency` trials first ran at once, and the most at once."""
    events = sorted(
        [(r["started_at"].timestamp(), 1) for r in rows if r["started_at"]]
        + [(r["finished_at"].timestamp(), -1) for r in rows if r["finished_at"]],
        key=lambda e: (e[0], e[1]),
    )
    running, most, full = 0, 0, None
    for when, step in events:
        running += step
        most = max(most, running)
        if running >= concurrency and full is None:
            full = when - t0
    return full, most


def run_one(
    n: int,
    concurrency: int,
    epochs: int,
    epoch_s: float,
    checkpoint_mib: float,
    repeats: int,
    workdir: Path,
    max_concurrent: int | None = None,
    untrimmed: bool = False,
    keep_heap: bool = False,
) -> dict[str, Any]:
    os.environ["TE_SWEEP_LOGICAL_CPUS"] = str(concurrency)
    import contextlib

    import te_sweep.sweep.ended_trials as ended_trials

    if untrimmed:  # Tune's bookkeeping of ended trials as Tune keeps it: the "before" side
        ended_trials.trim = lambda trial: False
        ended_trials.no_result_frames = lambda: contextlib.nullcontext(False)
    if untrimmed or keep_heap:  # the heap's free pages kept
        ended_trials.release_heap = lambda: False
    from te_sweep.results.export import export_sweep
    from te_sweep.sweep.launch import SweepOptions, prepare_launch
    from te_sweep.sweep.run import run_sweep
    from te_sweep.sweep.standin import StandIn

    timings = Timings(n)
    timings.install()
    space = workdir / "scale.yaml"
    space.write_text(SPACE.format(epochs=epochs))
    log_path = workdir / "sweep.log"
    prepared = prepare_launch(
        str(space),
        SweepOptions(
            num_samples=(n - repeats) // repeats,
            repeats=repeats,
            storage=str(workdir / "results"),
            name="scale",
            seed=0,
            max_concurrent=max_concurrent,
        ),
    )
    sweep = workdir / "results" / "scale"
    most_checkpoints = [0]
    done = threading.Event()

    def watch() -> None:
        while not done.wait(CHECKPOINT_SCAN_S):
            if sweep.exists():
                most_checkpoints[0] = max(most_checkpoints[0], checkpoint_counts(sweep))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    standin = StandIn(epoch_seconds=epoch_s, checkpoint_bytes=int(checkpoint_mib * 2**20))
    t0 = time.time()
    cpu0 = time.process_time()
    export = run_sweep(prepared, LogFile(log_path), standin.trainable())
    wall = time.time() - t0
    driver_cpu = time.process_time() - cpu0
    peak_driver = peak_rss_mib()  # Tune and the sweep's export: the driver's whole life
    done.set()
    most_checkpoints[0] = max(most_checkpoints[0], checkpoint_counts(sweep))
    start = time.perf_counter()
    export_sweep(prepared.sweep_dir)
    export_s = time.perf_counter() - start
    rows = export["rows"]
    overheads = slot_overheads(rows, concurrency, epoch_s)
    tenth = max(1, n // 10)
    full_s, most = concurrency_reached(rows, concurrency, t0)
    last_suggest = [s for f, s in timings.suggest[-max(1, len(timings.suggest) // 10) :]]
    states = sorted(sweep.glob("experiment_state-*.json"))
    searcher_states = sorted(sweep.glob("searcher-state-*.pkl"))
    log_bytes = log_path.stat().st_size
    return {
        "n": n,
        "concurrency": concurrency,
        "wall_s": wall,
        "ideal_s": sum(r["epochs_run"] for r in rows) * epoch_s / concurrency,
        "statuses": {s: sum(r["status"] == s for r in rows) for s in {r["status"] for r in rows}},
        "overhead_first_s": statistics.mean(overheads[:tenth]) if overheads else None,
        "overhead_last_s": statistics.mean(overheads[-tenth:]) if overheads else None,
        "suggest_p50_s": percentile(last_suggest, 0.5),
        "suggest_p95_s": percentile(last_suggest, 0.95),
        "suggest_at_finished": timings.suggest[-1][0] if timings.suggest else 0,
        "tell_p95_s": percentile(timings.tell[-tenth:], 0.95),
        "full_concurrency_s": full_s,
        "most_at_once": most,
        "driver_cpu_s_per_trial": driver_cpu / n,
        "peak_rss_mib": peak_driver,
        "peak_rss_tune_mib": timings.peak_tune_mib,
        "rss_before_export_mib": timings.rss_before_export_mib,
        "rss_growth_kib_per_trial": rss_growth_kib(timings.rss_at),
        "untrimmed": untrimmed,
        "keep_heap": keep_heap,
        "output_bytes_per_trial": log_bytes / n,
        "output_lines": sum(1 for _ in log_path.open()),
        "disk_bytes_per_trial": directory_bytes(sweep) / n,
        "max_checkpoints_per_trial": most_checkpoints[0],
        "snapshots": len(timings.snapshots),
        "snapshot_total_s": sum(timings.snapshots),
        "snapshot_last_s": timings.snapshots[-1] if timings.snapshots else None,
        "experiment_state_bytes": states[-1].stat().st_size if states else 0,
        "searcher_state_bytes": searcher_states[-1].stat().st_size if searcher_states else 0,
        "export_s": export_s,
    }


# ------------------------------------------------------------------ synthesised export
def synthesize(template: Path, target: Path, trials: int, epochs: int) -> None:
    """A sweep directory in Tune's on-disk format: `trials` copies of one finished trial of
    `template`, each with `epochs` result lines and a configuration of its own (as in a sweep
    with one seed per configuration: configs.parquet and optuna.db get a row per trial), an
    experiment state listing them all, and the manifest (te_sweep.json) saying that many
    trials were asked for."""
    manifest = json.loads((template / "te_sweep.json").read_text())
    manifest["options"].update(num_samples=trials, repeats=1)
    target.mkdir(parents=True)
    (target / "te_sweep.json").write_text(json.dumps(manifest))
    source = next(p for p in sorted(template.iterdir()) if p.name.startswith("te_"))
    params = json.loads((source / "params.json").read_text())
    line = json.loads((source / "result.json").read_text().splitlines()[0])
    state_file = sorted(template.glob("experiment_state-*.json"))[-1]
    state = json.loads(state_file.read_text())
    trial_json, meta_json = next(
        pair for pair in state["trial_data"] if json.loads(pair[0])["custom_dirname"] == source.name
    )
    trial_state = json.loads(trial_json)
    entries = []
    for i in range(trials):
        trial_id = f"s{i:07d}"
        directory = target / f"te_{trial_id}"
        directory.mkdir()
        (directory / "params.json").write_text(json.dumps({**params, "config_id": f"c{i:07d}"}))
        lines = []
        for epoch in range(1, epochs + 1):
            lines.append(
                json.dumps(
                    {
                        **line,
                        "trial_id": trial_id,
                        "epoch": epoch,
                        "training_iteration": epoch,
                        "trial_status": "running" if epoch < epochs else "censored",
                    }
                )
            )
        (directory / "result.json").write_text("\n".join(lines) + "\n")
        entries.append(
            [
                json.dumps(
                    {
                        **trial_state,
                        "trial_id": trial_id,
                        "custom_dirname": directory.name,
                        "status": "TERMINATED",
                    }
                ),
                meta_json,
            ]
        )
    state["trial_data"] = entries
    (target / state_file.name).write_text(json.dumps(state))


def time_export(template: Path, workdir: Path, trials: int, epochs: int) -> dict[str, Any]:
    from te_sweep.results.export import export_sweep
    from te_sweep.results.storage import SweepDir

    target = workdir / "synthetic" / "export"
    shutil.rmtree(target.parent, ignore_errors=True)
    start = time.perf_counter()
    synthesize(template, target, trials, epochs)
    made_s = time.perf_counter() - start
    start = time.perf_counter()
    result = export_sweep(SweepDir(str(target.parent), target.name))
    export_s = time.perf_counter() - start
    return {
        "trials": trials,
        "epochs": epochs,
        "rows": len(result["rows"]),
        "synthesise_s": made_s,
        "export_s": export_s,
        "result_bytes": directory_bytes(target),
    }


# ------------------------------------------------------------------ report
def output_slope(small: dict[str, Any], large: dict[str, Any]) -> float:
    """Bytes of output per extra trial between two sweep sizes (per trial if only one)."""
    if large["n"] == small["n"]:
        return large["output_bytes_per_trial"]
    return (
        large["output_bytes_per_trial"] * large["n"] - small["output_bytes_per_trial"] * small["n"]
    ) / (large["n"] - small["n"])


def report(results: list[dict[str, Any]], exported: dict[str, Any] | None) -> None:
    print(
        f"{'N':>6} {'wall s':>8} {'ideal s':>8} {'ovh first':>9} {'ovh last':>9} "
        f"{'sugg p50':>9} {'sugg p95':>9} {'full s':>7} {'cpu s/tr':>8} {'RSS MiB':>8} "
        f"{'out B/tr':>8} {'disk KB/tr':>10} {'ckpt':>4} {'state MB':>8} {'export s':>8} "
        f"{'state KB/tr':>11} {'RSS KiB/tr':>10}"
    )
    for r in results:
        label = run_label(r["n"], r.get("untrimmed", False), r.get("keep_heap", False))
        print(
            f"{label:>6} {r['wall_s']:>8.1f} {r['ideal_s']:>8.1f} "
            f"{r['overhead_first_s']:>9.3f} {r['overhead_last_s']:>9.3f} "
            f"{r['suggest_p50_s']:>9.4f} {r['suggest_p95_s']:>9.4f} "
            f"{r['full_concurrency_s'] or float('nan'):>7.1f} "
            f"{r['driver_cpu_s_per_trial']:>8.3f} {r['peak_rss_mib']:>8.0f} "
            f"{r['output_bytes_per_trial']:>8.0f} {r['disk_bytes_per_trial'] / 1024:>10.0f} "
            f"{r['max_checkpoints_per_trial']:>4} {r['experiment_state_bytes'] / 1e6:>8.1f} "
            f"{r['export_s']:>8.2f} {r['experiment_state_bytes'] / r['n'] / 1e3:>11.1f} "
            f"{r['rss_growth_kib_per_trial']:>10.1f}"
        )
    if any(r.get("untrimmed") for r in results):
        print(
            "Nu: the same N with Tune's bookkeeping of ended trials untrimmed "
            "(te_sweep/sweep/ended_trials.py off: the before side)"
        )
    if any(r.get("keep_heap") for r in results):
        print("Nh: the same N without releasing the heap's free pages (release_heap off)")
    for r in results:
        print(
            f"N={run_label(r['n'], r.get('untrimmed', False), r.get('keep_heap', False))}: "
            f"at most {r['most_at_once']} "
            f"trials at once; statuses "
            f"{r['statuses']}; suggestions timed at up to "
            f"{r['suggest_at_finished']} finished trials; tell p95 {r['tell_p95_s']:.4f} s; "
            f"{r['snapshots']} experiment snapshots, {r['snapshot_total_s']:.1f} s in all, "
            f"last {r['snapshot_last_s'] or 0:.2f} s; searcher state "
            f"{r['searcher_state_bytes'] / 1e6:.2f} MB; {r['output_lines']} log lines; "
            f"driver peak {r['peak_rss_mib']:.0f} MiB ({r['peak_rss_tune_mib']:.0f} while "
            f"Tune ran, {r['rss_before_export_mib']:.0f} as the export began)"
        )
    if exported:
        print(
            f"export of a synthesised sweep, {exported['trials']} trials x "
            f"{exported['epochs']} epochs ({exported['result_bytes'] / 1e6:.0f} MB of Tune "
            f"files): {exported['export_s']:.2f} s"
        )
    print("targets:")
    results = [r for r in results if not (r.get("untrimmed") or r.get("keep_heap"))]
    small, large = results[0], results[-1]
    checks = [
        (
            f"suggestion p95 at N={large['n']} < {TARGETS['suggest_p95_s']} s",
            large["suggest_p95_s"] < TARGETS["suggest_p95_s"],
            f"{large['suggest_p95_s']:.4f} s",
        ),
        (
            f"overhead per trial at N={large['n']} within {TARGETS['overhead_growth']}x of "
            f"N={small['n']}",
            large["overhead_last_s"]
            <= TARGETS["overhead_growth"] * max(small["overhead_last_s"], 1e-9),
            f"{large['overhead_last_s']:.3f} s vs {small['overhead_last_s']:.3f} s",
        ),
        (
            f"full concurrency within {TARGETS['full_concurrency_s']:.0f} s",
            all((r["full_concurrency_s"] or 1e9) <= TARGETS["full_concurrency_s"] for r in results),
            ", ".join(f"{r['full_concurrency_s'] or float('nan'):.1f} s" for r in results),
        ),
        (
            "output <= 0.5 KB per trial plus a constant (slope between the smallest and largest N)",
            output_slope(small, large) <= TARGETS["output_bytes_per_trial"],
            f"{output_slope(small, large):.0f} B per trial",
        ),
        (
            f"<= {TARGETS['checkpoints_per_trial']} checkpoints per trial",
            all(
                r["max_checkpoints_per_trial"] <= TARGETS["checkpoints_per_trial"] for r in results
            ),
            str(max(r["max_checkpoints_per_trial"] for r in results)),
        ),
    ]
    checks.append(
        (
            f"driver peak at N={large['n']} <= 1 GB ({TARGETS['driver_peak_mib']:.0f} MiB)",
            large["peak_rss_mib"] <= TARGETS["driver_peak_mib"],
            f"{large['peak_rss_mib']:.0f} MiB",
        )
    )
    if exported:
        checks.append(
            (
                f"export of {exported['trials']} x {exported['epochs']} < "
                f"{TARGETS['export_s']:.0f} s",
                exported["export_s"] < TARGETS["export_s"],
                f"{exported['export_s']:.2f} s",
            )
        )
    for name, ok, value in checks:
        print(f"  {'met    ' if ok else 'NOT MET'}  {name}: {value}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--quick", action="store_true", help="N = 100 and 1000")
    parser.add_argument("--concurrency", type=int, default=48)
    parser.add_argument("--epochs", type=int, default=3, help="max_epochs of the space")
    parser.add_argument(
        "--epoch-seconds",
        type=float,
        default=12.0,
        help="long enough that a trial outlasts the start of every worker: "
        "on 2 cores Ray starts about 2 workers a second, and Tune drops a "
        "trial's pending worker when a finished trial's frees first",
    )
    parser.add_argument("--repeats", type=int, default=REPEATS)
    parser.add_argument(
        "--max-concurrent",
        type=int,
        default=None,
        help="the sweep's --max-concurrent (default: the policy's own)",
    )
    parser.add_argument("--checkpoint-mib", type=float, default=1.0)
    parser.add_argument("--export-trials", type=int, default=None)
    parser.add_argument("--export-epochs", type=int, default=50)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep --workdir")
    parser.add_argument(
        "--compare-untrimmed",
        action="store_true",
        help="run each N also with Tune's bookkeeping of ended trials untrimmed, just before",
    )
    parser.add_argument(
        "--compare-heap",
        action="store_true",
        help="run each N also without releasing the heap's free pages, just before",
    )
    parser.add_argument("--untrimmed", action="store_true", help=argparse.SUPPRESS)  # internal
    parser.add_argument("--keep-heap", action="store_true", help=argparse.SUPPRESS)  # internal
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: one N
    parser.add_argument("--json", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        result = run_one(
            args.one,
            args.concurrency,
            args.epochs,
            args.epoch_seconds,
            args.checkpoint_mib,
            args.repeats,
            args.workdir,
            args.max_concurrent,
            args.untrimmed,
            args.keep_heap,
        )
        args.json.write_text(json.dumps(result))
        return
    sizes = [100, 1000] if args.quick else args.n
    export_trials = args.export_trials or (1000 if args.quick else 10000)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="te-sweep-scale-"))
    print(machine_line())
    print(
        f"sweep_scale: stand-in trials, {args.concurrency} at once, max_epochs "
        f"{args.epochs}, {args.epoch_seconds:g} s per epoch, {args.checkpoint_mib:g} MiB "
        f"checkpoints, {args.repeats} run(s) per configuration; workdir {workdir}",
        flush=True,
    )
    results = []
    try:
        sides = [(False, False)]  # (untrimmed, keep_heap): as launched, last
        if args.compare_heap:
            sides.insert(0, (False, True))
        if args.compare_untrimmed:
            sides.insert(0, (True, False))
        for n, (untrimmed, keep_heap) in [(n, side) for n in sizes for side in sides]:
            one = workdir / f"n{run_label(n, untrimmed, keep_heap)}"
            shutil.rmtree(one, ignore_errors=True)
            one.mkdir(parents=True)
            out = one / "result.json"
            subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--one",
                    str(n),
                    "--json",
                    str(out),
                    "--workdir",
                    str(one),
                    "--concurrency",
                    str(args.concurrency),
                    "--epochs",
                    str(args.epochs),
                    "--epoch-seconds",
                    str(args.epoch_seconds),
                    "--checkpoint-mib",
                    str(args.checkpoint_mib),
                    "--repeats",
                    str(args.repeats),
                    *(
                        ["--max-concurrent", str(args.max_concurrent)]
                        if args.max_concurrent
                        else []
                    ),
                    *(["--untrimmed"] if untrimmed else []),
                    *(["--keep-heap"] if keep_heap else []),
                ],
                check=True,
            )
            results.append(json.loads(out.read_text()))
            print(
                f"N={run_label(n, untrimmed, keep_heap)} done: wall {results[-1]['wall_s']:.1f} s",
                flush=True,
            )
        template = workdir / f"n{sizes[0]}" / "results" / "scale"
        exported = time_export(template, workdir, export_trials, args.export_epochs)
        report(results, exported)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
