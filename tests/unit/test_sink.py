"""The Sink: exact row groups whatever the stream's sizes, page checksums, sorting metadata."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
from support import events

from workload import schema
from workload.storage.parquet import Sink


def test_row_groups_are_exactly_the_size_asked(tmp_path):
    path = str(tmp_path / "x.parquet")
    table = events(list(range(1000)), list(range(1000)), ["a"] * 1000)
    with Sink(path, schema.EVENTS, sorted_by=("key", "ts"), row_group_rows=300) as sink:
        for size in (7, 333, 1, 500, 159):
            start = sum((7, 333, 1, 500, 159)[: (7, 333, 1, 500, 159).index(size)])
            sink.write(table.slice(start, size))
    meta = pq.read_metadata(path)
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [300, 300, 300, 100]
    assert pq.read_table(path).equals(table)
    assert [c.column_index for c in meta.row_group(0).sorting_columns] == [0, 1]


def test_an_empty_output_is_a_valid_empty_file(tmp_path):
    path = str(tmp_path / "empty.parquet")
    with Sink(path, schema.EVENTS, sorted_by=("key", "ts"), row_group_rows=10):
        pass
    assert pq.read_table(path).num_rows == 0


def test_pages_carry_checksums_that_reads_verify(tmp_path):
    path = tmp_path / "x.parquet"
    table = events(list(range(5000)), list(range(5000)), ["a", "b"] * 2500)
    with Sink(str(path), schema.EVENTS, sorted_by=("key", "ts"), row_group_rows=5000) as sink:
        sink.write(table)
    data = bytearray(path.read_bytes())
    data[len(data) // 4] ^= 0xFF  # one bit pattern inside the first column's pages
    path.write_bytes(bytes(data))
    try:
        pq.ParquetFile(path, page_checksum_verification=True).read()
    except (OSError, pa.ArrowException):
        return
    raise AssertionError("a damaged page was read without an error")
