"""The final pod: `python -m workload.merge <first> <count>`.

Reads files first..first+count-1 of the deepest level present (or --level), events or partials
alike, and writes result/by_key.parquet, result/by_category.parquet and, last, as the commit
marker, result/summary.json. Files are read one after another; each is sorted by key, so it
reduces by key without a sort, and the running by-key result absorbs it with a merge of two
sorted runs. Memory is one input's batch plus the result itself.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

from . import __version__, layout, schema
from .errors import DataError, UsageError
from .kernels import ByCategory, ByKey, Categories, Partials, summarize_events
from .metrics import Metrics
from .process import input_files, open_inputs
from .settings import Settings
from .storage import Shard, Store, open_store

THREADS = min(4, os.cpu_count() or 1)


def deepest_level(store: Store) -> int:
    levels = [int(m.group(1)) for n in store.listdir("") if (m := re.fullmatch(r"l(\d+)", n))]
    if not levels:
        raise DataError(f"no level folders (l1, l2, ...) under {store}")
    return max(levels)


def iso(us: int | None) -> str | None:
    if us is None:
        return None
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC).isoformat(timespec="microseconds")


def public_totals(totals: dict) -> dict:
    """Totals as written to JSON: timestamps as ISO 8601 in UTC."""
    return {**totals, "ts_min": iso(totals["ts_min"]), "ts_max": iso(totals["ts_max"])}


def merge(
    settings: Settings,
    first: int,
    count: int,
    level: int | None = None,
    summary_file: str | None = None,
) -> dict:
    layout.check_positive("first", first, minimum=0)
    layout.check_positive("count", count, minimum=1)
    store = open_store(settings.root, settings.storage_options)
    level = deepest_level(store) if level is None else layout.check_positive("level", level, 1)
    files = input_files(store)  # one manifest read: the summary records it too
    available = layout.files_at(level, files, settings.fan_in)
    if first + count > available:
        raise UsageError(
            f"files {first}..{first + count - 1} requested but level {level} has {available} "
            f"files (0..{available - 1})"
        )
    rels = [layout.shard(level, i) for i in range(first, first + count)]
    metrics = Metrics("merge", level, first, settings.op, inputs=rels, output=layout.RESULT_DIR)
    with metrics.timing("read_s"):
        shards = open_inputs(store, rels, settings.read_window, expected=None)
    kind = schema.kind_of(shards[0].schema)

    cats = Categories()
    by_key = ByKey(*_key_range(shards))
    by_category = ByCategory(cats)
    lock = threading.Lock()

    def consume(shard: Shard) -> None:
        """One file, batch by batch; the shared results are updated under the lock. Decoding
        and the numpy kernels release the GIL, so two files progress on two cores."""
        local = Metrics("merge", level, first, settings.op)
        for batch in local.timed(shard.batches(settings.batch_rows)):
            with local.timing("compute_s"):
                if kind == "events":
                    keyed, categorized = summarize_events(batch, cats)
                else:
                    p = Partials.from_table(batch, cats)
                    keyed, categorized = p.reduce("key", cats), p
                with lock:
                    by_key.add(keyed)
                    by_category.add(categorized)
        with lock:
            metrics.read_s += local.read_s
            metrics.compute_s += local.compute_s

    with ThreadPoolExecutor(min(THREADS, len(shards))) as pool:
        list(pool.map(consume, shards))
    metrics.rows_in = sum(s.rows for s in shards)
    by_key_result, by_category_result = by_key.result(), by_category.result()
    totals = by_category_result.totals()
    totals["distinct_keys"] = len(by_key_result)
    summary = {
        **public_totals(totals),
        "files": files,
        "levels": level - 1,
        "final_level": level,
        "inputs": count,
        "op": settings.op,
        "input_kind": kind,
        "versions": {"workload": __version__, "pyarrow": pa.__version__, "numpy": np.__version__},
    }
    with metrics.timing("write_s"):
        by_category_table = by_category_result.to_by_category(cats)
        _write_table(store, layout.BY_KEY, by_key_result.to_by_key(), "by_key", settings)
        _write_table(store, layout.BY_CATEGORY, by_category_table, "by_category", settings)
    metrics.rows_out = len(by_key_result)
    metrics.bytes_in = sum(s.bytes_read for s in shards)
    metrics.requests_in = sum(s.requests for s in shards)
    record = metrics.finish()
    summary["timings"] = {k: record[k] for k in ("read_s", "compute_s", "write_s", "total_s")}
    started = time.perf_counter()
    store.write_json(layout.SUMMARY, summary)
    record["write_s"] = round(record["write_s"] + time.perf_counter() - started, 4)
    record["summary"] = {k: summary[k] for k in ("rows", "distinct_keys", "value_sum", "checksum")}
    if summary_file:  # a local copy, e.g. for an Argo output parameter
        with open(summary_file, "w") as f:
            json.dump(summary, f, indent=2, sort_keys=True)
    return record


def _key_range(shards: list[Shard]) -> tuple[int | None, int | None]:
    """The smallest and largest key over all inputs, from their Parquet statistics (no data
    read); (None, None) when any row group lacks them."""
    lo = hi = None
    for shard in shards:
        meta = shard.file.metadata
        column = shard.schema.get_field_index("key")
        for i in range(meta.num_row_groups):
            stats = meta.row_group(i).column(column).statistics
            if stats is None or not stats.has_min_max:
                return None, None
            lo = stats.min if lo is None else min(lo, stats.min)
            hi = stats.max if hi is None else max(hi, stats.max)
    return lo, hi


def _write_table(store: Store, rel: str, table: pa.Table, kind: str, settings: Settings) -> None:
    with (
        store.output(rel) as tmp,
        schema.Sink(tmp, table.schema, kind, settings.row_group_rows) as sink,
    ):
        sink.write(table)


if __name__ == "__main__":
    from .cli import exit_now, merge_main

    exit_now(merge_main())
