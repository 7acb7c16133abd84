"""What a pod measured about itself, printed as one JSON line at its end."""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import TypeVar

from .errors import redact

T = TypeVar("T")


def peak_rss_mb() -> float:
    """Peak resident set size of this process, in MiB.

    Linux's VmHWM belongs to this process's own address space. ru_maxrss would not do: it
    survives exec, so a pod started from a large parent would report the parent's peak."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def process_started_at() -> float | None:
    """When this process started, as a unix time (3 decimals); None off Linux.

    /proc/self/stat's starttime (field 22) is in clock ticks since boot (SC_CLK_TCK, usually
    100 a second), on the boot-time clock. It becomes a unix time by today's distance from boot,
    CLOCK_BOOTTIME read next to time.time(): /proc/stat's btime would do too but is whole
    seconds, a second's error on a pod's start-up; it is the fallback."""
    try:
        with open("/proc/self/stat") as f:
            after_name = f.read().rsplit(")", 1)[1].split()  # the name may hold spaces
        since_boot = int(after_name[19]) / os.sysconf("SC_CLK_TCK")  # fields from 3: 22 - 3
    except (OSError, ValueError, IndexError):
        return None
    try:
        return round(time.time() - time.clock_gettime(time.CLOCK_BOOTTIME) + since_boot, 3)
    except (AttributeError, OSError):
        pass
    try:
        with open("/proc/stat") as f:
            btime = next(int(line.split()[1]) for line in f if line.startswith("btime "))
    except (OSError, ValueError, StopIteration):
        return None
    return round(btime + since_boot, 3)


@dataclass
class Metrics:
    step: str
    level: int | None
    index: int
    op: str
    inputs: list[str] = field(default_factory=list)
    output: str | None = None
    rows_in: int = 0
    rows_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    requests_in: int = 0
    read_s: float = 0.0
    compute_s: float = 0.0
    write_s: float = 0.0
    total_s: float = 0.0
    peak_rss_mb: float = 0.0
    _started: float = field(default_factory=time.perf_counter, repr=False)

    @contextmanager
    def timing(self, phase: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            setattr(self, phase, getattr(self, phase) + time.perf_counter() - started)

    def timed(self, items: Iterable[T], phase: str = "read_s") -> Iterator[T]:
        """Re-yield items, charging the time spent producing them to `phase`."""
        it = iter(items)
        while True:
            started = time.perf_counter()
            try:
                item = next(it)
            except StopIteration:
                setattr(self, phase, getattr(self, phase) + time.perf_counter() - started)
                return
            setattr(self, phase, getattr(self, phase) + time.perf_counter() - started)
            yield item

    def finish(self) -> dict:
        """The metrics line, with two unix times for the run's report (workload/report.py):
        `process_started_at`, the process's start (None off Linux), and `finished_at`, now;
        total_s runs from this object's creation to now."""
        self.total_s = time.perf_counter() - self._started
        self.peak_rss_mb = peak_rss_mb()
        out = {k: v for k, v in asdict(self).items() if not k.startswith("_")}
        for k in ("read_s", "compute_s", "write_s", "total_s"):
            out[k] = round(out[k], 4)
        out["process_started_at"] = process_started_at()
        out["finished_at"] = round(time.time(), 3)
        return out


def emit(record: dict, metrics_file: str | None = None) -> None:
    """Print the metrics line on stdout and, if asked, write it to a file."""
    line = redact(json.dumps(record, sort_keys=True))
    print(line, flush=True)
    if metrics_file:
        with open(metrics_file, "w") as f:
            f.write(line + "\n")


def log(message: str) -> None:
    print(redact(message), file=sys.stderr, flush=True)
