"""The final pod streams by key when dense slots do not fit: the same bytes as the dense path,
for both ops and for every level it may read."""

from __future__ import annotations

import shutil

import pytest

from workload import layout
from workload.generate import generate
from workload.ops.aggregate import ByKey
from workload.storage import open_store
from workload.testing.oracle import comparable, duckdb_result
from workload.testing.pods import read_result, run_tree
from workload.verify import verify


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    root = tmp_path_factory.mktemp("streaming")
    generate(open_store(str(root)), 9, 3000, 2500, seed=12, skew=0.6)
    return root


def result_bytes(root) -> tuple[bytes, ...]:
    return tuple((root / rel).read_bytes() for rel in (layout.BY_KEY, layout.BY_CATEGORY))


@pytest.mark.parametrize(
    ("op", "fan_in", "final_fan_in"),
    [("merge", 2, 2), ("aggregate", 2, 2), ("aggregate", 3, 1), ("merge", 2, 9)],
)
def test_streaming_gives_the_dense_paths_bytes(
    sample, tmp_path, monkeypatch, op, fan_in, final_fan_in
):
    dense, streamed = tmp_path / "dense", tmp_path / "streamed"
    for root in (dense, streamed):
        shutil.copytree(sample, root)
    run_tree(str(dense), op, fan_in=fan_in, final_fan_in=final_fan_in)
    monkeypatch.setattr(ByKey, "MAX_SLOTS", 10)  # no key range fits: the pod streams
    run_tree(str(streamed), op, fan_in=fan_in, final_fan_in=final_fan_in)
    assert result_bytes(streamed) == result_bytes(dense)
    assert (streamed / layout.SUMMARY).read_bytes() == (dense / layout.SUMMARY).read_bytes()
    assert verify(open_store(str(streamed))) == []
    by_key, by_category = read_result(str(streamed))
    want_key, want_category = duckdb_result(f"{sample}/l1/*.parquet")
    assert comparable(by_key) == comparable(want_key)
    assert comparable(by_category) == comparable(want_category)
