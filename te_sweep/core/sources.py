"""Data sources: turn a data set name or a user's .npz file into plain numpy arrays.
(The .npz reader is npz.py's; data.load_dataset chooses between them.)

Every source (Debian's Fashion-MNIST IDX files, torchvision's five readers, a user's .npz) ends
in one canonical layout, `RawDataset`: uint8 images (N, H, W, C) with C 1 or 3 and int64 labels
0..num_classes-1. Nothing here knows about torch devices or training; data.py moves the arrays on.
Why a module of its own: each reader stores its data differently (torch tensors, lists, channels
first, 1-based or 10-for-0 labels), and a missing or malformed file should end in one readable
line (`DataSourceError`) naming the file, the rule broken and the fix, not a long traceback.
torch and torchvision are imported lazily, so importing this module is cheap.
"""

from __future__ import annotations

import gzip
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from te_sweep.errors import TESweepError


class DataSourceError(TESweepError):
    """A data set could not be found or read; the message is one line with the fix."""


@dataclass(frozen=True)
class Split:
    images: np.ndarray  # (N, H, W, C) uint8, C = 1 or 3
    labels: np.ndarray  # (N,) int64, values 0..num_classes-1

    def __post_init__(self) -> None:
        shape = self.images.shape
        if self.images.dtype != np.uint8 or len(shape) != 4 or shape[3] not in (1, 3):
            raise ValueError(
                "Split images must be uint8 (N,H,W,C) with C 1 or 3, "
                f"got {self.images.dtype} {shape}"
            )
        if self.labels.dtype != np.int64 or self.labels.shape != (shape[0],):
            raise ValueError(
                f"Split labels must be int64 ({shape[0]},), "
                f"got {self.labels.dtype} {self.labels.shape}"
            )


@dataclass(frozen=True)
class RawDataset:
    name: str  # "fashion-mnist", ..., or the npz path
    train: Split
    test: Split
    num_classes: int


@dataclass(frozen=True)
class DatasetInfo:
    train_size: int
    test_size: int
    image_shape: tuple[int, int, int]  # (H, W, C)
    num_classes: int


KNOWN_DATASETS: dict[str, DatasetInfo] = {
    "fashion-mnist": DatasetInfo(60000, 10000, (28, 28, 1), 10),
    "usps": DatasetInfo(7291, 2007, (16, 16, 1), 10),
    "cifar10": DatasetInfo(50000, 10000, (32, 32, 3), 10),
    "svhn": DatasetInfo(73257, 26032, (32, 32, 3), 10),
    "stl10": DatasetInfo(5000, 8000, (96, 96, 3), 10),
}

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
# A directory holding the four original Fashion-MNIST IDX .gz files, read instead of Debian's.
FASHION_MNIST_ENV = "TE_SWEEP_FASHION_MNIST"
_IDX_FILES = {  # split -> (images, labels), as Zalando and Debian name them
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


# ---------------------------------------------------------------- Fashion-MNIST IDX files
def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """One gzipped IDX file of unsigned bytes.

    Layout: big-endian magic 0x0000080<ndim>, ndim uint32 dims, then the data.
    """
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise DataSourceError(
            f"{path}: file missing; Fashion-MNIST needs the four IDX .gz files "
            f"(apt-get install dataset-fashion-mnist puts them in {DEBIAN_FASHION_MNIST})"
        ) from None
    except (OSError, EOFError, zlib.error) as exc:
        raise DataSourceError(f"{path}: not a readable gzip file ({exc}); re-download it") from exc
    expected, header = 0x800 + ndim, 4 + 4 * ndim
    magic = int.from_bytes(raw[:4], "big")
    if len(raw) < header or magic != expected:
        raise DataSourceError(
            f"{path}: IDX magic number {magic:#010x}, expected {expected:#010x} "
            f"(unsigned bytes, {ndim} dims); pass an IDX file of that kind"
        )
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    body = np.frombuffer(raw, np.uint8, offset=header)
    if body.size != int(np.prod(dims)):
        raise DataSourceError(
            f"{path}: header says shape {dims} ({int(np.prod(dims))} bytes) but the file holds "
            f"{body.size} data bytes; the file is truncated or corrupt: re-download it"
        )
    array: np.ndarray = body.reshape(dims).copy()  # copy: frombuffer views are read-only
    return array


def _has_idx_files(directory: Path) -> bool:
    return all((directory / f).is_file() for pair in _IDX_FILES.values() for f in pair)


def read_idx_fashion_mnist(directory: Path) -> RawDataset:
    """Read the four original Fashion-MNIST IDX .gz files (e.g. Debian's) with gzip + numpy."""
    info = KNOWN_DATASETS["fashion-mnist"]
    splits = {}
    for split, (image_file, label_file) in _IDX_FILES.items():
        images, labels = _read_idx(directory / image_file, 3), _read_idx(directory / label_file, 1)
        if images.shape[1:] != info.image_shape[:2] or len(images) != len(labels):
            raise DataSourceError(
                f"{directory}: {split} images {images.shape} and labels {labels.shape} do not "
                f"match; Fashion-MNIST needs N 28x28 images and N labels per split"
            )
        if labels.size and labels.max() >= info.num_classes:
            raise DataSourceError(
                f"{directory / label_file}: label {labels.max()} found; "
                f"Fashion-MNIST labels are 0..9: re-download the file"
            )
        splits[split] = Split(images[..., None], labels.astype(np.int64))
    return RawDataset("fashion-mnist", splits["train"], splits["test"], info.num_classes)


# ---------------------------------------------------------------- torchvision
# The torch.library.Library defining torchvision's op schemas; kept alive.
_TORCHVISION_OPS: Any = None


def import_torchvision() -> ModuleType:
    """Import torchvision.

    With CPU torch and the CUDA-only 0.28 wheel, define the nms/qnms schemas first.
    """
    global _TORCHVISION_OPS
    try:
        import torchvision

        module: ModuleType = torchvision
        return module
    except RuntimeError as exc:
        if "torchvision::nms" not in str(exc) or _TORCHVISION_OPS is not None:
            raise
    import torch

    lib = torch.library.Library("torchvision", "DEF")
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _TORCHVISION_OPS = lib
    import torchvision

    module = torchvision
    return module


@dataclass(frozen=True)
class _Reader:
    """How one torchvision dataset class is called and where it keeps images and labels."""

    class_name: str
    split_kwarg: str  # "train" -> train=True/False; "split" -> split="train"/"test"
    labels_attr: str  # "targets" or "labels"
    channels_first: bool  # .data is (N, C, H, W)
    files: str  # where torchvision looks, relative to root


_READERS: dict[str, _Reader] = {
    "fashion-mnist": _Reader(
        "FashionMNIST",
        "train",
        "targets",
        False,
        "FashionMNIST/raw/ (the four IDX files, gunzipped)",
    ),
    "usps": _Reader("USPS", "train", "targets", False, "usps.bz2 and usps.t.bz2"),
    "cifar10": _Reader(
        "CIFAR10",
        "train",
        "targets",
        False,
        "cifar-10-batches-py/ (data_batch_1..5, test_batch, batches.meta)",
    ),
    "svhn": _Reader("SVHN", "split", "labels", True, "train_32x32.mat and test_32x32.mat"),
    "stl10": _Reader(
        "STL10",
        "split",
        "labels",
        True,
        "stl10_binary/ (train_X.bin, train_y.bin, test_X.bin, test_y.bin, unlabeled_X.bin)",
    ),
}


def _as_numpy(x: Any) -> np.ndarray:
    return np.asarray(x.numpy() if hasattr(x, "numpy") else x)


def _torchvision_split(name: str, root: Path, download: bool, train: bool) -> Split:
    reader = _READERS[name]
    dataset_class = getattr(import_torchvision().datasets, reader.class_name)
    split_arg: Any = train if reader.split_kwarg == "train" else ("train" if train else "test")
    try:
        dataset = dataset_class(str(root), download=download, **{reader.split_kwarg: split_arg})
    except ImportError:
        raise
    # torchvision raises RuntimeError, URLError, FileNotFoundError, ValueError, ...
    except Exception as exc:
        what = "download failed" if download else "files missing or unreadable"
        cause = " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
        raise DataSourceError(
            f"{name}: {what} under {root} ({cause}); put the torchvision files for {name} under "
            f"{root}: {reader.files}, or run once where the network is reachable so "
            "torchvision can download them"
        ) from exc
    images = _as_numpy(dataset.data)
    images = images[..., None] if images.ndim == 3 else images
    images = images.transpose(0, 2, 3, 1) if reader.channels_first else images
    labels = _as_numpy(getattr(dataset, reader.labels_attr)).astype(np.int64)
    return Split(np.ascontiguousarray(images, dtype=np.uint8), labels)


def load_torchvision(name: str, root: Path, download: bool) -> RawDataset:
    """Load one of KNOWN_DATASETS through its torchvision class, in the canonical layout."""
    if name not in _READERS:
        raise DataSourceError(
            f"no torchvision reader for {name!r}; use one of {', '.join(_READERS)}"
        )
    info, root = KNOWN_DATASETS[name], Path(root)
    train, test = (_torchvision_split(name, root, download, train=flag) for flag in (True, False))
    for split_name, split in (("train", train), ("test", test)):
        labels_ok = (
            split.labels.size == 0
            or 0 <= split.labels.min() <= split.labels.max() < info.num_classes
        )
        if split.images.shape[1:] != info.image_shape or not labels_ok:
            raise DataSourceError(
                f"{name}: {split_name} files under {root} hold images "
                f"{split.images.shape[1:]} with "
                f"labels {np.unique(split.labels)[:12]}; expected {info.image_shape} and labels "
                f"0..{info.num_classes - 1}: replace the files with the original ones"
            )
    return RawDataset(name, train, test, info.num_classes)


# ---------------------------------------------------------------- entry point
def load_known(name: str, root: Path, download: bool = True) -> RawDataset:
    """A known data set by name (data.load_dataset also reads a user's .npz). Fashion-MNIST
    comes from the IDX files in $TE_SWEEP_FASHION_MNIST when set, else Debian's when present,
    else torchvision."""
    if name == "fashion-mnist" and os.environ.get(FASHION_MNIST_ENV):
        return read_idx_fashion_mnist(Path(os.environ[FASHION_MNIST_ENV]))
    if name == "fashion-mnist" and _has_idx_files(DEBIAN_FASHION_MNIST):
        return read_idx_fashion_mnist(DEBIAN_FASHION_MNIST)
    return load_torchvision(name, Path(root), download)


def stratified_first(labels: np.ndarray, n: int) -> np.ndarray:
    """Sorted indices of a stratified first n.

    Each class gives its first n_c items, n_c proportional to its share (largest remainder, so
    the n_c sum to n; every class keeps 1 when n >= #classes).
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or not 1 <= n <= len(labels):
        raise ValueError(
            f"stratified_first needs 1 <= n <= len(labels) = {len(labels)} on 1-D labels, "
            f"got n={n}; "
            f"ask for fewer items"
        )
    classes, counts = np.unique(labels, return_counts=True)
    share = counts.astype(np.int64) * n  # exact integer arithmetic: quota = share / len(labels)
    take = share // len(labels)
    by_remainder = np.lexsort(
        (np.arange(len(classes)), -(share % len(labels)))
    )  # largest first, ties by class
    take[by_remainder[: n - int(take.sum())]] += 1
    if n >= len(classes):
        for empty in np.flatnonzero(take == 0):
            take[int(take.argmax())] -= 1
            take[empty] = 1
    picked = [np.flatnonzero(labels == c)[:k] for c, k in zip(classes, take, strict=True)]
    return np.sort(np.concatenate(picked))
