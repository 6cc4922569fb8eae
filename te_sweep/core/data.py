"""The whole data set as tensors on the trial's device, batched by a device-side randperm.

Following airbench: images are moved to the device once as uint8, converted and scaled to
[0, 1] once (the authors' ToTensor, no further normalisation), and every training batch is an
index slice of a randperm drawn on the device. No DataLoader, no workers, no per-batch host
work. File formats and downloads are sources.py's and npz.py's job; this module picks the
source (load_dataset) and places its arrays.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from te_sweep.core.npz import load_npz
from te_sweep.core.sources import (
    KNOWN_DATASETS,
    DataSourceError,
    RawDataset,
    load_known,
    stratified_first,
)

EVAL_BATCH = 500  # images per forward pass when evaluating on a GPU
CPU_EVAL_BYTES = 8 * 2**20  # bound on the largest activation of a CPU evaluation batch


def default_data_root() -> Path:
    """Where torchvision data sets are stored: $TE_SWEEP_DATA or ~/.cache/te-sweep/data."""
    return Path(os.environ.get("TE_SWEEP_DATA", Path.home() / ".cache" / "te-sweep" / "data"))


def load_dataset(name: str, root: Path, download: bool = True) -> RawDataset:
    """A known data set by name (sources.py), or a user's .npz file (npz.py)."""
    if name in KNOWN_DATASETS:
        return load_known(name, root, download)
    if name.endswith(".npz") or Path(name).is_file():
        return load_npz(Path(name))
    raise DataSourceError(
        f"unknown data set {name!r}; use one of {', '.join(KNOWN_DATASETS)} "
        f"or the path of an .npz file"
    )


@dataclass(frozen=True)
class DeviceData:
    train_x: Tensor  # (N, C, H, W) float32 in [0, 1]
    train_y: Tensor  # (N,) int64
    test_x: Tensor  # (M, C, H, W) float32 in [0, 1]
    test_y: Tensor  # (M,) int64
    num_classes: int

    @property
    def in_channels(self) -> int:
        return int(self.train_x.shape[1])

    @property
    def image_hw(self) -> tuple[int, int]:
        return int(self.train_x.shape[2]), int(self.train_x.shape[3])


@functools.lru_cache(maxsize=2)
def _load_raw(dataset: str, root: str) -> RawDataset:
    """Raw arrays, cached per process: trials reusing a worker skip re-reading the files."""
    return load_dataset(dataset, Path(root), download=True)


def _images_to_device(images: np.ndarray, device: torch.device) -> Tensor:
    """(N, H, W, C) uint8 host array -> (N, C, H, W) float32 in [0, 1] on the device, in
    channels-last memory order, whatever the array's strides.

    Why explicit: for one-channel images both orders are the same bytes, and torch picks the
    convolution and pooling kernels from the strides. A grey image array built with a new axis
    has stride 0 there, which torch read as channels-first: the Fashion-MNIST test split (and
    the whole training split, without --subset) ran max-pooling 3-8x slower than a subset of
    the training split, whose copy had channels-last strides (issue 19, evaluation).
    """
    x = torch.from_numpy(np.ascontiguousarray(images)).to(device)  # move as uint8: 4x less
    return x.permute(0, 3, 1, 2).to(torch.float32, memory_format=torch.channels_last).div_(255.0)


def load_device_data(
    dataset: str, subset: int | None, device: torch.device, data_root: str | None = None
) -> DeviceData:
    """Load (or reuse) a data set, keep a stratified first `subset` of its training split."""
    raw = _load_raw(dataset, str(data_root or default_data_root()))
    train_images, train_labels = raw.train.images, raw.train.labels
    if subset is not None:
        keep = stratified_first(train_labels, subset)
        train_images, train_labels = train_images[keep], train_labels[keep]
    return DeviceData(
        train_x=_images_to_device(train_images, device),
        train_y=torch.from_numpy(train_labels).to(device),
        test_x=_images_to_device(raw.test.images, device),
        test_y=torch.from_numpy(raw.test.labels).to(device),
        num_classes=raw.num_classes,
    )


def train_batches(
    x: Tensor, y: Tensor, batch_size: int, generator: torch.Generator
) -> Iterator[tuple[Tensor, Tensor]]:
    """Shuffled batches (the last may be smaller), from a randperm drawn on x's device."""
    order = torch.randperm(x.shape[0], device=x.device, generator=generator)
    for start in range(0, x.shape[0], batch_size):
        idx = order[start : start + batch_size]
        yield x[idx], y[idx]


def eval_batch_size(activation_bytes_per_image: int, device: torch.device) -> int:
    """Images per forward pass when evaluating.

    On the CPU a batch's largest activation is kept under CPU_EVAL_BYTES. glibc's malloc hands
    out allocations above its mmap threshold (32 MiB at most) as fresh mappings, page-faulted in
    again on every batch: at 500 Fashion-MNIST images per batch (50 MB activations) evaluating
    took 40% longer, with 1.5 million page faults per trial; at 83 there are none, and the
    CIFAR-10 network was fastest at 16 (bench notes in BENCHMARKS.md). GPUs cache their memory.
    """
    if device.type != "cpu":
        return EVAL_BATCH
    return max(1, min(EVAL_BATCH, CPU_EVAL_BYTES // max(1, activation_bytes_per_image)))


def eval_batches(x: Tensor, y: Tensor, batch_size: int) -> Iterator[tuple[Tensor, Tensor]]:
    """The split in order, in slices of batch_size."""
    for start in range(0, x.shape[0], batch_size):
        yield x[start : start + batch_size], y[start : start + batch_size]
