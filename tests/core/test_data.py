"""Device-resident data: layout, scaling, stratified subsets, randperm batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from te_sweep.core.data import (
    EVAL_BATCH,
    _images_to_device,
    eval_batch_size,
    eval_batches,
    load_device_data,
    train_batches,
)

CPU = torch.device("cpu")


def test_layout_scaling_and_labels(blocks_npz):
    raw = np.load(blocks_npz)
    data = load_device_data(str(blocks_npz), None, CPU)
    assert data.train_x.shape == (600, 1, 12, 12) and data.train_x.dtype == torch.float32
    assert data.test_x.shape == (200, 1, 12, 12)
    np.testing.assert_allclose(data.train_x[:, 0].numpy() * 255, raw["train_images"], atol=1e-4)
    assert data.train_y.dtype == torch.int64
    np.testing.assert_array_equal(data.test_y.numpy(), raw["test_labels"])
    assert data.num_classes == 4 and data.in_channels == 1 and data.image_hw == (12, 12)


def test_subset_is_a_stratified_first_n_and_leaves_the_test_split_alone(blocks_npz):
    raw = np.load(blocks_npz)
    data = load_device_data(str(blocks_npz), 100, CPU)
    labels = data.train_y.numpy()
    assert len(labels) == 100
    assert np.bincount(labels).tolist() == [25, 25, 25, 25]
    first_of_class_0 = np.flatnonzero(raw["train_labels"] == 0)[:25]
    np.testing.assert_allclose(
        data.train_x[labels == 0, 0].numpy() * 255, raw["train_images"][first_of_class_0], atol=1e-4
    )
    assert data.test_x.shape[0] == 200


def test_train_batches_visit_every_image_once_per_epoch_in_a_seeded_order():
    x = torch.arange(250, dtype=torch.float32).view(250, 1, 1, 1)
    y = torch.arange(250)

    def epoch(seed: int) -> list[torch.Tensor]:
        return [yb for _, yb in train_batches(x, y, 100, torch.Generator().manual_seed(seed))]

    batches = epoch(0)
    assert [len(b) for b in batches] == [100, 100, 50]
    assert sorted(torch.cat(batches).tolist()) == list(range(250))
    assert all(torch.equal(a, b) for a, b in zip(batches, epoch(0), strict=False))
    assert not torch.equal(torch.cat(batches), torch.cat(epoch(1)))
    for xb, yb in train_batches(x, y, 64, torch.Generator().manual_seed(0)):
        assert torch.equal(xb.view(-1).long(), yb)  # images and labels stay paired


def test_eval_batches_cover_the_split_in_order():
    x, y = torch.zeros(2500, 1, 1, 1), torch.arange(2500)
    assert torch.equal(torch.cat([yb for _, yb in eval_batches(x, y, 300)]), y)


def test_cpu_eval_batches_keep_activations_under_the_mmap_threshold():
    fashion = 4 * 32 * 28 * 28  # bytes per image of the Fashion-MNIST net's largest activation
    assert eval_batch_size(fashion, CPU) == 83
    assert eval_batch_size(4 * 128 * 32 * 32, CPU) == 16  # CIFAR-10 net
    assert eval_batch_size(10**9, CPU) == 1
    assert eval_batch_size(4, CPU) == EVAL_BATCH
    assert eval_batch_size(fashion, torch.device("meta")) == EVAL_BATCH  # not the CPU


def test_real_fashion_mnist_on_the_device(fashion_mnist):
    data = load_device_data("fashion-mnist", 1000, CPU)
    assert data.train_x.shape == (1000, 1, 28, 28)
    assert data.test_x.shape == (10000, 1, 28, 28)
    assert float(data.train_x.min()) >= 0 and float(data.train_x.max()) <= 1
    assert torch.bincount(data.train_y).tolist() == [100] * 10


@pytest.mark.parametrize("channels", [1, 3])
def test_every_split_is_channels_last_whatever_the_arrays_strides(channels):
    """A grey array built with a new axis has stride 0 there, which torch reads as
    channels-first and pools 3-8x slower (data._images_to_device): every split gets the
    channels-last strides, with the same values."""
    grey = np.arange(2 * 4 * 5, dtype=np.uint8).reshape(2, 4, 5)
    images = grey[..., None] if channels == 1 else np.stack([grey] * channels, axis=-1)
    x = _images_to_device(images, torch.device("cpu"))
    assert x.shape == (2, channels, 4, 5) and x.dtype == torch.float32
    assert x.stride() == (4 * 5 * channels, 1, 5 * channels, channels)
    expected = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2) / 255.0
    assert torch.equal(x, expected.float())
