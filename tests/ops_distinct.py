"""An op that exists only in the tests: the number of distinct categories per key.

It proves the op seam (workload/ops): it runs through the tree, the local runner and the
rendered manifests as `--op ops_distinct:DISTINCT`, and no product file knows it. Level files
after the first hold the distinct (key, category) pairs, sorted by key then category.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from workload import schema
from workload.kernels.categories import Categories
from workload.kernels.columns import ints
from workload.ops import Step

PAIRS = pa.schema(
    [pa.field("key", pa.int64(), nullable=False), pa.field("category", schema.CATEGORY)]
)
RESULT = pa.schema(
    [
        pa.field("key", pa.int64(), nullable=False),
        pa.field("categories", pa.int64(), nullable=False),
    ]
)


def _pairs(tables, cats: Categories) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (key, category code) of the tables, sorted by key then category string."""
    key = np.concatenate([ints(t.column("key")) for t in tables])
    code = np.concatenate([cats.codes(t.column("category")) for t in tables])
    rank = cats.ranks()[code]
    packed = np.unique(key * len(cats.values) + rank)  # keys here are small and >= 0
    code_of_rank = np.argsort(cats.ranks()).astype(np.int32)
    return packed // len(cats.values), code_of_rank[packed % len(cats.values)]


class _Piece:
    rows = None  # distinct pairs: input rows are not what this op counts

    def __init__(self, pairs):
        self.pairs = pairs


class _State:
    def __init__(self, cats: Categories):
        self.cats, self.keys, self.codes = cats, [], []

    def summarize(self, batch):
        return _Piece(_pairs([batch], self.cats))

    def absorb(self, piece) -> None:
        self.keys.append(piece.pairs[0])
        self.codes.append(piece.pairs[1])

    def result(self):
        ncat = max(len(self.cats.values), 1)
        key = np.concatenate(self.keys) if self.keys else np.empty(0, np.int64)
        code = np.concatenate(self.codes) if self.codes else np.empty(0, np.int32)
        distinct = np.unique(key * ncat + self.cats.ranks()[code] if key.size else key)
        keys, counts = np.unique(distinct // ncat, return_counts=True)
        table = pa.table({"key": keys.astype(np.int64), "categories": counts.astype(np.int64)})
        return {"distinct": table.cast(RESULT)}, {"keys": len(keys), "pairs": len(distinct)}


class DistinctCategories:
    name = "ops_distinct:DISTINCT"
    checks_manifest = False

    def schema(self, level: int) -> pa.Schema:
        return schema.EVENTS if level == 1 else PAIRS

    def sorted_by(self, level: int) -> tuple[str, ...]:
        return ("key", "ts") if level == 1 else ("key", "category")

    def aligned_by(self, level: int) -> tuple[str, ...]:
        return ("key",)

    def combine(self, parts, level: int, cats: Categories) -> Step:
        key, code = _pairs(parts, cats)
        table = pa.Table.from_arrays([pa.array(key), cats.array(code)], schema=PAIRS)
        return Step(table)

    def final(self, level: int, cats: Categories, key_range) -> _State:
        return _State(cats)


DISTINCT = DistinctCategories()


class _Broken(DistinctCategories):
    """An op with a bug: what a pod does when the code, not the data, is wrong (exit 70)."""

    def combine(self, parts, level: int, cats: Categories) -> Step:
        return Step(pa.table({"n": [len(parts) // 0]}))


BROKEN = _Broken()
