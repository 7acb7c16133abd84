"""A read-only file object over ranged GETs, with a read-ahead window.

One GET fetches `read_window` bytes (32 MiB by default), so a Parquet file costs one GET for its
footer plus about one per 32 MiB, and memory per open input stays at one window whatever the
file's size. Every response must hold exactly the bytes asked for.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from .. import progress
from ..errors import TransientError, WorkloadError, classify_storage

# A short body is asked for again this many times in all before the store is declared flaky.
SHORT_READ_ATTEMPTS = 3


class WindowReader:
    """A read-only file object over ranged fetches, with a read-ahead window.

    Sequential reads (how a Parquet reader walks row groups and column chunks) hit the window;
    a miss fetches the next `window` bytes in one request. A response shorter than asked for is
    asked for again (SHORT_READ_ATTEMPTS in all), then reported as a flaky store. Counts
    requests and bytes."""

    def __init__(self, fetch: Callable[[int, int], bytes], size: int, window: int, what: str):
        self._fetch, self._size, self._window, self._what = fetch, size, window, what
        self._pos = 0
        self._buf = memoryview(b"")
        self._buf_start = 0
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

    def read(self, n: int = -1) -> bytes:
        with self._lock:
            end = self._size if n is None or n < 0 else min(self._size, self._pos + n)
            if end <= self._pos:
                return b""
            lo = self._pos - self._buf_start
            if lo >= 0 and end - self._buf_start <= len(self._buf):
                out = bytes(self._buf[lo : lo + end - self._pos])
            else:  # keep what the window already holds; fetch only from its end on
                head = bytes(self._buf[lo:]) if 0 <= lo < len(self._buf) else b""
                start = self._pos + len(head)
                self._load(start, max(end, min(self._size, start + self._window)))
                out = head + bytes(self._buf[: end - start])
            self._pos = end
            return out

    def _load(self, start: int, end: int) -> None:
        self._buf = memoryview(b"")  # let the old window go before the new one arrives
        for attempt in range(1, SHORT_READ_ATTEMPTS + 1):
            progress.tick(self._what)
            try:
                data = self._fetch(start, end)
            except Exception as exc:
                self.error = classify_storage(exc, self._what)
                if not isinstance(self.error, TransientError) or attempt > 1:
                    raise self.error from None
                continue  # the client's own retries are spent: one more request, no more
            self.requests += 1
            self.bytes += len(data)
            if len(data) == end - start:
                self.error = None
                self._buf, self._buf_start = memoryview(data), start
                progress.tick(self._what)
                return
        self.error = TransientError(
            f"short read from {self._what}: asked for bytes {start}..{end - 1}, got "
            f"{len(data)} bytes, {SHORT_READ_ATTEMPTS} times"
        )
        raise self.error
