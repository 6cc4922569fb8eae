"""The machine a benchmark ran on, as one line every benchmark prints first.

Machines of the same kind differ (one 2-core EPYC reports AVX-512 VNNI, another AVX2 only, and
torch picks different kernels on each), so a number without its CPU means little.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
from pathlib import Path


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def cpu_capability() -> str:
    """torch's CPU capability (the kernels it dispatches to), without importing torch twice."""
    try:
        import torch
    except ImportError:
        return "torch not installed"
    return torch.backends.cpu.get_cpu_capability()


def memory_gib() -> float:
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    return float("nan")


def machine_line() -> str:
    return (
        f"machine: {cpu_model()}, {os.cpu_count()} logical cores, torch CPU capability "
        f"{cpu_capability()}, {memory_gib():.0f} GiB; Python {platform.python_version()}; "
        f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC"
    )
