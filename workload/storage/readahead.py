"""A read-only file object over ranged GETs, with a read-ahead window fetched in the background.

One GET fetches a window (`read_window`, 32 MiB by default), so a Parquet file costs about one
GET per window after its footer. While the reader walks one window, the next one is already
being fetched on a thread of its own: at most one window ahead per input, so an input holds at
most two windows of memory whatever the file's size. Every response must hold exactly the bytes
asked for.

Opening a file costs one request: a suffix range GET of its last FOOTER_READ bytes (what Arrow's
Parquet reader reads first), whose Content-Range gives the object's size and whose ETag tells
its versions apart, so no HEAD is needed (`fetch_tail`). Its first data window, smaller
(FIRST_WINDOW) so that a pod starts computing early, is asked for as soon as the footer is read
(`WindowReader.prefetch`), for every input at once.

Memory: the window shrinks with the number of inputs so that all of a pod's windows fit in
its read budget (the read_budget setting, READ_AHEAD_BUDGET = 64 MiB by default: two windows
per input), but never below MIN_WINDOW (`window_per_input`): one input keeps `read_window`, a
level pod's two get 16 MiB windows, 8 get 4 MiB, and from 32 inputs on each gets MIN_WINDOW.
(Read-ahead itself halved a pod's time on S3; one window per input was held before.) An input
then costs its footer GET and about one GET per window: 2 + ceil(bytes / window).

A Parquet reader reads a row group's column chunks whole out of such a walk, so an input
also holds a row group (2.5 MB for 262,144 events): at fan-in 32 and 64 the merge pod on S3
peaked at 436 and 574 MB (96 MiB budget). When a row group is bigger than the input's part of
one window of the budget (`streams_columns`), the reader streams pages instead and each column
is a walk of its own (`WindowReader.follow_columns`): two windows per column within the same
budget, each column's in proportion to its bytes, whatever the row groups' size. Fan-in 16,
32, 64 on moto: 344-355, 336-350, 382 MB (64 MiB), for about 4x the requests (928 against 224
at fan-in 32, 3,712 against 640 at 64). `project_reads` projects both (budget.py, planner.py);
`workload plan` raises a plan's budget where the requests would break a store's rate.
Windows never reach past a file's end.
"""

from __future__ import annotations

import bisect
import contextlib
import math
import threading
from collections.abc import Callable
from typing import NamedTuple

from .. import progress
from ..errors import TransientError, WorkloadError, classify_storage

# A short body is asked for again this many times in all before the store is declared flaky.
SHORT_READ_ATTEMPTS = 3
FOOTER_READ = 64 * 1024  # Arrow's Parquet reader reads this much from a file's end first
FIRST_WINDOW = 4 * 2**20  # an input's first data window: computing starts once it is in
READ_AHEAD_BUDGET = 64 * 2**20  # all of a pod's windows (the read_budget setting's default)
MIN_WINDOW = 2**20
MIN_COLUMN_WINDOW = 64 * 1024  # a column's window when each column is read on its own


def window_per_input(window: int, inputs: int, budget: int = READ_AHEAD_BUDGET) -> int:
    """The read window of each of `inputs` inputs read at once: `window`, or smaller so that
    two windows per input fit in `budget`, but not below MIN_WINDOW."""
    return min(window, max(MIN_WINDOW, budget // (2 * max(inputs, 1))))


def column_share(window: int, inputs: int, budget: int = READ_AHEAD_BUDGET) -> int:
    """The bytes of one window of every column together, when each of `inputs` inputs reads
    its columns side by side (WindowReader.follow_columns): a window and the one read ahead
    per column all fit in `budget`, with no floor but each column's MIN_COLUMN_WINDOW (here
    the windows are all that an input holds)."""
    return min(window, budget // (2 * max(inputs, 1)))


def _shares(columns: list[list[tuple[int, int]]], share: int) -> list[int]:
    """Each column's window: `share` split in proportion to the columns' bytes, none above its
    largest chunk (what a column cannot use goes to the others), none below MIN_COLUMN_WINDOW
    (or its largest chunk, when smaller). 0 for a column without bytes."""
    sizes = [sum(e - s for s, e in ranges) for ranges in columns]
    caps = [max((e - s for s, e in ranges), default=0) for ranges in columns]
    windows = [0] * len(columns)
    left, open_ = share, [c for c, size in enumerate(sizes) if size]
    while open_:  # a column whose part is more than its largest chunk gets that chunk
        total = sum(sizes[c] for c in open_)
        capped = [c for c in open_ if caps[c] <= left * sizes[c] // total]
        if not capped:
            for c in open_:
                windows[c] = left * sizes[c] // total
            break
        for c in capped:
            windows[c] = caps[c]
            left -= caps[c]
        open_ = [c for c in open_ if c not in capped]
    return [
        max(w, min(MIN_COLUMN_WINDOW, cap)) if cap else 0
        for w, cap in zip(windows, caps, strict=True)
    ]


class Reads(NamedTuple):
    """How an input is read from an object store, projected before it is opened."""

    streamed: bool  # each column a walk of its own (WindowReader.follow_columns)
    held: int  # bytes the input holds at most: its windows, and a row group read whole
    gets: int  # requests, its footer's included (an upper bound when streamed)


def streams_columns(group_bytes: int, share: int) -> bool:
    """Whether an input whose largest row group has `group_bytes` is read a column at a time,
    `share` being its part of one window of the pod's read budget (column_share): when a row
    group read whole is bigger than that, the row groups of all inputs would add more than
    half the budget to the windows. Below it a walk over the file takes fewer requests (a
    level pod at fan-in 8 reading 112 MB files of 3.7 MB row groups: 30 per input, against
    121 a column at a time)."""
    return group_bytes > share


def project_reads(
    *,
    file_bytes: int,
    group_bytes: int,
    columns: int,
    inputs: int,
    window: int,
    budget: int = READ_AHEAD_BUDGET,
) -> Reads:
    """What reading a file of `file_bytes` in row groups of `group_bytes` costs, as one of
    `inputs` inputs read at once with the `window` and `budget` settings."""
    share = column_share(window, inputs, budget)
    if not streams_columns(group_bytes, share):
        per_input = window_per_input(window, inputs, budget)
        held = min(2 * per_input, file_bytes) + group_bytes
        return Reads(False, held, 2 + math.ceil(file_bytes / per_input))
    groups = math.ceil(file_bytes / max(group_bytes, 1))
    # each column's window is its part of the share or, at most, the floor: within both
    held = 2 * (min(share, group_bytes) + columns * min(MIN_COLUMN_WINDOW, group_bytes))
    return Reads(True, held, 1 + groups * columns * math.ceil(group_bytes / share))


class Tail(NamedTuple):
    """The last bytes of an object, from one suffix range GET: `data` starts at `start`."""

    data: bytes
    start: int
    size: int  # the object's size (Content-Range)
    etag: str


def _checked(
    what: str, attempt: Callable[[], tuple[bytes, int]], asked: str, bucket: str | None = None
) -> tuple[bytes, int, int]:
    """Run `attempt` (a request: the body and the length it must have) until a body of the
    right length comes: a short body is asked for again (SHORT_READ_ATTEMPTS in all), a failed
    request once more if the failure is transient. The body, the responses and their bytes."""
    responses = received = 0
    data = b""
    for number in range(1, SHORT_READ_ATTEMPTS + 1):
        progress.tick(what)
        try:
            data, expected = attempt()
        except Exception as exc:
            error = classify_storage(exc, what, bucket=bucket)
            if not isinstance(error, TransientError) or number > 1:
                raise error from None
            continue  # the client's own retries are spent: one more request, no more
        responses += 1
        received += len(data)
        if len(data) == expected:
            progress.tick(what)
            return data, responses, received
    raise TransientError(
        f"short read from {what}: asked for {asked}, got {len(data)} bytes, "
        f"{SHORT_READ_ATTEMPTS} times"
    )


def fetch_tail(
    tail: Callable[[int], Tail | None],
    what: str,
    *,
    bucket: str | None = None,
    length: int = FOOTER_READ,
) -> tuple[Tail | None, int, int]:
    """The last `length` bytes of an object (all of a smaller one), checked like any window:
    (the tail or None when the store answered without a Content-Range, responses, bytes)."""
    last: list[Tail | None] = [None]

    def attempt() -> tuple[bytes, int]:
        last[0] = got = tail(length)
        return (b"", 0) if got is None else (got.data, got.size - got.start)

    _, responses, received = _checked(what, attempt, f"its last {length} bytes", bucket)
    return last[0], responses, received


class _Ahead:
    """One window fetched on a thread of its own."""

    def __init__(self, start: int, end: int, run: Callable[[int, int], tuple[bytes, int, int]]):
        self.start, self.end = start, end
        self._run = run
        self._result: tuple[bytes, int, int] | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._go, name="read-ahead", daemon=True)
        self._thread.start()

    def _go(self) -> None:
        try:
            self._result = self._run(self.start, self.end)
        except BaseException as exc:  # re-raised in the reader's thread
            self._error = exc

    def result(self) -> tuple[bytes, int, int]:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result


class _Stream:
    """One sequential walk over `extents` (sorted byte ranges): the window in use and the
    next one, fetched in the background. A window never crosses an extent's end."""

    def __init__(self, extents: list[tuple[int, int]], window: int):
        self.extents, self.window = extents, window
        self._starts = [start for start, _ in extents]
        self.buf = memoryview(b"")
        self.start = 0
        self.ahead: _Ahead | None = None

    def holds(self, pos: int) -> bool:
        return 0 <= pos - self.start < len(self.buf)

    def span(self, pos: int) -> int:
        """The end of a window that starts at `pos`."""
        i = bisect.bisect_right(self._starts, pos) - 1
        end = self.extents[i][1] if i >= 0 and pos < self.extents[i][1] else pos + self.window
        return min(end, pos + self.window)

    def following(self, end: int) -> int | None:
        """Where the window after one that ends at `end` starts (None: the walk is over)."""
        i = bisect.bisect_right(self._starts, end) - 1
        if i >= 0 and end < self.extents[i][1]:
            return end
        return self._starts[i + 1] if i + 1 < len(self._starts) else None


class WindowReader:
    """A read-only file object over ranged fetches, with read-ahead windows.

    Sequential reads (how a Parquet reader walks row groups and column chunks) hit the window;
    each window, once in use, has the next one fetched in the background; a read elsewhere
    fetches `window` bytes from there in one request. After `follow_columns` each column's
    chunks are a walk of their own (a read goes to the walk of the chunk that holds it). A
    response shorter than asked for is asked for again (SHORT_READ_ATTEMPTS in all), then
    reported as a flaky store. `tail`: bytes already read from `tail_start` on (the file's end,
    from fetch_tail). Counts requests and bytes."""

    def __init__(
        self,
        fetch: Callable[[int, int], bytes],
        size: int,
        window: int,
        what: str,
        *,
        first_window: int | None = None,
        tail: bytes = b"",
        tail_start: int = 0,
    ):
        self._fetch, self._size, self._window, self._what = fetch, size, window, what
        self._first_window = min(window, first_window or window)
        self._pos = 0
        self._file = _Stream([(0, size)], window)  # every read outside the column walks
        self._file.buf, self._file.start = memoryview(tail), tail_start
        self._columns: list[_Stream] = []
        self._chunk_starts: list[int] = []  # every column chunk, by offset: (end, its walk)
        self._chunks: list[tuple[int, _Stream]] = []
        self._lock = threading.Lock()
        self.requests = 0
        self.bytes = 0
        self.error: WorkloadError | None = None
        self.closed = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def size(self) -> int:
        return self._size

    def close(self) -> None:
        self.closed = True
        for stream in (self._file, *self._columns):
            stream.buf = memoryview(b"")
            stream.ahead = None  # its thread ends on its own; nothing waits for it

    def count(self, responses: int, received: int) -> None:
        self.requests += responses
        self.bytes += received

    def prefetch(self, start: int) -> None:
        """Start fetching the window at `start` in the background (an input's first data
        window, asked for when it is opened), unless the window already holds it."""
        with self._lock:
            stream = self._file
            if stream.ahead is None and not stream.holds(start) and start < self._size:
                end = min(self._size, start + self._first_window)
                stream.ahead = _Ahead(start, end, self._get)

    def follow_columns(self, columns: list[list[tuple[int, int]]], share: int) -> None:
        """Read each column's chunks (`columns[c]`: their byte ranges, row group by row group)
        as a walk of its own and start fetching each column's first window. A Parquet reader
        that streams pages reads its columns' chunks side by side: one walk over the file
        would fetch the same bytes again at every change of column; one walk per column holds
        two windows per column, whatever the row groups. The columns' windows add up to
        `share`, each column's in proportion to its bytes (so each takes about as many
        requests), none below MIN_COLUMN_WINDOW."""
        with self._lock:
            windows = _shares(columns, share)
            self._columns = [
                _Stream(sorted(ranges), window)
                for ranges, window in zip(columns, windows, strict=True)
                if window
            ]
            chunks = sorted((s, e, w) for w in self._columns for s, e in w.extents if e > s)
            self._chunk_starts = [s for s, _, _ in chunks]
            self._chunks = [(e, w) for _, e, w in chunks]
            for stream in self._columns:
                start = stream.extents[0][0]
                stream.ahead = _Ahead(start, stream.span(start), self._get)

    def read(self, n: int = -1) -> bytes:
        with self._lock:
            end = self._size if n is None or n < 0 else min(self._size, self._pos + n)
            if end <= self._pos:
                return b""
            pieces = []
            pos = self._pos
            while pos < end:
                stream = self._walk(pos)
                if stream.holds(pos):
                    lo = pos - stream.start
                    take = min(end - pos, len(stream.buf) - lo)
                    pieces.append(stream.buf[lo : lo + take])
                    pos += take
                else:
                    self._move(stream, pos, end)
            self._pos = end
            return bytes(pieces[0]) if len(pieces) == 1 else b"".join(pieces)

    def _walk(self, pos: int) -> _Stream:
        """The walk that reads `pos`: its column's, or the file's."""
        i = bisect.bisect_right(self._chunk_starts, pos) - 1
        if i >= 0 and pos < self._chunks[i][0]:
            return self._chunks[i][1]
        return self._file

    def _move(self, stream: _Stream, pos: int, end: int) -> None:
        """Make `stream`'s window hold `pos`: the window read ahead if it starts there, else
        a fetch of a window (at least up to `end`) from `pos` on."""
        stream.buf = memoryview(b"")  # let the old window go before the new one arrives
        ahead, stream.ahead = stream.ahead, None
        if ahead is not None and ahead.start <= pos < ahead.end:
            self._install(stream, ahead.start, self._take(ahead.result))
            return
        if ahead is not None:  # a read elsewhere: wait for it (bounded memory), drop it
            with contextlib.suppress(WorkloadError):  # its failure matters no more
                self.count(*ahead.result()[1:])
        stop = min(self._size, max(end, stream.span(pos)))
        self._install(stream, pos, self._take(lambda: self._get(pos, stop)))

    def _take(self, run: Callable[[], tuple[bytes, int, int]]) -> bytes:
        try:
            data, responses, received = run()
        except WorkloadError as exc:
            self.error = exc  # what the Parquet reader's wrapped error really was
            raise
        self.count(responses, received)
        self.error = None
        return data

    def _install(self, stream: _Stream, start: int, data: bytes) -> None:
        """`data` is the stream's window now; its next one is fetched in the background."""
        stream.buf, stream.start = memoryview(data), start
        following = stream.following(start + len(data))
        if following is not None and following < self._size:
            end = min(self._size, stream.span(following))
            stream.ahead = _Ahead(following, end, self._get)

    def _get(self, start: int, end: int) -> tuple[bytes, int, int]:
        return _checked(
            self._what,
            lambda: (self._fetch(start, end), end - start),
            f"bytes {start}..{end - 1}",
        )
