"""Data path: the device-resident batches against a torch DataLoader, images per second.

Why: te_sweep/core/data.py keeps the whole data set on the trial's device and batches it by a
device-side randperm (no DataLoader, no workers, no per-batch host work). This measures what
that buys over the usual pipeline, torchvision's FashionMNIST with ToTensor behind a
DataLoader. Target: >= 3x on CPU, >= 10x on GPU.

What: Fashion-MNIST, the full 60000 training images, batch 100 (the paper's), one shuffled
epoch of batches per measurement. Every path hands the training loop what it consumes: a
float32 (N, 1, 28, 28) image tensor in [0, 1] and int64 labels on the device. Each batch is
touched on the device (its pixel and label sums are accumulated there) so nothing is lazily
skipped; CUDA is synchronised once per epoch, at its end.
  - device-resident: `load_device_data("fashion-mnist", None, device)` once (set-up, timed and
    reported apart: reading the files, and moving the cached arrays), then `train_batches`.
  - DataLoader: torchvision.datasets.FashionMNIST(root, train=True, transform=ToTensor(),
    download=False) over a temp root holding Debian's four IDX files gunzipped into
    ROOT/FashionMNIST/raw/ (torchvision only checks those files exist, no checksum), behind
    DataLoader(batch_size=100, shuffle=True) with num_workers 0 and 2, each batch moved with
    .to(device) (pin_memory and non_blocking on CUDA). An epoch's time includes creating its
    iterator, i.e. starting the workers, as every epoch does with the default
    persistent_workers=False.
The paths run interleaved, `--repeats` rounds; the table shows median images/s per path and
the median over rounds of each round's ratio device-resident / DataLoader. The target is
checked against the better (faster) of the two DataLoaders. As a check the epoch's pixel
sums of all paths must agree (every image once per epoch, whatever the order).

    .venv/bin/python bench/data_path.py [--device auto|cpu|cuda] [--repeats R]

About a minute on a 2-core CPU with the default 5 repeats.
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import torch

from te_sweep.core.data import load_device_data, train_batches
from te_sweep.core.sources import DEBIAN_FASHION_MNIST, import_torchvision
from te_sweep.core.train import device_name, resolve_device

BATCH = 100  # the paper's batch size for Fashion-MNIST
IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
TARGET = {"cpu": 3.0, "cuda": 10.0}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_epoch(
    batches: Callable[[], Iterable[tuple[torch.Tensor, torch.Tensor]]], device: torch.device
) -> tuple[float, int, float]:
    """(seconds, images, pixel sum) of one epoch; each batch is touched on the device."""
    pixel_sum = torch.zeros((), device=device, dtype=torch.float64)
    label_sum = torch.zeros((), device=device, dtype=torch.long)
    images = 0
    sync(device)
    start = time.perf_counter()
    for x, y in batches():
        pixel_sum += x.sum()
        label_sum += y.sum()
        images += x.shape[0]
    sync(device)
    seconds = time.perf_counter() - start
    return seconds, images, float(pixel_sum)


def make_torchvision_root(tmp: Path) -> Path:
    """ROOT/FashionMNIST/raw/ with Debian's four IDX files gunzipped, as torchvision reads them."""
    raw = tmp / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for name in IDX_FILES:
        with (
            gzip.open(DEBIAN_FASHION_MNIST / f"{name}.gz", "rb") as src,
            open(raw / name, "wb") as dst,
        ):
            shutil.copyfileobj(src, dst)
    return tmp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda")
    parser.add_argument("--repeats", type=int, default=5, help="rounds; medians are reported")
    args = parser.parse_args()
    device = resolve_device(args.device)
    cuda = device.type == "cuda"

    start = time.perf_counter()
    data = load_device_data("fashion-mnist", None, device)  # reads the files (cached after)
    sync(device)
    setup_cold = time.perf_counter() - start
    start = time.perf_counter()
    data = load_device_data("fashion-mnist", None, device)  # cached arrays: the move alone
    sync(device)
    setup_move = time.perf_counter() - start
    generator = torch.Generator(device=device).manual_seed(0)

    torchvision = import_torchvision()
    from torch.utils.data import DataLoader

    with tempfile.TemporaryDirectory(prefix="te-sweep-bench-data-") as tmp:
        start = time.perf_counter()
        root = make_torchvision_root(Path(tmp))
        gunzip_s = time.perf_counter() - start
        start = time.perf_counter()
        dataset = torchvision.datasets.FashionMNIST(
            str(root), train=True, transform=torchvision.transforms.ToTensor(), download=False
        )
        dataset_s = time.perf_counter() - start
        loaders = {
            workers: DataLoader(
                dataset,
                batch_size=BATCH,
                shuffle=True,
                num_workers=workers,
                pin_memory=cuda,
                generator=torch.Generator().manual_seed(0),
            )
            for workers in (0, 2)
        }

        def resident() -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
            return train_batches(data.train_x, data.train_y, BATCH, generator)

        def loader(workers: int) -> Callable[[], Iterable[tuple[torch.Tensor, torch.Tensor]]]:
            def batches() -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
                for x, y in loaders[workers]:
                    yield x.to(device, non_blocking=cuda), y.to(device, non_blocking=cuda)

            return batches

        paths = {
            "device-resident (train_batches)": resident,
            "DataLoader, num_workers=0": loader(0),
            "DataLoader, num_workers=2": loader(2),
        }
        rates: dict[str, list[float]] = {name: [] for name in paths}
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        for _ in range(args.repeats):
            for name, batches in paths.items():
                seconds, images, pixel_sum = timed_epoch(batches, device)
                rates[name].append(images / seconds)
                sums[name], counts[name] = pixel_sum, images

    print(
        f"device {device_name(device)}, torch threads {torch.get_num_threads()}, "
        f"{data.train_x.shape[0]} training images, batch {BATCH}, {args.repeats} rounds"
    )
    print(
        f"set-up, device-resident: {setup_cold:.2f} s read files + move to the device "
        f"(train and test splits), {setup_move:.2f} s move alone (cached arrays)"
    )
    print(
        f"set-up, DataLoader: {gunzip_s:.2f} s gunzip to ROOT/FashionMNIST/raw/, "
        f"{dataset_s:.2f} s torchvision FashionMNIST(...)"
    )
    reference = sums["device-resident (train_batches)"]
    agree = all(
        counts[n] == data.train_x.shape[0] and abs(s - reference) <= 1e-6 * abs(reference)
        for n, s in sums.items()
    )
    print(
        f"check: every path yields {data.train_x.shape[0]} images per epoch with the same pixel "
        f"sum: {'yes' if agree else 'NO: ' + str(sums)}"
    )

    resident_name = "device-resident (train_batches)"
    loader_names = [n for n in paths if n != resident_name]
    ratios = {
        n: statistics.median(r / d for r, d in zip(rates[resident_name], rates[n], strict=True))
        for n in loader_names
    }
    print()
    print(f"{'data path':34s} {'images/s':>10s} {'ms/epoch':>9s} {'resident / this':>16s}")
    for name in paths:
        rate = statistics.median(rates[name])
        ratio = "" if name == resident_name else f"{ratios[name]:15.1f}x"
        print(f"{name:34s} {rate:10.0f} {data.train_x.shape[0] / rate * 1000:9.0f} {ratio:>16s}")
    best = max(loader_names, key=lambda n: statistics.median(rates[n]))
    target = TARGET["cuda" if cuda else "cpu"]
    ratio = ratios[best]
    print(
        f"target: device-resident >= {target:g}x the better DataLoader ({best}) on "
        f"{'GPU' if cuda else 'CPU'}: {ratio:.1f}x, {'met' if ratio >= target else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
