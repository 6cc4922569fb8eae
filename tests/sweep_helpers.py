"""Helpers for the sweep tests: spaces over small files, reading the exports."""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow.parquet as pq

from conftest import write_blocks_npz

TE_SWEEP = str(Path(sys.executable).parent / "te-sweep")


def blocks_space(tmp_path: Path, max_epochs: int = 3, n_train: int = 600, target: float = 0.99,
                 extra_search: str = "") -> Path:
    """A space over a small .npz with 30% noisy labels: the target is out of reach, so every
    trial runs max_epochs (censored) with accuracies that differ between trials."""
    npz = write_blocks_npz(tmp_path / "blocks.npz", n_train=n_train, n_test=200, size=16,
                           flip=0.3)
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
