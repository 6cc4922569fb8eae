"""Tests for te_sweep.core.te against pyinform (independent C implementation) and known values."""

from __future__ import annotations

import itertools

import numpy as np
import pyinform
import pytest
import torch

from te_sweep.core import te as te_module
from te_sweep.core.te import (
    CpuKernel,
    binarize_abs,
    binarize_prob,
    cpu_layer_kernel,
    effective_transfer_entropy,
    set_cpu_layer_kernel,
    transfer_entropy,
    transfer_entropy_all_pairs,
)

# (source, target, expected TE in bits), from reference/te-method.md "Known test values".
_ALT = [1 if t % 2 == 0 else 0 for t in range(101)]
_QUARTER = [1 if t % 4 in (0, 1) else 0 for t in range(101)]
KNOWN = [
    ([0, 1, 1, 1, 1, 0, 0, 0, 0], [0, 0, 1, 1, 1, 1, 0, 0, 0], 0.8112781244591329),
    ([0, 1, 0, 1, 1, 0, 0, 1], [1, 0, 1, 0, 1, 1, 0, 0], 6 / 7),
    (_ALT, _QUARTER, 1.0),
    ([0, 1, 1, 0, 1, 0, 0, 1, 1, 1], [0, 1, 1, 0, 1, 0, 0, 1, 1, 1], 0.0),  # identical
    ([1] * 10, [0, 1, 1, 0, 1, 0, 0, 1, 1, 1], 0.0),  # constant source
    ([0, 1, 1, 0, 1, 0, 0, 1, 1, 1], [0] * 10, 0.0),  # constant target
]


def col(values, dtype=torch.float64) -> torch.Tensor:
    return torch.as_tensor(np.asarray(values)).to(dtype).reshape(-1, 1)


def random_pair(rng: np.random.Generator, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Random biased source; target independent, or a noisy delayed copy of the source."""
    src = (rng.random(length) < rng.uniform(0.01, 0.99)).astype(np.int32)
    if rng.random() < 0.5:
        tgt = (rng.random(length) < rng.uniform(0.01, 0.99)).astype(np.int32)
    else:
        tgt = np.empty_like(src)
        tgt[0] = rng.integers(2)
        flip = rng.random(length - 1) < rng.uniform(0.0, 0.2)
        tgt[1:] = src[:-1] ^ flip
    return src, tgt


@pytest.mark.parametrize("source,target,expected", KNOWN)
def test_known_values(source, target, expected):
    assert pyinform.transfer_entropy(source, target, k=1) == pytest.approx(expected, abs=1e-10)
    s, t = col(source), col(target)
    assert transfer_entropy(s, t).item() == pytest.approx(expected, abs=1e-12)
    assert transfer_entropy_all_pairs(s, t).item() == pytest.approx(expected, abs=1e-12)
    s32, t32 = col(source, torch.float32), col(target, torch.float32)
    assert transfer_entropy(s32, t32).item() == pytest.approx(expected, abs=1e-6)
    assert transfer_entropy_all_pairs(s32, t32).item() == pytest.approx(expected, abs=1e-6)


def test_exact_known_values_are_exact():
    """A fraction to within 4 float64 ulps (the logs are regrouped as sums of c ln c); the
    bounds 1 and 0 exactly (clamped, and rounding of an exact 0 is 0)."""
    value = transfer_entropy(col(KNOWN[1][0]), col(KNOWN[1][1])).item()
    assert value == pytest.approx(6 / 7, rel=4 * 2**-52, abs=0)
    assert transfer_entropy(col(_ALT), col(_QUARTER)).item() == 1.0
    assert transfer_entropy(col(KNOWN[3][0]), col(KNOWN[3][1])).item() == 0.0


def test_random_pairs_match_pyinform():
    rng = np.random.default_rng(20240402)
    lengths = np.concatenate([[2, 2, 3, 3, 4], rng.integers(2, 3001, size=235)])
    worst = {torch.float64: 0.0, torch.float32: 0.0}
    refs = []
    for length in lengths:
        src, tgt = random_pair(rng, int(length))
        ref = pyinform.transfer_entropy(src, tgt, k=1)
        refs.append(ref)
        for dtype in worst:
            s, t = col(src, dtype), col(tgt, dtype)
            for got in (transfer_entropy(s, t).item(), transfer_entropy_all_pairs(s, t).item()):
                worst[dtype] = max(worst[dtype], abs(got - ref))
    assert worst[torch.float64] <= 1e-9, worst
    assert worst[torch.float32] <= 1e-5, worst
    # The sample must exercise strongly dependent pairs as well as near-independent ones.
    assert max(refs) > 0.5 and min(refs) < 0.01


def test_batched_equals_one_at_a_time():
    rng = np.random.default_rng(1)
    pairs = [random_pair(rng, 500) for _ in range(40)]
    S = torch.tensor(np.stack([p[0] for p in pairs], axis=1), dtype=torch.float64)
    T = torch.tensor(np.stack([p[1] for p in pairs], axis=1), dtype=torch.float64)
    batched = transfer_entropy(S, T)
    assert batched.shape == (40,)
    single = torch.cat([transfer_entropy(S[:, p : p + 1], T[:, p : p + 1]) for p in range(40)])
    torch.testing.assert_close(batched, single, rtol=0, atol=1e-15)
    refs = [pyinform.transfer_entropy(s, t, k=1) for s, t in pairs]
    torch.testing.assert_close(batched, torch.tensor(refs, dtype=torch.float64), rtol=0, atol=1e-9)


def test_all_pairs_equals_per_pair_and_pyinform():
    rng = np.random.default_rng(2)
    W, n_src, n_dst = 700, 7, 5
    S = torch.tensor(rng.random((W, n_src)) < rng.uniform(0.05, 0.95, n_src), dtype=torch.float64)
    T = torch.empty(W, n_dst, dtype=torch.float64)
    T[:, :2] = torch.tensor(rng.random((W, 2)) < 0.4, dtype=torch.float64)
    T[0, 2:] = 0  # destinations 2..4: noisy delayed copies of sources 0..2 (high TE)
    T[1:, 2:] = (S[:-1, :3] + torch.tensor(rng.random((W - 1, 3)) < 0.1)) % 2
    te = transfer_entropy_all_pairs(S, T)
    assert te.shape == (n_src, n_dst) and te.dtype == torch.float64
    per_pair = torch.tensor(
        [
            [transfer_entropy(S[:, i : i + 1], T[:, j : j + 1]).item() for j in range(n_dst)]
            for i in range(n_src)
        ],
        dtype=torch.float64,
    )
    torch.testing.assert_close(te, per_pair, rtol=0, atol=1e-15)
    for i, j in [(0, 2), (1, 3), (2, 4), (0, 0), (6, 1), (3, 2)]:
        ref = pyinform.transfer_entropy(S[:, i].int().numpy(), T[:, j].int().numpy(), k=1)
        assert te[i, j].item() == pytest.approx(ref, abs=1e-9)
    assert te[0, 2] > 0.3 and te[1, 3] > 0.3 and te[2, 4] > 0.3
    # float32 path (float32 counting + matrix product) agrees too.
    te32 = transfer_entropy_all_pairs(S.float(), T.float())
    assert te32.dtype == torch.float32
    torch.testing.assert_close(te32.double(), te, rtol=0, atol=1e-6)


def random_columns(rng: np.random.Generator, W: int, P: int) -> tuple[np.ndarray, np.ndarray]:
    """(W, P) int32 source and target columns from random_pair."""
    pairs = [random_pair(rng, W) for _ in range(P)]
    return np.stack([p[0] for p in pairs], axis=1), np.stack([p[1] for p in pairs], axis=1)


def pyinform_pairs(src: np.ndarray, tgt: np.ndarray) -> torch.Tensor:
    return torch.tensor(
        [pyinform.transfer_entropy(src[:, p], tgt[:, p], k=1) for p in range(src.shape[1])],
        dtype=torch.float64,
    )


def test_pack_layout_and_popcount():
    # Bit m of packed row b is sample m*B + b, B = ceil(W/8); samples >= W are 0.
    rng = np.random.default_rng(6)
    for W in (1, 2, 7, 8, 9, 17, 65, 500, 4096):
        series = rng.random((W, 5)) < 0.5
        series[:, 0] = True  # all ones: the largest byte sums in _popcount_rows' uint8 folding
        B = -(-W // 8)
        packed = te_module._pack(torch.tensor(series), torch.empty(B, 5, dtype=torch.uint8))
        bits = (packed.numpy()[None] >> np.arange(8)[:, None, None]) & 1  # (8, B, 5)
        expected = np.zeros((8 * B, 5), dtype=np.uint8)
        expected[:W] = series
        np.testing.assert_array_equal(bits.reshape(8 * B, 5), expected)
        counts = te_module._popcount_rows(packed[None].clone())
        np.testing.assert_array_equal(counts[0].numpy(), series.sum(axis=0))


@pytest.mark.parametrize("W", [2, 3, 7, 8, 9, 15, 16, 17, 63, 64, 65, 127, 129, 500, 4097])
def test_packed_path_edge_lengths_match_pyinform(W):
    # Word boundaries of the bit-packed path: W not a multiple of 8, one packed row, P = 1.
    rng = np.random.default_rng(W)
    src, tgt = random_columns(rng, W, 7)
    ref = pyinform_pairs(src, tgt)
    for P in (1, 7):
        s, t = torch.tensor(src[:, :P]), torch.tensor(tgt[:, :P])
        got64 = transfer_entropy(s.double(), t.double())
        torch.testing.assert_close(got64, ref[:P], rtol=0, atol=1e-9)
        for dtype in (torch.bool, torch.int64, torch.float32):
            got = transfer_entropy(s.to(dtype), t.to(dtype))
            assert got.dtype == torch.float32
            torch.testing.assert_close(got.double(), ref[:P], rtol=0, atol=1e-5)


def test_popcount_fallback_matches_numpy_path(monkeypatch):
    # The SWAR popcount (non-CPU devices, numpy < 2) must give the same counts.
    rng = np.random.default_rng(7)
    src, tgt = random_columns(rng, 777, 9)
    S, T = torch.tensor(src, dtype=torch.bool), torch.tensor(tgt, dtype=torch.bool)
    fast = transfer_entropy(S.double(), T.double())
    monkeypatch.delattr(np, "bitwise_count", raising=False)
    slow = transfer_entropy(S.double(), T.double())
    torch.testing.assert_close(slow, fast, rtol=0, atol=0)
    torch.testing.assert_close(slow, pyinform_pairs(src, tgt), rtol=0, atol=1e-9)
    packed = torch.tensor(rng.integers(0, 256, size=(3, 100, 4)), dtype=torch.uint8)
    expected = np.unpackbits(packed.numpy()[..., None], axis=-1).sum(axis=(1, 3))
    np.testing.assert_array_equal(te_module._popcount_rows(packed).numpy(), expected)


@pytest.fixture(params=list(CpuKernel))
def each_cpu_kernel(request):
    """Each CPU layer-pair kernel in turn, not only the one this machine measures faster."""
    set_cpu_layer_kernel(request.param)
    yield request.param
    set_cpu_layer_kernel(None)


def test_strided_inputs(each_cpu_kernel):
    # Column slices, transposed (column-major) and expanded inputs read like contiguous ones.
    rng = np.random.default_rng(8)
    src, tgt = random_columns(rng, 301, 12)
    S, T = torch.tensor(src, dtype=torch.bool), torch.tensor(tgt, dtype=torch.bool)
    ref = transfer_entropy(S.double(), T.double())
    S_cm, T_cm = S.T.contiguous().T, T.T.contiguous().T
    torch.testing.assert_close(transfer_entropy(S_cm, T_cm).double(), ref, rtol=0, atol=1e-6)
    torch.testing.assert_close(
        transfer_entropy(S[:, 3:9], T[:, 3:9]).double(), ref[3:9], rtol=0, atol=1e-6
    )
    ref_all = transfer_entropy_all_pairs(S.double(), T.double())
    for s in (S_cm, S[:, 2:7], S[:, :1]):
        expected = transfer_entropy_all_pairs(s.double(), T.double())
        torch.testing.assert_close(
            transfer_entropy_all_pairs(s, T_cm[:, :5]).double(), expected[:, :5], rtol=0, atol=1e-6
        )
    torch.testing.assert_close(
        transfer_entropy_all_pairs(S[:, 2:7].double(), T.double()), ref_all[2:7]
    )
    expanded = S[:, :1].expand(301, 4)
    torch.testing.assert_close(
        transfer_entropy_all_pairs(expanded, T).double(),
        ref_all[:1].expand(4, 12),
        rtol=0,
        atol=1e-6,
    )
    # Strides torch._int_mm misreads unless the operand is made contiguous first.
    for s in (S[:1].expand(301, 12), torch.as_strided(S.flatten(), (301, 12), (1, 1))):
        expected = transfer_entropy_all_pairs(s.double(), T.double())
        torch.testing.assert_close(
            transfer_entropy_all_pairs(s, T).double(), expected, rtol=0, atol=1e-6
        )


@pytest.mark.parametrize("W,n_src,n_dst", [(2, 3, 2), (3, 1, 4), (65, 9, 1), (1000, 40, 7)])
def test_all_pairs_int8_and_float_products_agree(W, n_src, n_dst):
    # Both CPU kernels (the faster is chosen by measurement) give the same exact counts.
    rng = np.random.default_rng(W + n_src)
    src, tgt = random_columns(rng, W, max(n_src, n_dst))
    S = torch.tensor(src[:, :n_src], dtype=torch.bool)
    T = torch.tensor(tgt[:, :n_dst], dtype=torch.bool)
    try:
        set_cpu_layer_kernel(CpuKernel.INT8)
        int8 = transfer_entropy_all_pairs(S, T)
        set_cpu_layer_kernel(CpuKernel.FLOAT)
        floats = transfer_entropy_all_pairs(S, T)
    finally:
        set_cpu_layer_kernel(None)
    torch.testing.assert_close(int8, floats, rtol=0, atol=0)
    refs = [
        [pyinform.transfer_entropy(src[:, i], tgt[:, j], k=1) for j in range(n_dst)]
        for i in range(n_src)
    ]
    torch.testing.assert_close(
        int8.double(), torch.tensor(refs, dtype=torch.float64), rtol=0, atol=1e-5
    )


@pytest.mark.parametrize(
    "dtype", [torch.bool, torch.uint8, torch.int64, torch.float32, torch.float64]
)
def test_input_dtypes_agree(dtype):
    rng = np.random.default_rng(3)
    S_np = rng.random((300, 6)) < 0.3
    T_np = np.roll(S_np, 1, axis=0) ^ (rng.random((300, 6)) < 0.2)
    ref = transfer_entropy(
        torch.tensor(S_np, dtype=torch.float64), torch.tensor(T_np, dtype=torch.float64)
    )
    ref_all = transfer_entropy_all_pairs(
        torch.tensor(S_np, dtype=torch.float64), torch.tensor(T_np[:, :3], dtype=torch.float64)
    )
    S, T = torch.tensor(S_np).to(dtype), torch.tensor(T_np).to(dtype)
    out, out_all = transfer_entropy(S, T), transfer_entropy_all_pairs(S, T[:, :3])
    expected_dtype = torch.float64 if dtype == torch.float64 else torch.float32
    assert out.dtype == expected_dtype and out_all.dtype == expected_dtype
    torch.testing.assert_close(out.double(), ref, rtol=0, atol=1e-6)
    torch.testing.assert_close(out_all.double(), ref_all, rtol=0, atol=1e-6)
    assert ref.min() > 0.05  # the values compared are not trivially 0


def test_result_dtype_float64_if_either_input_is():
    s = torch.tensor([[0], [1], [1], [0]], dtype=torch.float64)
    t = torch.tensor([[1], [0], [1], [1]], dtype=torch.bool)
    assert transfer_entropy(s, t).dtype == torch.float64
    assert transfer_entropy(t, s).dtype == torch.float64
    assert transfer_entropy_all_pairs(t, s).dtype == torch.float64
    assert transfer_entropy(t, t).dtype == torch.float32


@pytest.mark.parametrize(
    "transitions, counting",
    [
        (1, torch.float32),
        (2**24 - 1, torch.float32),
        (2**24, torch.float64),
        (2**25, torch.float64),
    ],
)
def test_layer_pairs_count_in_float32_only_below_2_24_transitions(transitions, counting):
    """float32 holds every integer below 2**24 exactly, so a float32 product counts exactly
    over fewer transitions; from 2**24 on the counts run in float64 (a float64 result always
    does). Checked on the shapes alone: a window of 2**24 samples is an expanded view here."""

    def window(dtype: torch.dtype) -> torch.Tensor:
        return torch.zeros(1, 3, dtype=dtype).expand(transitions + 1, 3)

    assert te_module._dtypes(window(torch.float32), window(torch.bool)) == (torch.float32, counting)
    assert te_module._dtypes(window(torch.float32), window(torch.float64)) == (
        torch.float64,
        torch.float64,
    )


@pytest.mark.parametrize(
    "source,target,fn,match",
    [
        (torch.zeros(1, 3), torch.zeros(1, 3), transfer_entropy, "W=2.*W=1"),
        (torch.zeros(1, 3), torch.zeros(1, 2), transfer_entropy_all_pairs, "W=2.*W=1"),
        (
            torch.zeros(10, 3),
            torch.zeros(9, 3),
            transfer_entropy,
            "same number of time samples.*10 and 9",
        ),
        (
            torch.zeros(10, 3),
            torch.zeros(9, 4),
            transfer_entropy_all_pairs,
            "same number of time samples.*10 and 9",
        ),
        (
            torch.zeros(9, 3),
            torch.zeros(10, 3),
            transfer_entropy,
            "same number of time samples.*9 and 10",
        ),
        (
            torch.zeros(9, 3),
            torch.zeros(10, 4),
            transfer_entropy_all_pairs,
            "same number of time samples.*9 and 10",
        ),
        (
            torch.zeros(10, 4),
            torch.zeros(10, 3),
            transfer_entropy,
            r"same number of columns.*\(10, 4\).*\(10, 3\)",
        ),
        (
            torch.zeros(10, 3),
            torch.zeros(10, 4),
            transfer_entropy,
            r"same number of columns.*\(10, 3\).*\(10, 4\)",
        ),
        (torch.zeros(10), torch.zeros(10), transfer_entropy, r"2-D.*ndim=1.*reshape\(-1, 1\)"),
        (
            torch.zeros(10, 2),
            torch.zeros(10, 2, 1),
            transfer_entropy_all_pairs,
            "target must be a 2-D.*ndim=3",
        ),
        (
            torch.zeros(10, 2),
            torch.zeros(10, 2, device="meta"),
            transfer_entropy,
            "same device.*cpu and meta",
        ),
        (
            torch.zeros(10, 2, device="meta"),
            torch.zeros(10, 3),
            transfer_entropy_all_pairs,
            "same device.*meta and cpu",
        ),
    ],
)
def test_validation_errors(source, target, fn, match):
    with pytest.raises(ValueError, match=match):
        fn(source, target)


def test_binarize_abs_boundaries():
    z = torch.tensor([-2.0, -1.0, -0.999, 0.0, 0.5, 0.999, 1.0, 3.0])
    out = binarize_abs(z, 1.0)
    assert out.dtype == torch.bool and out.shape == z.shape
    assert out.tolist() == [True, True, False, False, False, False, True, True]
    assert binarize_abs(z.reshape(2, 4), 0.5).tolist() == [
        [True, True, True, False],
        [True, True, True, True],
    ]


def test_binarize_prob_boundaries():
    p = torch.tensor([[0.0, 0.5, 0.8999], [0.9, 0.95, 1.0]])
    out = binarize_prob(p, 0.9)
    assert out.dtype == torch.bool and out.shape == p.shape
    assert out.tolist() == [[False, False, False], [True, True, True]]
    assert binarize_prob(torch.tensor([0.9], dtype=torch.float64), 0.9).item()


def test_all_pairs_exact_under_autocast():
    # bf16 holds integers exactly only up to 256: counting must not be autocast.
    rng = np.random.default_rng(5)
    S = torch.tensor(rng.random((3000, 4)) < 0.5, dtype=torch.float32)
    T = torch.tensor(rng.random((3000, 3)) < 0.5, dtype=torch.float32)
    T[1:, 0] = S[:-1, 0]
    expected = transfer_entropy_all_pairs(S, T)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = transfer_entropy_all_pairs(S, T)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cpu_equals_cuda_without_host_sync():
    rng = np.random.default_rng(4)
    S = torch.tensor(rng.random((2000, 12)) < 0.3)
    T = torch.tensor(np.roll(S.numpy(), 1, axis=0) ^ (rng.random((2000, 12)) < 0.1))
    z = torch.tensor(rng.normal(size=(50, 10)), dtype=torch.float32)
    for dtype in (torch.bool, torch.float32, torch.float64):
        s, t = S.to(dtype), T.to(dtype)
        sc, tc, zc = s.cuda(), t.cuda(), z.cuda()
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")  # any host sync inside raises
        try:
            pair_gpu = transfer_entropy(sc, tc)
            all_gpu = transfer_entropy_all_pairs(sc, tc)
            bin_gpu = binarize_abs(zc, 1.0), binarize_prob(zc.softmax(1), 0.9)
        finally:
            torch.cuda.set_sync_debug_mode("default")
        assert pair_gpu.device.type == "cuda" and all_gpu.device.type == "cuda"
        tol = 1e-12 if dtype == torch.float64 else 1e-6
        torch.testing.assert_close(pair_gpu.cpu(), transfer_entropy(s, t), rtol=0, atol=tol)
        torch.testing.assert_close(
            all_gpu.cpu(), transfer_entropy_all_pairs(s, t), rtol=0, atol=tol
        )
        assert torch.equal(bin_gpu[0].cpu(), binarize_abs(z, 1.0))
        assert torch.equal(bin_gpu[1].cpu(), binarize_prob(z.softmax(1), 0.9))
    with torch.autocast("cuda", dtype=torch.float16):
        got = transfer_entropy_all_pairs(S.float().cuda(), T.float().cuda())
    torch.testing.assert_close(got.cpu(), transfer_entropy_all_pairs(S, T), rtol=0, atol=1e-6)


def test_the_cpu_kernel_is_chosen_by_measurement(monkeypatch):
    import te_sweep.core.te as te

    set_cpu_layer_kernel(None)
    try:
        assert cpu_layer_kernel() in (CpuKernel.INT8, CpuKernel.FLOAT)
        kernel, best = te._measure_cpu_kernels()
        assert best[kernel] == min(best.values()) and set(best) == set(CpuKernel)
        monkeypatch.delattr(torch, "_int_mm")
        assert te._measure_cpu_kernels() == (CpuKernel.FLOAT, {})
    finally:
        set_cpu_layer_kernel(None)


def test_effective_te_is_plugin_minus_the_te_of_the_time_shuffled_source():
    """Exact, against pyinform: the same permutation of the window (the generator's first
    randperm), the plug-in TE of every pair minus that of the shuffled source."""
    rng = np.random.default_rng(11)
    src, tgt = random_columns(rng, 300, 3)
    source = torch.tensor(src, dtype=torch.bool)
    target = torch.tensor(tgt[:, :2], dtype=torch.bool)
    effective = effective_transfer_entropy(source, target, torch.Generator().manual_seed(5))
    order = torch.randperm(300, generator=torch.Generator().manual_seed(5)).numpy()
    expected = [
        [
            pyinform.transfer_entropy(src[:, i], tgt[:, j], k=1)
            - pyinform.transfer_entropy(src[order, i], tgt[:, j], k=1)
            for j in range(2)
        ]
        for i in range(3)
    ]
    torch.testing.assert_close(
        effective.double(), torch.tensor(expected, dtype=torch.float64), rtol=0, atol=1e-5
    )
    assert effective.shape == (3, 2)


def test_every_pair_of_binary_series_of_five_samples_matches_pyinform():
    """Exhaustive at W = 5: all 32 x 32 (source, target) pairs at once, so every way a cell
    can be empty, single or full occurs (short windows are where the count arithmetic shows)."""
    series = np.array(list(itertools.product((0, 1), repeat=5)), dtype=np.int32)  # (32, 5)
    src = np.repeat(series, 32, axis=0).T  # (5, 1024): column i * 32 + j is series i ...
    tgt = np.tile(series, (32, 1)).T  # ... against series j
    got = transfer_entropy(torch.tensor(src, dtype=torch.bool), torch.tensor(tgt, dtype=torch.bool))
    expected = [pyinform.transfer_entropy(src[:, p], tgt[:, p], k=1) for p in range(src.shape[1])]
    torch.testing.assert_close(
        got.double(), torch.tensor(expected, dtype=torch.float64), rtol=0, atol=1e-6
    )


def test_the_fused_form_gives_the_same_bits():
    """bits_fused (for torch.compile) and bits_from_groups (eager) on the same counts."""
    from te_sweep.core.te import bits_from_groups, bits_fused, count_maps, group_columns

    generator = torch.Generator().manual_seed(3)
    for window, n_src, n_dst in ((2, 1, 1), (40, 5, 3), (600, 12, 10)):
        source = torch.rand(window, n_src, generator=generator) < 0.3
        target = torch.rand(window, n_dst, generator=generator) < 0.6
        y = torch.cat([source[:-1], torch.ones(window - 1, 1, dtype=torch.bool)], 1).double()
        counts = (group_columns(target).double().T @ y).view(4, n_dst, n_src + 1)
        cell_map, signs = count_maps(torch.device("cpu"), window - 1)
        eager = bits_from_groups(counts, cell_map, signs)
        torch.testing.assert_close(bits_fused(counts, signs), eager, rtol=0, atol=1e-14)
        torch.testing.assert_close(eager.T, transfer_entropy_all_pairs(source.double(), target))
