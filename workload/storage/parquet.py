"""Parquet in and out: an opened input whose failures are classified, and the Sink every file of
the tree is written through (uniform row groups, page checksums, encoding on its own thread)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from .. import progress
from ..errors import DamagedInput, DataError, TransientError, WorkloadError, classify_storage
from ..workers import cpu_limit
from .readahead import WindowReader


class ParquetInput:
    """One open Parquet input: its schema, row count, and a batch stream that classifies
    failures (a storage failure as the store's, a page that does not check out as damage)."""

    def __init__(self, file, what: str, reader: WindowReader | None, size: int, identity: tuple):
        self.file, self.what, self._reader, self.size = file, what, reader, size
        self.identity = identity
        self.schema = file.schema_arrow
        self.rows = file.metadata.num_rows

    @property
    def requests(self) -> int:
        return self._reader.requests if self._reader else 0

    @property
    def bytes_read(self) -> int:
        return self._reader.bytes if self._reader else self.size

    def batches(self, batch_rows: int) -> Iterator[pa.RecordBatch]:
        rows = 0
        try:
            for batch in self.file.iter_batches(batch_size=batch_rows, use_threads=False):
                rows += batch.num_rows
                if batch.num_rows:
                    yield batch
        except (pa.ArrowException, OSError) as exc:
            if self._reader is not None and self._reader.error is not None:
                raise self._reader.error from None
            raise damaged(self.what, self.identity, exc) from None
        if rows != self.rows:
            raise DamagedInput(
                f"{self.what} is damaged: its footer promises {self.rows} rows, its pages "
                f"hold {rows}",
                self.what,
                self.identity,
            )


def damaged(what: str, identity: tuple, exc: BaseException) -> WorkloadError:
    """A read that failed inside the Parquet reader: an OS-level failure keeps its class; any
    other failure means the bytes did not check out (page CRC, footer, decoding)."""
    if isinstance(exc, OSError) and isinstance(exc.errno, int):
        return classify_storage(exc, what)
    kind = type(exc).__name__
    return DamagedInput(
        f"{what} is not a readable Parquet file (damaged or truncated: {kind})", what, identity
    )


def reread_once(pod: Callable[[], Any]) -> Any:
    """Run a pod's body; when an input's bytes do not check out, run it once more.

    The first failure may be a bad transfer (a proxy or a flaky link that damaged bytes in
    flight); a second failure of the same input, unchanged, is damaged data (66). A changed
    object is a race with its writer (75)."""
    from ..metrics import log

    try:
        return pod()
    except DamagedInput as first:
        log(f"warning: {first}; reading again once")
        try:
            return pod()
        except DamagedInput as second:
            if second.what == first.what and second.identity != first.identity:
                raise TransientError(f"{second.what} changed while it was read") from None
            raise DataError(str(second)) from None


class Sink:
    """Writes tables into row groups of exactly `row_group_rows` rows (the last one shorter),
    whatever sizes the stream comes in: uniform row groups make reads predictable.

    With two CPUs or more, encoding and compression run on a background thread (they release
    the GIL), so a pod computes the next chunk while the previous one is written. One chunk
    waits in the queue at most, which bounds the memory this costs (with two, a lagging writer
    let a pod's peak RSS vary by 20%). With one CPU (workers.cpu_limit: affinity or the cgroup's
    quota) the caller's thread writes: a thread there only adds switching, and its row groups
    lie in memory longer. `threaded` overrides the choice. Either way the same write_table
    calls make the same bytes."""

    def __init__(
        self,
        path: str,
        schema: pa.Schema,
        *,
        sorted_by: tuple[str, ...],
        row_group_rows: int,
        all_statistics: bool = False,
        threaded: bool | None = None,
    ):
        self._writer = writer(path, schema, sorted_by, all_statistics=all_statistics)
        self._schema, self._size = schema, row_group_rows
        self._pending: list[pa.Table] = []
        self._rows = 0
        self.rows = 0
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        if threaded is None:
            threaded = cpu_limit() > 1
        if threaded:
            self._queue: queue.Queue[pa.Table | None] = queue.Queue(maxsize=1)
            self._thread = threading.Thread(target=self._drain, name="parquet-writer", daemon=True)
            self._thread.start()

    def _write(self, table: pa.Table) -> None:
        self._writer.write_table(table, row_group_size=self._size)
        progress.tick()

    def _drain(self) -> None:
        while (table := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._write(table)
                except BaseException as exc:  # re-raised in the caller's thread
                    self._error = exc

    def _put(self, table: pa.Table) -> None:
        if self._error is not None:
            raise self._error
        if self._thread is None:
            self._write(table)
        else:
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
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def close(self) -> None:
        try:
            if self._pending:
                self._flush(final=True)
            elif self.rows == 0:
                self._put(self._schema.empty_table())
        except BaseException:  # a write in this thread failed: close, as __exit__ would
            self._stop()
            self._writer.close()
            raise
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


def writer(
    sink, schema: pa.Schema, sorted_by: tuple[str, ...], *, all_statistics: bool = False
) -> pq.ParquetWriter:
    """A ParquetWriter with the settings every file of the tree uses.

    Dictionary encoding only for `category`: a hash dictionary on the numeric columns costs about
    half the write time and buys nothing on near-unique keys and timestamps. The signed integer
    and timestamp columns are delta-encoded instead: keys and timestamps are sorted runs, so the
    deltas are small and zstd has little left to do (measured on 2M events: write 0.12 s vs
    0.18 s plain, read 0.025 s vs 0.041 s, 18.8 MB vs 22.9 MB); unsigned columns are hashes.

    Statistics: the leading sort column only for the tree's files (the final pod reads the key
    range from them), every column for result files (`all_statistics`).

    Every page carries a CRC-32 that every read of the tree verifies (storage.open_parquet): a
    byte flipped on a disk, a NAS or in flight is an error naming the file, never a different
    result (before, 17 of 40 random 16-byte overwrites of an input changed the result silently).
    Writing them costs about 12% of the write time (0.162 -> 0.182 s per 2M events, median of
    5 alternating runs); verifying them no measurable read time.
    """
    names = schema.names
    sorting = [pq.SortingColumn(names.index(c)) for c in sorted_by if c in names]
    delta = {
        f.name: "DELTA_BINARY_PACKED"
        for f in schema
        if pa.types.is_signed_integer(f.type) or pa.types.is_timestamp(f.type)
    }
    return pq.ParquetWriter(
        sink,
        schema,
        compression="zstd",
        column_encoding=delta or None,
        use_dictionary=[c for c in ("category",) if c in names],
        sorting_columns=sorting or None,
        write_page_checksum=True,
        write_statistics=True if all_statistics else list(sorted_by[:1]),
    )
