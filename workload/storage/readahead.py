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
READ_AHEAD_BUDGET (two per input), but never below MIN_WINDOW (`window_per_input`): one input
keeps `read_window`, a level pod's two get 24 MiB windows (96 MiB in all: on an 8M-row pair
its peak RSS on S3 went from 297 to 337-347 MB, where 32 MiB windows made it 358-380 MB, while
the pod took half the time; before, one window per input was held and each fetch briefly held
a window twice over), 8 get 6 MiB, the final pod's 32 get 1.5 MiB, and from 48 inputs on each
gets MIN_WINDOW (64 inputs: 128 MiB). The floor was 8 MiB: 1 GiB of windows at fan-in 64. An
input then costs its footer GET and about one GET per window: 2 + ceil(bytes / window).
Windows never reach past a file's end.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import NamedTuple

from .. import progress
from ..errors import TransientError, WorkloadError, classify_storage

# A short body is asked for again this many times in all before the store is declared flaky.
SHORT_READ_ATTEMPTS = 3
FOOTER_READ = 64 * 1024  # Arrow's Parquet reader reads this much from a file's end first
FIRST_WINDOW = 4 * 2**20  # an input's first data window: computing starts once it is in
READ_AHEAD_BUDGET = 96 * 2**20  # all of a pod's windows, two per input (current and next)
MIN_WINDOW = 2**20


def window_per_input(window: int, inputs: int) -> int:
    """The read window of each of `inputs` inputs read at once: `window`, or smaller so that
    two windows per input fit in READ_AHEAD_BUDGET, but not below MIN_WINDOW."""
    return min(window, max(MIN_WINDOW, READ_AHEAD_BUDGET // (2 * max(inputs, 1))))


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


class WindowReader:
    """A read-only file object over ranged fetches, with a read-ahead window.

    Sequential reads (how a Parquet reader walks row groups and column chunks) hit the window;
    each window, once in use, has the next one fetched in the background; a read elsewhere
    fetches `window` bytes from there in one request. A response shorter than asked for is
    asked for again (SHORT_READ_ATTEMPTS in all), then reported as a flaky store. `tail`: bytes
    already read from `tail_start` on (the file's end, from fetch_tail). Counts requests and
    bytes."""

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
        self._buf = memoryview(tail)
        self._buf_start = tail_start
        self._ahead: _Ahead | None = None
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
        self._buf = memoryview(b"")
        self._ahead = None  # its thread ends on its own; nothing waits for it

    def count(self, responses: int, received: int) -> None:
        self.requests += responses
        self.bytes += received

    def prefetch(self, start: int) -> None:
        """Start fetching the window at `start` in the background (an input's first data
        window, asked for when it is opened), unless the window already holds it."""
        with self._lock:
            if self._ahead is None and not self._holds(start) and start < self._size:
                end = min(self._size, start + self._first_window)
                self._ahead = _Ahead(start, end, self._get)

    def read(self, n: int = -1) -> bytes:
        with self._lock:
            end = self._size if n is None or n < 0 else min(self._size, self._pos + n)
            if end <= self._pos:
                return b""
            pieces = []
            pos = self._pos
            while pos < end:
                if self._holds(pos):
                    lo = pos - self._buf_start
                    take = min(end - pos, len(self._buf) - lo)
                    pieces.append(self._buf[lo : lo + take])
                    pos += take
                else:
                    self._move(pos, end)
            self._pos = end
            return bytes(pieces[0]) if len(pieces) == 1 else b"".join(pieces)

    def _holds(self, pos: int) -> bool:
        return 0 <= pos - self._buf_start < len(self._buf)

    def _move(self, pos: int, end: int) -> None:
        """Make the window hold `pos`: the read-ahead window if it starts there, else a fetch
        of `window` bytes (at least up to `end`) from `pos` on."""
        self._buf = memoryview(b"")  # let the old window go before the new one arrives
        ahead, self._ahead = self._ahead, None
        if ahead is not None and ahead.start <= pos < ahead.end:
            self._install(ahead.start, self._take(ahead.result))
            return
        if ahead is not None:  # a read elsewhere: wait for it (bounded memory), drop it
            with contextlib.suppress(WorkloadError):  # its failure matters no more
                self.count(*ahead.result()[1:])
        stop = max(end, min(self._size, pos + self._window))
        self._install(pos, self._take(lambda: self._get(pos, stop)))

    def _take(self, run: Callable[[], tuple[bytes, int, int]]) -> bytes:
        try:
            data, responses, received = run()
        except WorkloadError as exc:
            self.error = exc  # what the Parquet reader's wrapped error really was
            raise
        self.count(responses, received)
        self.error = None
        return data

    def _install(self, start: int, data: bytes) -> None:
        """`data` is the window now; the next one is fetched in the background."""
        self._buf, self._buf_start = memoryview(data), start
        following = start + len(data)
        if following < self._size:
            self._ahead = _Ahead(following, min(self._size, following + self._window), self._get)

    def _get(self, start: int, end: int) -> tuple[bytes, int, int]:
        return _checked(
            self._what,
            lambda: (self._fetch(start, end), end - start),
            f"bytes {start}..{end - 1}",
        )
