"""The level pod: `python -m workload.process <file_number> <level>`.

Level-L pod i reads l{L}/{k*i} .. l{L}/{k*i+k-1} and writes l{L+1}/{i}.parquet, streaming: its
memory is about one batch per input plus one output row group, whatever the file sizes.
- op merge:     events in, events out, one file sorted by (key, ts), ties in input order.
- op aggregate: events (level 1) or partials (later levels) in, partials per (key, category) out.
"""

from __future__ import annotations

import os
import time

from . import layout, schema
from .errors import DataError
from .kernels import Categories, Partials, aligned, merge_events
from .metrics import Metrics
from .settings import Settings
from .storage import Shard, Store, open_store


def input_files(store: Store) -> int:
    """Files at level 1: from the generator's manifest, else by listing l1. Deeper levels
    follow from the fan-in (layout.files_at)."""
    manifest = store.read_json(layout.MANIFEST, missing=None)
    if manifest is not None:
        files = manifest.get("files")
        if not isinstance(files, int) or files < 1:
            raise DataError(f"{store.describe(layout.MANIFEST)} has no valid 'files' count")
    else:
        files = sum(1 for n in store.listdir("l1") if n.endswith(".parquet"))
        if files == 0:
            raise DataError(f"no input files under {store.describe('l1')}")
    return files


def open_inputs(store: Store, rels: list[str], window: int, expected: str | None) -> list[Shard]:
    """Open every input (footers only) and check its schema before anything is written."""
    shards = [store.open_parquet(rel, window) for rel in rels]
    kinds = {s.what: schema.kind_of(s.schema) for s in shards}
    first = shards[0]
    for s in shards:
        kind = kinds[s.what]
        if kind is None or (expected and kind != expected) or kind != kinds[first.what]:
            want = expected or kinds[first.what] or "events"
            shape = schema.EVENTS if want == "events" else schema.PARTIALS
            raise DataError(
                f"schema drift: {s.what} has ({schema.describe(s.schema)}); "
                f"expected {want} ({schema.describe(shape)})"
            )
    return shards


def process(settings: Settings, file_number: int, level: int) -> dict:
    layout.check_positive("level", level, minimum=1)
    layout.check_positive("file_number", file_number, minimum=0)
    store = open_store(settings.root, settings.storage_options)
    files = layout.files_at(level, input_files(store), settings.fan_in)
    rels = layout.inputs(level, file_number, files, settings.fan_in)
    out_rel = layout.shard(level + 1, file_number)
    metrics = Metrics("process", level, file_number, settings.op, inputs=rels, output=out_rel)

    aggregate = settings.op == "aggregate"
    source_kind = "partials" if aggregate and level > 1 else "events"
    with metrics.timing("read_s"):
        shards = open_inputs(store, rels, settings.read_window, source_kind)
    out_schema, out_kind = (schema.PARTIALS, "partials") if aggregate else (schema.EVENTS, "events")
    by = ("key",) if aggregate else ("key", "ts")
    cats = Categories()
    streams = [(s.what, metrics.timed(s.batches(settings.batch_rows))) for s in shards]

    with store.output(out_rel) as tmp:
        with schema.Sink(tmp, out_schema, out_kind, settings.row_group_rows) as sink:
            for parts in aligned(streams, by):
                with metrics.timing("compute_s"):
                    metrics.rows_in += sum(p.num_rows for p in parts)
                    if aggregate:
                        convert = Partials.from_table if level > 1 else Partials.from_events
                        partials = Partials.concat([convert(p, cats) for p in parts])
                        table = partials.reduce("key,category", cats).to_partials(cats)
                    else:
                        table = merge_events(parts, cats)
                with metrics.timing("write_s"):
                    sink.write(table)
        metrics.rows_out = sink.rows
        metrics.bytes_out = os.path.getsize(tmp)
        commit = time.perf_counter()
    metrics.write_s += time.perf_counter() - commit  # the rename or upload
    metrics.bytes_in = sum(s.bytes_read for s in shards)
    metrics.requests_in = sum(s.requests for s in shards)
    return metrics.finish()


if __name__ == "__main__":
    from .cli import exit_now, process_main

    exit_now(process_main())
