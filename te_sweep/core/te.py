"""Batched plug-in transfer entropy between binary series, in PyTorch.

Used by the TE-feedback training step: after each batch the logits and softmax outputs of the
last layer are binarised (``binarize_abs``, ``binarize_prob``) and the transfer entropy of every
source unit -> destination unit pair over a sliding window of W samples is recomputed.

The quantity is Schreiber's TE with a binary alphabet, destination history k=1, source history
l=1, delay 1, log base 2 (bits), plug-in counts, no bias correction -- exactly what
``pyinform.transfer_entropy(source, target, k=1)`` computes::

    TE(Y->X) = sum_{y,x',x} p(y_t, x_{t+1}, x_t) * log2[p(x_{t+1} | x_t, y_t) / p(x_{t+1} | x_t)]

over the W-1 transitions of the window (cells with zero count contribute 0).

Counting strategy.  For k=l=1 each pair has 8 cells (y_t, x_{t+1}, x_t) and every cell count is a
sum over transitions of a product of 0/1 indicators.  Only the y_t=1 cells and the (x_{t+1}, x_t)
totals are counted (y_t=0 cells are differences), from seven integer sums: #y, #y x', #y x' x,
#y x, #x' x, #x', #x.  Both public functions share one "counts -> bits" helper (logs in float64
on the small count tensors); counts are exact integers.

* Independent pairs (``transfer_entropy``): every column is bit-packed along time into bytes in
  *blocked* order -- bit m of packed row b holds sample m*B + b (B = ceil(W/8) rows; samples past
  W are 0).  Packing is 8 in-place ``add_(block, alpha=2**m)`` over contiguous row blocks: one
  pass over the input, and bool input is read as bytes without conversion.  In this layout the
  one-sample shift x_{t+1} is a shift by one packed *row* (plus a 1-bit shift of row 0 for the
  carry into the next bit).  Products are bytewise ANDs and each sum is a popcount summed over
  rows: numpy's ``bitwise_count`` (hardware popcount) on CPU, a SWAR bit trick on other devices.
  Everything after packing touches W*P/8 bytes, no W x P temporary is allocated.
* Layer pairs (``transfer_entropy_all_pairs``): the y_t=1 sums of every (source, destination)
  pair are one matrix product Y^T @ [1, x', x, x' x] of 0/1 indicator matrices: float32 (exact
  below 2**24 transitions, else float64; autocast is disabled around it), or on a CPU where it
  is faster int8 x int8 -> int32 (``torch._int_mm``). Which is faster depends on the CPU, not
  on the device type: with AVX-512 VNNI int8 was about 7x float32; on an AVX2-only EPYC it was
  20x slower (83-108 ms against 4 ms for 1000 x 10 pairs at W = 4096). So the CPU kernel is
  chosen by measuring both once per process on a probe of the training's size
  (``cpu_layer_kernel``); both are exact and tested against pyinform.

No Python loop over pairs or samples, no host synchronisation, no branch on tensor values (it runs
inside a GPU training step); only shapes, dtypes and the device select the code path.

Input contract: series must be {0,1}-valued (bool, any integer or float dtype).  This is not
checked, since that would force a host sync on GPU; other values give meaningless results.
Bool (or uint8/int8) input is the fast path; other dtypes are converted block by block.
Result dtype: float64 if either input is float64, else float32.
"""

from __future__ import annotations

import enum
import functools
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "binarize_abs",
    "binarize_prob",
    "bits_from_counts",
    "effective_transfer_entropy",
    "transfer_entropy",
    "transfer_entropy_all_pairs",
]

# float32 represents every integer up to 2**24 exactly, so 0/1 counts over fewer transitions are
# exact in a float32 matrix product; beyond that (or for a float64 result) it runs in float64.
_FLOAT32_EXACT_COUNT = 2**24
# Plug-in TE of a finite window is a finite sum of count ratios; values this small are float64
# rounding of an exact 0, and are reported as 0 (TE >= 0 mathematically, and <= 1 bit for k=l=1).
_ZERO_TOL = 1e-12
# The layer-pair product's indicator columns (1 + 3 per destination unit) are padded with zero
# columns to a multiple of this on CPU: MKL's float GEMM against a 4095 x 1000 layer took
# 3.4 ms with 32 columns and 4.6 ms with 31 (10 destination units) on a 2-core AVX2 EPYC.
CPU_GEMM_COLUMNS = 16
_BYTE_DTYPES = (torch.bool, torch.uint8, torch.int8)
# The probe that picks the CPU layer-pair kernel: W-1 transitions x (1 + 3 * 10 destinations),
# times 128 sources: the fashion-mnist feedback's shape at a window of 4096.
_PROBE_T, _PROBE_D, _PROBE_S, _PROBE_REPEATS = 4095, 31, 128, 5


class CpuKernel(str, enum.Enum):
    """The product counting layer pairs on a CPU."""

    INT8 = "int8"  # torch._int_mm: int8 x int8 -> int32
    FLOAT = "float"  # float32 (float64 past 2**24 transitions)


_cpu_kernel: CpuKernel | None = None  # measured on first use; set_cpu_layer_kernel overrides


def cpu_layer_kernel() -> CpuKernel:
    """The faster exact CPU kernel for layer pairs on this machine, measured once."""
    global _cpu_kernel
    if _cpu_kernel is None:
        _cpu_kernel = _measure_cpu_kernels()[0]
    return _cpu_kernel


def set_cpu_layer_kernel(kernel: CpuKernel | None) -> None:
    """Force a CPU kernel (tests, benchmarks); None measures again at the next use."""
    global _cpu_kernel
    _cpu_kernel = kernel


def measured_cpu_kernel() -> CpuKernel | None:
    """The CPU kernel this process chose, None before any layer pair was counted on a CPU
    (a trial records it: trials.parquet's cpu_kernel)."""
    return _cpu_kernel


def _measure_cpu_kernels() -> tuple[CpuKernel, dict[CpuKernel, float]]:
    """(the faster kernel, best seconds of each) on the probe; float when int8 is missing.

    Measured on one thread: with several, OpenMP's active waiting beside a busy neighbour made
    both kernels take about 18 ms and the choice flip between processes (issue 19); on one
    thread int8 took 0.09-0.13 ms and float 0.75-0.80 ms in every run, loaded or not, the
    same order as with two threads waiting passively (0.17 and 1.5 ms).
    """
    if not hasattr(torch, "_int_mm"):
        return CpuKernel.FLOAT, {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _time_cpu_kernels()
    finally:
        torch.set_num_threads(threads)


def _time_cpu_kernels() -> tuple[CpuKernel, dict[CpuKernel, float]]:
    generator = torch.Generator().manual_seed(0)
    d = torch.rand(_PROBE_T, _PROBE_D, generator=generator) < 0.5
    y = torch.rand(_PROBE_T, _PROBE_S, generator=generator) < 0.5
    products: dict[CpuKernel, Callable[[], torch.Tensor]] = {
        CpuKernel.INT8: lambda: torch._int_mm(d.T.to(torch.int8), y.to(torch.int8)),
        CpuKernel.FLOAT: lambda: d.T.to(torch.float32) @ y.to(torch.float32),
    }
    best: dict[CpuKernel, float] = {}
    for kernel, product in products.items():
        product()  # warm-up: first calls allocate and pick code paths
        times = []
        for _ in range(_PROBE_REPEATS):
            start = time.perf_counter()
            product()
            times.append(time.perf_counter() - start)
        best[kernel] = min(times)
    return min(best, key=best.__getitem__), best


def _validate(source: Tensor, target: Tensor, same_width: bool) -> int:
    """Check shapes/devices (no tensor values are read) and return W."""
    for name, t in (("source", source), ("target", target)):
        if not isinstance(t, Tensor) or t.ndim != 2:
            got = (
                f"ndim={t.ndim}, shape {tuple(t.shape)}"
                if isinstance(t, Tensor)
                else type(t).__name__
            )
            raise ValueError(
                f"{name} must be a 2-D tensor of shape (W, n) with time along dim 0; got {got}. "
                "Reshape a single series with .reshape(-1, 1)."
            )
    if source.shape[0] != target.shape[0]:
        raise ValueError(
            f"source and target must have the same number of time samples W (dim 0); got "
            f"{source.shape[0]} and {target.shape[0]}. Cut both to the same window."
        )
    if same_width and source.shape[1] != target.shape[1]:
        raise ValueError(
            f"source and target must have the same number of columns (one per pair); got shapes "
            f"{tuple(source.shape)} and {tuple(target.shape)}. Use transfer_entropy_all_pairs for "
            "every source x destination combination."
        )
    if source.shape[0] < 2:
        raise ValueError(
            f"need at least W=2 time samples (one transition); got W={source.shape[0]}. "
            "Wait until the window holds two or more samples."
        )
    if source.device != target.device:
        raise ValueError(
            f"source and target must be on the same device; got {source.device} and "
            f"{target.device}. Move one with .to(other.device)."
        )
    return source.shape[0]


def _dtypes(source: Tensor, target: Tensor) -> tuple[torch.dtype, torch.dtype]:
    """(result dtype, float counting dtype); decided from dtypes and shapes only, never values."""
    result = torch.float64 if torch.float64 in (source.dtype, target.dtype) else torch.float32
    exact32 = source.shape[0] - 1 < _FLOAT32_EXACT_COUNT
    return result, (torch.float32 if result == torch.float32 and exact32 else torch.float64)


def _as_bytes(t: Tensor) -> Tensor:
    """{0,1} values as uint8: a free view of 1-byte integer/bool tensors, else a converted copy."""
    return t.view(torch.uint8) if t.dtype in _BYTE_DTYPES else t.to(torch.uint8)


def _pack(series: Tensor, out: Tensor) -> Tensor:
    """Bit-pack (W, n) {0,1} series into out (B, n) uint8, B = ceil(W/8), in blocked order.

    Bit m of out[b] is series[m*B + b]; bits of samples >= W are 0.
    """
    B = out.shape[0]
    out.copy_(_as_bytes(series[:B]))
    for m in range(1, 8):
        block = series[m * B : (m + 1) * B]  # the last non-empty block may be short
        if block.shape[0] > 0:
            out[: block.shape[0]].add_(_as_bytes(block), alpha=1 << m)
    return out


def _fold_rows(v: Any) -> int:  # a tensor or a NumPy array: both slice and add in place
    """Add row halves of (..., B, n) in place 4 times (byte popcounts <= 8, so sums <= 128 stay
    exact in uint8); returns how many leading rows remain.  Widening all B rows is slow on CPU."""
    rows: int = v.shape[-2]
    for _ in range(4):
        half = rows // 2
        v[..., :half, :] += v[..., rows - half : rows, :]
        rows -= half
    return rows


def _popcount_rows(packed: Tensor) -> Tensor:
    """Set bits of uint8 (..., B, n), summed over B -> (..., n) int64.  Overwrites ``packed``."""
    if packed.device.type == "cpu" and hasattr(np, "bitwise_count"):  # numpy >= 2.0
        a = packed.numpy()
        np.bitwise_count(a, out=a)  # hardware popcount, in place
        rows = _fold_rows(a)
        return torch.from_numpy(a[..., :rows, :].sum(axis=-2, dtype=np.int64))
    v = packed - ((packed >> 1) & 0x55)  # SWAR popcount of each byte
    v = (v & 0x33) + ((v >> 2) & 0x33)
    v = (v + (v >> 4)) & 0x0F
    rows = _fold_rows(v)
    return v[..., :rows, :].sum(dim=-2)


# A pair's plug-in TE needs 12 counts; all are linear in its four "group" sums over the
# transitions with y_t = 1 -- #y, #y x', #y x, #y x' x, in this order -- and the same four
# over all transitions (where #y is the number of transitions).  The rows of _CELL_MAP give,
# from the four sums, the cells (x', x) = (0, 0), (0, 1), (1, 0), (1, 1) and the margins
# x = 0, 1.  With f(c) = c ln c (0 at c = 0) and T transitions,
#   TE * T ln 2 = sum over y of [sum f(cells) - sum f(margins)] - [the same over all transitions]
# (Schreiber's sum of c ln[c(y,x',x) c(x) / (c(y,x) c(x',x))] regrouped), so _CELL_SIGNS
# weighs the six mapped counts.  This is a handful of operations on the count tensors, for
# any number of pairs: fewer launches on a GPU than cell-by-cell arithmetic.
_CELL_MAP = (
    (1, -1, -1, 1),
    (0, 0, 1, -1),
    (0, 1, 0, -1),
    (0, 0, 0, 1),
    (1, 0, -1, 0),
    (0, 0, 1, 0),
)
_CELL_SIGNS = (1, 1, 1, 1, -1, -1)
# Float64 values above this are kept; below it they are float64 rounding of an exact 0
# (threshold() keeps x > t: the largest float below _ZERO_TOL keeps every x >= _ZERO_TOL).
_KEEP_ABOVE = math.nextafter(_ZERO_TOL, 0.0)


@functools.lru_cache(maxsize=64)
def count_maps(device: torch.device, transitions: int) -> tuple[Tensor, Tensor]:
    """_CELL_MAP, and _CELL_SIGNS already divided by T ln 2, on the device: made once, not
    copied to it at every estimate."""
    cell_map = torch.tensor(_CELL_MAP, dtype=torch.float64, device=device)
    signs = torch.tensor(_CELL_SIGNS, dtype=torch.float64, device=device)
    return cell_map, signs / (transitions * math.log(2.0))


def bits_from_counts(
    counts: Tensor, transitions: int, dtype: torch.dtype = torch.float64
) -> Tensor:
    """TE in bits of every (source, destination) pair from its group sums.

    Args:
        counts: (4, n_dst, n_src + 1), any real dtype holding exact integers: for each group
            (#y, #y x', #y x, #y x' x) and destination unit, the sums over the transitions with
            source unit i at 1 (columns :n_src) and over all transitions (the last column, in
            which #y is the number of transitions).
        transitions: the number of transitions T.
        dtype: the result's dtype (float64 needs no conversion).
    Returns:
        (n_dst, n_src): TE(source i -> destination j) at [j, i].  The logs run in float64;
        values below _ZERO_TOL are float64 rounding of an exact 0 and are returned as 0.
    """
    return bits_from_groups(counts, *count_maps(counts.device, transitions)).to(dtype)


def bits_from_groups(counts: Tensor, cell_map: Tensor, signs: Tensor) -> Tensor:
    """bits_from_counts with count_maps' tensors given: the counts mapped to the cells and the
    terms weighed by the signs as two small matrix products, the fewest operations eagerly."""
    groups = counts.to(torch.float64)
    mapped = (cell_map @ groups.flatten(1)).view(6, *groups.shape[1:])  # (6, n_dst, n_src+1)
    terms = _terms(mapped)
    return _bits_of_te((signs @ terms.flatten(1)).view(terms.shape[1:]))


def bits_fused(counts: Tensor, signs: Tensor) -> Tensor:
    """bits_from_groups written elementwise, for torch.compile: inductor fuses all of it (and
    what follows it) into one kernel, where each matrix product would be a launch of its own.
    Eagerly it dispatches more operations than bits_from_groups; the value is the same."""
    y, a, b, ab = counts.to(torch.float64).unbind(0)  # #y, #y x', #y x, #y x' x
    mapped = torch.stack([y - a - b + ab, b - ab, a - ab, ab, y - b, b])  # rows of _CELL_MAP
    return _bits_of_te((_terms(mapped) * signs.view(6, 1, 1)).sum(0))


def _terms(mapped: Tensor) -> Tensor:
    """(6, n_dst, n_src): each pair's f(count) terms, with y_t = 1 and y_t = 0, less the
    same over all transitions (the mapped counts' last column)."""
    f = torch.xlogy(mapped, mapped)
    without_y = mapped[..., -1:] - mapped[..., :-1]  # the counts with y_t = 0
    return f[..., :-1] + torch.xlogy(without_y, without_y) - f[..., -1:]


def _bits_of_te(te: Tensor) -> Tensor:
    return torch.nn.functional.threshold(te, _KEEP_ABOVE, 0.0).clamp_max_(1.0)


def transfer_entropy(source: Tensor, target: Tensor) -> Tensor:
    """TE(source[:, p] -> target[:, p]) in bits for each column p.

    Bit-packed counting (module docstring); memory about 7 * W * P / 8 bytes.

    Args:
        source: (W, P) {0,1}-valued series (bool/int/float), time along dim 0, W >= 2.
        target: (W, P) {0,1}-valued series, same shape and device.
    Returns:
        (P,) on the inputs' device; float64 if either input is float64, else float32.
    """
    W = _validate(source, target, same_width=True)
    dtype, _ = _dtypes(source, target)
    B = -(-W // 8)
    # Rows: y, x, y&x', y&x'&x, y&x, x'&x (packed), popcounted together at the end.
    buf = torch.empty(6, B, source.shape[1], dtype=torch.uint8, device=source.device)
    y, x = _pack(source, buf[0]), _pack(target, buf[1])
    b_last, m_last = (W - 1) % B, (W - 1) // B  # packed position of sample W-1
    x_first, x_last = x[0] & 1, (x[b_last] >> m_last) & 1
    y[b_last].bitwise_and_(0xFF ^ (1 << m_last))  # y_{W-1} starts no transition
    # x_{t+1} at the position of t: the next packed row; the last row wraps to the next bit.
    x_next = torch.cat([x[1:], x[:1] >> 1])  # sample W (padding) is 0, so t = W-1 counts 0
    torch.bitwise_and(y, x_next, out=buf[2])
    torch.bitwise_and(buf[2], x, out=buf[3])
    torch.bitwise_and(y, x, out=buf[4])
    torch.bitwise_and(x_next, x, out=buf[5])
    s_y, s_x, s_yn, s_ynx, s_yx, s_nx = _popcount_rows(buf)  # s_x: all W samples
    with_y = torch.stack([s_y, s_yn, s_yx, s_ynx])  # (4, P)
    overall = torch.stack([torch.full_like(s_x, W - 1), s_x - x_first, s_x - x_last, s_nx])
    # Each pair is a destination with one source of its own: (4, P, 1 + 1) -> (P, 1).
    return bits_from_counts(torch.stack([with_y, overall], dim=-1), W - 1, dtype)[:, 0]


def transfer_entropy_all_pairs(source: Tensor, target: Tensor) -> Tensor:
    """TE(source[:, i] -> target[:, j]) in bits for every pair (i, j).

    All y=1 counts come from one matrix product (n_src x W-1) @ (W-1 x 1+3*n_dst); memory is
    O(W * (n_src + n_dst) + n_src * n_dst).

    Args:
        source: (W, n_src) {0,1}-valued series, time along dim 0, W >= 2.
        target: (W, n_dst) {0,1}-valued series, same W and device.
    Returns:
        (n_src, n_dst) on the inputs' device; float64 if either input is float64, else float32.
    """
    W = _validate(source, target, same_width=False)
    dtype, count_dtype = _dtypes(source, target)
    n_src, n_dst = source.shape[1], target.shape[1]
    # Y' = [y_t, 1]: the last column counts over all transitions.
    y = torch.cat(
        [source[:-1], torch.ones(W - 1, 1, dtype=source.dtype, device=source.device)], dim=1
    )
    # torch._int_mm on CPU misreads degenerate strides (a size-1 dim): those shapes use floats.
    int8 = (
        source.device.type == "cpu"
        and min(y.shape) > 1
        and hasattr(torch, "_int_mm")
        and cpu_layer_kernel() is CpuKernel.INT8
    )
    mm_dtype = torch.int8 if int8 else count_dtype
    # Autocast would run a float product in fp16/bf16, where counts above 2048/256 are not exact.
    with torch.autocast(device_type=source.device.type, enabled=False):
        # From bytes: bool -> float runs a slow generic loop on CPU, uint8 -> float a
        # vectorised one (1.1 ms against 2.7 ms for 4095 x 1000 on an AVX2 EPYC).
        y = (
            _as_bytes(y).view(torch.int8)
            if int8
            else ((_as_bytes(y) if y.device.type == "cpu" else y).to(mm_dtype))
        )
        d = group_columns(target.to(torch.bool))
        pad = (-d.shape[1]) % CPU_GEMM_COLUMNS if source.device.type == "cpu" else 0
        if pad:  # zero columns: counted, then dropped
            d = torch.cat([d, torch.zeros(W - 1, pad, dtype=torch.bool, device=d.device)], dim=1)
        d = d.to(mm_dtype)  # (W-1, 4 * n_dst [+ pad])
        # D^T Y', exact; Y'^T D (then a transposed view) is the faster product for MKL's
        # skinny float GEMM.
        counts = torch._int_mm(d.T, y) if int8 else (y.T @ d).T
    counts = counts[: 4 * n_dst].reshape(4, n_dst, n_src + 1)
    return bits_from_counts(counts, W - 1, dtype).T


def group_columns(target: Tensor) -> Tensor:
    """(W-1, 4 * n_dst) bool: per transition the groups [1, x_{t+1}, x_t, x_{t+1} x_t] of every
    destination unit, group by group; with Y' = [y_t, 1], D^T Y' are bits_from_counts' sums."""
    x_next, x = target[1:], target[:-1]
    return torch.cat([torch.ones_like(x), x_next, x, x_next & x], dim=1)


def binarize_abs(z: Tensor, threshold: float) -> Tensor:
    """Two-sided binarisation |z| >= threshold, same shape, bool (authors: 1.0 on logits).

    The threshold is compared in z's dtype (a Python float is cast to it).
    """
    return z.abs() >= threshold


def binarize_prob(p: Tensor, threshold: float) -> Tensor:
    """One-sided binarisation p >= threshold, same shape, bool (authors: 0.9 on softmax)."""
    return p >= threshold


def effective_transfer_entropy(
    source: Tensor, target: Tensor, generator: torch.Generator
) -> Tensor:
    """Effective TE for every pair: plug-in TE minus the plug-in TE with the source's samples
    shuffled in time (one permutation of the window, from `generator`, on the inputs' device;
    Marschinski & Kantz 2002).

    The plug-in estimate is biased upwards by about 1/((W-1) ln 2) bits for binary k=l=1
    series, and by less for skewed marginals (fewer effective cells). The shuffled source has
    the same marginals and no transfer, so its TE is that bias for these very series: the
    difference averages 0 without transfer and keeps a real transfer less one bias. It can be
    negative. Both estimates come from one call (the shuffled columns beside the real ones),
    so it dispatches about as many operations as one; the counting costs twice.
    bench/te_bias.py compares it with analytic bias corrections, which miss by up to most of
    the bias for skewed marginals.
    """
    order = torch.randperm(source.shape[0], generator=generator, device=source.device)
    both = transfer_entropy_all_pairs(torch.cat([source, source[order]], dim=1), target)
    plugin, shuffled = both.chunk(2, dim=0)  # (n_src, n_dst) each
    return plugin - shuffled
