"""Small tables for the unit tests."""

from __future__ import annotations

import pyarrow as pa

from workload import schema


def events(keys, values, categories, ts=None) -> pa.Table:
    dictionary = pa.array(sorted({c for c in categories if c is not None}), pa.string())
    names = dictionary.to_pylist()
    codes = pa.array([None if c is None else names.index(c) for c in categories], pa.int32())
    return pa.Table.from_arrays(
        [
            pa.array(keys, pa.int64()),
            pa.array(ts if ts is not None else range(len(keys)), pa.int64()).view(schema.TS),
            pa.array(values, pa.int64()),
            pa.DictionaryArray.from_arrays(codes, dictionary),
        ],
        schema=schema.EVENTS,
    )
