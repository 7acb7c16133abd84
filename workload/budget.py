"""What a pod holds in memory at once, chosen from its fan-in before it reads a byte.

A pod walks its k inputs in step (kernels/align.py): each input holds one or two batches, and a
step holds about one batch from each, so the rows in flight are about k times the batch. The
batch therefore shrinks as the fan-in grows, keeping the rows in flight (and the step's merge,
gather and encode buffers, which follow them) near a constant: LEVEL_ROWS for a level pod,
FINAL_ROWS for the final pod when it streams by key. Read windows on object stores shrink the
same way (storage.readahead.window_per_input).

Merge pod, 1M-row local inputs, peak RSS (batch 65,536 at every fan-in before; now from here):
fan-in 2: 174 -> 176 MB, 8: 274 -> 238 MB, 16: 397 -> 230 MB, 32: 660 -> 229 MB, 64: 986 ->
246 MB; the time per row stays flat (0.13-0.19 us) because a step is fat at any fan-in.
"""

from __future__ import annotations

LEVEL_ROWS = 1 << 18  # rows in flight in a level pod, all inputs together
FINAL_ROWS = 1 << 19  # the final pod's, when it streams by key (its steps are summarized)
# Smaller batches cost time per row (fan-in 64, 64M rows: 12.4 s at 4,096 rows each, 10.4 s at
# 8,192, for 246 vs 316 MB); past this floor the rows in flight grow with the fan-in again.
MIN_BATCH_ROWS = 4096


def batch_rows(inputs: int, most: int, rows_in_flight: int = LEVEL_ROWS) -> int:
    """Rows per batch for each of `inputs` inputs read at once: `most` (the batch_rows
    setting), or fewer so that all inputs together hold about `rows_in_flight`, but not below
    MIN_BATCH_ROWS (nor above `most`)."""
    share = rows_in_flight // max(inputs, 1)
    return max(min(MIN_BATCH_ROWS, most), min(most, share))


# -- the projected peak (cubed's projected memory; `workload plan` checks it before a run) -----
# Calibrated on the merge pod over 1M-row event inputs (1 CPU, VmHWM, fresh processes): local
# fan-in 2/8/16/32/64 measured 176/238/230/229/246 MB, projected 198/238/239/242/249 MB.
BASE_MB = 160.0  # interpreter, pyarrow, numpy, workload; the Sink's row group and encoder
OBJECT_STORE_MB = 57.0  # s3fs or ossfs, aiobotocore, their session (233 vs 176 MB at fan-in 2)
ROW_COPIES = 10.0  # bytes held per row in flight, as decoded row widths: batches, the step's
# concatenation, packed keys and order, the gathered output and the writer's queue
READER_MB = 0.2  # a Parquet reader that streams: a page per column through a 64 KiB buffer
DENSE_SLOT_BYTES = 65  # the final pod's dense slots per key (ops.aggregate.ByKey)


def row_width(schema) -> int:
    """Bytes a decoded row takes in Arrow: fixed widths, dictionary indices, 16 for the rest."""
    import pyarrow as pa

    width = 0
    for f in schema:
        t = f.type.index_type if pa.types.is_dictionary(f.type) else f.type
        width += t.bit_width // 8 if getattr(t, "bit_width", 0) >= 8 else 16
        width += 1 if f.nullable else 0  # a validity bit, rounded up generously
    return width


def input_reads(*, fan_in: int, columns: int, file_bytes: int, file_rows: int, settings=None):
    """How each of `fan_in` inputs of `columns` columns is read from an object store, with
    `settings`' row group, read window and read budget: storage.readahead.project_reads (its
    memory is project()'s; its requests, the planner's)."""
    from .settings import Settings
    from .storage.readahead import project_reads

    s = settings or Settings()
    return project_reads(
        file_bytes=file_bytes,
        group_bytes=int(file_bytes * min(1.0, s.row_group_rows / max(file_rows, 1))),
        columns=columns,
        inputs=fan_in,
        window=s.read_window,
        budget=s.read_budget,
    )


def project(
    *,
    fan_in: int,
    row_bytes: int,
    columns: int,
    file_bytes: int,
    file_rows: int,
    object_store: bool,
    settings=None,
    final: bool = False,
    keys: int | None = None,
    threads: int = 1,
) -> dict[str, float]:
    """A pod's projected peak RSS in MB, by what holds it (`sum(...)` is the total): a level pod
    reading `fan_in` files of `columns` columns, or the final pod (`final`) over `keys`
    distinct keys (None: unknown, the worst of the dense and the streaming path), with
    `settings`' batch, row group and read window (workload.settings.Settings; its defaults
    when None)."""
    from .ops.aggregate import ByKey
    from .settings import Settings

    s = settings or Settings()
    mb = 1e-6
    parts = {"base": BASE_MB + (OBJECT_STORE_MB if object_store else 0.0)}
    if final:
        dense_keys = ByKey.MAX_SLOTS if keys is None else keys
        dense = dense_keys * DENSE_SLOT_BYTES * mb if dense_keys <= ByKey.MAX_SLOTS else 0.0
        dense += threads * s.batch_rows * row_bytes * ROW_COPIES * mb
        streaming = 0.0
        if keys is None or keys > ByKey.MAX_SLOTS:
            rows = fan_in * batch_rows(fan_in, s.batch_rows, FINAL_ROWS)
            streaming = rows * row_bytes * ROW_COPIES * mb
        parts["state and rows in flight"] = max(dense, streaming)
    else:
        rows = fan_in * batch_rows(fan_in, s.batch_rows)
        parts["rows in flight"] = rows * row_bytes * ROW_COPIES * mb
    if object_store:
        reads = input_reads(
            fan_in=fan_in, columns=columns, file_bytes=file_bytes, file_rows=file_rows, settings=s
        )
        held = reads.held * mb + (columns * READER_MB / 4 if reads.streamed else 0.0)
        parts["read windows and row groups"] = fan_in * held
    else:
        parts["readers"] = fan_in * READER_MB
    return parts
