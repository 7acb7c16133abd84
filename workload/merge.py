"""The final pod: `python -m workload.merge <first> <count>`.

Reads files first..first+count-1 of the deepest level present (or --level), events or partials
alike, and writes result/by_key.parquet, result/by_category.parquet and, last, as the commit
marker, result/summary.json. Files are read one after another; each is sorted by key, so it
reduces by key without a sort, and the running by-key result absorbs it with a merge of two
sorted runs. Memory is one input's batch plus the result itself.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

from . import __version__, layout, schema
from .errors import DataError, UsageError
from .kernels import Categories, Partials, empty_partials
from .metrics import Metrics
from .process import input_files, open_inputs
from .settings import Settings
from .storage import Store, open_store


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
    available = input_files(store, level, settings.fan_in)
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
    convert = Partials.from_events if kind == "events" else Partials.from_table

    cats = Categories()
    by_key = empty_partials()
    by_category = empty_partials()
    for shard in shards:
        pieces = []
        for batch in metrics.timed(shard.batches(settings.batch_rows)):
            with metrics.timing("compute_s"):
                p = convert(batch, cats)
                metrics.rows_in += batch.num_rows
                pieces.append(p.reduce("key", cats))
                by_category = Partials.concat([by_category, p.reduce("category", cats)])
                by_category = by_category.reduce("category", cats)
        with metrics.timing("compute_s"):
            # Sorted inputs make this a merge of sorted runs; unsorted ones are still correct.
            by_key = Partials.concat([by_key, *pieces]).reduce("key", cats)

    totals = by_category.totals()
    totals["distinct_keys"] = len(by_key)
    files = input_files(store, 1, settings.fan_in)
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
        by_category_table = by_category.to_by_category(cats)
        _write_table(store, layout.BY_KEY, by_key.to_by_key(), "by_key", settings)
        _write_table(store, layout.BY_CATEGORY, by_category_table, "by_category", settings)
    metrics.rows_out = len(by_key)
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


def _write_table(store: Store, rel: str, table: pa.Table, kind: str, settings: Settings) -> None:
    with (
        store.output(rel) as tmp,
        schema.Sink(tmp, table.schema, kind, settings.row_group_rows) as sink,
    ):
        sink.write(table)


if __name__ == "__main__":
    from .cli import exit_now, merge_main

    exit_now(merge_main())
