"""The result of the tree equals an independent one-pass computation, for any shape."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workload import layout
from workload.generate import generate
from workload.storage import open_store
from workload.testing.oracle import comparable, duckdb_result
from workload.testing.pods import read_result, run_tree
from workload.verify import verify

SHAPES = st.fixed_dictionaries(
    {
        "rows": st.integers(1, 40).flatmap(
            lambda n: st.lists(st.one_of(st.just(0), st.integers(1, 400)), min_size=n, max_size=n)
        ),
        "keys": st.integers(1, 60),
        "skew": st.sampled_from([0.0, 1.2, 3.0]),
        "seed": st.integers(0, 2**16),
        "fan_in": st.integers(2, 4),
        "final_fan_in": st.integers(1, 6),
        "op": st.sampled_from(["merge", "aggregate"]),
    }
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(shape=SHAPES)
def test_tree_equals_duckdb(tmp_path_factory, shape):
    root = str(tmp_path_factory.mktemp("tree"))
    store = open_store(root)
    generate(store, len(shape["rows"]), shape["rows"], shape["keys"], shape["seed"], shape["skew"])
    plan = run_tree(root, shape["op"], fan_in=shape["fan_in"], final_fan_in=shape["final_fan_in"])

    by_key, by_cat = read_result(root)
    want_key, want_cat = duckdb_result(f"{root}/l1/*.parquet")
    assert comparable(by_key) == comparable(want_key)
    assert comparable(by_cat) == comparable(want_cat)
    assert verify(store) == []
    summary = store.read_json(layout.SUMMARY)
    assert summary["rows"] == sum(shape["rows"])
    assert summary["levels"] == plan.levels


def test_result_is_bit_identical_across_ops_and_shapes(tmp_path):
    """by_key/by_category bytes and the summary's totals do not depend on op or tree shape."""
    first = tmp_path / "a"
    store = open_store(str(first))
    generate(store, 23, 700, 300, seed=7, skew=1.1)
    results = []
    shapes = (("merge", 2, 4), ("aggregate", 2, 4), ("merge", 3, 1), ("aggregate", 4, 2))
    for op, fan_in, final in shapes:
        for name in store.listdir(""):
            if name != "l1":
                store.remove(name)
        run_tree(str(first), op, fan_in=fan_in, final_fan_in=final)
        summary = store.read_json(layout.SUMMARY)
        names = ("rows", "distinct_keys", "value_sum", "checksum", "ts_min")
        totals = {k: summary[k] for k in names}
        results.append(
            (
                (first / "result/by_key.parquet").read_bytes(),
                (first / "result/by_category.parquet").read_bytes(),
                json.dumps(totals),
            )
        )
    assert all(r == results[0] for r in results[1:])


def test_merge_keeps_every_row_sorted_with_ties_in_input_order(tmp_path):
    """Two inputs holding the same (key, ts) pairs: file 0's rows come first, then file 1's."""
    import pyarrow as pa

    from workload import schema

    root = tmp_path
    (root / "l1").mkdir()
    dictionary = pa.array(["x", "y"])
    for i, values in enumerate(([1, 2, 3], [10, 20, 30])):
        table = pa.Table.from_arrays(
            [
                pa.array([5, 5, 7], pa.int64()),
                pa.array([100, 100, 50]).cast(pa.int64()).view(schema.TS),
                pa.array(values, pa.int64()),
                pa.DictionaryArray.from_arrays(pa.array([i, 1 - i, 0], pa.int32()), dictionary),
            ],
            schema=schema.EVENTS,
        )
        pq.write_table(table, root / "l1" / f"{i}.parquet")
    (root / "l1" / "_manifest.json").write_text(json.dumps({"files": 2}))
    from workload.process import process
    from workload.settings import Settings

    metrics = process(Settings.load(root=str(root)), 0, 1)
    out = pq.read_table(root / "l2/0.parquet")
    assert out.schema.equals(schema.EVENTS)
    assert out.column("value").to_pylist() == [1, 2, 10, 20, 3, 30]
    assert out.column("category").to_pylist() == ["x", "y", "y", "x", "x", "x"]
    assert metrics["rows_in"] == metrics["rows_out"] == 6
    sorting = pq.ParquetFile(root / "l2/0.parquet").metadata.row_group(0).sorting_columns
    assert [c.column_index for c in sorting] == [0, 1]


def test_rerunning_a_pod_rewrites_identical_bytes(tmp_path):
    from workload.process import process
    from workload.settings import Settings

    generate(open_store(str(tmp_path)), 4, 3000, 500, seed=3)
    for op in ("merge", "aggregate"):
        s = Settings.load(root=str(tmp_path), op=op)
        process(s, 1, 1)
        before = (tmp_path / "l2/1.parquet").read_bytes()
        process(s, 1, 1)
        assert (tmp_path / "l2/1.parquet").read_bytes() == before
        assert [p.name for p in (tmp_path / "l2").iterdir()] == ["1.parquet"]  # no temp files


def test_generator_is_deterministic_and_sorted(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    m1 = generate(open_store(str(a)), 3, 5000, 400, seed=11, skew=0.8)
    m2 = generate(open_store(str(b)), 3, 5000, 400, seed=11, skew=0.8)
    for i in range(3):
        assert (a / f"l1/{i}.parquet").read_bytes() == (b / f"l1/{i}.parquet").read_bytes()
        t = pq.read_table(a / f"l1/{i}.parquet")
        keys = t.column("key").to_pylist()
        ts = t.column("ts").cast("int64").to_pylist()
        assert list(zip(keys, ts, strict=True)) == sorted(zip(keys, ts, strict=True))
        assert t.column("value").null_count > 0
    assert {k: v for k, v in m1.items() if k != "seconds"} == {
        k: v for k, v in m2.items() if k != "seconds"
    }
    assert m1["expected"]["rows"] == 15000
    # every file spans the key space: files overlap each other
    spans = [pq.read_table(a / f"l1/{i}.parquet").column("key") for i in range(3)]
    assert all(s.to_numpy().min() < 40 and s.to_numpy().max() > 360 for s in spans)
