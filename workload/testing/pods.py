"""Running pods the way a test needs: every pod of a tree in this process, or one command line
in a fresh interpreter with a clean environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .. import layout
from ..final import final
from ..process import process
from ..settings import Settings
from ..storage import open_store

# The checkout this package runs from (tests and benchmarks run from one).
REPO = Path(__file__).resolve().parents[2]
# Variables a pod reads; `cli` starts pods without the caller's.
OURS = ("WORKLOAD_", "AWS_", "OSS_")


def run_tree(
    root: str,
    op: str = "merge",
    *,
    fan_in: int = 2,
    final_fan_in: int | None = None,
    levels: int | None = None,
    storage_options: dict | None = None,
) -> layout.Plan:
    """Every pod of the tree, in order, in this process (the pods' own functions)."""
    settings = Settings.load(root=root, op=op, fan_in=fan_in, storage_options=storage_options)
    store = open_store(root, storage_options)
    files = store.read_json(layout.MANIFEST)["files"]
    plan = layout.plan(files, fan_in, levels=levels, final_fan_in=final_fan_in)
    for level in range(1, plan.levels + 1):
        for i in range(plan.pods(level)):
            process(settings, i, level)
    final(settings, 0, plan.final_count, level=plan.final_level)
    return plan


def result_files(root: str, run: str = "") -> tuple[bytes, bytes]:
    """The bytes of the two result files (of `run`, if named), for comparing runs bit for bit."""
    store = open_store(root, run=run)
    return store.read_bytes(layout.BY_KEY), store.read_bytes(layout.BY_CATEGORY)


def read_result(root: str) -> tuple[pa.Table, pa.Table]:
    return pq.read_table(f"{root}/{layout.BY_KEY}"), pq.read_table(f"{root}/{layout.BY_CATEGORY}")


def cli(*args: str, env: dict | None = None, cwd: str | None = None, module: str | None = None):
    """Run a command line the way a pod does, in a fresh interpreter."""
    command = [sys.executable, *(["-m", module] if module else []), *args]
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(OURS)}
    full_env.update(env or {})
    return subprocess.run(
        command, capture_output=True, text=True, env=full_env, cwd=cwd, timeout=300
    )
