"""A level pod streams: its peak RSS stays under 300 MB and does not grow with its inputs from
2 x 1M to 2 x 8M rows. Each pod is a fresh process; its peak is the kernel's VmHWM for that
process, which the pod reports in its metrics line (wait4's ru_maxrss would include this test
process's own peak: Linux carries it across fork and exec)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from workload.generate import generate
from workload.storage import open_store

LIMIT_MB = 300
GROWTH = 0.20


def peak_rss_mb(args: list[str]) -> float:
    result = subprocess.run(
        [sys.executable, "-m", "workload.process", *args],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])["peak_rss_mb"]


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    out = {}
    for millions in (1, 8):
        root = tmp_path_factory.mktemp(f"mem{millions}")
        generate(open_store(str(root)), 2, millions * 1_000_000, 100_000, seed=millions)
        out[millions] = str(root)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("op", ["merge", "aggregate"])
def test_pod_memory_is_bounded_and_flat(roots, op):
    small = peak_rss_mb(["0", "1", "--root", roots[1], "--op", op])
    large = peak_rss_mb(["0", "1", "--root", roots[8], "--op", op])
    print(f"{op}: 2x1M rows {small:.0f} MB, 2x8M rows {large:.0f} MB")
    assert small < LIMIT_MB and large < LIMIT_MB
    assert abs(large - small) / small < GROWTH


@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    root = tmp_path_factory.mktemp("wide")
    generate(open_store(str(root)), 32, 300_000, 100_000, seed=3)
    return str(root)


@pytest.mark.slow
def test_the_planners_memory_model_holds_the_pods_across_fan_ins(wide):
    """budget.project, which `workload plan` checks against a pod's memory, against the merge
    pod's measured peak at fan-in 2, 8 and 32 (300k-row inputs): never below it, and within
    1.4x of it (measured when written: 150, 209, 214 MB for 199, 240, 245 projected)."""
    from workload import budget, ops

    width = budget.row_width(ops.get("merge").schema(1))
    size = open_store(wide).size("l1/0.parquet")
    for k in (2, 8, 32):
        measured = peak_rss_mb(["0", "1", "--root", wide, "--fan-in", str(k)])
        parts = budget.project(
            fan_in=k,
            row_bytes=width,
            columns=len(ops.get("merge").schema(1)),
            file_bytes=size,
            file_rows=300_000,
            object_store=False,
        )
        projected = sum(parts.values())
        print(f"fan-in {k}: measured {measured:.0f} MB, projected {projected:.0f} MB")
        assert measured <= projected <= 1.4 * measured, (k, measured, parts)
