"""Batched plug-in transfer entropy between binary series, in PyTorch.

Used by the TE-feedback training step: after each batch the logits and softmax outputs of the
last layer are binarised (``binarize_abs``, ``binarize_prob``) and the transfer entropy of every
source unit -> destination unit pair over a sliding window of W samples is recomputed.

The quantity is Schreiber's TE with a binary alphabet, destination history k=1, source history
l=1, delay 1, log base 2 (bits), plug-in counts, no bias correction -- exactly what
``pyinform.transfer_entropy(source, target, k=1)`` computes::

    TE(Y->X) = sum_{y, x', x} p(y_t, x_{t+1}, x_t) * log2[ p(x_{t+1} | x_t, y_t) / p(x_{t+1} | x_t) ]

over the W-1 transitions of the window (cells with zero count contribute 0).

Why it is structured this way: for k=l=1 each pair has only 8 cells (y_t, x_{t+1}, x_t), and
every cell count is a sum over time of a product of 0/1 indicators.  So counting is a reduction
over time (one pair per column) or, for all (source, destination) pairs at once, a single matrix
product ``Y^T @ [indicators of (x_{t+1}, x_t)]`` -- no W x n_src x n_dst tensor, no Python loop
over pairs or samples, no host synchronisation (it runs inside a GPU training step).  Only the
y_t=1 counts are formed; the y_t=0 counts are the (x_{t+1}, x_t) totals minus those.  Both public
functions share one "counts -> bits" helper.  Counting is exact: 0/1 products summed in float32
(exact below 2**24 transitions, else float64); the logs are taken in float64 on the small count
tensors.

Input contract: series must be {0,1}-valued (bool, any integer or float dtype).  This is not
checked, since that would force a host sync on GPU; other values give meaningless results.
Result dtype: float64 if either input is float64, else float32.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["transfer_entropy", "transfer_entropy_all_pairs", "binarize_abs", "binarize_prob"]

# float32 represents every integer up to 2**24 exactly, so 0/1 counts over fewer transitions are
# exact; beyond that (or when a float64 result is asked for) counting is done in float64.
_FLOAT32_EXACT_COUNT = 2**24
# Plug-in TE of a finite window is a finite sum of count ratios; values this small are float64
# rounding of an exact 0, and are reported as 0 (TE >= 0 mathematically, and <= 1 bit for k=l=1).
_ZERO_TOL = 1e-12


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
    """(result dtype, counting dtype); decided from dtypes and shapes only, never values."""
    result = torch.float64 if torch.float64 in (source.dtype, target.dtype) else torch.float32
    exact32 = source.shape[0] - 1 < _FLOAT32_EXACT_COUNT
    return result, (torch.float32 if result == torch.float32 and exact32 else torch.float64)


def _combos(total, a, b, ab) -> list:
    """Counts of the 4 combos c = 2*x_{t+1} + x_t from (total, a=#x_{t+1}, b=#x_t, ab=#both).

    Works elementwise on indicators (total=1) as well as on sums over time.
    """
    return [total - a - b + ab, b - ab, a - ab, ab]


def _bits_from_counts(n1: Tensor, n: Tensor, transitions: int, dtype: torch.dtype) -> Tensor:
    """TE in bits from counts over the 4 combos c = 2*x_{t+1} + x_t (last dim, size 4).

    n1: y_t=1 counts, shape (..., 4); n: totals per combo, broadcastable to n1.
    """
    n1 = n1.to(torch.float64)
    n = n.to(torch.float64)
    # cells[..., y, x', x]
    cells = torch.stack(torch.broadcast_tensors(n - n1, n1), dim=-2).unflatten(-1, (2, 2))
    c_yx = cells.sum(dim=-2, keepdim=True).clamp_min(1)  # count(y_t, x_t)
    c_nx = cells.sum(dim=-3, keepdim=True).clamp_min(1)  # count(x_{t+1}, x_t)
    c_x = cells.sum(dim=(-3, -2), keepdim=True)  # count(x_t)
    # p(x'|x,y) / p(x'|x) = c(y,x',x) c(x) / (c(y,x) c(x',x)); clamps only touch empty cells,
    # whose term xlogy(0, .) is 0.
    ratio = cells * c_x / (c_yx * c_nx)
    te = torch.xlogy(cells, ratio).sum(dim=(-3, -2, -1)) / (transitions * math.log(2.0))
    te = torch.where(te < _ZERO_TOL, torch.zeros_like(te), te).clamp_max(1.0)
    return te.to(dtype)


def transfer_entropy(source: Tensor, target: Tensor) -> Tensor:
    """TE(source[:, p] -> target[:, p]) in bits for each column p.

    Args:
        source: (W, P) {0,1}-valued series (bool/int/float), time along dim 0, W >= 2.
        target: (W, P) {0,1}-valued series, same shape and device.
    Returns:
        (P,) on the inputs' device; float64 if either input is float64, else float32.
    """
    W = _validate(source, target, same_width=True)
    dtype, count_dtype = _dtypes(source, target)
    y, tf = source[:-1].to(count_dtype), target.to(count_dtype)
    x_next, x = tf[1:], tf[:-1]
    # Seven sums over time of products of 0/1 values (exact), mapped to the 4 combos.
    y_next = y * x_next
    s_y, s_yn, s_ynx = y.sum(0), y_next.sum(0), (y_next * x).sum(0)
    del y_next
    s_yx, s_nx = (y * x).sum(0), (x_next * x).sum(0)
    n = torch.stack(_combos(W - 1, x_next.sum(0), x.sum(0), s_nx), dim=-1)  # (P, 4)
    n1 = torch.stack(_combos(s_y, s_yn, s_yx, s_ynx), dim=-1)  # y_t = 1 counts
    return _bits_from_counts(n1, n, W - 1, dtype)


def transfer_entropy_all_pairs(source: Tensor, target: Tensor) -> Tensor:
    """TE(source[:, i] -> target[:, j]) in bits for every pair (i, j).

    All y=1 counts come from one matrix product (n_src x W-1) @ (W-1 x 4*n_dst); memory is
    O(W * (n_src + n_dst) + n_src * n_dst).

    Args:
        source: (W, n_src) {0,1}-valued series, time along dim 0, W >= 2.
        target: (W, n_dst) {0,1}-valued series, same W and device.
    Returns:
        (n_src, n_dst) on the inputs' device; float64 if either input is float64, else float32.
    """
    W = _validate(source, target, same_width=False)
    dtype, count_dtype = _dtypes(source, target)
    n_dst = target.shape[1]
    # Autocast would run the product in fp16/bf16, where counts above 2048/256 are not exact.
    with torch.autocast(device_type=source.device.type, enabled=False):
        y = source[:-1].to(count_dtype)  # (W-1, n_src)
        tf = target.to(count_dtype)
        x_next, x = tf[1:], tf[:-1]
        d = torch.cat(_combos(1, x_next, x, x_next * x), dim=1)  # (W-1, 4*n_dst) indicators
        n1 = (y.T @ d).unflatten(1, (4, n_dst)).transpose(1, 2)  # (n_src, n_dst, 4)
        n = d.sum(dim=0).unflatten(0, (4, n_dst)).T  # (n_dst, 4)
    return _bits_from_counts(n1, n, W - 1, dtype)


def binarize_abs(z: Tensor, threshold: float) -> Tensor:
    """Two-sided binarisation |z| >= threshold, same shape, bool (authors: 1.0 on logits).

    The threshold is compared in z's dtype (a Python float is cast to it).
    """
    return z.abs() >= threshold


def binarize_prob(p: Tensor, threshold: float) -> Tensor:
    """One-sided binarisation p >= threshold, same shape, bool (authors: 0.9 on softmax)."""
    return p >= threshold
