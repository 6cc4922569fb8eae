"""Timing of code regions on any device without a host sync per region.

On CUDA, kernels run asynchronously, so perf_counter around a region measures only the launch.
DeviceTimer records a pair of CUDA events per region instead and reads them all with one
synchronize when asked (once per epoch). On the CPU, work is synchronous and perf_counter is
exact.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator

import torch


class DeviceTimer:
    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self._events: list[tuple[torch.cuda.Event, torch.cuda.Event]] = []
        self._seconds = 0.0

    @contextmanager
    def region(self) -> Iterator[None]:
        if self.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            yield
            end.record()
            self._events.append((start, end))
        else:
            t0 = time.perf_counter()
            yield
            self._seconds += time.perf_counter() - t0

    def read_and_reset(self) -> float:
        """Seconds spent in regions since the last call. Syncs the device once on CUDA."""
        if self._events:
            torch.cuda.synchronize()
            self._seconds += sum(s.elapsed_time(e) for s, e in self._events) / 1000.0
            self._events.clear()
        seconds, self._seconds = self._seconds, 0.0
        return seconds
