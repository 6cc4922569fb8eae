"""Report scale: `te-sweep report` (report.write_report) on a synthesised sweep of N
configurations, timed.

Why: the report is written at the end of every sweep and re-run by hand; at 2,000
configurations it once took 53 s (issue 18). The target is under 20 s at 10,000
configurations (30,000 TE runs, 3 seeds) on 2 cores. Measured here (2-core Xeon, AVX-512,
load about 7 from other work, 2026-12-06), `te-sweep report` on this synthetic sweep: 52 s
before (profile: 40 s in the timeline's one barh per trial and in drawing those 30,000
patches, 5 s in PED-ANOVA), 8.4 s after (4.1 s of CPU; about 4 s of it write_report in a warm
process): running counts instead of bars, one NaN-broken line for 10,000 error bars, only
the drawn learning curves' epochs read as rows.

How: write_sweep() synthesises trials.parquet, epochs.parquet and configs.parquet in the
exported schemas (export.TRIALS_SCHEMA, EPOCHS_SCHEMA, configs.configs_schema, the same
schema metadata), with configs.parquet's rows computed by the real configs.config_rows from the
synthetic trials (so the statistics, ranks and Pareto flags are the export's own). The trials
are spread over NODES nodes of GPUS_PER_NODE GPUs, one trial per GPU at a time, each epoch
EPOCH_SECONDS long; a few trials are pruned or errored; te_scale has a real effect (larger is
faster, up to 30%), pair_fraction costs overhead. Then write_report is timed (best of
--repeat) and its profile's top entries printed with --profile. tests/results/test_report.py uses
write_sweep at the `make sweep` size, so this synthesiser is itself tested.

    .venv/bin/python bench/report_scale.py [--configs 10000] [--repeats 3] [--profile]
    .venv/bin/python bench/report_scale.py --importance [4 8 16 32 64 128] [--draws 40]

--importance measures instead how stable PED-ANOVA's importances are at N complete
configurations (importance_stability), which sets importance.MIN_IMPORTANCE_CONFIGS.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import json
import pstats
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine_line

from te_sweep.core.space import space_from_text
from te_sweep.results.configs import CONFIGS_FILE, config_rows, configs_schema
from te_sweep.results.export import (
    EPOCHS_FILE,
    EPOCHS_SCHEMA,
    TRIALS_FILE,
    TRIALS_SCHEMA,
    _metadata,
)
from te_sweep.results.storage import SweepDir

SPACE_TEXT = """description: synthetic sweep for bench/report_scale.py
fixed:
  dataset: fashion-mnist
  subset: 3000
  max_epochs: 6
  target_metric: train_acc
  target: 0.75
  device: auto
search:
  pair_fraction: {low: 0.02, high: 1.0, log: true}
  window: {low: 100, high: 4096, log: true}
  threshold: {low: 0.25, high: 2.0}
  te_scale: {low: 0.05, high: 300.0, log: true}
  mode: {choices: [grad, paper]}
"""
MAX_EPOCHS, TARGET = 6, 0.75
NODES, GPUS_PER_NODE = 16, 4
EPOCH_SECONDS = 5.0
START = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)
SHARE_PRUNED, SHARE_ERROR = 0.01, 0.005


def _sample_params(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """The searched values of n configurations, uniform (log-uniform where log)."""

    def log_uniform(low: float, high: float) -> np.ndarray:
        return np.exp(rng.uniform(np.log(low), np.log(high), n))

    return {
        "pair_fraction": log_uniform(0.02, 1.0),
        "window": np.round(log_uniform(100, 4096)).astype(int),
        "threshold": rng.uniform(0.25, 2.0, n),
        "te_scale": log_uniform(0.05, 300.0),
        "mode": rng.choice(["grad", "paper"], n),
    }


def _trial_rows(
    rng: np.random.Generator, n_configs: int, repeats: int, effect: float = 0.3
) -> list[dict]:
    """Baselines (one per seed), then each configuration's TE run on each seed, in the order
    a sweep starts them; times and places are filled by _schedule."""
    params = _sample_params(rng, n_configs)
    seeds = list(range(repeats))
    base_epochs = {s: 4.0 + rng.uniform(0, 1.5) for s in seeds}
    common = {
        "sweep_id": "bench",
        "sweep_name": "report-scale",
        "param_dataset": "fashion-mnist",
        "param_subset": 3000,
        "param_max_epochs": MAX_EPOCHS,
        "param_target_metric": "train_acc",
        "param_target": TARGET,
        "param_device": "auto",
    }
    rows = [
        {
            **common,
            "trial_id": f"b{s:05d}",
            "role": "baseline",
            "config_id": None,
            "seed": s,
            "param_te_scale": 0.0,
            "epochs_frac": base_epochs[s],
            "overhead": 0.0,
        }
        for s in seeds
    ]
    for i in range(n_configs):
        # te_scale speeds up to `effect` (log-linearly), pair_fraction costs up to 40%
        speed = 1 - effect * (np.log(params["te_scale"][i] / 0.05) / np.log(6000))
        overhead = 0.4 * params["pair_fraction"][i] * rng.uniform(0.8, 1.2)
        for s in seeds:
            rows.append(
                {
                    **common,
                    "trial_id": f"t{i:05d}_{s}",
                    "role": "te",
                    "config_id": f"c{i:05d}",
                    "seed": s,
                    **{f"param_{k}": v[i].item() for k, v in params.items()},
                    "epochs_frac": base_epochs[s] * speed * rng.uniform(0.9, 1.15),
                    "overhead": overhead,
                }
            )
    return rows


def _finish(rng: np.random.Generator, row: dict) -> None:
    """Status, objectives and per-run columns of one synthetic trial, in place."""
    frac = row.pop("epochs_frac")
    overhead = row.pop("overhead")
    luck = rng.random()
    if row["role"] == "te" and luck < SHARE_ERROR:
        row["status"], epochs_run = "error", 2
    elif row["role"] == "te" and luck < SHARE_ERROR + SHARE_PRUNED:
        row["status"], epochs_run = "pruned", 2
    elif frac > MAX_EPOCHS:
        row["status"], epochs_run = "censored", MAX_EPOCHS
    else:
        row["status"], epochs_run = "complete", int(np.ceil(frac))
    final = row["status"] in ("complete", "censored")
    reached = row["status"] == "complete"
    seconds = epochs_run * EPOCH_SECONDS * (1 + overhead)
    row.update(
        epochs_to_target=epochs_run if reached else None,
        epochs_to_target_frac=frac if reached else None,
        objective_epochs=(frac if reached else MAX_EPOCHS + 1.0) if final else None,
        te_overhead=overhead,
        censored=not reached if final else None,
        seconds_to_target=frac * EPOCH_SECONDS * (1 + overhead) if reached else None,
        epochs_run=epochs_run,
        train_seconds=seconds,
        total_seconds=seconds * 1.3,
        te_seconds=seconds * overhead / (1 + overhead),
        te_mean=0.01 if row["role"] == "te" else None,
        te_factor_mean=None,
        error="RuntimeError: synthetic" if row["status"] == "error" else None,
    )


def _schedule(rows: list[dict]) -> None:
    """Start each trial on the first free GPU of NODES x GPUS_PER_NODE, in row order."""
    free = np.zeros(NODES * GPUS_PER_NODE)
    for row in rows:
        slot = int(np.argmin(free))
        start = float(free[slot])
        free[slot] = start + row["train_seconds"] * 1.3
        row.update(
            node_id=f"{slot // GPUS_PER_NODE:02d}" + "ab12cd34" * 7,
            hostname=f"node{slot // GPUS_PER_NODE}",
            gpu_ids=str(slot % GPUS_PER_NODE),
            device_name="NVIDIA H100",
            started_at=START + dt.timedelta(seconds=start),
            finished_at=None
            if row["status"] == "error"
            else START + dt.timedelta(seconds=float(free[slot])),
        )


def _epoch_table(rows: list[dict]) -> pa.Table:
    """One row per trial and epoch, accuracy rising to the target at the crossing."""
    ids, roles, epochs, accs, ends, nodes = [], [], [], [], [], []
    for row in rows:
        frac = row["epochs_to_target_frac"] or MAX_EPOCHS * 1.2
        for e in range(1, row["epochs_run"] + 1):
            ids.append(row["trial_id"])
            roles.append(row["role"])
            epochs.append(e)
            accs.append(min(0.99, TARGET * (e / frac) ** 0.5))
            ends.append(row["started_at"] + dt.timedelta(seconds=e * EPOCH_SECONDS))
            nodes.append(row["node_id"])
    n = len(ids)
    columns = {field.name: pa.nulls(n, field.type) for field in EPOCHS_SCHEMA}
    columns.update(
        sweep_id=pa.array(["bench"] * n),
        trial_id=pa.array(ids),
        role=pa.array(roles),
        epoch=pa.array(epochs, pa.int64()),
        train_acc=pa.array(accs),
        test_acc=pa.array(np.array(accs) - 0.03),
        epoch_time_s=pa.array([EPOCH_SECONDS] * n),
        finished_at=pa.array(ends, EPOCHS_SCHEMA.field("finished_at").type),
        node_id=pa.array(nodes),
    )
    return pa.table(columns, schema=EPOCHS_SCHEMA)


def write_sweep(root: Path, n_configs: int, repeats: int = 3, seed: int = 0) -> SweepDir:
    """A sweep directory holding the three exported tables of a synthetic sweep."""
    rng = np.random.default_rng(seed)
    rows = _trial_rows(rng, n_configs, repeats)
    for row in rows:
        _finish(rng, row)
    _schedule(rows)
    for row in rows:
        row.update(paired_baseline=None, paired_speedup_epochs=None, paired_kind=None)
    space = space_from_text(SPACE_TEXT, Path("synthetic.yaml"), check_trials=False)
    configs = config_rows("bench", rows, space, repeats)
    manifest = {
        "sweep_id": "bench",
        "name": root.name,
        "space_path": "synthetic.yaml",
        "space_text": SPACE_TEXT,
        "versions": {"te-sweep": "bench"},
        "options": {"num_samples": n_configs, "repeats": repeats, "seed": seed},
    }
    meta = _metadata(manifest, partial=False)
    root.mkdir(parents=True, exist_ok=True)
    schema = configs_schema(space)
    for name, table in (
        (TRIALS_FILE, pa.Table.from_pylist(rows, schema=TRIALS_SCHEMA)),
        (EPOCHS_FILE, _epoch_table(rows)),
        (CONFIGS_FILE, pa.Table.from_pylist(configs, schema=schema)),
    ):
        pq.write_table(table.replace_schema_metadata(meta), root / name)
    return SweepDir(str(root.parent), root.name)


def _synthetic_configs(n_configs: int, seed: int, effect: float) -> tuple[list[dict], object]:
    """configs.parquet's rows of a synthetic sweep (not written) and its space."""
    rng = np.random.default_rng(seed)
    rows = _trial_rows(rng, n_configs, 3, effect)
    for row in rows:
        _finish(rng, row)
    space = space_from_text(SPACE_TEXT, Path("synthetic.yaml"), check_trials=False)
    return config_rows("bench", rows, space, 3), space


def _spearman(a: list[float], b: list[float]) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def importance_stability(sizes: list[int], draws: int, effect: float) -> None:
    """How stable PED-ANOVA's importances are at n complete configurations: over `draws`
    independent synthetic sweeps of n configurations (te_scale alone sets the epochs, up to
    `effect` faster; pair_fraction alone the overhead), the share of draws whose top
    parameter is the true one for each objective, the mean Spearman correlation of the epochs
    importances between pairs of draws (1: the same ranking every time; high at tiny n, where
    the one top configuration, not the data, decides), the mean top score and the spread of
    te_scale's. importance.MIN_IMPORTANCE_CONFIGS holds the conclusion."""
    import itertools
    import warnings

    from te_sweep.results.importance import importance_scores

    print(f"te_scale effect {effect:.0%}, {draws} draws per n")
    print(
        f"{'n':>5} {'top epochs':>11} {'top overhead':>13} {'agreement':>10} "
        f"{'max score':>10} {'te_scale sd':>12} {'warned':>7}"
    )
    for n in sizes:
        right_e = right_o = 0
        vectors, top_scores, max_scores, warned = [], [], [], 0
        for draw in range(draws):
            configs, space = _synthetic_configs(n, 1000 * n + draw, effect)
            done = [c for c in configs if c["status"] == "complete"]
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                scores = importance_scores(done, space)
            warned += any(
                issubclass(w.category, UserWarning)
                and "ExperimentalWarning" not in w.category.__name__
                for w in caught
            )
            epochs, overhead = scores["objective_epochs"], scores["te_overhead"]
            right_e += max(epochs, key=epochs.get) == "te_scale"
            right_o += max(overhead, key=overhead.get) == "pair_fraction"
            vectors.append([epochs[p] for p in space.params])
            top_scores.append(epochs["te_scale"])
            max_scores.append(max(epochs.values()))
        agreement = np.mean([_spearman(a, b) for a, b in itertools.combinations(vectors, 2)])
        print(
            f"{n:>5} {right_e / draws:>11.2f} {right_o / draws:>13.2f} {agreement:>10.2f} "
            f"{np.mean(max_scores):>10.2f} {np.std(top_scores):>12.3f} {warned:>7}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3, help="seeds per configuration")
    parser.add_argument("--repeat", type=int, default=1, help="time write_report this often")
    parser.add_argument("--profile", action="store_true", help="print the top of a profile")
    parser.add_argument("--keep", type=Path, help="write the sweep here and keep it")
    parser.add_argument(
        "--importance",
        type=int,
        nargs="*",
        metavar="N",
        help="measure PED-ANOVA's stability at these numbers of "
        "configurations instead (default 4 8 16 32 64 128)",
    )
    parser.add_argument("--draws", type=int, default=40, help="sweeps per N (--importance)")
    parser.add_argument(
        "--effect",
        type=float,
        nargs="+",
        default=[0.3, 0.1, 0.0],
        help="te_scale's largest speedup in the synthetic sweeps (--importance)",
    )
    args = parser.parse_args()
    print(machine_line(), flush=True)
    if args.importance is not None:
        for effect in args.effect:
            importance_stability(args.importance or [4, 8, 16, 32, 64, 128], args.draws, effect)
        return
    from te_sweep.results.report import write_report

    with tempfile.TemporaryDirectory(prefix="report-scale-") as tmp:
        root = args.keep or Path(tmp) / "sweep"
        began = time.perf_counter()
        sweep = write_sweep(root, args.configs, args.repeats)
        print(
            f"synthesised {args.configs} configurations x {args.repeats} seeds in "
            f"{time.perf_counter() - began:.1f} s: {root}",
            flush=True,
        )
        times = []
        for _ in range(args.repeat):
            profile = cProfile.Profile() if args.profile else None
            began = time.perf_counter()
            if profile:
                profile.enable()
            write_report(sweep)
            if profile:
                profile.disable()
            times.append(time.perf_counter() - began)
        size = (root / "report.html").stat().st_size
        print(
            json.dumps(
                {
                    "configs": args.configs,
                    "repeats": args.repeats,
                    "report_seconds": [round(t, 2) for t in times],
                    "report_html_bytes": size,
                }
            )
        )
        if profile:
            pstats.Stats(profile).sort_stats("cumulative").print_stats(30)


if __name__ == "__main__":
    main()
