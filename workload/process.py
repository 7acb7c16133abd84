"""The level pod: `python -m workload.process <file_number> <level>`.

Level-L pod i reads l{L}/{k*i} .. l{L}/{k*i+k-1} and writes l{L+1}/{i}.parquet, streaming: its
memory is about one batch per input plus one output row group, whatever the file sizes.
- op merge:     events in, events out, one file sorted by (key, ts), ties in input order.
- op aggregate: events (level 1) or partials (later levels) in, partials per (key, category) out.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pyarrow.parquet as pq

from . import layout, progress, schema
from .errors import InternalError
from .inputs import check_no_extra_input, input_files, open_inputs, read_manifest
from .kernels import Categories, Partials, aligned, merge_events
from .metrics import Metrics
from .settings import Settings
from .storage import reread_once


def process(settings: Settings, file_number: int, level: int) -> dict:
    """Level-`level` pod `file_number`; its metrics record. An input whose bytes do not check
    out is read once more before the pod fails (storage.reread_once)."""
    layout.check_positive("level", level, minimum=1)
    layout.check_positive("file_number", file_number, minimum=0)
    return reread_once(lambda: _process(settings, file_number, level))


def _process(settings: Settings, file_number: int, level: int) -> dict:
    store = settings.store()
    manifest = read_manifest(store)
    input_count = input_files(store, manifest)
    files = layout.files_at(level, input_count, settings.fan_in)
    rels = layout.inputs(level, file_number, files, settings.fan_in)
    if (
        level == 1
        and manifest is not None
        and file_number == layout.pods(files, settings.fan_in) - 1
    ):
        check_no_extra_input(store, input_count)
    out_rel = layout.shard(level + 1, file_number)
    metrics = Metrics("process", level, file_number, settings.op, inputs=rels, output=out_rel)

    aggregate = settings.op == "aggregate"
    source_kind = "partials" if aggregate and level > 1 else "events"
    with metrics.timing("read_s"):
        opened = open_inputs(store, rels, settings.read_window, source_kind)
    out_schema, out_kind = (schema.PARTIALS, "partials") if aggregate else (schema.EVENTS, "events")
    by = ("key",) if aggregate else ("key", "ts")
    cats = Categories()
    streams = [(s.what, metrics.timed(s.batches(settings.batch_rows))) for s in opened]
    # What the pod read and wrote, added up as it goes: checked before the output is published.
    rows_in = rows_out = 0
    checksum_in = checksum_out = 0

    with store.output(out_rel) as out:
        with schema.Sink(out.path, out_schema, out_kind, settings.row_group_rows) as sink:
            for parts in aligned(streams, by):
                progress.tick()
                with metrics.timing("compute_s"):
                    metrics.rows_in += sum(p.num_rows for p in parts)
                    if aggregate:
                        convert = Partials.from_table if level > 1 else Partials.from_events
                        partials = Partials.concat([convert(p, cats) for p in parts])
                        reduced = partials.reduce("key,category", cats)
                        rows_in += int(partials.rows.sum())
                        rows_out += int(reduced.rows.sum())
                        checksum_in = _wrapping_add(checksum_in, partials.checksum)
                        checksum_out = _wrapping_add(checksum_out, reduced.checksum)
                        table = reduced.to_partials(cats)
                    else:
                        table = merge_events(parts, cats)
                with metrics.timing("write_s"):
                    sink.write(table)
        metrics.rows_out = sink.rows
        if not aggregate:
            rows_in, rows_out = metrics.rows_in, metrics.rows_out
        written = pq.read_metadata(out.path).num_rows
        if rows_in != rows_out or checksum_in != checksum_out or written != sink.rows:
            raise InternalError(
                f"{store.describe(out_rel)} would not add up to its inputs: rows {rows_in} in, "
                f"{rows_out} out, {written} written; checksum {checksum_in:016x} in, "
                f"{checksum_out:016x} out"
            )
        metrics.bytes_out = os.path.getsize(out.path)
        commit = time.perf_counter()
    metrics.write_s += time.perf_counter() - commit  # the rename or upload
    metrics.bytes_in = sum(s.bytes_read for s in opened)
    metrics.requests_in = sum(s.requests for s in opened)
    return metrics.finish()


def _wrapping_add(total: int, parts: np.ndarray) -> int:
    """The checksum parts' wrapping uint64 sum, added to `total`."""
    return (total + int(np.add.reduce(parts, dtype=np.uint64))) & 0xFFFFFFFFFFFFFFFF


if __name__ == "__main__":
    from .cli import exit_now, process_main

    exit_now(process_main())
