"""Helpers for the sweep tests: spaces over small files, reading the exports."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
from conftest import write_blocks_npz

from te_sweep.sweep.checkpoints import PREFIX

TE_SWEEP = str(Path(sys.executable).parent / "te-sweep")
WRITTEN_OUT_S = 240  # the longest wait for a killed sweep's workers to stop writing


def blocks_space(
    tmp_path: Path,
    max_epochs: int = 3,
    n_train: int = 600,
    target: float = 0.99,
    extra_search: str = "",
) -> Path:
    """A space over a small .npz with 30% noisy labels: the target is out of reach, so every
    trial runs max_epochs (censored) with accuracies that differ between trials."""
    npz = write_blocks_npz(tmp_path / "blocks.npz", n_train=n_train, n_test=200, size=16, flip=0.3)
    space = tmp_path / "blocks.yaml"
    space.write_text(f"""description: test space over a small .npz
fixed:
  dataset: {npz}
  max_epochs: {max_epochs}
  target: {target}
  lr: 0.005
  window: 100
search:
  pair_fraction: {{low: 0.1, high: 1.0, log: true}}
  te_scale: {{low: 0.1, high: 4.0, log: true}}
{extra_search}""")
    return space


def read_export(sweep: Path) -> tuple[list[dict], list[dict], dict[bytes, bytes]]:
    trials = pq.read_table(sweep / "trials.parquet")
    epochs = pq.read_table(sweep / "epochs.parquet")
    return trials.to_pylist(), epochs.to_pylist(), trials.schema.metadata


def standin_space(tmp_path: Path, max_epochs: int = 2, target: float = 0.55) -> Path:
    """A space for stand-in trials (te_sweep/sweep/standin.py): Fashion-MNIST settings, which the
    stand-in never loads; with the default target about half the trials reach it in epoch 2
    and the rest are censored."""
    space = tmp_path / "standin.yaml"
    space.write_text(f"""description: stand-in trials
fixed:
  dataset: fashion-mnist
  subset: 3000
  max_epochs: {max_epochs}
  target: {target}
search:
  pair_fraction: {{low: 0.05, high: 1.0, log: true}}
  threshold: {{low: 0.25, high: 2.0}}
  te_scale: {{low: 0.1, high: 10.0, log: true}}
""")
    return space


class Lines:
    """The sweep's output, kept in memory (picklable: Tune pickles its callbacks)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, line: str) -> None:
        self.lines.append(line)


def standin_sweep(
    space: Path,
    storage: Path,
    name: str,
    *,
    num_samples: int,
    repeats: int = 2,
    epoch_seconds: float = 0.05,
    parts=None,
    standin=None,
    echo=None,
    **options,
):
    """Launch a sweep of stand-in trials in this process through sweep.run_sweep."""
    from te_sweep.sweep.launch import SweepOptions, prepare_launch
    from te_sweep.sweep.run import run_sweep
    from te_sweep.sweep.standin import StandIn

    prepared = prepare_launch(
        str(space),
        SweepOptions(
            num_samples=num_samples, repeats=repeats, storage=str(storage), name=name, **options
        ),
    )
    standin = standin or StandIn(epoch_seconds=epoch_seconds, checkpoint_bytes=8192)
    echo = echo or Lines()
    parts_made = parts(prepared) if parts else None
    export = run_sweep(prepared, echo, standin.trainable(), parts_made)
    return prepared, export, echo, parts_made


def wait_until_written_out(sweep_dir: Path, quiet_s: float) -> None:
    """After a kill -9 of the driver's process group: wait until no checkpoint file has been
    written for `quiet_s` (longer than an epoch). Ray's workers are not in that group; one
    finishing its epoch before it notices its raylet is gone would save a newer checkpoint
    (and delete the older one) after the test damaged it."""

    def snapshot() -> set[tuple[str, int]]:
        return {
            (str(p), p.stat().st_mtime_ns) for p in sweep_dir.glob(f"*/{PREFIX}*") if p.exists()
        }

    deadline = time.monotonic() + WRITTEN_OUT_S
    before, quiet_since = snapshot(), time.monotonic()
    while time.monotonic() - quiet_since < quiet_s:
        assert time.monotonic() < deadline, "checkpoints still written long after the kill"
        time.sleep(0.2)
        now = snapshot()
        if now != before:
            before, quiet_since = now, time.monotonic()
