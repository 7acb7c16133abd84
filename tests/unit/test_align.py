"""aligned(): k sorted streams walked in lockstep."""

from __future__ import annotations

import pyarrow as pa
import pytest
from support import events

from workload.errors import DataError
from workload.kernels.align import aligned, first_unsorted


def batches(table: pa.Table, size: int) -> list[pa.RecordBatch]:
    return table.to_batches(max_chunksize=size)


def test_every_step_holds_every_row_below_its_bound_and_nothing_is_lost():
    a = events([1, 1, 2, 5, 9, 9], [1, 2, 3, 4, 5, 6], list("abcabc"))
    b = events([0, 2, 2, 3, 9], [7, 8, 9, 10, 11], list("ccbba"))
    steps = list(aligned([("a", batches(a, 2)), ("b", batches(b, 3))], ("key",)))
    seen = []
    for i, parts in enumerate(steps):
        keys = [k for p in parts for k in p.column("key").to_pylist()]
        seen += keys
        for later in steps[i + 1 :]:  # no later step holds a key below this step's largest
            later_keys = [k for p in later for k in p.column("key").to_pylist()]
            assert min(later_keys) > max(keys)
    assert sorted(seen) == sorted(a["key"].to_pylist() + b["key"].to_pylist())


def test_input_order_is_kept_within_a_step():
    a = events([1, 1], [1, 2], ["a", "a"])
    b = events([1], [3], ["a"])
    [parts] = list(aligned([("a", [a.to_batches()[0]]), ("b", [b.to_batches()[0]])], ("key",)))
    assert [p["value"].to_pylist() for p in parts] == [[1, 2], [3]]


def test_an_unsorted_input_is_named_with_its_row():
    bad = events([1, 3, 2], [1, 2, 3], list("abc"))
    with pytest.raises(DataError, match=r"l1/7.parquet is not sorted by \(key\) at row 2"):
        list(aligned([("l1/7.parquet", batches(bad, 10))], ("key",)))


def test_unsorted_across_batches_is_found_too():
    bad = events([1, 5, 2, 3], [1, 2, 3, 4], list("abcd"))
    with pytest.raises(DataError, match="not sorted"):
        list(aligned([("x", batches(bad, 2))], ("key",)))


def test_first_unsorted_with_a_tie_breaker():
    import numpy as np

    assert first_unsorted([np.array([1, 1, 2]), np.array([5, 6, 0])]) is None
    assert first_unsorted([np.array([1, 1, 2]), np.array([6, 5, 0])]) == 0
