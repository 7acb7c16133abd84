"""The input's shape: `events`, every input file sorted by (key, ts). The ops define the shapes
of their level files and results (workload/ops); this is what they all start from."""

from __future__ import annotations

import pyarrow as pa

TS = pa.timestamp("us", tz="UTC")
CATEGORY = pa.dictionary(pa.int32(), pa.string())

EVENTS = pa.schema(
    [
        pa.field("key", pa.int64(), nullable=False),
        pa.field("ts", TS, nullable=False),
        pa.field("value", pa.int64()),
        pa.field("category", CATEGORY),
    ]
)

EVENTS_SORTED_BY = ("key", "ts")


def describe(schema: pa.Schema) -> str:
    return ", ".join(f"{f.name}: {f.type}{'' if f.nullable else ' not null'}" for f in schema)
