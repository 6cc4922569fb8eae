"""torch.compile for the TE step, where kernel launches are what it costs.

Eagerly the TE step dispatches about 30 operations on a step that re-estimates the TE, as
many kernels on a GPU as a third of the fashion-mnist CNN's training step (about 70). Its
tensor work is written as pure functions (feedback.py, te_window.py), which inductor fuses:
at the paper's settings (W 500, batch 100) into 4 kernels to slide the counts (one fused
kernel that binarises and builds the rows, two matrix products, one copy), 1 to turn the
counts into the feedback, and 1 to apply it (bench/te_step.py counts them).

Compiling costs seconds once per process (Tune reuses a worker's process for its next
trials; the window's position, the batch size and the settings are dynamic, so a new batch
size, window or scale does not compile again), and compiled code ran slower than eager on a
CPU, where an operation costs little more than its arithmetic: so by default (te_compile
null) the step is compiled on CUDA only. With te_compile true it is compiled on any device
(tests check compiled against eager on the CPU), with false never.

The seconds a call spends compiling (its first, and any recompile) are counted apart
(`take_compile_seconds`): the epoch reports them as te_compile_s and leaves them out of
te_time_s and epoch_time_s, so a worker's first TE trial is not charged seconds of compiling
as TE overhead.

If compiling fails where it was not asked for (no C++ compiler or Triton for inductor), the
step runs eagerly after one warning: slower on a GPU, never wrong.
"""

from __future__ import annotations

import functools
import time
import warnings
from collections.abc import Callable
from typing import Any

import torch


def graphs_compiled() -> int:
    """Graphs torch.compile has compiled in this process so far (dynamo's own counter)."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


def compile_wanted(setting: bool | None, device: torch.device) -> bool:
    """te_compile: null compiles on CUDA only."""
    return device.type == "cuda" if setting is None else setting


@functools.cache
def _compiled(fn: Callable[..., Any]) -> Callable[..., Any]:
    """One compiled version of each step function per process, shared by its trials."""
    return torch.compile(fn, dynamic=True)


class StepFunction:
    """A step function, run compiled when wanted; falls back to eager if compiling fails
    and compiling was not asked for explicitly."""

    def __init__(self, fn: Callable[..., Any], compiled: bool, required: bool) -> None:
        self.fn = fn
        self.compiled = compiled
        self.required = required
        self.compile_seconds = 0.0  # spent compiling since take_compile_seconds

    def take_compile_seconds(self) -> float:
        """Seconds this function spent compiling since the last call; resets them."""
        seconds, self.compile_seconds = self.compile_seconds, 0.0
        return seconds

    def __call__(self, *args: Any) -> Any:
        if not self.compiled:
            return self.fn(*args)
        graphs, started = graphs_compiled(), time.perf_counter()
        try:
            result = _compiled(self.fn)(*args)
        except Exception as err:  # compiling failed: inductor's toolchain is missing
            if self.required:
                raise RuntimeError(
                    f"te_compile true, but torch.compile of the TE step failed "
                    f"({type(err).__name__}: {str(err).splitlines()[0]}); "
                    "set te_compile false or null"
                ) from err
            warnings.warn(
                f"torch.compile of the TE step failed ({type(err).__name__}); it runs eagerly",
                RuntimeWarning,
                stacklevel=2,
            )
            self.compiled = False
            return self.fn(*args)
        if graphs_compiled() != graphs:  # this call compiled: its time is compiling's
            self.compile_seconds += time.perf_counter() - started
        return result


def _probe(x: torch.Tensor) -> torch.Tensor:
    return (x * 2).sin() + 1


def compile_error(device: torch.device) -> str | None:
    """Why torch.compile cannot compile on `device` here (its first line), or None."""
    try:
        torch.compile(_probe, dynamic=True)(torch.ones(4, device=device))
    except Exception as err:
        return f"{type(err).__name__}: {str(err).strip().splitlines()[0]}"
    return None
