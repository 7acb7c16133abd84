"""`workload verify`: check the final result against what the generator said it must be."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from . import layout
from .storage import Store

TOTALS = (
    "rows",
    "distinct_keys",
    "value_count",
    "value_sum",
    "value_min",
    "value_max",
    "ts_min",
    "ts_max",
    "checksum",
)


def _read(store: Store, rel: str) -> pa.Table:
    return pq.read_table(io.BytesIO(store.read_bytes(rel)))


def verify(store: Store) -> list[str]:
    """Every difference found, as one line each; empty means the result is right."""
    from .merge import public_totals

    problems: list[str] = []
    manifest = store.read_json(layout.MANIFEST)
    if not store.exists(layout.SUMMARY):
        return [f"no result: {store.describe(layout.SUMMARY)} is missing"]
    summary = store.read_json(layout.SUMMARY)
    expected = public_totals(manifest["expected"])
    for name in TOTALS:
        if summary.get(name) != expected.get(name):
            got, want = summary.get(name), expected.get(name)
            problems.append(f"{name}: result {got!r} != expected {want!r}")
    if summary.get("files") != manifest.get("files"):
        problems.append(f"files: result {summary.get('files')} != manifest {manifest.get('files')}")

    by_key = _read(store, layout.BY_KEY)
    by_category = _read(store, layout.BY_CATEGORY)
    keys = by_key.column("key").to_numpy()
    if keys.size > 1 and not np.all(keys[1:] > keys[:-1]):
        problems.append("by_key is not strictly sorted by key")
    if by_key.num_rows != expected["distinct_keys"]:
        problems.append(f"by_key has {by_key.num_rows} rows, expected {expected['distinct_keys']}")
    cats = by_category.column("category").to_pylist()
    if cats != sorted(cats, key=lambda c: (c is None, c or "")):
        problems.append("by_category is not sorted by category")
    for name, table in (("by_key", by_key), ("by_category", by_category)):
        for column in ("rows", "value_count", "value_sum"):
            total = pa.compute.sum(table.column(column)).as_py() or 0
            want = expected["rows" if column == "rows" else column] or 0
            if total != want:
                problems.append(f"{name}.{column} sums to {total}, expected {want}")
    return problems
