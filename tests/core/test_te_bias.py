"""The effective TE: without transfer it averages 0, not the plug-in estimator's bias; with
transfer it keeps the signal (checked against pyinform's plug-in values)."""

from __future__ import annotations

import math

import numpy as np
import pyinform
import pytest
import torch

from te_sweep.core.config import TrialConfig, resolve
from te_sweep.core.feedback import TEFeedback
from te_sweep.core.models import build_model
from te_sweep.core.te import effective_transfer_entropy, transfer_entropy_all_pairs

W, N_SOURCE, N_TARGET = 500, 120, 10  # the fashion-mnist preset's window and layer widths


def independent_series(rng: np.random.Generator, units: int) -> torch.Tensor:
    """(W, units) independent binary series, each unit with its own rate in [0.03, 0.97]:
    training's binarised units are far from fair coins."""
    rates = rng.uniform(0.03, 0.97, size=units)
    return torch.from_numpy(rng.random((W, units)) < rates)


def test_without_transfer_it_averages_zero_not_the_bias():
    rng = np.random.default_rng(0)
    generator = torch.Generator().manual_seed(0)
    plugin, effective = [], []
    for _ in range(20):  # 20 windows x 1200 pairs
        source, target = independent_series(rng, N_SOURCE), independent_series(rng, N_TARGET)
        plugin.append(transfer_entropy_all_pairs(source, target).double().mean().item())
        effective.append(
            effective_transfer_entropy(source, target, generator).double().mean().item()
        )
    bias = float(np.mean(plugin))
    assert bias == pytest.approx(1 / ((W - 1) * math.log(2)), rel=0.25)  # mostly the bias
    assert abs(float(np.mean(effective))) < 0.1 * bias


def test_with_transfer_it_keeps_the_signal():
    rng = np.random.default_rng(1)
    generator = torch.Generator().manual_seed(1)
    source = rng.random((W, 4)) < 0.5
    target = np.zeros((W, 4), dtype=bool)
    for j, copy in enumerate([0.9, 0.6, 0.3, 0.0]):  # x[t+1] = y[t] with this probability
        follow = rng.random(W) < copy
        target[1:, j] = np.where(follow[1:], source[:-1, j], rng.random(W - 1) < 0.5)
    effective = (
        effective_transfer_entropy(torch.from_numpy(source), torch.from_numpy(target), generator)
        .double()
        .numpy()
    )
    bias = 1 / ((W - 1) * math.log(2))
    for j in range(4):
        plugin = pyinform.transfer_entropy(source[:, j].astype(int), target[:, j].astype(int), k=1)
        assert plugin - 8 * bias <= effective[j, j] <= plugin, (j, plugin, effective[j, j])
    assert effective[0, 0] > 0.4 and effective[1, 1] > 0.1  # the dependent pairs stand out
    assert abs(effective[3, 3]) < 8 * bias


def test_the_feedback_uses_it_and_replays_it_exactly():
    cfg = resolve(TrialConfig(te_estimator="effective", window=100, seed=3))
    model = build_model("fashion-mnist", 1, (28, 28), 10)
    first, second = (TEFeedback(cfg, model, 10, torch.device("cpu")) for _ in range(2))
    rng = np.random.default_rng(2)
    for _ in range(3):
        z = torch.from_numpy(rng.normal(size=(50, 120)).astype(np.float32))
        logits = torch.from_numpy(rng.normal(size=(50, 10)).astype(np.float32))
        first.observe(z, logits)
        second.observe(z, logits)
    assert first.factor is not None and torch.equal(first.factor, second.factor)
    state = first.state_dict()
    third = TEFeedback(cfg, model, 10, torch.device("cpu"))
    third.load_state_dict(state)
    z = torch.from_numpy(rng.normal(size=(50, 120)).astype(np.float32))
    logits = torch.from_numpy(rng.normal(size=(50, 10)).astype(np.float32))
    first.observe(z, logits)
    third.observe(z, logits)
    assert torch.equal(first.factor, third.factor)  # the shuffles continue from the state
    assert (first.factor > 1).any()  # effective TE below 0: the factor exceeds 1 there
