"""The final pod: `python -m workload.merge <first> <count>`.

Reads files first..first+count-1 of the deepest level present (or --level), events or partials
alike: every file of the level, unless `partial` is asked for. Files are read on a few threads;
each is sorted by key, so each batch reduces by key without a sort, and the running by-key
result absorbs it (dense slots when the files' key statistics bound the range).

The result is published so that a reader never sees a mix of two runs (README, "Reading the
result"): the old commit marker result/summary.json is removed first, then by_key.parquet and
by_category.parquet are written, then summary.json, which names each data file with its size
and sha256. A reader trusts the data files only through a summary.json that matches them.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

from . import __version__, layout, progress, schema
from .errors import DataError, UsageError
from .inputs import check_no_extra_input, input_files, open_inputs, read_manifest
from .kernels import ByCategory, ByKey, Categories, Partials, summarize_events
from .metrics import Metrics
from .settings import Settings
from .storage import ParquetInput, Store, reread_once

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
    *,
    partial: bool = False,
) -> dict:
    """The final pod over files first..first+count-1; its metrics record. `partial` allows a
    range that is not the whole level (the result then covers only those files)."""
    layout.check_positive("first", first, minimum=0)
    layout.check_positive("count", count, minimum=1)
    if level is not None:
        layout.check_positive("level", level, minimum=1)
    run = lambda: _merge(settings, first, count, level, summary_file, partial)  # noqa: E731
    return reread_once(run)


def _merge(
    settings: Settings,
    first: int,
    count: int,
    level: int | None,
    summary_file: str | None,
    partial: bool,
) -> dict:
    store = settings.store()
    level = deepest_level(store) if level is None else level
    manifest = read_manifest(store)
    files = input_files(store, manifest)  # one manifest read: the summary records it too
    available = layout.files_at(level, files, settings.fan_in)
    if first + count > available:
        raise UsageError(
            f"files {first}..{first + count - 1} requested but level {level} has {available} "
            f"files (0..{available - 1})"
        )
    if not partial and (first, count) != (0, available):
        raise UsageError(
            f"files {first}..{first + count - 1} requested but level {level} has {available} "
            f"files: pass first 0 and count {available}, or --partial for a partial result"
        )
    if level == 1 and manifest is not None and not partial:
        check_no_extra_input(store, files)
    rels = [layout.shard(level, i) for i in range(first, first + count)]
    metrics = Metrics("merge", level, first, settings.op, inputs=rels, output=layout.RESULT_DIR)
    with metrics.timing("read_s"):
        shards = open_inputs(store, rels, settings.read_window, expected=None)
    kind = schema.kind_of(shards[0].schema)
    input_rows = dict.fromkeys(rels, 0)  # rows of the original input each file stands for

    cats = Categories()
    by_key = ByKey(*_key_range(shards))
    by_category = ByCategory(cats)
    lock = threading.Lock()

    def consume(rel: str, shard: ParquetInput) -> None:
        """One file, batch by batch; the shared results are updated under the lock. Decoding
        and the numpy kernels release the GIL, so two files progress on two cores."""
        local = Metrics("merge", level, first, settings.op)
        rows = 0
        for batch in local.timed(shard.batches(settings.batch_rows)):
            progress.tick()
            with local.timing("compute_s"):
                if kind == "events":
                    keyed, categorized = summarize_events(batch, cats)
                else:
                    p = Partials.from_table(batch, cats)
                    keyed, categorized = p.reduce("key", cats), p
                rows += int(keyed.rows.sum())
                with lock:
                    by_key.add(keyed)
                    by_category.add(categorized)
        with lock:
            input_rows[rel] = rows
            metrics.read_s += local.read_s
            metrics.compute_s += local.compute_s

    with ThreadPoolExecutor(min(THREADS, len(shards))) as pool:
        list(pool.map(consume, rels, shards))
    metrics.rows_in = sum(s.rows for s in shards)
    by_key_result, by_category_result = by_key.result(), by_category.result()
    totals = by_category_result.totals()
    totals["distinct_keys"] = len(by_key_result)
    if totals["rows"] != sum(input_rows.values()):
        raise DataError(  # the by-key and by-category paths disagree: never publish that
            f"result would not add up: {totals['rows']} rows by category, "
            f"{sum(input_rows.values())} by key"
        )
    summary = {
        **public_totals(totals),
        "files": files,
        "fan_in": settings.fan_in,
        "levels": level - 1,
        "final_level": level,
        "first": first,
        "inputs": count,
        "partial": partial,
        "input_rows": list(input_rows.values()),
        "op": settings.op,
        "input_kind": kind,
        "versions": {"workload": __version__, "pyarrow": pa.__version__, "numpy": np.__version__},
    }
    with metrics.timing("write_s"):
        by_category_table = by_category_result.to_by_category(cats)
        by_key_table = by_key_result.to_by_key()
        store.remove(layout.SUMMARY)  # from here until the new marker, there is no result
        summary["outputs"] = {
            posixpath.basename(rel): _write_table(store, rel, table, name, settings)
            for rel, table, name in (
                (layout.BY_KEY, by_key_table, "by_key"),
                (layout.BY_CATEGORY, by_category_table, "by_category"),
            )
        }
    metrics.rows_out = len(by_key_result)
    metrics.bytes_in = sum(s.bytes_read for s in shards)
    metrics.requests_in = sum(s.requests for s in shards)
    record = metrics.finish()  # timings stay in the metrics line: a rerun writes the same summary
    started = time.perf_counter()
    store.write_json(layout.SUMMARY, summary)
    record["write_s"] = round(record["write_s"] + time.perf_counter() - started, 4)
    record["summary"] = {k: summary[k] for k in ("rows", "distinct_keys", "value_sum", "checksum")}
    if summary_file:  # a local copy, e.g. for an Argo output parameter
        with open(summary_file, "w") as f:
            json.dump(summary, f, indent=2, sort_keys=True)
    return record


def _key_range(shards: list[ParquetInput]) -> tuple[int | None, int | None]:
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


def _write_table(store: Store, rel: str, table: pa.Table, kind: str, settings: Settings) -> dict:
    """Write one result file; its size and sha256 for the commit marker."""
    with (
        store.output(rel, digest=True) as out,
        schema.Sink(out.path, table.schema, kind, settings.row_group_rows) as sink,
    ):
        sink.write(table)
    return {"bytes": out.size, "sha256": out.sha256}


if __name__ == "__main__":
    from .cli import exit_now, merge_main

    exit_now(merge_main())
