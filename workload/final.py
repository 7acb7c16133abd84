"""The final pod: `python -m workload.final <first> <count>` (the seed's `merge.py 0 32`).

Reads every file of the deepest level present (or --level; files first..first+count-1, which
must be the whole level unless `partial` is asked for) and hands them to the op's final state
(workload/ops), on a few reader threads. For both built-in ops the result is by_key and
by_category, the same bit for bit whatever the op and the tree's shape.

The result is published so that a reader never sees a mix of two runs (README, "Reading the
result"): the old commit marker result/summary.json is removed first, then the result files
are written, then summary.json, which names each with its size and sha256. A reader trusts the
result files only through a summary.json that matches them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa

from . import __version__, budget, command, errors, layout, ops, progress
from .errors import DataError, UsageError
from .inputs import check_no_extra_input, input_files, open_inputs, read_manifest
from .kernels.align import aligned
from .kernels.categories import Categories
from .metrics import Metrics, emit, log
from .settings import Settings
from .storage import ParquetInput, Store, reread_once
from .storage.parquet import Sink
from .verify import public_totals
from .workers import cpu_threads

THREADS = 4  # reader threads at most; fewer when the pod has fewer CPUs (workers.cpu_threads)


def deepest_level(store: Store) -> int:
    levels = [lv for n in store.listdir("") if (lv := layout.level_of(n)) is not None]
    if store.run and store.exists(layout.INPUT_DIR):  # a run's folder holds l2 and up
        levels.append(1)
    if not levels:
        raise DataError(f"no level folders (l1, l2, ...) under {store}")
    return max(levels)


def final(
    settings: Settings,
    first: int,
    count: int,
    *,
    level: int | None = None,
    summary_file: str | None = None,
    partial: bool = False,
) -> dict:
    """The final pod over files first..first+count-1; its metrics record. `partial` allows a
    range that is not the whole level (the result then covers only those files)."""
    layout.check_positive("first", first, minimum=0)
    layout.check_positive("count", count, minimum=1)
    if level is not None:
        layout.check_positive("level", level, minimum=1)
    return reread_once(lambda: _final(settings, first, count, level, summary_file, partial))


def _final(
    settings: Settings,
    first: int,
    count: int,
    level: int | None,
    summary_file: str | None,
    partial: bool,
) -> dict:
    op = ops.get(settings.op)
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
    rels = [layout.level_file(level, i) for i in range(first, first + count)]
    metrics = Metrics("final", level, first, op.name, inputs=rels, output=layout.RESULT_DIR)
    with metrics.timing("read_s"):
        opened = open_inputs(store, rels, op.schema(level), settings)

    cats = Categories()
    state = op.final(level, cats, _key_range(opened))
    input_rows: dict[str, int | None] = dict.fromkeys(rels, 0)  # input rows behind each file
    store.remove(layout.SUMMARY)  # from here until the new marker, there is no result
    if getattr(state, "streaming", False):
        by = getattr(state, "aligned_by", op.aligned_by(level))  # no result row straddles them
        streamed = _stream(
            store,
            state,
            by=by,
            opened=dict(zip(rels, opened, strict=True)),
            input_rows=input_rows,
            metrics=metrics,
            settings=settings,
        )
    else:
        streamed = {}
        _absorb_on_threads(
            state,
            opened=dict(zip(rels, opened, strict=True)),
            input_rows=input_rows,
            metrics=metrics,
            settings=settings,
        )
    metrics.rows_in = sum(s.rows for s in opened)
    tables, totals = state.result()
    counted = None not in input_rows.values()
    summary = {
        **public_totals(totals),
        "files": files,
        "fan_in": settings.fan_in,
        "levels": level - 1,
        "final_level": level,
        "first": first,
        "inputs": count,
        "partial": partial,
        "input_rows": list(input_rows.values()) if counted else None,
        "op": op.name,
        "versions": {"workload": __version__, "pyarrow": pa.__version__, "numpy": np.__version__},
    }
    with metrics.timing("write_s"):
        summary["outputs"] = {
            **streamed,
            **{
                f"{name}.parquet": _write_table(store, layout.result_file(name), table, settings)
                for name, table in tables.items()
            },
        }
    metrics.rows_out = max(totals.get("distinct_keys") or 0, *(t.num_rows for t in tables.values()))
    metrics.bytes_in = sum(s.bytes_read for s in opened)
    metrics.requests_in = sum(s.requests for s in opened)
    record = metrics.finish()  # timings stay in the metrics line: a rerun writes the same summary
    started = time.perf_counter()
    store.write_json(layout.SUMMARY, summary)
    record["write_s"] = round(record["write_s"] + time.perf_counter() - started, 4)
    shown = ("rows", "distinct_keys", "value_sum", "checksum")
    record["summary"] = {k: summary.get(k) for k in shown}
    if summary_file:  # a local copy, e.g. for an Argo output parameter
        with open(summary_file, "w") as f:
            json.dump(summary, f, indent=2, sort_keys=True)
    return record


def _add_rows(total: int | None, more: int | None) -> int | None:
    """Input rows behind a file so far; None once any piece does not count them."""
    return None if total is None or more is None else total + more


def _absorb_on_threads(state, *, opened, input_rows, metrics, settings) -> None:
    """Every file on a reader thread of its own, batch by batch, into the shared state (under
    the lock). Decoding and the numpy kernels release the GIL, so two files progress on two
    cores."""
    lock = threading.Lock()

    def consume(rel: str, opened_input: ParquetInput) -> None:
        local = Metrics("final", metrics.level, metrics.index, metrics.op)
        rows: int | None = 0
        for batch in local.timed(opened_input.batches(settings.batch_rows)):
            progress.tick()
            with local.timing("compute_s"):
                piece = state.summarize(batch)
                rows = _add_rows(rows, piece.rows)
                with lock:
                    state.absorb(piece)
        with lock:
            input_rows[rel] = rows
            metrics.read_s += local.read_s
            metrics.compute_s += local.compute_s

    with ThreadPoolExecutor(cpu_threads(min(THREADS, len(opened)))) as pool:
        list(pool.map(consume, opened, opened.values()))


def _stream(store, state, *, by, opened, input_rows, metrics, settings) -> dict[str, dict]:
    """Walk every file in step by `by` and write the state's tables as its steps complete them;
    the sizes and sha256 of what was written, by file name."""
    # The rows in flight stay near budget.FINAL_ROWS (at 32 inputs, 16k rows each). 10M keys
    # at 2 CPUs, fat steps (kernels/align.py): 1M rows in flight 4.6-4.9 s at 379-382 MB,
    # 512k rows 4.0-4.9 s at 305-313 MB (thin steps, 1M rows: 7.1-8.0 s at 315-320 MB): memory
    # is the limit a pod hits, so the margin goes to memory.
    rows = budget.batch_rows(len(opened), settings.batch_rows, budget.FINAL_ROWS)
    streams = [(s.what, metrics.timed(s.batches(rows))) for s in opened.values()]
    written: dict[str, tuple] = {}
    with contextlib.ExitStack() as stack:
        for parts in aligned(streams, by, keep_empty=True):
            progress.tick()
            with metrics.timing("compute_s"):
                tables, rows = state.step(parts)
            for rel, n in zip(opened, rows, strict=True):
                input_rows[rel] = _add_rows(input_rows[rel], n)
            with metrics.timing("write_s"):
                for name, table in tables.items():
                    if name not in written:
                        out = stack.enter_context(
                            store.output(layout.result_file(name), digest=True)
                        )
                        sink = stack.enter_context(_result_sink(out.path, table.schema, settings))
                        written[name] = (out, sink)
                    written[name][1].write(table)
    return {
        f"{name}.parquet": {"bytes": out.size, "sha256": out.sha256}
        for name, (out, _) in written.items()
    }


def _key_range(opened: list[ParquetInput]) -> tuple[int | None, int | None]:
    """The smallest and largest key over all inputs, from their Parquet statistics (no data
    read); (None, None) when any row group lacks them."""
    lo = hi = None
    for one in opened:
        meta = one.file.metadata
        column = one.schema.get_field_index("key")
        if column < 0:
            return None, None
        for i in range(meta.num_row_groups):
            stats = meta.row_group(i).column(column).statistics
            if stats is None or not stats.has_min_max:
                return None, None
            lo = stats.min if lo is None else min(lo, stats.min)
            hi = stats.max if hi is None else max(hi, stats.max)
    return lo, hi


def _result_sink(path: str, schema: pa.Schema, settings: Settings) -> Sink:
    """A result file: sorted by its first column, statistics on every column."""
    return Sink(
        path,
        schema,
        sorted_by=(schema.names[0],),
        row_group_rows=settings.row_group_rows,
        all_statistics=True,
    )


def _write_table(store: Store, rel: str, table: pa.Table, settings: Settings) -> dict:
    """Write one result file; its size and sha256 for the commit marker."""
    with (
        store.output(rel, digest=True) as out,
        _result_sink(out.path, table.schema, settings) as sink,
    ):
        sink.write(table)
    return {"bytes": out.size, "sha256": out.sha256}


def parser(prog: str = "python -m workload.final") -> argparse.ArgumentParser:
    p = command.Parser(
        prog=prog,
        description="Final pod: combine files first..first+count-1 of the deepest level "
        "into result/.",
    )
    p.add_argument(
        "first", type=command.integer("first"), help="first file index (the seed passes 0)"
    )
    p.add_argument("count", type=command.integer("count"), help="how many files to read")
    p.add_argument(
        "--level", type=command.integer("--level"), help="level to read (default: the deepest)"
    )
    p.add_argument("--summary-file", help="also write result/summary.json's content here")
    p.add_argument(
        "--partial",
        action="store_true",
        help="allow first/count to cover only part of the level (the result is partial)",
    )
    command.pod_options(p)
    return p


def main(argv: Sequence[str] | None = None, prog: str = "python -m workload.final") -> int:
    def go() -> None:
        args = parser(prog).parse_args(argv)
        command.folder_exists("--summary-file", args.summary_file)
        settings = command.settings(args)
        log(settings.describe())
        progress.arm(settings.stall_seconds, errors.EXIT_TRANSIENT)
        record = final(
            settings,
            args.first,
            args.count,
            level=args.level,
            summary_file=args.summary_file,
            partial=args.partial,
        )
        emit(record, settings.metrics_file)

    return command.guard(go)


if __name__ == "__main__":
    command.exit_now(main())
