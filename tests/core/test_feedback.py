"""TE feedback: ring buffer, pair sampling, both feedback modes, checked against te.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from te_sweep.core.config import TrialConfig, resolve
from te_sweep.core.feedback import TE_DROP_FLOOR, TEFeedback, grad_factor, paper_mixing
from te_sweep.core.models import build_model
from te_sweep.core.te import binarize_abs, binarize_prob, group_columns, transfer_entropy_all_pairs
from te_sweep.core.te_window import SlidingCounts
from te_sweep.errors import ConfigError

CPU = torch.device("cpu")


def fashion_model(num_classes: int = 10) -> nn.Module:
    torch.manual_seed(0)
    return build_model("fashion-mnist", 1, (28, 28), num_classes)


def feedback(model: nn.Module | None = None, **changes) -> TEFeedback:
    cfg = resolve(TrialConfig(**changes))
    return TEFeedback(cfg, model or fashion_model(), 10, CPU)


def recount(window_samples: torch.Tensor, n_source: int) -> torch.Tensor:
    """The count matrix of a window, counted from scratch: D^T [y_t, 1]."""
    y = window_samples[:-1, :n_source].double()
    y1 = torch.cat([y, torch.ones(len(y), 1, dtype=torch.float64)], dim=1)
    return group_columns(window_samples[:, n_source:]).double().T @ y1


@pytest.mark.parametrize(
    "window,batches",
    [
        (5, [3, 3, 3]),  # wraps round the ring
        (4, [1, 9, 2]),  # a one-sample first batch, then one longer than the window
        (7, [7, 7]),  # exactly one window per batch
        (3, [1, 1, 1, 1, 1]),
        (2, [2, 1, 3]),  # one transition
        (6, [4, 0, 4, 5]),  # an empty batch changes nothing
        (5, [3] * 12),  # the window moves back to the store's start
    ],
)
def test_sliding_counts_equal_a_recount_of_the_last_window(window, batches):
    counts = SlidingCounts(window, 3, 2, CPU)
    rng = np.random.default_rng(1)
    history = torch.zeros(0, 5, dtype=torch.bool)
    for b in batches:
        rows = torch.from_numpy(rng.integers(0, 2, size=(b, 5)).astype(bool))
        history = torch.cat([history, rows])
        counts.push(rows)
        assert counts.full == (len(history) >= window)
        assert counts.seen == min(window - 1, max(0, len(history) - 1))
        if counts.full:
            last = history[-window:]
            assert torch.equal(counts.counts.double(), recount(last, 3))
            torch.testing.assert_close(
                counts.te(), transfer_entropy_all_pairs(last[:, :3].double(), last[:, 3:]).T
            )


@pytest.mark.parametrize("n_source", [4, 5])  # an odd count: n + 1 is not n | 1
def test_the_shuffled_te_permutes_the_sources_over_the_windows_transitions(n_source):
    from te_sweep.core.te import bits_from_counts

    counts = SlidingCounts(40, n_source, 3, CPU)
    rng = np.random.default_rng(4)
    history = torch.from_numpy(rng.integers(0, 2, size=(70, n_source + 3)).astype(bool))
    for start in range(0, 70, 10):
        counts.push(history[start : start + 10])
    both = counts.te_with_shuffled(torch.Generator().manual_seed(5))
    last = history[-40:]
    plugin = transfer_entropy_all_pairs(last[:, :n_source].double(), last[:, n_source:]).T
    torch.testing.assert_close(both[:, :n_source], plugin)
    order = torch.randperm(39, generator=torch.Generator().manual_seed(5))
    rows = counts.rows  # the window's rows, oldest first: the permutation's order
    y = rows[:, :n_source][order]
    shuffled = rows[:, n_source + 1 :].T @ torch.cat([y, rows[:, n_source : n_source + 1]], dim=1)
    expected = bits_from_counts(shuffled.view(4, 3, n_source + 1), 39)
    torch.testing.assert_close(both[:, n_source:], expected)
    assert not torch.equal(both[:, n_source:], both[:, :n_source])


def test_pair_subset_size_and_seeding():
    fb = feedback(pair_fraction=0.1, seed=3)
    assert fb.mask.shape == (120, 10)
    assert int(fb.mask.sum()) == 120
    assert torch.equal(fb.mask, feedback(pair_fraction=0.1, seed=3).mask)
    assert not torch.equal(fb.mask, feedback(pair_fraction=0.1, seed=4).mask)
    assert int(feedback(pair_fraction=1e-6).mask.sum()) == 1  # at least one pair


def test_pairs_redrawn_each_epoch_only_when_asked():
    fixed, redraw = feedback(pair_fraction=0.2), feedback(pair_fraction=0.2, redraw_pairs=True)
    first = fixed.mask.clone()
    for epoch in range(3):
        fixed.start_epoch(epoch)
        redraw.start_epoch(epoch)
    assert torch.equal(fixed.mask, first)
    assert not torch.equal(redraw.mask, first)
    assert int(redraw.mask.sum()) == int(first.sum())


def random_batch(n: int, units: int, rng: np.random.Generator) -> torch.Tensor:
    return torch.from_numpy(rng.normal(0, 1.2, size=(n, units))).float()


def test_grad_mode_scales_each_sampled_pairs_gradient_by_one_minus_s_te():
    model = fashion_model()
    fb = feedback(model, window=50, te_scale=2.0, pair_fraction=0.5)
    rng = np.random.default_rng(0)
    zs, logits_seen = [], []
    for _ in range(7):  # 70 samples: the window (50) is full from the 5th batch
        z, logits = random_batch(10, 120, rng), random_batch(10, 10, rng)
        zs.append(z)
        logits_seen.append(logits)
        fb.observe(z, logits)

    def te_of_window(end: int) -> torch.Tensor:  # TE of the 50 samples before `end`
        src = binarize_abs(torch.cat(zs)[end - 50 : end], 1.0)
        dst = binarize_abs(torch.cat(logits_seen)[end - 50 : end], 1.0)
        return transfer_entropy_all_pairs(src, dst) * fb.mask

    te = te_of_window(70)
    assert float(te.max()) > 0.05, "test data should give non-trivial TE"
    expected_factor = (1 - 2.0 * te).clamp(min=0).T
    grad = torch.randn_like(model.last_fc.weight)
    model.last_fc.weight.grad = grad.clone()
    fb.apply(model.last_fc)
    torch.testing.assert_close(model.last_fc.weight.grad, grad * expected_factor)
    unsampled = ~fb.mask.T
    torch.testing.assert_close(model.last_fc.weight.grad[unsampled], grad[unsampled])
    stats = fb.epoch_stats()
    assert stats["te_active_fraction"] == pytest.approx(1 / 7)
    recomputes = [te_of_window(end) for end in (50, 60, 70)]  # window full from step 4
    expected_mean = sum(float(t.sum() / fb.mask.sum()) for t in recomputes) / 3
    assert stats["te_mean"] == pytest.approx(expected_mean, rel=1e-5)


def test_no_feedback_while_the_window_fills():
    model = fashion_model()
    fb = feedback(model, window=100)
    rng = np.random.default_rng(0)
    fb.observe(random_batch(10, 120, rng), random_batch(10, 10, rng))
    grad = torch.randn_like(model.last_fc.weight)
    model.last_fc.weight.grad = grad.clone()
    fb.apply(model.last_fc)
    assert torch.equal(model.last_fc.weight.grad, grad)
    assert fb.epoch_stats() == {
        "te_time_s": pytest.approx(fb.timer.read_and_reset(), abs=1),
        "te_compile_s": 0.0,  # eager: nothing compiled
        "te_active_fraction": 0.0,
        "te_mean": None,
        "te_factor_mean": 1.0,
    }  # the gradient as it was


def test_te_every_sets_the_recompute_cadence():
    fb = feedback(window=10, te_every=3)
    rng = np.random.default_rng(0)
    for _ in range(10):
        fb.observe(random_batch(10, 120, rng), random_batch(10, 10, rng))
    assert fb.te_count == 4  # steps 0, 3, 6, 9 (the window is full from step 0)


@pytest.mark.parametrize("pair_fraction", [1.0, 0.3])
def test_paper_mode_applies_w_from_the_te_drop(pair_fraction):
    model = fashion_model()
    fb = feedback(model, mode="paper", window=40, te_scale=3.0, pair_fraction=pair_fraction)
    rng = np.random.default_rng(5)
    logits_seen = []
    states = []
    for _ in range(6):
        logits = random_batch(20, 10, rng) * 3
        logits_seen.append(logits)
        fb.observe(None, logits)
        states.append(torch.cat(logits_seen)[-40:])
        weight = model.last_fc.weight.detach().clone()
        fb.apply(model.last_fc)
        if len(states) >= 3:  # a drop needs two TE values: steps 2 and after

            def te_of(window_logits):
                return transfer_entropy_all_pairs(
                    binarize_abs(window_logits, 1.0),
                    binarize_prob(window_logits.softmax(dim=1), 0.9),
                )

            drop = te_of(states[-2]) - te_of(states[-1])
            drop = torch.where(drop < 1e-8, 0.0, drop)
            t = (3.0 * drop).clamp(0, 1) * fb.mask  # unsampled pairs mix nothing
            expected = (torch.eye(10) - t).T @ weight
            torch.testing.assert_close(model.last_fc.weight.detach(), expected)
    assert fb.epoch_stats()["te_active_fraction"] > 0


def test_grad_mode_needs_two_fc_layers():
    cifar = build_model("cifar10", 3, (32, 32), 10)
    with pytest.raises(ConfigError, match="mode 'paper'"):
        TEFeedback(resolve(TrialConfig(dataset="cifar10")), cifar, 10, CPU)
    TEFeedback(resolve(TrialConfig(dataset="cifar10", mode="paper")), cifar, 10, CPU)


def test_state_dict_round_trip_continues_identically():
    rng = np.random.default_rng(2)
    batches = [(random_batch(10, 120, rng), random_batch(10, 10, rng)) for _ in range(8)]
    model_a, model_b = fashion_model(), fashion_model()
    a = feedback(model_a, window=30, pair_fraction=0.3)
    for z, logits in batches[:4]:
        a.observe(z, logits)
    b = feedback(model_b, window=30, pair_fraction=0.3, seed=9)  # different mask, restored
    b.load_state_dict(a.state_dict())
    for z, logits in batches[4:]:
        a.observe(z, logits)
        b.observe(z, logits)
    assert torch.equal(a.mask, b.mask)
    assert torch.equal(a.factor, b.factor)


def test_a_checkpoint_of_a_ring_still_filling_loads_its_samples_only():
    """An older checkpoint taken before its window filled: the ring's unwritten rows are not
    samples, so the counts hold the transitions of the samples seen, as a new trial's would."""
    rng = np.random.default_rng(8)
    batches = [(random_batch(10, 120, rng), random_batch(10, 10, rng)) for _ in range(2)]
    fresh = feedback(window=50)
    for z, logits in batches:
        fresh.observe(z, logits)
    samples = torch.cat([fresh.binarise(z, logits) for z, logits in batches])  # 20 of 50
    old = {k: v for k, v in fresh.state_dict().items() if k != "counts"}
    for key, columns in (("source", samples[:, :120]), ("target", samples[:, 120:])):
        data = torch.zeros(50, columns.shape[1], dtype=torch.bool)
        data[:20] = columns  # written from row 0, next row 20
        old[key] = (data, 20, 20)
    restored = feedback(window=50)
    restored.load_state_dict(old)
    assert restored.counts.seen == fresh.counts.seen == 19
    assert torch.equal(restored.counts.counts, fresh.counts.counts)


def test_a_batch_longer_than_the_window_after_it_filled_recounts_it():
    """In the steady state a batch of W samples or more replaces the whole window."""
    rng = np.random.default_rng(9)
    fb = feedback(window=30)
    seen = []
    for size in (10, 10, 10, 10, 45, 10, 30, 70, 10):
        z, logits = random_batch(size, 120, rng), random_batch(size, 10, rng)
        fb.observe(z, logits)
        seen.append(fb.binarise(z, logits))
        history = torch.cat(seen)
        assert fb.counts.full == (len(history) >= 30)
        if fb.counts.full:
            assert torch.equal(fb.counts.counts, recount(history[-30:], 120)), len(history)


@pytest.mark.parametrize("mode", ["grad", "paper"])
def test_a_checkpoint_of_the_sample_rings_continues_identically(mode):
    """Checkpoints written before the sliding counts hold the last `window` samples as two
    ring buffers (data, next row, rows filled) and the TE in (source, target) layout: a
    resumed trial rebuilds its counts from them and goes on as if never stopped."""
    rng = np.random.default_rng(6)
    batches = [(random_batch(10, 120, rng), 3 * random_batch(10, 10, rng)) for _ in range(9)]
    model_a, model_b = fashion_model(), fashion_model()
    a = feedback(model_a, mode=mode, window=25, pair_fraction=0.5, te_scale=3.0)
    seen = []
    for z, logits in batches[:5]:
        a.observe(z, logits)
        seen.append(a.binarise(z, logits))
    state = a.state_dict()
    samples = torch.cat(seen)[-25:]  # what the old rings held, written from row 0 and wrapped

    def ring(columns: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        pos = 50 % 25
        data = torch.cat([columns[25 - pos :], columns[: 25 - pos]])
        return data, pos, 25

    n_source = a.counts.n_source
    old = {k: v for k, v in state.items() if k != "counts"}
    old["source"], old["target"] = ring(samples[:, :n_source]), ring(samples[:, n_source:])
    for key in ("te_prev", "pending"):
        old[key] = None if state[key] is None else state[key].T.float()
    b = feedback(model_b, mode=mode, window=25, pair_fraction=0.5, te_scale=3.0, seed=9)
    b.load_state_dict(old)
    assert torch.equal(b.counts.counts, a.counts.counts)
    for z, logits in batches[5:]:
        for fb, model in ((a, model_a), (b, model_b)):
            fb.observe(z, logits)
            model.last_fc.weight.grad = torch.ones_like(model.last_fc.weight)
            fb.apply(model.last_fc)
    torch.testing.assert_close(model_b.last_fc.weight, model_a.last_fc.weight)
    torch.testing.assert_close(model_b.last_fc.weight.grad, model_a.last_fc.weight.grad)


def test_te_every_sets_freshness_not_strength_in_paper_mode():
    """Paper mode: the drop between recomputes, spread over the te_every steps it stands for,
    is applied at every step; with te_every 1 it is the authors' per-batch update."""
    model = fashion_model()
    fb = feedback(model, mode="paper", window=20, te_scale=50.0, te_every=4)
    rng = np.random.default_rng(7)
    changed = []
    for _ in range(16):  # the window is full from step 1: recomputes at steps 4, 8, 12
        logits = 4 * random_batch(10, 10, rng)  # peaked: softmax outputs often >= 0.9
        fb.observe(random_batch(10, 120, rng), logits)
        model.last_fc.weight.grad = torch.zeros_like(model.last_fc.weight)
        before = model.last_fc.weight.detach().clone()
        fb.apply(model.last_fc)
        changed.append(not torch.equal(before, model.last_fc.weight))
    assert fb.te_count == 3
    assert changed[:8] == [False] * 8  # before the second recompute there is no drop
    assert all(changed[8:])  # from it on, at every step, not only at recompute steps
    assert 0 < float(fb.pending.max()) <= 1


def test_one_sided_hidden_rule_counts_silent_units_as_off():
    z = torch.tensor([[-3.0, 0.5, 2.0] + [0.0] * 117]).repeat(5, 1)  # 120 hidden units
    logits = torch.zeros(5, 10)
    two = feedback(window=50)
    one = feedback(window=50, hidden_rule="one_sided")
    assert two.binarise(z, logits)[:, :3].tolist() == [[True, False, True]] * 5
    assert one.binarise(z, logits)[:, :3].tolist() == [[False, False, True]] * 5
    logits[:, 2] = -1.5  # the logits stay two-sided under either rule
    for fb in (two, one):
        assert fb.binarise(z, logits)[:, 3:].sum(dim=1).tolist() == [1] * 5


def test_the_mean_gradient_factor_is_reported():
    model = fashion_model()
    fb = feedback(model, window=10, te_scale=100.0)
    rng = np.random.default_rng(3)
    means = []
    for _ in range(3):
        fb.observe(random_batch(10, 120, rng), random_batch(10, 10, rng))
        model.last_fc.weight.grad = torch.ones_like(model.last_fc.weight)
        fb.apply(model.last_fc)
        assert torch.allclose(model.last_fc.weight.grad, fb.factor.float())  # ones x factor
        means.append(float(model.last_fc.weight.grad.mean()))
    assert min(means) > 0 and max(means) < 1  # the feedback did act
    assert fb.epoch_stats()["te_factor_mean"] == pytest.approx(np.mean(means))
    assert feedback(mode="paper").epoch_stats()["te_factor_mean"] is None


# ------------------------------------------------------------------ launches per training step
VIEW_OPS = {
    "slice",
    "view",
    "detach",
    "unbind",
    "permute",
    "transpose",
    "t",
    "expand",
    "select",
    "alias",
    "_unsafe_view",
    "unsqueeze",
    "squeeze",
    "split",
    "chunk",
    "split_with_sizes",
    "lift_fresh",
    "squeeze_",
    "unsqueeze_",
}  # metadata only: no kernel on a GPU
# Compute ops the TE step dispatches (measured on this code; a GPU launches a kernel for each).
# A change that adds launches to every training step must raise these on purpose.  Before the
# sliding counts (te_window.py) a recomputing step took 67-73 and any other 11; now 29-31 and
# 11-12, and one more on the steps that move the window back to the store's start.  Compiled
# (te_compile), far fewer: tests/core/test_te_compile.py.
OP_BOUNDS = {
    ("grad", "plugin", True): 30,
    ("grad", "effective", True): 35,
    ("paper", "plugin", True): 32,
    ("grad", "plugin", False): 12,
    ("paper", "plugin", False): 13,
}


def dispatched_compute_ops(mode: str, estimator: str, recompute: bool) -> int:
    """The most compute ops one TE step (observe + apply) dispatched, over the steps that
    recompute the TE (or over those that do not) among 12 after the paper's window (500
    samples, batches of 100) filled: the ring's write wraps round on some of them."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        ops = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func.overloadpacket.__name__ not in VIEW_OPS:
                Count.ops += 1
            return func(*args, **(kwargs or {}))

    model = fashion_model()
    fb = feedback(
        model, mode=mode, window=500, te_estimator=estimator, te_every=1 if recompute else 3
    )
    rng = np.random.default_rng(0)
    z, logits = random_batch(100, 120, rng), 4 * random_batch(100, 10, rng)
    counted = []
    for step in range(18):
        model.last_fc.weight.grad = torch.ones_like(model.last_fc.weight)
        Count.ops = 0
        recomputes = step % fb.cfg.te_every == 0
        with Count():
            fb.observe(z, logits)
            fb.apply(model.last_fc)
        if step >= 6 and recomputes == recompute:  # the window full, the feedback active
            counted.append(Count.ops)
    assert len(counted) >= 4 and fb.counts.full and fb.te_count > 1
    return max(counted)


@pytest.mark.parametrize("mode, estimator, recompute", list(OP_BOUNDS))
def test_the_te_step_dispatches_a_bounded_number_of_ops(mode, estimator, recompute):
    assert (
        dispatched_compute_ops(mode, estimator, recompute)
        <= OP_BOUNDS[(mode, estimator, recompute)]
    )


def test_a_te_stronger_than_one_over_s_stops_a_step_and_never_reverses_it():
    te = torch.tensor([[0.0, 0.2], [0.5, 0.9]])  # (n_target, n_source), as the weight
    factor = grad_factor(te, 2.0)  # 1 - 2 TE: 1, 0.6 / 0, -0.8 -> clipped to 0
    torch.testing.assert_close(factor, torch.tensor([[1.0, 0.6], [0.0, 0.0]]))
    assert factor.shape == (2, 2) and factor.is_contiguous()


def test_a_strong_feedback_in_training_never_flips_a_gradient():
    model = fashion_model()
    fb = feedback(model, window=30, te_scale=1000.0)  # s * TE far above 1 for most pairs
    rng = np.random.default_rng(1)
    for _ in range(4):
        fb.observe(random_batch(10, 120, rng), random_batch(10, 10, rng))
    grad = torch.randn_like(model.last_fc.weight)
    model.last_fc.weight.grad = grad.clone()
    fb.apply(model.last_fc)
    after = model.last_fc.weight.grad
    assert (after * grad >= 0).all()  # same sign or stopped
    assert (after == 0).float().mean() > 0.5


@pytest.mark.parametrize(
    "drop, mixed",
    [
        (0.5 * TE_DROP_FLOOR, 0.0),  # just below the floor: no drop
        (2.0 * TE_DROP_FLOOR, 3.0 * 2.0 * TE_DROP_FLOOR),  # just above: s * drop
        (-0.01, 0.0),  # the TE rose: nothing
        (0.2, 0.6),  # s * drop
        (0.5, 1.0),  # s * drop above 1: clipped
    ],
)
def test_paper_mixing_from_a_drop(drop, mixed):
    before = torch.tensor([[0.3, 0.3]], dtype=torch.float64)
    now = before - torch.tensor([[drop, drop]], dtype=torch.float64)
    mask = torch.tensor([[True, False]])
    t = paper_mixing(before, now, 3.0, 1, mask)
    assert t[0, 0].item() == pytest.approx(mixed, rel=1e-6, abs=0)
    assert t[0, 1].item() == 0.0  # not a sampled pair
    spread = 3.0 * drop / 4 if drop >= TE_DROP_FLOOR else 0.0  # te_every 4: a quarter per step
    assert paper_mixing(before, now, 3.0, 4, mask)[0, 0].item() == pytest.approx(
        min(1.0, spread), rel=1e-6, abs=0
    )


def test_a_drop_of_exactly_the_floor_counts():
    """The floor is inclusive: a TE drop of at least TE_DROP_FLOOR mixes (authors' code)."""
    before = torch.tensor([[TE_DROP_FLOOR]], dtype=torch.float64)
    now = torch.zeros(1, 1, dtype=torch.float64)  # the drop is the floor itself, exactly
    t = paper_mixing(before, now, 1.0, 1, torch.tensor([[True]]))
    assert t[0, 0].item() == TE_DROP_FLOOR


def test_the_pair_and_shuffle_streams_are_apart_from_the_seeds_own_stream():
    """The seed also seeds weights and batch order (torch.manual_seed(seed), a generator
    seeded with it): the pair draw and the effective TE's shuffles must be other streams, and
    different seeds must give different ones."""
    masks, shuffles = [], []
    for seed in range(4):
        fb = feedback(pair_fraction=0.1, seed=seed, te_estimator="effective")
        own = torch.Generator().manual_seed(seed)
        own_draw = torch.zeros(fb.mask.numel(), dtype=torch.bool)
        own_draw[torch.randperm(fb.mask.numel(), generator=own)[: int(fb.mask.sum())]] = True
        assert not torch.equal(fb.mask, own_draw.view_as(fb.mask))
        shuffle_state = fb.state_dict()["shuffles"]
        assert not torch.equal(shuffle_state, torch.Generator().manual_seed(seed).get_state())
        assert all(not torch.equal(fb.mask, m) for m in masks)
        assert all(not torch.equal(shuffle_state, s) for s in shuffles)
        masks.append(fb.mask)
        shuffles.append(shuffle_state)


def test_the_effective_estimator_removes_the_plugin_bias():
    """Independent samples: the plug-in TE is mostly its upward bias; the effective TE (minus
    the TE with the source shuffled) is much closer to 0."""
    rng = np.random.default_rng(4)
    batches = [(random_batch(10, 120, rng), random_batch(10, 10, rng)) for _ in range(3)]
    means = {}
    for estimator in ("plugin", "effective"):
        fb = feedback(window=30, te_estimator=estimator)
        for z, logits in batches:
            fb.observe(z, logits)
        means[estimator] = fb.epoch_stats()["te_mean"]
    assert means["plugin"] > 0.01
    assert abs(means["effective"]) < means["plugin"] / 2


@pytest.mark.parametrize(
    "mode, estimator", [("grad", "plugin"), ("grad", "effective"), ("paper", "plugin")]
)
def test_a_config_read_from_yaml_acts_like_one_built_in_code(mode, estimator):
    """The CLI reads configs with yaml: its strings are equal to, not the same objects as,
    the literals in the code, and must select the same mode, hidden rule and estimator."""
    import yaml

    text = f"{{mode: {mode}, te_estimator: {estimator}, hidden_rule: two_sided}}"
    read = yaml.safe_load(text)
    assert read["mode"] is not mode  # the premise: another string object
    rng = np.random.default_rng(6)
    batches = [(random_batch(10, 120, rng), 3 * random_batch(10, 10, rng)) for _ in range(4)]
    results = []
    for cfg in (
        TrialConfig(
            mode=mode, te_estimator=estimator, hidden_rule="two_sided", window=20, te_scale=3.0
        ),
        TrialConfig(**read, window=20, te_scale=3.0),
    ):
        model = fashion_model()
        fb = TEFeedback(resolve(cfg), model, 10, CPU)
        for z, logits in batches:
            fb.observe(z, logits)
            model.last_fc.weight.grad = torch.ones_like(model.last_fc.weight)
            fb.apply(model.last_fc)
        results.append(
            (
                model.last_fc.weight.detach().clone(),
                model.last_fc.weight.grad.clone(),
                fb.epoch_stats(),
            )
        )
    (w_code, g_code, stats_code), (w_yaml, g_yaml, stats_yaml) = results
    assert torch.equal(w_code, w_yaml) and torch.equal(g_code, g_yaml)
    del stats_code["te_time_s"], stats_yaml["te_time_s"]
    assert stats_code == stats_yaml
    assert (stats_code["te_factor_mean"] is None) == (mode == "paper")
    if mode == "grad":  # the feedback acted: on the gradient, or on the weights
        assert not torch.equal(g_code, torch.ones_like(g_code))
    else:
        assert not torch.equal(w_code, fashion_model().last_fc.weight.detach())


def test_pairs_are_redrawn_from_the_second_epoch_on():
    """Epoch 0 trains on the subset drawn with the trial; each later epoch draws a new one."""
    fixed, redraw = feedback(pair_fraction=0.2), feedback(pair_fraction=0.2, redraw_pairs=True)
    redraw.start_epoch(0)
    assert torch.equal(redraw.mask, fixed.mask)
    seen = [redraw.mask.clone()]
    for epoch in (1, 2):
        redraw.start_epoch(epoch)
        assert all(not torch.equal(redraw.mask, m) for m in seen)
        seen.append(redraw.mask.clone())


def test_a_unit_exactly_at_the_threshold_is_on():
    """Both hidden rules compare with >=: a unit at the threshold counts 1."""
    z = torch.tensor([[1.0, -1.0, 0.999] + [0.0] * 117]).repeat(5, 1)  # threshold 1
    for rule, expected in (("two_sided", [True, True, False]), ("one_sided", [True, False, False])):
        fb = feedback(window=50, hidden_rule=rule)
        assert fb.binarise(z, torch.zeros(5, 10))[:, :3].tolist() == [expected] * 5


def constant_batches(n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Silent units and flat logits: every series is constant, so every TE is 0."""
    return [(torch.zeros(10, 120), torch.zeros(10, 10)) for _ in range(n)]


def negative_te_batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Data whose one sampled pair (seed 0, pair_fraction 1e-6) gets a negative effective TE
    (found by trying data seeds; the shuffle is the feedback's own)."""
    rng = np.random.default_rng(2)
    return [(random_batch(10, 120, rng), random_batch(10, 10, rng)) for _ in range(3)]


def test_a_zero_te_is_no_feedback_in_either_mode():
    """With every TE 0 the factors are all 1 / T is 0: nothing changes, and no step counts
    as active."""
    model = fashion_model()
    for mode in ("grad", "paper"):
        fb = feedback(model, mode=mode, window=20)
        for z, logits in constant_batches(4):
            fb.observe(z, logits)
            weight = model.last_fc.weight.detach().clone()
            grad = torch.randn_like(weight)
            model.last_fc.weight.grad = grad.clone()
            fb.apply(model.last_fc)
            assert torch.equal(model.last_fc.weight.grad, grad)
            assert torch.equal(model.last_fc.weight.detach(), weight)
        assert fb.te_count == 3 and (fb.factor is not None or fb.pending is not None)
        assert fb.epoch_stats()["te_active_fraction"] == 0.0


def test_a_factor_above_one_is_feedback():
    """A negative effective TE gives a factor above 1: it raises the gradient, and the step
    counts as active."""
    model = fashion_model()
    fb = feedback(model, window=30, te_estimator="effective", pair_fraction=1e-6)
    for z, logits in negative_te_batches():
        fb.observe(z, logits)
    assert float(fb.factor.min()) == 1.0 and float(fb.factor.max()) > 1.0  # the premise
    grad = torch.ones_like(model.last_fc.weight)
    model.last_fc.weight.grad = grad.clone()
    fb.apply(model.last_fc)
    assert float(model.last_fc.weight.grad.max()) > 1.0
    assert fb.epoch_stats()["te_active_fraction"] == pytest.approx(1 / 3)


def test_epoch_stats_of_one_step_and_of_no_step():
    """A one-step epoch whose feedback acted is all active; an epoch without steps reports
    zeros instead of dividing by 0."""
    model = fashion_model()
    fb = feedback(model, window=10, te_scale=5.0)
    rng = np.random.default_rng(0)
    fb.observe(random_batch(10, 120, rng), random_batch(10, 10, rng))
    model.last_fc.weight.grad = torch.ones_like(model.last_fc.weight)
    fb.apply(model.last_fc)
    stats = fb.epoch_stats()
    assert stats["te_active_fraction"] == 1.0
    assert stats["te_factor_mean"] == pytest.approx(float(fb.factor.mean()))
    empty = fb.epoch_stats()
    assert empty["te_active_fraction"] == 0.0 and empty["te_factor_mean"] == 0.0


@pytest.mark.parametrize(
    "data, estimator, active",
    [("random", "plugin", True), ("constant", "plugin", False), ("negative", "effective", True)],
)
def test_a_restored_feedback_acts_at_once_and_continues_identically(data, estimator, active):
    """Resuming from a checkpoint: the very next apply() uses the restored factor (and counts
    as active exactly when the original would), and the next recompute sees the restored
    window and shuffle stream."""
    batches = {
        "random": lambda: (
            [
                (
                    random_batch(10, 120, np.random.default_rng(2)),
                    random_batch(10, 10, np.random.default_rng(3)),
                )
            ]
            * 4
        ),
        "constant": lambda: constant_batches(4),
        "negative": lambda: negative_te_batches() + negative_te_batches()[:1],
    }[data]()
    pair_fraction = 1e-6 if data == "negative" else 0.3
    model_a, model_b = fashion_model(), fashion_model()
    a = feedback(model_a, window=30, pair_fraction=pair_fraction, te_estimator=estimator)
    for z, logits in batches[:3]:
        a.observe(z, logits)
    a.epoch_stats()
    b = feedback(
        model_b, window=30, pair_fraction=pair_fraction, te_estimator=estimator, seed=9
    )  # another mask and shuffle stream, both restored
    b.load_state_dict(a.state_dict())
    for fb, model in ((a, model_a), (b, model_b)):
        model.last_fc.weight.grad = torch.ones_like(model.last_fc.weight)
        fb.apply(model.last_fc)
        assert fb.active_steps.item() == active
    torch.testing.assert_close(model_b.last_fc.weight.grad, model_a.last_fc.weight.grad)
    z, logits = batches[3]
    a.observe(z, logits)
    b.observe(z, logits)
    assert a.te_count == b.te_count == 1
    assert torch.equal(a.factor, b.factor)


def test_a_checkpoint_without_shuffle_state_still_loads():
    """Checkpoints written before the effective estimator have no "shuffles" entry."""
    a = feedback(window=30, te_estimator="effective")
    state = a.state_dict()
    del state["shuffles"]
    b = feedback(window=30, te_estimator="effective")
    b.load_state_dict(state)
    assert torch.equal(b.state_dict()["shuffles"], a.state_dict()["shuffles"])
