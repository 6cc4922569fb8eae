"""The feedback's transfer-entropy counts over a sliding window, updated one batch at a time.

The TE of every (source unit, destination unit) pair over the last W samples needs, per pair,
four sums over the window's W-1 transitions (te.bits_from_counts).  Recounting them at every
step is a product over the whole window plus the steps that build its indicator columns: about
sixty operations, each a kernel launch on a GPU, as many as the training step itself.  A batch
of B samples only moves the window by B transitions, so the sums are kept instead, as one
count matrix C = D^T Y' (te.group_columns' D, Y' = [y_t, 1]), and each batch adds the product
of its B entering transitions and subtracts that of the B leaving ones: two small matrix
products.  Counts are exact integers in float64 (exact to 2**53), so adding and subtracting
never drifts: C equals a recount at every step, which the tests check; float64 also spares
the conversion before the logs.

The window's L = W-1 transitions are rows of a store, oldest first, each what one transition
contributes, [y_t | 1 | D's groups]: written once as it enters (after the newest) and read once
as it leaves (from the front), each a contiguous block, so a step never splits in two.  The
last sample of a batch starts the first transition of the next, so that one sample is carried
over.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from te_sweep.core.te import bits_from_counts

STORE_WINDOWS = 3  # the store holds this many windows of rows (see SlidingCounts)


def transition_rows(
    before: Tensor, after: Tensor, ones: Tensor, n_source: int, out: Tensor
) -> Tensor:
    """The transitions before -> after (each (B, n_source + n_target) bool) as rows
    [y_t | 1 | 1, x_{t+1}, x_t, both] of the store, written into `out`."""
    x, x_next = before[:, n_source:], after[:, n_source:]
    return torch.cat([before[:, :n_source], ones, x_next, x, x_next & x], dim=1, out=out)


def slide(
    store: Tensor,
    counts: Tensor,
    before: Tensor,
    after: Tensor,
    ones: Tensor,
    new_at: int,
    leave_at: int,
    leaving: int,
    n_source: int,
) -> None:
    """Write the transitions before -> after at store row `new_at` and add them to the
    counts; subtract the `leaving` rows from `leave_at`.  A pure tensor function of its
    arguments (SlidingCounts.reserve places them), so torch.compile can fuse it."""
    new = transition_rows(before, after, ones, n_source, store[new_at : new_at + after.shape[0]])
    if leaving > 0:
        old = store[leave_at : leave_at + leaving]
        counts.addmm_(old[:, n_source + 1 :].T, old[:, : n_source + 1], alpha=-1)
    counts.addmm_(new[:, n_source + 1 :].T, new[:, : n_source + 1])


class SlidingCounts:
    """Group sums of the TE of n_source x n_target pairs over the last `window` samples."""

    def __init__(self, window: int, n_source: int, n_target: int, device: torch.device) -> None:
        self.window = window
        self.length = window - 1  # transitions in a full window
        self.n_source, self.n_target = n_source, n_target
        # The window's rows are store[base:base + seen], oldest first: a batch appends after
        # them and the oldest leave from the front, both one contiguous block.  When the
        # append would run past the end, the window moves back to row 0 (one copy every
        # 2L / B batches; with room for 3 windows the two places never overlap).
        self.store = torch.zeros(
            STORE_WINDOWS * self.length,
            n_source + 1 + 4 * n_target,
            dtype=torch.float64,
            device=device,
        )
        self.counts = torch.zeros(4 * n_target, n_source + 1, dtype=torch.float64, device=device)
        self.base = 0  # host ints, so no sync to track them
        self.seen = 0  # transitions in the window, at most `length`
        self.last: Tensor | None = None  # (1, n_source + n_target): the last sample so far
        self._ones: dict[int, Tensor] = {}  # (rows, 1 + n_target) bool ones, per batch size

    @property
    def full(self) -> bool:
        return self.seen == self.length

    @property
    def rows(self) -> Tensor:
        """The window's transitions, oldest first: (seen, n_source + 1 + 4 n_target)."""
        return self.store[self.base : self.base + self.seen]

    def push(self, samples: Tensor) -> None:
        """Slide the window over `samples`: (B, n_source + n_target) bool, the source units'
        then the target units' states, oldest first."""
        if samples.shape[0] == 0:
            return
        if self.last is None:
            before, after = samples[:-1], samples[1:]
        else:
            before, after = torch.cat([self.last, samples[:-1]]), samples
        self.last = samples[-1:].clone()  # not a view: compiled steps then see one kind
        entering = after.shape[0]
        if entering == 0:
            return
        if entering >= self.length:  # the batch fills the window on its own: recount
            before, after = before[-self.length :], after[-self.length :]
            rows = self._rows(before, after, self.store[: self.length])
            torch.mm(rows[:, self.n_source + 1 :].T, rows[:, : self.n_source + 1], out=self.counts)
            self.base, self.seen = 0, self.length
            return
        new_at, leave_at, leaving = self.reserve(entering)
        slide(
            self.store,
            self.counts,
            before,
            after,
            self.ones_for(entering),
            new_at,
            leave_at,
            leaving,
            self.n_source,
        )
        self.advance(entering)

    def reserve(self, entering: int) -> tuple[int, int, int]:
        """Where `entering` transitions go (fewer than a window): (store row of the first new
        one, store row of the first leaving one, how many leave).  Moves the window back to
        row 0 first when the new rows would run past the store's end."""
        if self.base + self.seen + entering > len(self.store):
            self.store[: self.seen].copy_(self.rows)
            self.base = 0
        return self.base + self.seen, self.base, max(0, self.seen + entering - self.length)

    def advance(self, entering: int) -> None:
        """Record that `entering` transitions went where reserve() said."""
        self.base += max(0, self.seen + entering - self.length)
        self.seen = min(self.length, self.seen + entering)

    def ones_for(self, rows: int) -> Tensor:
        """(rows, 1 + n_target) bool ones: the rows' constant columns, made once per size."""
        ones = self._ones.get(rows)
        if ones is None:
            ones = self._ones[rows] = torch.ones(
                rows, 1 + self.n_target, dtype=torch.bool, device=self.store.device
            )
        return ones

    def _rows(self, before: Tensor, after: Tensor, out: Tensor) -> Tensor:
        return transition_rows(before, after, self.ones_for(before.shape[0]), self.n_source, out)

    def te(self) -> Tensor:
        """(n_target, n_source) float64 plug-in TE in bits of the full window; [j, i] is
        i -> j."""
        return bits_from_counts(self._groups(self.counts), self.length)

    def te_with_shuffled(self, generator: torch.Generator) -> Tensor:
        """(n_target, 2 n_source): the plug-in TE, then the plug-in TE with the sources'
        states permuted over the window's transitions (one permutation from `generator`)."""
        n, rows = self.n_source, self.rows
        order = torch.randperm(self.length, generator=generator, device=rows.device)
        shuffled = rows[:, :n].index_select(0, order)
        shuffled_counts = rows[:, n + 1 :].T @ shuffled  # (4 n_target, n_source)
        both = torch.cat([self.counts[:, :n], shuffled_counts, self.counts[:, n:]], dim=1)
        return bits_from_counts(self._groups(both), self.length)

    def _groups(self, counts: Tensor) -> Tensor:
        return counts.view(4, self.n_target, counts.shape[1])

    def state_dict(self) -> dict[str, Any]:
        return {"rows": self.rows.clone(), "counts": self.counts, "last": self.last}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        rows = state["rows"]
        self.base, self.seen = 0, rows.shape[0]
        self.store[: self.seen].copy_(rows)
        self.counts.copy_(state["counts"])
        self.last = None if state["last"] is None else state["last"].to(self.store.device)
