"""The merge op: k sorted event files become one, sorted by (key, ts), every row kept, ties in
input order. Its final pod summarizes the events (the same result as the aggregate op's)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from .. import schema
from ..kernels.categories import Categories
from ..kernels.columns import ints
from . import Step
from .aggregate import Summary


def _fits(span_a: int, span_b: int) -> bool:
    return span_a * span_b < 2**63


def sort_order(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Stable order by (a, b)."""
    a_min, a_max, b_min, b_max = int(a.min()), int(a.max()), int(b.min()), int(b.max())
    if _fits(a_max - a_min + 1, b_max - b_min + 1):
        packed = (a - a_min) * (b_max - b_min + 1) + (b - b_min)
        return np.argsort(packed, kind="stable")
    return np.lexsort((b, a))


def merge_events(parts: Sequence[pa.Table], cats: Categories) -> pa.Table:
    """One sorted events table from sorted parts; ties keep part order, then row order."""
    keys = np.concatenate([ints(p.column("key")) for p in parts])
    ts = np.concatenate([ints(p.column("ts")) for p in parts])
    codes = np.concatenate([cats.codes(p.column("category")) for p in parts])
    value = pa.chunked_array([c for p in parts for c in p.column("value").chunks], pa.int64())
    # Each part is sorted (aligned() checked it), so one part needs no sort; several are sorted
    # runs, which timsort merges in close to linear time.
    if len(parts) > 1:
        order = sort_order(keys, ts)
        keys, ts, codes = keys[order], ts[order], codes[order]
        value = value.take(pa.array(order))
    return pa.Table.from_arrays(
        [pa.array(keys), pa.array(ts).view(schema.TS), value, cats.array(codes)],
        schema=schema.EVENTS,
    )


class MergeOp:
    name = "merge"
    checks_manifest = True

    def schema(self, level: int) -> pa.Schema:
        return schema.EVENTS

    def sorted_by(self, level: int) -> tuple[str, ...]:
        return ("key", "ts")

    def aligned_by(self, level: int) -> tuple[str, ...]:
        return ("key", "ts")

    def combine(self, parts: Sequence[pa.Table], level: int, cats: Categories) -> Step:
        table = merge_events(parts, cats)
        rows_in = sum(p.num_rows for p in parts)
        return Step(table, {"rows": (rows_in, table.num_rows)})

    def final(self, level: int, cats: Categories, key_range) -> Summary:
        return Summary(events=True, cats=cats, key_range=key_range)
