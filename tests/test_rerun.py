"""A rerun rewrites identical bytes, level by level, also where categories are null (whose
dictionary handling once wrote uninitialised bytes at level 2)."""

from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from workload import schema
from workload.generate import generate
from workload.storage import open_store
from workload.testing.pods import run_tree


def digests(root) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*.parquet"))
    }


@pytest.mark.parametrize("op", ["merge", "aggregate"])
def test_a_rerun_rewrites_every_level_bit_for_bit_with_null_categories(tmp_path, op):
    source = tmp_path / "source"
    generate(open_store(str(source)), 8, 400, 60, seed=5)
    rng = np.random.default_rng(5)
    for path in sorted((source / "l1").glob("*.parquet")):  # a tenth of the categories null
        table = pq.read_table(path)
        category = table.column("category").combine_chunks()
        nulls = pa.array(rng.random(len(category)) < 0.1)
        indices = pc.if_else(nulls, None, category.indices)
        table = table.set_column(
            3, "category", pa.DictionaryArray.from_arrays(indices, category.dictionary)
        )
        pq.write_table(table.cast(schema.EVENTS), path, compression="zstd")
    runs = []
    for name in ("one", "two"):
        root = tmp_path / name
        shutil.copytree(source, root)
        run_tree(str(root), op, fan_in=2, final_fan_in=2)  # 8 -> 4 -> 2 -> result
        runs.append(digests(root))
    assert len(runs[0]) == 8 + 4 + 2 + 2 and runs[0] == runs[1]
    for level in ("l2", "l3"):  # no category but the data's in any dictionary written
        for path in sorted((tmp_path / "one" / level).glob("*.parquet")):
            values = pq.read_table(path).column("category").combine_chunks().dictionary
            assert len(values) == len(set(values.to_pylist())) and None not in values.to_pylist()
