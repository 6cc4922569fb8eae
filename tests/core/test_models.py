"""The five CNNs: shapes at their data sets' sizes, at other sizes, and the TE interface."""

from __future__ import annotations

import pytest
import torch

from te_sweep.core.models import ARCHITECTURES, build_model, flat_size, largest_feature_map
from te_sweep.core.presets import PRESETS
from te_sweep.core.sources import KNOWN_DATASETS


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_builds_for_its_data_set(name):
    h, w, c = KNOWN_DATASETS[name].image_shape
    model = build_model(PRESETS[name].architecture, c, (h, w), 10).eval()  # no dropout
    z, logits = model.forward_with_hidden(torch.zeros(3, c, h, w))
    assert logits.shape == (3, 10)
    assert torch.equal(model(torch.zeros(3, c, h, w)), logits)
    two_fc = name in ("fashion-mnist", "usps")
    assert (model.penultimate_fc is not None) == two_fc
    assert ARCHITECTURES[name].fc_layers == (2 if name == "usps" else 3 if two_fc else 1)
    if two_fc:
        assert z.shape == (3, model.penultimate_fc.out_features)
        assert model.last_fc.in_features == model.penultimate_fc.out_features
    else:
        assert z is None


def test_published_layer_sizes():
    fashion = build_model("fashion-mnist", 1, (28, 28), 10)
    assert fashion.body[0].in_features == 2304  # 64 x 6 x 6, as published
    assert (fashion.penultimate_fc.in_features, fashion.penultimate_fc.out_features) == (600, 120)
    assert build_model("usps", 1, (16, 16), 10).penultimate_fc.in_features == 576
    assert build_model("cifar10", 3, (32, 32), 10).last_fc.in_features == 1024
    assert build_model("svhn", 3, (32, 32), 10).last_fc.in_features == 256


def test_other_sizes_channels_and_classes():
    model = build_model("fashion-mnist", 3, (20, 24), 7)
    _, logits = model.forward_with_hidden(torch.zeros(2, 3, 20, 24))
    assert logits.shape == (2, 7)
    assert model.features[0].in_channels == 3


def test_images_too_small_fail_with_a_clear_message():
    with pytest.raises(ValueError, match="4x4 are too small"):
        flat_size(ARCHITECTURES["fashion-mnist"], 1, (4, 4))
    with pytest.raises(ValueError, match="too small"):
        build_model("cifar10", 3, (16, 16), 10)


def test_penultimate_pre_activation_is_not_clipped_by_relu():
    """z must be the pre-activation (two-sided binarisation needs its negative values)."""
    torch.manual_seed(0)
    model = build_model("usps", 1, (16, 16), 10)
    z, _ = model.forward_with_hidden(torch.rand(16, 1, 16, 16))
    assert (z < 0).any()


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
@pytest.mark.parametrize("hw", [(16, 16), (28, 28), (32, 32), (21, 34), (96, 96)])
def test_flat_size_matches_a_real_forward_pass(name, hw):
    """flat_size is arithmetic on the conv spec; a real pass of the built stack is the truth."""
    arch = ARCHITECTURES[name]
    stack = build_model(name, 3, (96, 96), 10).features.eval()
    try:
        with torch.no_grad():
            expected = stack(torch.zeros(1, 3, *hw)).numel()
    except RuntimeError:
        expected = 0  # the stack shrank the image to nothing
    if expected == 0:
        with pytest.raises(ValueError, match="too small"):
            flat_size(arch, 3, hw)
    else:
        assert flat_size(arch, 3, hw) == expected


def test_largest_feature_map_is_the_biggest_conv_output():
    assert largest_feature_map(ARCHITECTURES["fashion-mnist"], 1, (28, 28)) == 32 * 28 * 28
    assert largest_feature_map(ARCHITECTURES["cifar10"], 3, (32, 32)) == 128 * 32 * 32
