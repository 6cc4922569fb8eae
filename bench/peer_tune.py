"""te-sweep's driver against plain Ray Tune on the same stand-in workload, side by side.

What a user gives up by launching through te-sweep instead of writing the Tune script
themselves: the same N trials of stand-in work (each epoch waits --epoch-seconds, then reports
and saves a checkpoint of --checkpoint-mib through Tune), the same concurrency, NSGA-II on two
objectives, run

  - through te-sweep's driver (`te-sweep launch`'s code: space file, SweepSearcher, live view
    to a log file, checkpoint policy, disk guard, Parquet export at the end; the stand-in
    trainable of te_sweep/sweep/standin.py), and
  - through plain Ray Tune: a function trainable that waits, reports two objectives and saves
    a checkpoint directory each epoch, OptunaSearch with NSGAIISampler, ConcurrencyLimiter,
    reuse_actors, Tune's own JSON logs; nothing exported.

Each side runs in a fresh process with its own local Ray (the same logical CPUs: the stand-in
workers wait, they do not compute). Prints per side: wall seconds, the ideal (epochs x epoch
seconds / concurrency), overhead per trial slot ((wall - ideal) / (N / concurrency)), the
driver's CPU seconds per trial, its peak RSS, the experiment state's bytes per trial, and the
ratio of the walls; the target is te-sweep's wall at most 1.10x the peer's at N = 1,000.

    .venv/bin/python bench/peer_tune.py [--n 1000] [--concurrency 24] [--epochs 3]
        [--epoch-seconds 3] [--checkpoint-mib 1]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine_line

TARGET_RATIO = 1.10  # te-sweep's wall over the peer's, at most (at N = 1,000)
SIDES = ("te-sweep", "plain Tune")


# ------------------------------------------------------------------ the plain Tune side
def peer_trainable(epochs: int, epoch_s: float, checkpoint_bytes: int) -> Any:
    """A plain Tune function trainable doing the stand-in's work: wait, report two objectives
    that depend on the parameters (so NSGA-II has a front), save a checkpoint each epoch."""

    def trainable(config: dict[str, Any]) -> None:
        from ray import tune

        start = 0
        checkpoint = tune.get_checkpoint()
        if checkpoint is not None:
            with checkpoint.as_directory() as directory:
                start = json.loads((Path(directory) / "state.json").read_text())["epoch"]
        payload = os.urandom(checkpoint_bytes)
        for epoch in range(start + 1, epochs + 1):
            time.sleep(epoch_s)
            speed = config["te_scale"] / (1 + config["te_scale"])
            metrics = {
                "epoch": epoch,
                "objective_epochs": epochs + 1 - speed * epoch,
                "te_overhead": config["pair_fraction"] * config["window"] / 4096,
            }
            with tempfile.TemporaryDirectory() as directory:
                (Path(directory) / "state.json").write_text(json.dumps({"epoch": epoch}))
                (Path(directory) / "payload.bin").write_bytes(payload)
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))

    return trainable


def run_peer(
    n: int, concurrency: int, epochs: int, epoch_s: float, checkpoint_mib: float, workdir: Path
) -> dict[str, Any]:
    import optuna
    import ray
    from ray import tune
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    ray.init(num_cpus=concurrency, include_dashboard=False, log_to_driver=False)
    space = {
        "pair_fraction": tune.loguniform(0.02, 1.0),
        "window": tune.lograndint(100, 4096),
        "threshold": tune.uniform(0.25, 2.0),
        "te_scale": tune.loguniform(0.05, 300.0),
    }
    searcher = ConcurrencyLimiter(
        OptunaSearch(
            metric=["objective_epochs", "te_overhead"],
            mode=["min", "min"],
            sampler=optuna.samplers.NSGAIISampler(seed=0),
        ),
        max_concurrent=concurrency,
    )
    trainable = tune.with_resources(
        peer_trainable(epochs, epoch_s, int(checkpoint_mib * 2**20)), {"cpu": 1}
    )
    tuner = tune.Tuner(
        trainable,
        param_space=space,
        tune_config=tune.TuneConfig(search_alg=searcher, num_samples=n, reuse_actors=True),
        run_config=tune.RunConfig(
            name="peer",
            storage_path=str(workdir / "results"),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            verbose=0,
        ),
    )
    t0, cpu0 = time.time(), time.process_time()
    results = tuner.fit()
    wall, cpu = time.time() - t0, time.process_time() - cpu0
    epochs_run = sum(r.metrics.get("epoch", 0) for r in results if r.metrics)
    ray.shutdown()
    return {
        "wall_s": wall,
        "driver_cpu_s": cpu,
        "epochs_run": epochs_run,
        "state_bytes": _state_bytes(workdir / "results" / "peer"),
    }


# ------------------------------------------------------------------ the te-sweep side
def run_te_sweep(
    n: int, concurrency: int, epochs: int, epoch_s: float, checkpoint_mib: float, workdir: Path
) -> dict[str, Any]:
    from sweep_scale import SPACE, LogFile

    os.environ["TE_SWEEP_LOGICAL_CPUS"] = str(concurrency)
    from te_sweep.sweep.launch import SweepOptions, prepare_launch
    from te_sweep.sweep.run import run_sweep
    from te_sweep.sweep.standin import StandIn

    space = workdir / "peer.yaml"
    space.write_text(SPACE.format(epochs=epochs))
    prepared = prepare_launch(
        str(space),
        SweepOptions(
            num_samples=n - 1,
            repeats=1,
            storage=str(workdir / "results"),
            name="te-sweep",
            seed=0,
            max_concurrent=concurrency,
        ),
    )
    standin = StandIn(epoch_seconds=epoch_s, checkpoint_bytes=int(checkpoint_mib * 2**20))
    t0, cpu0 = time.time(), time.process_time()
    export = run_sweep(prepared, LogFile(workdir / "sweep.log"), standin.trainable())
    wall, cpu = time.time() - t0, time.process_time() - cpu0
    return {
        "wall_s": wall,
        "driver_cpu_s": cpu,
        "epochs_run": sum(r["epochs_run"] for r in export["rows"]),
        "state_bytes": _state_bytes(workdir / "results" / "te-sweep"),
    }


def _state_bytes(sweep: Path) -> int:
    states = sorted(sweep.glob("experiment_state-*.json"))
    return states[-1].stat().st_size if states else 0


# ------------------------------------------------------------------ both, side by side
def run_side(side: str, args: argparse.Namespace) -> dict[str, Any]:
    """One side in a fresh interpreter (its own Ray, its own peak RSS)."""
    with tempfile.TemporaryDirectory(prefix="peer-tune-") as workdir:
        out = Path(workdir) / "result.json"
        done = subprocess.run(
            [
                sys.executable,
                __file__,
                "--one",
                side,
                "--json",
                str(out),
                "--n",
                str(args.n),
                "--concurrency",
                str(args.concurrency),
                "--epochs",
                str(args.epochs),
                "--epoch-seconds",
                str(args.epoch_seconds),
                "--checkpoint-mib",
                str(args.checkpoint_mib),
            ],
            capture_output=True,
            text=True,
        )  # Ray's and Tune's own logging: shown on failure
        if done.returncode != 0:
            sys.exit(f"{side} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        return json.loads(out.read_text())


def one(args: argparse.Namespace) -> None:
    run = run_te_sweep if args.one == SIDES[0] else run_peer
    with tempfile.TemporaryDirectory(prefix="peer-side-") as workdir:
        result = run(
            args.n,
            args.concurrency,
            args.epochs,
            args.epoch_seconds,
            args.checkpoint_mib,
            Path(workdir),
        )
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    args.json.write_text(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=24)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--epoch-seconds", type=float, default=3.0)
    parser.add_argument("--checkpoint-mib", type=float, default=1.0)
    parser.add_argument("--one", choices=SIDES, help=argparse.SUPPRESS)  # internal: one side
    parser.add_argument("--json", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one(args)
        return
    print(machine_line())
    print(
        f"{args.n} stand-in trials, {args.concurrency} at once, {args.epochs} epochs of "
        f"{args.epoch_seconds:g} s, {args.checkpoint_mib:g} MiB checkpoints, NSGA-II on two "
        "objectives; each side in a fresh process, one after the other"
    )
    results = {side: run_side(side, args) for side in SIDES}
    print(
        f"{'side':11s} {'wall s':>8s} {'ideal s':>8s} {'ovh/slot s':>10s} {'cpu s/tr':>9s} "
        f"{'RSS MiB':>8s} {'state KB/tr':>11s}"
    )
    for side, r in results.items():
        ideal = r["epochs_run"] * args.epoch_seconds / args.concurrency
        slots = args.n / args.concurrency
        print(
            f"{side:11s} {r['wall_s']:8.1f} {ideal:8.1f} {(r['wall_s'] - ideal) / slots:10.3f} "
            f"{r['driver_cpu_s'] / args.n:9.3f} {r['peak_rss_mib']:8.0f} "
            f"{r['state_bytes'] / args.n / 1024:11.1f}"
        )
    ratio = results[SIDES[0]]["wall_s"] / results[SIDES[1]]["wall_s"]
    verdict = "met" if ratio <= TARGET_RATIO else "not met"
    print(
        f"te-sweep's wall / plain Tune's: {ratio:.3f} (target <= {TARGET_RATIO} at N = 1,000; "
        f"here N = {args.n}): {verdict}"
    )


if __name__ == "__main__":
    main()
