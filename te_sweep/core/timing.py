"""Timing of code regions on any device without a host sync per region.

On CUDA, kernels run asynchronously, so perf_counter around a region measures only the launch.
DeviceTimer records a pair of CUDA events per region instead and reads them all with one
synchronize when asked (once per epoch). On the CPU, work is synchronous and perf_counter is
exact.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch


class DeviceTimer:
    """Events are recorded on `device`'s current stream (not the process's current device's:
    a trial on cuda:1 must not time cuda:0's idle stream)."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.device = device
        self._events: list[tuple[torch.cuda.Event, torch.cuda.Event]] = []
        self._seconds = 0.0

    @contextmanager
    def region(self) -> Iterator[None]:
        if self.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            stream = torch.cuda.current_stream(self.device)
            start.record(stream)
            yield
            end.record(stream)
            self._events.append((start, end))
        else:
            t0 = time.perf_counter()
            yield
            self._seconds += time.perf_counter() - t0

    def read_and_reset(self) -> float:
        """Seconds spent in regions since the last call. Syncs the device once on CUDA."""
        if self._events:
            torch.cuda.synchronize(self.device)
            self._seconds += sum(s.elapsed_time(e) for s, e in self._events) / 1000.0
            self._events.clear()
        seconds, self._seconds = self._seconds, 0.0
        return seconds
