"""Shared fixtures: small real data files the tests write, and Debian's Fashion-MNIST."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from te_sweep.cli import main
from te_sweep.core.sources import DEBIAN_FASHION_MNIST


@dataclass
class Result:
    code: int | str | None
    out: str
    err: str

    @property
    def out_lines(self) -> list[str]:
        return self.out.splitlines()


def run_cli(capsys: pytest.CaptureFixture[str], *args: object) -> Result:
    """Call the real entry point `te_sweep.cli.main` in-process; it always ends in SystemExit."""
    capsys.readouterr()  # drop anything printed before
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return Result(exc.value.code, out, err)


def write_blocks_npz(
    path: Path,
    n_train: int = 600,
    n_test: int = 200,
    size: int = 12,
    channels: int | None = None,
    classes: int = 4,
    seed: int = 0,
    flip: float = 0.0,
) -> Path:
    """An easy, learnable image set: class c lights up quadrant c (of 4) over noise.

    Small enough that a trial learns it in a few epochs on a CPU, so tests can reach a target.
    `channels=None` writes (N, H, W) arrays, else (N, H, W, C). `flip` relabels that share of
    the training images at random, so training accuracy cannot reach 1 (a censored trial).
    """
    rng = np.random.default_rng(seed)

    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = np.arange(n) % classes
        rng.shuffle(labels)
        images = rng.integers(0, 60, size=(n, size, size), dtype=np.uint8)
        half = size // 2
        for c in range(classes):
            r, q = divmod(c % 4, 2)
            images[labels == c, r * half : (r + 1) * half, q * half : (q + 1) * half] += 150
        if channels is not None:
            images = np.repeat(images[..., None], channels, axis=3)
        return images, labels.astype(np.int64)

    train_images, train_labels = split(n_train)
    flipped = rng.random(n_train) < flip
    train_labels[flipped] = rng.integers(0, classes, size=int(flipped.sum()))
    test_images, test_labels = split(n_test)
    np.savez(
        path,
        train_images=train_images,
        train_labels=train_labels,
        test_images=test_images,
        test_labels=test_labels,
    )
    return path


@contextlib.contextmanager
def tmpfs(directory: Path, size: str) -> Iterator[Path]:
    """A real tmpfs of `size` (mount's -o size=, e.g. "96M") mounted on `directory` (made if
    missing) for the block: a small disk that really fills. Needs root (CI runs as root);
    the test is skipped otherwise."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root: the disk-full tests run as root (CI does)")
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)], check=True
    )
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=False)


@pytest.fixture
def blocks_npz(tmp_path: Path) -> Path:
    return write_blocks_npz(tmp_path / "blocks.npz")


@pytest.fixture
def fashion_mnist() -> Path:
    if not (DEBIAN_FASHION_MNIST / "train-images-idx3-ubyte.gz").exists():
        pytest.skip("Debian's dataset-fashion-mnist is not installed (make test installs it)")
    return DEBIAN_FASHION_MNIST
