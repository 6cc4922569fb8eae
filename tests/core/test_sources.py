"""Tests for te_sweep.core.sources on real files: Debian's Fashion-MNIST, and small files the tests write
in each torchvision data set's real on-disk format (torchvision's own parsers run on them)."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
from numpy.lib import format as npy_format

from te_sweep.core import sources
from te_sweep.core.data import load_dataset
from te_sweep.core.npz import NpzInfo, inspect_npz, load_npz
from te_sweep.core.sources import (
    DEBIAN_FASHION_MNIST,
    KNOWN_DATASETS,
    DataSourceError,
    Split,
    import_torchvision,
    load_torchvision,
    read_idx_fashion_mnist,
    stratified_first,
)

REFUSED = (
    "http://127.0.0.1:9/"  # nothing listens: downloads fail fast whether or not a network exists
)
RNG = np.random.default_rng(0)


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def random_images(n: int, shape: tuple[int, ...]) -> np.ndarray:
    return RNG.integers(0, 256, size=(n, *shape), dtype=np.uint8)


def assert_one_line_error(exc: pytest.ExceptionInfo, *needles: str) -> None:
    message = str(exc.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, (needle, message)


# ---------------------------------------------------------------- KNOWN_DATASETS
def test_known_datasets_sizes_and_shapes() -> None:
    expected = {
        "fashion-mnist": (60000, 10000, (28, 28, 1)),
        "usps": (7291, 2007, (16, 16, 1)),
        "cifar10": (50000, 10000, (32, 32, 3)),
        "svhn": (73257, 26032, (32, 32, 3)),
        "stl10": (5000, 8000, (96, 96, 3)),
    }
    got = {name: (i.train_size, i.test_size, i.image_shape) for name, i in KNOWN_DATASETS.items()}
    assert got == expected
    assert {i.num_classes for i in KNOWN_DATASETS.values()} == {10}


def test_data_source_error_is_a_te_sweep_error() -> None:
    from te_sweep.errors import TESweepError  # cli.py turns these into one-line messages

    assert issubclass(DataSourceError, TESweepError) and issubclass(DataSourceError, Exception)


def test_split_rejects_non_canonical_arrays() -> None:
    with pytest.raises(ValueError, match="uint8"):
        Split(np.zeros((2, 4, 4), np.uint8), np.zeros(2, np.int64))
    with pytest.raises(ValueError, match="int64"):
        Split(np.zeros((2, 4, 4, 1), np.uint8), np.zeros(3, np.int64))


# ---------------------------------------------------------------- IDX files
def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 8, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    return header + array.astype(np.uint8).tobytes()


def write_idx_dir(directory: Path, n_train: int = 6, n_test: int = 4) -> dict[str, np.ndarray]:
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": random_images(n_train, (28, 28)),
        "train-labels-idx1-ubyte": np.arange(n_train, dtype=np.uint8) % 10,
        "t10k-images-idx3-ubyte": random_images(n_test, (28, 28)),
        "t10k-labels-idx1-ubyte": (9 - np.arange(n_test, dtype=np.uint8)) % 10,
    }
    for stem, array in arrays.items():
        (directory / f"{stem}.gz").write_bytes(gzip.compress(idx_bytes(array)))
    return arrays


def test_debian_fashion_mnist_full() -> None:
    if not (DEBIAN_FASHION_MNIST / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(
            f"{DEBIAN_FASHION_MNIST} absent: apt-get install dataset-fashion-mnist to run this test"
        )
    data = read_idx_fashion_mnist(DEBIAN_FASHION_MNIST)
    assert (data.name, data.num_classes) == ("fashion-mnist", 10)
    assert data.train.images.shape == (60000, 28, 28, 1) and data.test.images.shape == (
        10000,
        28,
        28,
        1,
    )
    assert data.train.images.dtype == np.uint8 and data.train.labels.dtype == np.int64
    assert np.bincount(data.train.labels).tolist() == [6000] * 10
    assert np.bincount(data.test.labels).tolist() == [1000] * 10
    assert data.train.labels[0] == 9 and data.train.images.max() == 255  # first item: an ankle boot


def test_idx_reader_small_files(tmp_path: Path) -> None:
    arrays = write_idx_dir(tmp_path)
    data = read_idx_fashion_mnist(tmp_path)
    assert data.train.images.shape == (6, 28, 28, 1) and data.test.images.shape == (4, 28, 28, 1)
    np.testing.assert_array_equal(data.train.images[..., 0], arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(data.test.labels, [9, 8, 7, 6])
    assert data.train.images.flags.writeable


@pytest.mark.parametrize(
    "corrupt, needle",
    [
        (
            lambda raw: gzip.compress(b"\x00\x00\x08\x01" + raw[4:]),
            "magic",
        ),  # labels magic on an image file
        (lambda raw: gzip.compress(raw[:-100]), "truncated"),
        (lambda raw: gzip.compress(raw[:6]), "magic"),  # shorter than the header
        (lambda raw: raw, "gzip"),  # not gzipped at all
        (lambda raw: gzip.compress(raw)[:200], "gzip"),  # gzip stream cut off
    ],
)
def test_idx_reader_corrupt_file(tmp_path: Path, corrupt, needle: str) -> None:
    write_idx_dir(tmp_path)
    target = tmp_path / "train-images-idx3-ubyte.gz"
    target.write_bytes(corrupt(gzip.decompress(target.read_bytes())))
    with pytest.raises(DataSourceError) as exc:
        read_idx_fashion_mnist(tmp_path)
    assert_one_line_error(exc, "train-images-idx3-ubyte.gz", needle)


def test_idx_reader_missing_file(tmp_path: Path) -> None:
    write_idx_dir(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataSourceError) as exc:
        read_idx_fashion_mnist(tmp_path)
    assert_one_line_error(exc, "t10k-labels-idx1-ubyte.gz", "missing", "dataset-fashion-mnist")


# ---------------------------------------------------------------- torchvision, offline
def test_import_torchvision_twice() -> None:
    first = import_torchvision()
    assert first.datasets.CIFAR10.__name__ == "CIFAR10"
    assert import_torchvision() is first


def write_fashion_mnist(root: Path, monkeypatch) -> dict:
    """FashionMNIST/raw/ with the four IDX files gunzipped (torchvision checks existence only)."""
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    train, test = random_images(5, (28, 28)), random_images(3, (28, 28))
    for stem, array in [
        ("train-images-idx3-ubyte", train),
        ("train-labels-idx1-ubyte", np.array([3, 1, 4, 1, 5])),
        ("t10k-images-idx3-ubyte", test),
        ("t10k-labels-idx1-ubyte", np.array([9, 2, 6])),
    ]:
        (raw / stem).write_bytes(idx_bytes(np.asarray(array)))
    return {
        "train_images": train[..., None],
        "train_labels": [3, 1, 4, 1, 5],
        "test_images": test[..., None],
        "test_labels": [9, 2, 6],
    }


def write_usps(root: Path, monkeypatch) -> dict:
    """usps.bz2 / usps.t.bz2: libsvm lines 'label 1:v ... 256:v', labels 1..10, values in [-1, 1]."""

    def line(label: int, values: np.ndarray) -> str:
        return f"{label} " + " ".join(f"{i + 1}:{v:.6f}" for i, v in enumerate(values)) + "\n"

    train_values = np.full((4, 256), -1.0)
    train_values[0, 17] = 1.0  # row 1, column 1 of the first image -> 255
    train_values[2, 255] = 0.0  # last pixel of the third image -> 127
    (root / "usps.bz2").write_bytes(
        bz2.compress(
            "".join(
                line(lab, v) for lab, v in zip([1, 10, 5, 2], train_values, strict=False)
            ).encode()
        )
    )
    (root / "usps.t.bz2").write_bytes(
        bz2.compress(
            "".join(
                line(lab, v) for lab, v in zip([10, 3], np.zeros((2, 256)), strict=False)
            ).encode()
        )
    )
    train = np.zeros((4, 16, 16, 1), np.uint8)
    train[0, 1, 1, 0], train[2, 15, 15, 0] = 255, 127  # (v + 1) / 2 * 255, truncated
    return {
        "train_images": train,
        "train_labels": [0, 9, 4, 1],
        "test_images": np.full((2, 16, 16, 1), 127, np.uint8),
        "test_labels": [9, 2],
    }


def write_cifar10(root: Path, monkeypatch) -> dict:
    """cifar-10-batches-py/: pickled dicts {'data': (n, 3072) uint8 CHW rows, 'labels': list}."""
    tv = import_torchvision()
    folder = root / "cifar-10-batches-py"
    folder.mkdir()
    images = random_images(5, (32, 32, 3))  # HWC: what the loader must return
    batches = {
        "data_batch_1": (images[:3], [6, 9, 9]),
        "data_batch_2": (images[3:], [4, 1]),
        "test_batch": (images[:2], [3, 8]),
    }
    for name, (imgs, labels) in batches.items():
        rows = imgs.transpose(0, 3, 1, 2).reshape(len(imgs), -1)
        (folder / name).write_bytes(
            pickle.dumps({"data": rows, "labels": labels, "batch_label": name})
        )
    (folder / "batches.meta").write_bytes(
        pickle.dumps({"label_names": [f"c{i}" for i in range(10)]})
    )
    cls = tv.datasets.CIFAR10
    monkeypatch.setattr(
        cls, "train_list", [[n, md5(folder / n)] for n in ("data_batch_1", "data_batch_2")]
    )
    monkeypatch.setattr(cls, "test_list", [["test_batch", md5(folder / "test_batch")]])
    monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": md5(folder / "batches.meta")})
    return {
        "train_images": images,
        "train_labels": [6, 9, 9, 4, 1],
        "test_images": images[:2],
        "test_labels": [3, 8],
    }


def write_svhn(root: Path, monkeypatch) -> dict:
    """train_32x32.mat / test_32x32.mat: X (32, 32, 3, N) uint8, y (N, 1) with 10 meaning digit 0."""
    import scipy.io

    tv = import_torchvision()
    train, test = random_images(4, (32, 32, 3)), random_images(2, (32, 32, 3))
    split_list = {}
    for split, images, y in [("train", train, [10, 1, 5, 10]), ("test", test, [3, 10])]:
        path = root / f"{split}_32x32.mat"
        scipy.io.savemat(
            path, {"X": images.transpose(1, 2, 3, 0), "y": np.array(y, np.uint8)[:, None]}
        )
        split_list[split] = [REFUSED + path.name, path.name, md5(path)]
    monkeypatch.setattr(tv.datasets.SVHN, "split_list", split_list)
    return {
        "train_images": train,
        "train_labels": [0, 1, 5, 0],
        "test_images": test,
        "test_labels": [3, 0],
    }


def write_stl10(root: Path, monkeypatch) -> dict:
    """stl10_binary/: *_X.bin raw uint8, each image column-major 3x96x96; *_y.bin labels 1..10."""
    tv = import_torchvision()
    folder = root / "stl10_binary"
    folder.mkdir()
    train, test = random_images(3, (96, 96, 3)), random_images(2, (96, 96, 3))
    files = {
        "train_X.bin": train,
        "train_y.bin": [1, 10, 4],
        "test_X.bin": test,
        "test_y.bin": [7, 1],
        "unlabeled_X.bin": random_images(1, (96, 96, 3)),
    }  # torchvision insists on it even for 'train'
    for name, content in files.items():
        array = np.asarray(content, np.uint8)
        # (N, H, W, C) -> per image C, W, H in C order, which is C, H, W in Fortran (column-major) order
        (folder / name).write_bytes(
            (array.transpose(0, 3, 2, 1) if array.ndim == 4 else array).tobytes()
        )
    checksums = {name: md5(folder / name) for name in files}
    monkeypatch.setattr(
        tv.datasets.STL10,
        "train_list",
        [[n, checksums[n]] for n in ("train_X.bin", "train_y.bin", "unlabeled_X.bin")],
    )
    monkeypatch.setattr(
        tv.datasets.STL10, "test_list", [[n, checksums[n]] for n in ("test_X.bin", "test_y.bin")]
    )
    return {
        "train_images": train,
        "train_labels": [0, 9, 3],
        "test_images": test,
        "test_labels": [6, 0],
    }


WRITERS = {
    "fashion-mnist": write_fashion_mnist,
    "usps": write_usps,
    "cifar10": write_cifar10,
    "svhn": write_svhn,
    "stl10": write_stl10,
}


@pytest.mark.parametrize("name", list(WRITERS))
def test_load_torchvision_reads_real_format(name: str, tmp_path: Path, monkeypatch) -> None:
    expected = WRITERS[name](tmp_path, monkeypatch)
    data = load_torchvision(name, tmp_path, download=False)
    assert (data.name, data.num_classes) == (name, 10)
    for split_name, split in (("train", data.train), ("test", data.test)):
        assert split.images.shape[1:] == KNOWN_DATASETS[name].image_shape
        assert split.images.dtype == np.uint8 and split.labels.dtype == np.int64
        assert split.images.flags.c_contiguous
        # every pixel where the writer put it (channels-first / column-major layouts undone)
        np.testing.assert_array_equal(split.images, expected[f"{split_name}_images"])
        assert (
            split.labels.tolist() == expected[f"{split_name}_labels"]
        )  # incl. SVHN 10->0, STL10 1-based


@pytest.mark.parametrize("name", list(WRITERS))
def test_load_torchvision_missing_files(name: str, tmp_path: Path) -> None:
    with pytest.raises(DataSourceError) as exc:
        load_torchvision(name, tmp_path / "empty", download=False)
    assert_one_line_error(exc, name, str(tmp_path / "empty"), "missing", "network")


DOWNLOAD_URLS = {  # the class attribute holding each data set's download address
    "fashion-mnist": ("FashionMNIST", "mirrors", [REFUSED]),
    "usps": (
        "USPS",
        "split_list",
        {s: [REFUSED + f, f, "0"] for s, f in [("train", "usps.bz2"), ("test", "usps.t.bz2")]},
    ),
    "cifar10": ("CIFAR10", "url", REFUSED + "cifar-10-python.tar.gz"),
    "svhn": (
        "SVHN",
        "split_list",
        {s: [REFUSED + f"{s}_32x32.mat", f"{s}_32x32.mat", "0"] for s in ("train", "test")},
    ),
    "stl10": ("STL10", "url", REFUSED + "stl10_binary.tar.gz"),
}


@pytest.mark.parametrize("name", list(WRITERS))
def test_load_torchvision_failed_download(name: str, tmp_path: Path, monkeypatch) -> None:
    class_name, attribute, value = DOWNLOAD_URLS[name]
    monkeypatch.setattr(getattr(import_torchvision().datasets, class_name), attribute, value)
    with pytest.raises(DataSourceError) as exc:
        load_torchvision(name, tmp_path, download=True)
    assert_one_line_error(exc, name, "download failed", str(tmp_path), "network")


def test_load_torchvision_rejects_wrong_labels(tmp_path: Path, monkeypatch) -> None:
    write_stl10(tmp_path, monkeypatch)
    labels = tmp_path / "stl10_binary" / "test_y.bin"
    labels.write_bytes(bytes([7, 0]))  # label 0 in a 1-based file wraps to 255 in torchvision
    monkeypatch.setattr(
        import_torchvision().datasets.STL10,
        "test_list",
        [
            ["test_X.bin", md5(tmp_path / "stl10_binary" / "test_X.bin")],
            ["test_y.bin", md5(labels)],
        ],
    )
    with pytest.raises(DataSourceError) as exc:
        load_torchvision("stl10", tmp_path, download=False)
    assert_one_line_error(exc, "stl10", "0..9")


# ---------------------------------------------------------------- load_dataset routing
def test_load_dataset_prefers_debian_files(tmp_path: Path, monkeypatch) -> None:
    arrays = write_idx_dir(tmp_path / "debian")
    monkeypatch.setattr(sources, "DEBIAN_FASHION_MNIST", tmp_path / "debian")
    data = load_dataset("fashion-mnist", tmp_path / "unused", download=False)
    np.testing.assert_array_equal(data.test.images[..., 0], arrays["t10k-images-idx3-ubyte"])


def test_load_dataset_falls_back_to_torchvision(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(sources, "DEBIAN_FASHION_MNIST", tmp_path / "no-debian")
    write_fashion_mnist(tmp_path, monkeypatch)
    assert load_dataset("fashion-mnist", tmp_path, download=False).train.labels.tolist() == [
        3,
        1,
        4,
        1,
        5,
    ]


def test_load_dataset_npz_and_unknown(tmp_path: Path) -> None:
    path = write_npz(tmp_path / "mine.npz")
    assert load_dataset(str(path), tmp_path).name == str(path)
    with pytest.raises(DataSourceError) as exc:
        load_dataset("mnist", tmp_path)
    assert_one_line_error(exc, "'mnist'", "cifar10", ".npz")


# ---------------------------------------------------------------- user's .npz
def write_npz(path: Path, compressed: bool = False, **overrides) -> Path:
    arrays = {
        "train_images": np.arange(6 * 4 * 5, dtype=np.uint8).reshape(6, 4, 5),
        "train_labels": np.array([0, 1, 2, 0, 1, 2]),
        "test_images": np.zeros((3, 4, 5), np.uint8),
        "test_labels": np.array([2, 1, 0]),
    }
    arrays.update(overrides)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    (np.savez_compressed if compressed else np.savez)(path, **arrays)
    return path


def test_npz_without_channel_axis(tmp_path: Path) -> None:
    path = write_npz(tmp_path / "gray.npz")
    assert inspect_npz(path) == NpzInfo(train_size=6, test_size=3, image_shape=(4, 5, 1))
    data = load_npz(path)
    assert data.train.images.shape == (6, 4, 5, 1) and data.test.images.shape == (3, 4, 5, 1)
    assert data.train.images[1, 0, 0, 0] == 20 and data.train.labels.dtype == np.int64
    assert (data.name, data.num_classes) == (str(path), 3)


def test_npz_with_channels_compressed(tmp_path: Path) -> None:
    train = random_images(6, (8, 8, 3))
    path = write_npz(
        tmp_path / "rgb.npz",
        compressed=True,
        train_images=train,
        train_labels=np.array([0, 3, 3, 1, 0, 2], np.uint8),
        test_images=random_images(2, (8, 8, 3)),
        test_labels=np.array([2, 1], np.int16),
    )
    with zipfile.ZipFile(path) as zf:
        assert zf.getinfo("train_images.npy").compress_type == zipfile.ZIP_DEFLATED
    assert inspect_npz(path) == NpzInfo(6, 2, (8, 8, 3))
    data = load_npz(path)
    np.testing.assert_array_equal(data.train.images, train)
    assert data.train.labels.tolist() == [0, 3, 3, 1, 0, 2] and data.num_classes == 4


@pytest.mark.parametrize(
    "overrides, needles",
    [
        ({"test_labels": None}, ["'test_labels' missing", "train_images, train_labels"]),
        ({"train_labels": np.array([0, 1, 2, 0, 1])}, ["'train_labels'", "5 labels", "6 images"]),
        ({"train_images": np.zeros((6, 4, 5), np.float32)}, ["'train_images'", "float32", "uint8"]),
        ({"test_labels": np.array([2.0, 1.0, 0.0])}, ["'test_labels'", "float64", "integer"]),
        (
            {"test_images": np.zeros((3, 4, 5, 2), np.uint8)},
            ["'test_images'", "(3, 4, 5, 2)", "C 1 or 3"],
        ),
        (
            {"test_images": np.zeros((3, 5, 4), np.uint8)},
            ["'test_images'", "(5, 4, 1)", "(4, 5, 1)"],
        ),
        (
            {"train_images": np.zeros((0, 4, 5), np.uint8), "train_labels": np.zeros(0, np.int64)},
            ["'train_images'", "non-empty"],
        ),
    ],
)
def test_npz_bad_content(tmp_path: Path, overrides: dict, needles: list[str]) -> None:
    path = write_npz(tmp_path / "bad.npz", **overrides)
    for check in (inspect_npz, load_npz):
        with pytest.raises(DataSourceError) as exc:
            check(path)
        assert_one_line_error(exc, str(path), *needles)


@pytest.mark.parametrize(
    "overrides, needles",
    [
        ({"test_labels": np.array([2, -1, 0])}, ["'test_labels'", "-1", ">= 0"]),
        ({"train_labels": np.array([0, 1, 3, 0, 1, 3])}, ["class 2 has 1", "at least 2"]),  # gap
        (
            {"train_labels": np.zeros(6, int), "test_labels": np.zeros(3, int)},
            ["1 classes", "2+ classes"],
        ),
        (
            {"train_labels": np.array([0, 1, 2, 0, 1, 2]) * 10**9},
            ["2000000001 classes"],
        ),  # bincount bound
    ],
)
def test_npz_bad_labels(tmp_path: Path, overrides: dict, needles: list[str]) -> None:
    path = write_npz(tmp_path / "labels.npz", **overrides)
    inspect_npz(path)  # headers are fine; label values are checked on load
    with pytest.raises(DataSourceError) as exc:
        load_npz(path)
    assert_one_line_error(exc, str(path), *needles)


def test_npz_not_a_zip_or_missing(tmp_path: Path) -> None:
    text = tmp_path / "notes.npz"
    text.write_text("not an archive\n")
    for path, needle in ((text, "zip"), (tmp_path / "nowhere.npz", "no such file")):
        for check in (inspect_npz, load_npz):
            with pytest.raises(DataSourceError) as exc:
                check(path)
            assert_one_line_error(exc, str(path), needle)


def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    """An .npz built member by member (deflated, as np.savez_compressed does)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key, content in members.items():
            zf.writestr(f"{key}.npy", content)
    return path


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def test_npz_member_not_npy(tmp_path: Path) -> None:
    members = {
        "train_images": b"garbage",
        "train_labels": npy_bytes(np.arange(2)),
        "test_images": npy_bytes(np.zeros((2, 4, 4), np.uint8)),
        "test_labels": npy_bytes(np.arange(2)),
    }
    path = write_zip(tmp_path / "odd.npz", members)
    with pytest.raises(DataSourceError) as exc:
        inspect_npz(path)
    assert_one_line_error(exc, str(path), "'train_images'", "not a readable .npy")


def test_inspect_npz_reads_headers_only(tmp_path: Path) -> None:
    """Image members whose headers promise 100000x64x64x3 images but hold no data: inspect_npz (headers
    only) succeeds, so it never read the images; load_npz, which reads them, fails with one line."""

    def header_only(shape: tuple[int, ...]) -> bytes:
        buffer = io.BytesIO()
        npy_format.write_array_header_1_0(
            buffer, {"descr": "|u1", "fortran_order": False, "shape": shape}
        )
        return buffer.getvalue()

    path = write_zip(
        tmp_path / "huge.npz",
        {
            "train_images": header_only((100000, 64, 64, 3)),
            "train_labels": npy_bytes(np.arange(100000) % 3),
            "test_images": header_only((500, 64, 64, 3)),
            "test_labels": npy_bytes(np.arange(500) % 3),
        },
    )
    assert inspect_npz(path) == NpzInfo(train_size=100000, test_size=500, image_shape=(64, 64, 3))
    with pytest.raises(DataSourceError) as exc:
        load_npz(path)
    assert_one_line_error(exc, str(path), "could not read")


# ---------------------------------------------------------------- stratified_first
def test_stratified_first_proportional_and_in_file_order() -> None:
    labels = np.array(
        [2, 0, 0, 1, 0, 1, 0, 2, 0, 1] * 10
    )  # 50 x class 0, 30 x class 1, 20 x class 2
    picked = stratified_first(labels, 10)
    assert np.bincount(labels[picked]).tolist() == [5, 3, 2]
    assert picked.tolist() == sorted(picked.tolist())
    for c in range(3):
        assert (
            picked[labels[picked] == c].tolist()
            == np.flatnonzero(labels == c)[: (5, 3, 2)[c]].tolist()
        )


def test_stratified_first_largest_remainder() -> None:
    labels = np.array([0] * 5 + [1] * 3 + [2] * 2)  # quotas for n=4: 2.0, 1.2, 0.8
    assert np.bincount(labels[stratified_first(labels, 4)], minlength=3).tolist() == [2, 1, 1]
    labels = np.array(
        [7] * 4 + [3] * 4 + [5] * 4
    )  # equal remainders: the extra one goes to the smallest label
    assert stratified_first(labels, 4).tolist() == [0, 4, 5, 8]


def test_stratified_first_keeps_every_class() -> None:
    labels = np.array([0] * 97 + [1] * 2 + [2])  # quotas for n=5: 4.85, 0.1, 0.05
    picked = stratified_first(labels, 5)
    assert np.bincount(labels[picked]).tolist() == [3, 1, 1] and picked.tolist() == [
        0,
        1,
        2,
        97,
        99,
    ]
    assert np.bincount(labels[stratified_first(labels, 2)], minlength=3).tolist() == [
        2,
        0,
        0,
    ]  # n < classes
    assert len(stratified_first(labels, 100)) == 100


@pytest.mark.parametrize("n", [0, -1, 11])
def test_stratified_first_rejects_bad_n(n: int) -> None:
    with pytest.raises(ValueError, match="n <= len"):
        stratified_first(np.arange(10) % 2, n)


def test_fashion_mnist_directory_from_the_environment(tmp_path, monkeypatch, fashion_mnist):
    """$TE_SWEEP_FASHION_MNIST names a directory of the four IDX .gz files (a copy here)."""
    import shutil

    from te_sweep.core.sources import FASHION_MNIST_ENV

    copy = tmp_path / "fm"
    shutil.copytree(fashion_mnist, copy)
    monkeypatch.setenv(FASHION_MNIST_ENV, str(copy))
    assert load_dataset("fashion-mnist", tmp_path / "unused").train.images.shape[0] == 60000
    (copy / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataSourceError, match=r"t10k-labels-idx1-ubyte\.gz"):
        load_dataset("fashion-mnist", tmp_path / "unused")
