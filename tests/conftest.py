"""Shared helpers: run the tree in-process, compute the expected result independently."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from workload import layout
from workload.final import final
from workload.process import process
from workload.settings import Settings
from workload.storage import open_store

REPO = Path(__file__).resolve().parent.parent
# The environment as the test run started, before _clean_env: real-storage tests read it.
ORIGINAL_ENV = dict(os.environ)
SECRET_VARS = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "OSS_ACCESS_KEY_SECRET")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    """Tests choose their own roots and credentials; nothing leaks in from the shell."""
    for name in list(os.environ):
        if name.startswith(("WORKLOAD_", "AWS_", "OSS_")):
            monkeypatch.delenv(name, raising=False)


def run_tree(
    root: str,
    op: str = "merge",
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


def duckdb_result(pattern: str) -> tuple[pa.Table, pa.Table]:
    """by_key and by_category in one pass of DuckDB over the inputs: the independent answer."""
    import duckdb

    aggregates = """count(*) AS rows, count(value) AS value_count, sum(value)::BIGINT AS value_sum,
        min(value) AS value_min, max(value) AS value_max, min(ts) AS ts_min, max(ts) AS ts_max"""
    con = duckdb.connect()
    source = f"read_parquet('{pattern}')"
    by_key = con.sql(
        f"SELECT key, {aggregates} FROM {source} GROUP BY key ORDER BY key"
    ).to_arrow_table()
    by_cat = con.sql(
        f"SELECT category::VARCHAR AS category, {aggregates} FROM {source} "
        "GROUP BY category ORDER BY category NULLS LAST"
    ).to_arrow_table()
    return by_key, by_cat


def comparable(table: pa.Table) -> list[dict]:
    """Rows with timestamps as integers, so time zone spellings do not matter."""
    columns = {}
    for name in table.column_names:
        col = table.column(name)
        if pa.types.is_timestamp(col.type):
            col = col.cast(pa.timestamp("us")).cast(pa.int64())
        columns[name] = col
    return pa.table(columns).to_pylist()


def read_result(root: str) -> tuple[pa.Table, pa.Table]:
    return pq.read_table(f"{root}/result/by_key.parquet"), pq.read_table(
        f"{root}/result/by_category.parquet"
    )


def cli(*args: str, env: dict | None = None, cwd: str | None = None, module: str | None = None):
    """Run a command line the way a pod does, in a fresh interpreter."""
    command = [sys.executable, *(["-m", module] if module else []), *args]
    ours = ("WORKLOAD_", "AWS_", "OSS_")
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    full_env.update(env or {})
    return subprocess.run(
        command, capture_output=True, text=True, env=full_env, cwd=cwd, timeout=300
    )
