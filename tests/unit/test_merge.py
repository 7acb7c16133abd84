"""The merge op's kernels: the merge order, steps merged in groups, the Sink with and without its
writer thread. Each is checked against a plain reference, and the written bytes against the
step-at-a-time path."""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from support import events

from workload import schema
from workload.kernels.align import aligned
from workload.kernels.categories import Categories
from workload.ops.merge import MergeOp, _merge_keys, merge_events, merge_steps
from workload.storage.parquet import Sink


def _runs(rng, runs: int, rows: int, keys: tuple[int, int], ts: tuple[int, int]):
    out = []
    for _ in range(runs):
        k = rng.integers(*keys, rows, dtype=np.int64)
        t = rng.integers(*ts, rows, dtype=np.int64)
        order = np.lexsort((t, k))
        out.append((k[order], t[order]))
    return out


@pytest.mark.parametrize(
    "keys, ts",
    [
        ((0, 20), (0, 4)),  # many (key, ts) ties within and across runs
        ((0, 3000), (-(2**50), -(2**49))),  # negative timestamps, packed
        ((-(2**62), 2**62), (-(2**40), 2**40)),  # does not pack: lexsort
        ((5, 6), (-(2**63), 2**63 - 1)),  # one key, the whole int64 range of ts
    ],
)
@pytest.mark.parametrize("runs", [2, 3])
def test_merge_order_is_the_stable_order_by_key_and_ts(keys, ts, runs):
    rng = np.random.default_rng(runs)
    pairs = _runs(rng, runs, 2000, keys, ts)
    k = np.concatenate([p[0] for p in pairs])
    t = np.concatenate([p[1] for p in pairs])
    key_out, ts_out = np.empty(len(k), np.int64), np.empty(len(k), np.int64)
    order = _merge_keys([p[0] for p in pairs], [p[1] for p in pairs], len(k), key_out, ts_out)
    expected = np.lexsort((t, k))  # stable: ties keep run order, then row order
    assert np.array_equal(order, expected)
    assert np.array_equal(key_out, k[expected]) and np.array_equal(ts_out, t[expected])


def _table(rng, rows: int, keys: int, dictionaries: list[list[str]], rg: int) -> pa.Table:
    """Sorted events whose category dictionary changes from chunk to chunk (so a registry
    grows in the middle of a pod), with null values and null categories."""
    key = np.sort(rng.integers(0, keys, rows))
    ts = rng.integers(0, 5, rows)
    order = np.lexsort((ts, key))
    key, ts = key[order], ts[order]
    chunks = []
    for i, start in enumerate(range(0, rows, rg)):
        n = min(rg, rows - start)
        dictionary = dictionaries[i % len(dictionaries)]
        codes = pa.array(
            rng.integers(0, len(dictionary), n, dtype=np.int32), mask=rng.random(n) < 0.1
        )
        chunks.append(pa.DictionaryArray.from_arrays(codes, pa.array(dictionary, pa.string())))
    values = pa.array(rng.integers(-9, 9, rows), mask=rng.random(rows) < 0.2)
    return pa.Table.from_arrays(
        [
            pa.array(key),
            pa.array(ts).view(schema.TS),
            values,
            pa.chunked_array(chunks, schema.CATEGORY),
        ],
        schema=schema.EVENTS,
    )


def _written(path, tables: list[pa.Table], threaded: bool = False) -> str:
    with Sink(
        str(path), schema.EVENTS, sorted_by=("key", "ts"), row_group_rows=700, threaded=threaded
    ) as sink:
        for table in tables:
            sink.write(table)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_steps_merged_in_groups_write_the_bytes_of_steps_merged_one_by_one(tmp_path):
    rng = np.random.default_rng(7)
    inputs = [
        _table(rng, 3000, 40, [["a", "b"], ["c", "a"]], 400),
        _table(rng, 2500, 40, [["b"], ["d", "b", "e"]], 300),
        _table(rng, 100, 40, [["f"]], 100),
    ]

    def steps():
        streams = [(str(i), t.to_batches(max_chunksize=250)) for i, t in enumerate(inputs)]
        return list(aligned(streams, ("key", "ts"), keep_empty=True))

    cats = Categories()
    one_by_one = [merge_events([p for p in parts if p is not None], cats) for parts in steps()]
    reference = _written(tmp_path / "one.parquet", one_by_one)
    all_steps = steps()
    for size in (1, 2, 3, 7, len(all_steps)):
        cats = Categories()
        groups = [
            merge_steps(all_steps[i : i + size], cats) for i in range(0, len(all_steps), size)
        ]
        assert _written(tmp_path / f"groups{size}.parquet", groups) == reference
    merged = pq.read_table(tmp_path / "one.parquet")
    assert merged.num_rows == sum(t.num_rows for t in inputs)
    keys = merged.column("key").to_numpy()
    ts = merged.column("ts").cast(pa.int64()).to_numpy()
    assert np.all((keys[1:] > keys[:-1]) | ((keys[1:] == keys[:-1]) & (ts[1:] >= ts[:-1])))


def test_combine_steps_conserves_rows_and_keeps_ties_in_input_order():
    # three consecutive aligned steps of two inputs: (key, ts) ties only in the last
    a1, b1 = events([1, 1], [1, 2], ["a", "b"]), events([2], [3], ["b"])
    a2, b2 = events([3, 4], [4, 5], ["a", "a"]), events([3], [6], [None])
    step = MergeOp().combine_steps([[a1, None], [None, b1], [a2, b2]], 1, Categories())
    assert step.conserved == {"rows": (6, 6)}
    assert step.table.column("value").to_pylist() == [1, 2, 3, 4, 6, 5]
    assert step.table.column("category").to_pylist() == ["a", "b", "b", "a", None, "a"]


def test_sink_writes_the_same_bytes_with_and_without_its_writer_thread(tmp_path):
    rng = np.random.default_rng(3)
    tables = [_table(rng, n, 30, [["x", "y"]], 200) for n in (5, 999, 1, 1400)]
    threaded = _written(tmp_path / "threaded.parquet", tables, threaded=True)
    assert _written(tmp_path / "inline.parquet", tables, threaded=False) == threaded


def test_sink_without_a_thread_raises_a_write_error_from_the_write(tmp_path):
    sink = Sink(
        str(tmp_path / "x.parquet"), schema.EVENTS, sorted_by=(), row_group_rows=2, threaded=False
    )
    with pytest.raises((pa.ArrowException, ValueError, TypeError)):
        sink.write(pa.table({"key": [1, 2]}))  # not the sink's schema
    sink.__exit__(ValueError, None, None)  # what `with` does then: the writer is closed
