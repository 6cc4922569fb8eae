"""A user's own data set: an .npz file with train_images, train_labels, test_images and
test_labels, checked from its headers before anything is loaded.

`inspect_npz` reads only the arrays' headers (shapes and dtypes) from the zip, so preflight
can check a trial against a multi-gigabyte file in milliseconds; `load_npz` then reads it into
sources.py's canonical layout. Every broken rule ends in one DataSourceError line naming the
file, the array and the fix.
"""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib import format as npy_format

from te_sweep.core.sources import DataSourceError, RawDataset, Split


@dataclass(frozen=True)
class NpzInfo:
    train_size: int
    test_size: int
    image_shape: tuple[int, int, int]  # (H, W, C)


_NPZ_KEYS = ("train_images", "train_labels", "test_images", "test_labels")
_NPZ_NEEDS = "an .npz needs train_images, train_labels, test_images, test_labels"


def _npy_header(zf: zipfile.ZipFile, path: Path, key: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of one member, from its .npy header only (nothing is decompressed)."""
    try:
        with zf.open(f"{key}.npy") as f:
            version = npy_format.read_magic(f)
            read = (
                npy_format.read_array_header_1_0
                if version == (1, 0)
                else npy_format.read_array_header_2_0
            )
            shape, _fortran_order, dtype = read(f)
    except (ValueError, OSError, EOFError, zlib.error, zipfile.BadZipFile) as exc:
        raise DataSourceError(
            f"{path}: key '{key}' is not a readable .npy array ({exc}); "
            f"write the file with numpy.savez or numpy.savez_compressed"
        ) from exc
    return tuple(shape), dtype


def _npz_headers(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    if path.is_dir():
        raise DataSourceError(
            f"{path}: is a directory, not an .npz file; pass the path of "
            f"an .npz file ({_NPZ_NEEDS})"
        )
    if not path.is_file():
        raise DataSourceError(
            f"{path}: no such file; pass the path of an existing .npz file ({_NPZ_NEEDS})"
        )
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            for key in _NPZ_KEYS:
                if f"{key}.npy" not in names:
                    raise DataSourceError(f"{path}: key '{key}' missing; {_NPZ_NEEDS}")
            return {key: _npy_header(zf, path, key) for key in _NPZ_KEYS}
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataSourceError(
            f"{path}: not an .npz (zip) archive ({exc}); "
            f"write it with numpy.savez or numpy.savez_compressed"
        ) from exc


def _check_npz_split(
    path: Path, headers: dict[str, Any], split: str
) -> tuple[int, tuple[int, int, int]]:
    (ishape, idtype), (lshape, ldtype) = headers[f"{split}_images"], headers[f"{split}_labels"]
    key_i, key_l = f"'{split}_images'", f"'{split}_labels'"
    if idtype != np.uint8:
        raise DataSourceError(
            f"{path}: key {key_i} has dtype {idtype}; images must be uint8 (0..255): "
            f"save them as np.clip(x, 0, 255).astype(np.uint8)"
        )
    if (
        len(ishape) not in (3, 4)
        or (len(ishape) == 4 and ishape[3] not in (1, 3))
        or ishape[0] == 0
    ):
        raise DataSourceError(
            f"{path}: key {key_i} has shape {ishape}; images must be a non-empty (N,H,W) or "
            f"(N,H,W,C) array with C 1 or 3"
        )
    if not np.issubdtype(ldtype, np.integer) or len(lshape) != 1:
        raise DataSourceError(
            f"{path}: key {key_l} has dtype {ldtype} and shape {lshape}; labels must be a "
            f"1-D integer array: save them with .astype(np.int64)"
        )
    if lshape[0] != ishape[0]:
        raise DataSourceError(
            f"{path}: key {key_l} has {lshape[0]} labels but {key_i} has {ishape[0]} images; "
            f"give exactly one label per image"
        )
    return ishape[0], (ishape[1], ishape[2], ishape[3] if len(ishape) == 4 else 1)


def inspect_npz(path: Path) -> NpzInfo:
    """Validate a user's .npz from its .npy headers alone, without loading any array."""
    path = Path(path)
    headers = _npz_headers(path)
    train_size, train_shape = _check_npz_split(path, headers, "train")
    test_size, test_shape = _check_npz_split(path, headers, "test")
    if train_shape != test_shape:
        raise DataSourceError(
            f"{path}: key 'test_images' holds images of shape {test_shape} (H,W,C) but "
            f"'train_images' holds {train_shape}; train and test images must share one shape"
        )
    return NpzInfo(train_size, test_size, train_shape)


def _npz_num_classes(path: Path, train_labels: np.ndarray, test_labels: np.ndarray) -> int:
    for key, labels in (("train_labels", train_labels), ("test_labels", test_labels)):
        if labels.min() < 0:
            raise DataSourceError(
                f"{path}: key '{key}' holds label {labels.min()}; labels must be >= 0: "
                f"remap them to 0..K-1"
            )
    all_labels = np.concatenate([train_labels, test_labels])
    num_classes = int(all_labels.max()) + 1
    if num_classes < 2 or 2 * num_classes > all_labels.size:  # cheap bound before bincount
        raise DataSourceError(
            f"{path}: max label {num_classes - 1} gives {num_classes} classes for "
            f"{all_labels.size} labels; need 2+ classes, each with 2+ examples: "
            f"remap labels to 0..K-1"
        )
    counts = np.bincount(all_labels, minlength=num_classes)
    if counts.min() < 2:
        c = int(counts.argmin())
        raise DataSourceError(
            f"{path}: class {c} has {counts[c]} example(s) over train+test; every class "
            f"0..{num_classes - 1} needs at least 2: remap labels to consecutive integers from 0"
        )
    return num_classes


def load_npz(path: Path) -> RawDataset:
    """Load a user's .npz (validated by inspect_npz first) into the canonical layout."""
    path = Path(path)
    inspect_npz(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in _NPZ_KEYS}
    except (ValueError, OSError, EOFError, zlib.error, zipfile.BadZipFile) as exc:
        raise DataSourceError(
            f"{path}: could not read the arrays ({exc}); re-save the file with numpy.savez"
        ) from exc
    splits = {}
    for split in ("train", "test"):
        images = arrays[f"{split}_images"]
        images = images[..., None] if images.ndim == 3 else images
        splits[split] = Split(
            np.ascontiguousarray(images), arrays[f"{split}_labels"].astype(np.int64)
        )
    num_classes = _npz_num_classes(path, splits["train"].labels, splits["test"].labels)
    return RawDataset(str(path), splits["train"], splits["test"], num_classes)
