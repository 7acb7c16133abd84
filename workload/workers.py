"""How many threads a pod may use: its CPU limit, not the node's core count.

`os.cpu_count()` counts the whole node, so a 1-vCPU pod on a 64-core node sized its pools for 64
cores (and the final pod ran 4 reader threads on one core, a third of its samples waiting on the
GIL). The limit is the smallest of the CPU affinity mask and the cgroup's CPU quota (v2
`cpu.max`, v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`), rounded up.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")


def _quota() -> float | None:
    try:
        limit, period = (CGROUP / "cpu.max").read_text().split()[:2]
        return None if limit == "max" else int(limit) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int((CGROUP / "cpu/cpu.cfs_quota_us").read_text())
        cfs_period = int((CGROUP / "cpu/cpu.cfs_period_us").read_text())
        return None if quota <= 0 else quota / cfs_period
    except (OSError, ValueError):
        return None


def cpu_limit() -> int:
    """CPUs this process may use (at least 1)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    quota = _quota()
    if quota is not None:
        cpus = min(cpus, math.ceil(quota))
    return max(1, cpus)


def cpu_threads(wanted: int) -> int:
    """`wanted` threads, but no more than the CPUs this process may use."""
    return max(1, min(wanted, cpu_limit()))
