"""The level pod: `python -m workload.process <file_number> <level>`.

Level-L pod i reads l{L}/{k*i} .. l{L}/{k*i+k-1} and writes l{L+1}/{i}.parquet, streaming: its
memory is about one batch per input plus one output row group, whatever the file sizes. What it
does to the rows is the op's (workload/ops): merge keeps every event, sorted by (key, ts);
aggregate keeps partials per (key, category). Before it publishes, the pod checks that what it
wrote adds up to what it read (the op's conserved quantities, and the file's own row count).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence

import pyarrow.parquet as pq

from . import budget, command, errors, layout, ops, progress
from .errors import InternalError, UsageError
from .inputs import check_no_extra_input, input_files, open_inputs, read_manifest
from .kernels.align import aligned
from .kernels.categories import Categories
from .metrics import Metrics, emit, log
from .settings import Settings
from .storage import reread_once
from .storage.parquet import Sink

MASK64 = 0xFFFFFFFFFFFFFFFF


def process(
    settings: Settings, file_number: int, level: int, *, level_pods: int | None = None
) -> dict:
    """Level-`level` pod `file_number`; its metrics record. An input whose bytes do not check
    out is read once more before the pod fails (storage.reread_once). `level_pods`: the pods
    the workflow started at this level, which must be what the input gives (UsageError)."""
    layout.check_positive("level", level, minimum=1)
    layout.check_positive("file_number", file_number, minimum=0)
    return reread_once(lambda: _process(settings, file_number, level, level_pods))


def _process(settings: Settings, file_number: int, level: int, level_pods: int | None) -> dict:
    op = ops.get(settings.op)
    store = settings.store()
    manifest = read_manifest(store)
    input_count = input_files(store, manifest)
    files = layout.files_at(level, input_count, settings.fan_in)
    if level_pods is not None and level_pods != layout.pods(files, settings.fan_in):
        # A workflow wider or narrower than its input (`-p numbers`) would change the tree:
        # every pod of the level stops at once, before any work, and is not retried.
        raise UsageError(
            f"--level-pods {level_pods}: level {level} holds {files} files, so "
            f"{layout.pods(files, settings.fan_in)} pods at fan-in {settings.fan_in} "
            f"(from {input_count} input files); render the workflow for this input"
        )
    rels = layout.inputs(level, file_number, files, settings.fan_in)
    last_pod = file_number == layout.pods(files, settings.fan_in) - 1
    if level == 1 and manifest is not None and last_pod:
        check_no_extra_input(store, input_count)
    out_rel = layout.level_file(level + 1, file_number)
    metrics = Metrics("process", level, file_number, op.name, inputs=rels, output=out_rel)

    with metrics.timing("read_s"):
        opened = open_inputs(store, rels, op.schema(level), settings)
    cats = Categories()
    rows = budget.batch_rows(len(opened), settings.batch_rows)  # fewer, the more inputs
    streams = [(s.what, metrics.timed(s.batches(rows))) for s in opened]
    conserved: dict[str, list[int]] = {}  # name -> [in, out], added up as the pod goes

    with store.output(out_rel) as out:
        with Sink(
            out.path,
            op.schema(level + 1),
            sorted_by=op.sorted_by(level + 1),
            row_group_rows=settings.row_group_rows,
        ) as sink:
            for combine, work, rows in _work(op, streams, level, settings.batch_rows):
                with metrics.timing("compute_s"):
                    metrics.rows_in += rows
                    step = combine(work, level, cats)
                    for name, (into, outof) in step.conserved.items():
                        total = conserved.setdefault(name, [0, 0])
                        total[0] = (total[0] + into) & MASK64
                        total[1] = (total[1] + outof) & MASK64
                with metrics.timing("write_s"):
                    sink.write(step.table)
        metrics.rows_out = sink.rows
        written = pq.read_metadata(out.path).num_rows
        broken = {k: v for k, v in conserved.items() if v[0] != v[1]}
        if broken or written != sink.rows:
            raise InternalError(
                f"{store.describe(out_rel)} would not add up to its inputs: "
                + ", ".join(f"{k} {v[0]} in, {v[1]} out" for k, v in broken.items())
                + f"; {sink.rows} rows written, {written} in the file"
            )
        metrics.bytes_out = os.path.getsize(out.path)
        commit = time.perf_counter()
    metrics.write_s += time.perf_counter() - commit  # the rename or upload
    metrics.bytes_in = sum(s.bytes_read for s in opened)
    metrics.requests_in = sum(s.requests for s in opened)
    return metrics.finish()


def _work(op, streams, level: int, group_rows: int):
    """What the pod combines, as (combine, its argument, input rows): one aligned step at a
    time, or, for an op with combine_steps (the same output as combining the steps one by one),
    runs of consecutive steps of at least `group_rows` rows (a batch). A 2 x 1M merge pod walks
    33 steps that alternate between about 130k rows and a few hundred (an input keeps the rows
    equal to the bound for the next step), and each combine cost about 0.5 ms of calls on caches
    the Parquet decoder and encoder had just flushed: in groups, 16 calls, 57 -> 47 ms of merge
    (CPU, 1 core; groups of 262k rows: 51 ms, their arrays no longer fit the caches)."""
    by = op.aligned_by(level)
    combine_steps = getattr(op, "combine_steps", None)
    if combine_steps is None:
        for parts in aligned(streams, by):
            progress.tick()
            yield op.combine, parts, sum(p.num_rows for p in parts)
        return
    group: list[list] = []
    rows = 0
    for parts in aligned(streams, by, keep_empty=True):
        progress.tick()
        group.append(parts)
        rows += sum(p.num_rows for p in parts if p is not None)
        if rows >= group_rows:
            yield combine_steps, group, rows
            group, rows = [], 0
    if group:
        yield combine_steps, group, rows


def parser(prog: str = "python -m workload.process") -> argparse.ArgumentParser:
    p = command.Parser(
        prog=prog,
        description="Level pod: combine fan-in files of level L into one file of level L+1.",
    )
    p.add_argument(
        "file_number",
        nargs="?",
        help="pod index within its level (default: $AWS_BATCH_JOB_ARRAY_INDEX, for array jobs)",
    )
    p.add_argument("level", nargs="?", help="level to read (1 reads the input files)")
    p.add_argument(
        "--level-pods",
        type=command.integer("--level-pods", 1),
        help="pods the workflow runs at this level: refused (exit 2) unless the input gives it",
    )
    command.pod_options(p)
    return p


def _numbers(args: argparse.Namespace) -> tuple[int, int]:
    # Batch Compute array jobs pass the index in the environment: `process.py <level>` is valid.
    if args.level is None:
        index = os.environ.get("AWS_BATCH_JOB_ARRAY_INDEX")
        if args.file_number is None or index is None:
            raise UsageError(
                "usage: process <file_number> <level> (file_number may come from "
                "AWS_BATCH_JOB_ARRAY_INDEX)"
            )
        args.file_number, args.level = index, args.file_number
    return command.integer("file_number")(args.file_number), command.integer("level")(args.level)


def main(argv: Sequence[str] | None = None, prog: str = "python -m workload.process") -> int:
    def go() -> None:
        args = parser(prog).parse_args(argv)
        file_number, level = _numbers(args)
        settings = command.settings(args)
        log(settings.describe())
        progress.arm(settings.stall_seconds, errors.EXIT_TRANSIENT)
        record = process(settings, file_number, level, level_pods=args.level_pods)
        emit(record, settings.metrics_file)

    return command.guard(go)


if __name__ == "__main__":
    command.exit_now(main())
