"""The aggregate op's kernels: scatter and sort give the same, both by-key paths of the final
pod agree, the fused event path equals the general one, and the table drives the schema."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from support import events

from workload.kernels.categories import Categories
from workload.ops.aggregate import (
    AGGREGATES,
    BY_KEY,
    PARTIALS,
    ByKey,
    Partials,
    Summary,
    summarize_events,
)

RNG = np.random.default_rng(3)


def random_events(n=3000, keys=400, sort=True) -> pa.Table:
    key = RNG.integers(0, keys, n)
    ts = RNG.integers(0, 10**9, n)
    if sort:
        order = np.lexsort((ts, key))
        key, ts = key[order], ts[order]
    value = RNG.integers(-1000, 1000, n)
    values = [None if RNG.random() < 0.05 else int(v) for v in value]
    cats = [f"c{c}" for c in RNG.integers(0, 7, n)]
    return events(key.tolist(), values, cats, ts=ts.tolist())


def as_dict(p: Partials) -> dict:
    return {"key": p.key.tolist(), **{a.name: p.values[a.name].tolist() for a in AGGREGATES}}


def test_the_table_drives_the_schemas():
    names = [a.name for a in AGGREGATES]
    assert PARTIALS.names == ["key", "category", *names]
    assert BY_KEY.names == ["key", *[n for n in names if n != "checksum"]]


def test_scatter_and_sort_reduce_alike():
    cats = Categories()
    p = Partials.from_events(random_events(keys=200), cats)  # dense: the scatter path
    dense = p.reduce("key", cats)
    sparse_keys = Partials(p.key * 1_000_003, p.cat, p.values)  # sparse: the sort path
    sparse = sparse_keys.reduce("key", cats)
    assert as_dict(dense) == {**as_dict(sparse), "key": (sparse.key // 1_000_003).tolist()}


@pytest.mark.parametrize(
    "shape", ["sorted", "unsorted dense keys", "unsorted sparse keys", "sorted by key only"]
)
def test_fused_event_summary_equals_the_general_path(shape):
    cats = Categories()
    table = random_events(sort=shape != "unsorted dense keys")
    if shape == "unsorted sparse keys":  # a key range too wide for one slot per key
        table = table.set_column(0, "key", pa.array(RNG.integers(0, 2**60, table.num_rows)))
    if shape == "sorted by key only":  # ts not ordered within a key: no first/last shortcut
        table = table.set_column(1, "ts", table.column("ts").take(RNG.permutation(3000)))
        order = np.argsort(table.column("key").to_numpy(), kind="stable")
        table = table.take(order)
    summarized = summarize_events(table, cats)
    general = Partials.from_events(table, cats)
    want = general.reduce("key", cats)
    for a in AGGREGATES:
        if a.in_result:
            assert summarized.keyed.values[a.name].tolist() == want.values[a.name].tolist(), a.name
    by_category = general.reduce("category", cats)
    got = summarized.categorized.reduce("category", cats)
    for a in AGGREGATES:
        if a.name != "checksum":  # kept as one total
            assert got.values[a.name].tolist() == by_category.values[a.name].tolist(), a.name
    assert summarized.checksum == int(np.add.reduce(general.checksum, dtype=np.uint64))


def test_both_by_key_paths_of_the_final_pod_agree():
    cats = Categories()
    pieces = [summarize_events(random_events(), cats).keyed for _ in range(4)]
    dense, fallback = ByKey(0, 399), ByKey()  # key range known / unknown
    for piece in pieces:
        dense.add(piece)
        fallback.add(piece)
    assert as_dict(dense.result()) == as_dict(fallback.result())


def test_partials_survive_their_parquet_shape():
    cats = Categories()
    p = Partials.from_events(random_events(), cats).reduce("key,category", cats)
    back = Partials.from_table(p.to_partials(cats), cats)
    assert as_dict(back) == as_dict(p)


def test_summary_state_dense_and_streaming_agree():
    cats = Categories()
    table = random_events(n=500, keys=50)
    dense = Summary(events=True, cats=cats, key_range=(0, 49))  # slots: batches absorbed
    assert not dense.streaming
    for batch in table.to_batches(max_chunksize=128):
        dense.absorb(dense.summarize(batch))
    tables, totals = dense.result()
    assert totals["rows"] == 500 and totals["distinct_keys"] == len(set(table["key"].to_pylist()))
    assert totals["value_count"] == 500 - table["value"].null_count
    assert tables["by_key"].num_rows == totals["distinct_keys"]

    streaming = Summary(events=True, cats=cats, key_range=(None, None))  # no range: steps
    assert streaming.streaming
    halves = [table.slice(0, 250), table.slice(250)]  # two inputs, each one step
    streamed, rows = streaming.step([pa.Table.from_batches(h.to_batches()) for h in halves])
    assert rows == [250, 250]
    rest, stream_totals = streaming.result()
    assert stream_totals == totals
    assert streamed["by_key"].num_rows == totals["distinct_keys"] == tables["by_key"].num_rows
    assert rest["by_category"].equals(tables["by_category"])


@pytest.mark.parametrize("step_rows", [1, 7, 64, 10_000])
def test_a_step_summarized_in_key_slices_equals_one_pass(monkeypatch, step_rows):
    cats = Categories()
    inputs = [random_events(n=400, keys=90) for _ in range(3)]  # three sorted inputs, one step
    whole = Summary(events=True, cats=cats, key_range=(None, None))
    want, want_rows = whole.step(inputs)
    monkeypatch.setattr(Summary, "STEP_ROWS", step_rows)
    sliced = Summary(events=True, cats=cats, key_range=(None, None))
    got, rows = sliced.step([*inputs[:1], None, *inputs[1:]])
    assert rows == [400, 0, 400, 400] and want_rows == [400, 400, 400]
    assert got["by_key"].combine_chunks().equals(want["by_key"].combine_chunks())
    assert sliced.result() == whole.result()
