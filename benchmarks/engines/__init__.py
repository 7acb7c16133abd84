"""The engines: one file each, every one listing the cases it implements in ONE registry.

An engine is a setup function `setup(spec) -> work`, registered for its cases with `@engine`:
setup does the imports and preparation (in the child, untimed); `work()` does exactly what is
timed (read the inputs, compute, write the outputs durably) and returns {"outputs": [...], ...}.
Every engine writes zstd Parquet and makes its outputs durable before the clock stops: ours
fsyncs what it publishes, so DuckDB's outputs are fsynced and Polars syncs on close.
Heavy imports stay inside setup, so a child loads only its own engine's libraries.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Every case, in the order they run; within a case, engines run in registration order, rotated
# by one each repeat (a run right after a multi-threaded one is measurably slower); ours is the
# answer the others are compared with.
CASES = ("pod_merge", "pod_aggregate", "final", "final_10m", "job", "pod_process", "rss", "s3")
CASES += ("fan_in",)


@dataclass(frozen=True)
class Spec:
    """What the parent asks of one child (passed as JSON)."""

    case: str
    engine: str
    inputs: list[str]  # input files: local paths, or "bucket/key" on S3
    root: str  # a tree root whose l1 holds the inputs (a local folder or s3:// URL), for ours
    out: str  # a folder for the other engines' outputs ("bucket/prefix" on S3)
    variant: str = ""  # rss: the op; fan_in: the storage and fan-in ("local-8", "s3-8")
    dataset: dict[str, Any] = field(default_factory=dict)  # data.Dataset: files, rows, ...
    final_fan_in: int | None = None  # job
    endpoint: str = ""  # s3: the counting proxy in front of the S3 server
    cpus: int = 0  # the CPUs the child may use (its affinity; every engine's threads); 0: all


Work = Callable[[], dict[str, Any]]
Setup = Callable[[Spec], Work]


@dataclass(frozen=True)
class Engine:
    setup: Setup
    sorts: bool = True  # False: a plain concatenation, its events are not checked for order
    writes: bool = True  # False: a limit that writes no answer (an import, a transfer)


ENGINES: dict[str, dict[str, Engine]] = {case: {} for case in CASES}  # case -> name -> engine


def engine(
    name: str, *cases: str, sorts: bool = True, writes: bool = True
) -> Callable[[Setup], Setup]:
    def register(setup: Setup) -> Setup:
        for case in cases:
            ENGINES[case][name] = Engine(setup, sorts, writes)
        return setup

    return register


def fsync(*paths: str) -> None:
    for path in paths:
        with open(path, "rb") as f:
            os.fsync(f.fileno())


# Registration order is the run order within a case.
from . import ours, copy, duckdb, polars, python, s3fs, transfer  # noqa: E402, F401, I001
