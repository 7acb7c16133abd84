"""`workload verify`: read the result by README's rule, then check it against the manifest.

The reader rule ("Reading the result" in README): result/summary.json is the commit marker. No
marker, no result (a run is writing it, or failed). With a marker, each data file it names must
have the size and sha256 it records; a file that does not match belongs to another run (one is
being written now): read again later. `read_result` follows the rule; `verify` adds the checks
against the generator's manifest, including each final input's row count.
"""

from __future__ import annotations

import hashlib
import io
import posixpath
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import layout
from .errors import DataError
from .inputs import check_manifest
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
DATA_FILES = (layout.BY_KEY, layout.BY_CATEGORY)


class NoResult(DataError):
    """No commit marker, or data files that do not match it."""


def read_result(store: Store) -> tuple[dict, dict[str, pa.Table]]:
    """The summary and the data files it names, each checked against it (the reader rule)."""
    summary = store.read_json(layout.SUMMARY, missing=None)
    if summary is None:
        raise NoResult(f"no result: {store.describe(layout.SUMMARY)} is missing")
    outputs = summary.get("outputs") if isinstance(summary, dict) else None
    if not isinstance(outputs, dict):
        raise NoResult(f"{store.describe(layout.SUMMARY)} names no data files")
    tables = {}
    for rel in DATA_FILES:
        name = posixpath.basename(rel)
        want = outputs.get(name) or {}
        data = store.read_bytes(rel)
        if len(data) != want.get("bytes") or hashlib.sha256(data).hexdigest() != want.get("sha256"):
            raise NoResult(
                f"{store.describe(rel)} does not match {store.describe(layout.SUMMARY)} "
                "(another run is writing the result: read again later)"
            )
        tables[rel] = pq.read_table(io.BytesIO(data))
    return summary, tables


def expected_input_rows(manifest: dict, summary: dict) -> list[int] | None:
    """Rows each of the final pod's inputs must stand for, from the manifest's rows per file."""
    per_file = manifest.get("rows_per_file")
    fan_in, level = summary.get("fan_in"), summary.get("final_level")
    if per_file is None or not isinstance(fan_in, int) or not isinstance(level, int):
        return None
    span = fan_in ** (level - 1)  # level-1 files behind one file of the final level
    first, count = summary.get("first", 0), summary.get("inputs", 0)
    return [sum(per_file[i * span : (i + 1) * span]) for i in range(first, first + count)]


def iso(us: int | None) -> str | None:
    if us is None:
        return None
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC).isoformat(timespec="microseconds")


def public_totals(totals: dict) -> dict:
    """Totals as written to JSON: timestamps as ISO 8601 in UTC."""
    out = dict(totals)
    for name in ("ts_min", "ts_max"):
        if name in out:
            out[name] = iso(out[name])
    return out


def verify(store: Store) -> list[str]:
    """Every difference found, as one line each; empty means the result is right."""
    manifest = check_manifest(store.read_json(layout.MANIFEST), store.describe(layout.MANIFEST))
    try:
        summary, tables = read_result(store)
    except NoResult as exc:
        return [str(exc)]
    problems: list[str] = []
    expected = public_totals(manifest["expected"])
    for name in TOTALS:
        if summary.get(name) != expected.get(name):
            got, want = summary.get(name), expected.get(name)
            problems.append(f"{name}: result {got!r} != expected {want!r}")
    if summary.get("files") != manifest.get("files"):
        problems.append(f"files: result {summary.get('files')} != manifest {manifest.get('files')}")
    if summary.get("partial"):
        problems.append("the result is partial: it covers only some of the input")
    want_rows = expected_input_rows(manifest, summary)
    if want_rows is not None and summary.get("input_rows") != want_rows:
        problems.append(
            f"rows per final input: result {summary.get('input_rows')} != expected {want_rows}"
        )

    by_key, by_category = tables[layout.BY_KEY], tables[layout.BY_CATEGORY]
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
            total = pc.sum(table.column(column)).as_py() or 0
            want = expected["rows" if column == "rows" else column] or 0
            if total != want:
                problems.append(f"{name}.{column} sums to {total}, expected {want}")
    return problems
