"""The two table shapes that flow through the tree, and the Parquet writer settings for both.

`events` are the input rows; every input file is sorted by (key, ts). With `--op aggregate` the
levels carry `partials` instead: one row per (key, category) with combinable aggregates, sorted by
(key, category). The final result tables have the same aggregate columns.
"""

from __future__ import annotations

import queue
import threading

import pyarrow as pa
import pyarrow.parquet as pq

from . import progress

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

_AGGREGATES = [
    pa.field("rows", pa.int64(), nullable=False),
    pa.field("value_count", pa.int64(), nullable=False),
    pa.field("value_sum", pa.int64()),
    pa.field("value_min", pa.int64()),
    pa.field("value_max", pa.int64()),
    pa.field("ts_min", TS, nullable=False),
    pa.field("ts_max", TS, nullable=False),
]

# The checksum part is a wrapping uint64 sum of row hashes, so partials combine by addition.
PARTIALS = pa.schema(
    [
        pa.field("key", pa.int64(), nullable=False),
        pa.field("category", CATEGORY),
        *_AGGREGATES,
        pa.field("checksum", pa.uint64(), nullable=False),
    ]
)

BY_KEY = pa.schema([pa.field("key", pa.int64(), nullable=False), *_AGGREGATES])
BY_CATEGORY = pa.schema([pa.field("category", pa.string()), *_AGGREGATES])

SORTING = {
    "events": ("key", "ts"),
    "partials": ("key", "category"),
    "by_key": ("key",),
    "by_category": ("category",),
}


def kind_of(schema: pa.Schema) -> str | None:
    """'events' or 'partials' when the schema is exactly one of ours, else None."""
    for name, expected in (("events", EVENTS), ("partials", PARTIALS)):
        if schema.remove_metadata().equals(expected):
            return name
    return None


def describe(schema: pa.Schema) -> str:
    return ", ".join(f"{f.name}: {f.type}{'' if f.nullable else ' not null'}" for f in schema)


class Sink:
    """Writes tables into row groups of exactly `row_group_rows` rows (the last one shorter),
    whatever sizes the stream comes in: uniform row groups make reads predictable.

    Encoding and compression run on a background thread (they release the GIL), so with two
    cores a pod computes the next chunk while the previous one is written. One chunk waits in
    the queue at most, which bounds the memory this costs (with two, a lagging writer let a
    pod's peak RSS vary by 20%)."""

    def __init__(self, path: str, schema: pa.Schema, kind: str, row_group_rows: int):
        self._writer = writer(path, schema, kind)
        self._schema, self._size = schema, row_group_rows
        self._pending: list[pa.Table] = []
        self._rows = 0
        self.rows = 0
        self._queue: queue.Queue[pa.Table | None] = queue.Queue(maxsize=1)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name="parquet-writer", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while (table := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._writer.write_table(table, row_group_size=self._size)
                    progress.tick()
                except BaseException as exc:  # re-raised in the caller's thread
                    self._error = exc

    def _put(self, table: pa.Table | None) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(table)

    def write(self, table: pa.Table | pa.RecordBatch) -> None:
        if isinstance(table, pa.RecordBatch):
            table = pa.Table.from_batches([table])
        if table.num_rows == 0:
            return
        self._pending.append(table)
        self._rows += table.num_rows
        self.rows += table.num_rows
        if self._rows >= self._size:
            self._flush(final=False)

    def _flush(self, final: bool) -> None:
        table = pa.concat_tables(self._pending) if len(self._pending) > 1 else self._pending[0]
        whole = table.num_rows if final else table.num_rows - table.num_rows % self._size
        self._put(table.slice(0, whole))
        rest = table.slice(whole)
        self._pending, self._rows = ([rest], rest.num_rows) if rest.num_rows else ([], 0)

    def _stop(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def close(self) -> None:
        if self._pending:
            self._flush(final=True)
        elif self.rows == 0:
            self._put(self._schema.empty_table())
        self._stop()
        if self._error is not None:
            self._writer.close()
            raise self._error
        self._writer.close()

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            self.close()
        else:
            self._stop()
            self._writer.close()  # the temporary file is discarded by the caller


def writer(sink, schema: pa.Schema, kind: str) -> pq.ParquetWriter:
    """A ParquetWriter with the settings every file of the tree uses.

    Dictionary encoding only for `category`: a hash dictionary on the numeric columns costs about
    half the write time and buys nothing on near-unique keys and timestamps. The integer columns
    are delta-encoded instead: keys and timestamps are sorted runs, so the deltas are small and
    zstd has little left to do (measured on 2M events: write 0.12 s vs 0.18 s plain, read 0.025 s
    vs 0.041 s, 18.8 MB vs 22.9 MB).

    Every page carries a CRC-32 that every read of the tree verifies (storage.open_parquet): a
    byte flipped on a disk, a NAS or in flight is an error naming the file, never a different
    result (before, 17 of 40 random 16-byte overwrites of an input changed the result silently).
    """
    names = schema.names
    sorting = [pq.SortingColumn(names.index(c)) for c in SORTING[kind] if c in names]
    delta = {
        f.name: "DELTA_BINARY_PACKED"
        for f in schema
        if f.name != "checksum" and (pa.types.is_integer(f.type) or pa.types.is_timestamp(f.type))
    }
    return pq.ParquetWriter(
        sink,
        schema,
        compression="zstd",
        column_encoding=delta or None,
        use_dictionary=[c for c in ("category",) if c in names],
        sorting_columns=sorting or None,
        write_page_checksum=True,
        write_statistics=list(SORTING[kind][:1]) if kind in ("events", "partials") else True,
    )
