"""Uploads that overlap the computing: an output is uploaded in parts while it is written.

A pod writes its output to a local spool file (storage.Store.output); a tailer thread watches
that file grow and, whenever a whole part of new bytes is on disk, reads it and uploads it as
the next part of a multipart upload, while the pod goes on computing. When the pod's block ends,
the rest of the file is uploaded as the last part and the upload is completed: the object
appears under its name only then, whole (S3 and OSS show no part of an incomplete multipart
upload). An output smaller than one part is one PUT at the end, as before. On failure the
multipart upload is aborted (a dead writer's is aborted by the next writer of the same output,
storage.Store._abort_stale_uploads, or by the bucket's lifecycle rule).

The tailer reads only bytes the file already holds (its size on disk), so the writer must write
the file sequentially and never rewrite what it wrote: every writer of the tree does (Parquet
files are written front to back, the footer last, and JSON in one write). Parts are PART_SIZE,
S3's minimum for every part but the last (5 MiB: what is left to upload once the pod is done is
at most one part, about 65 ms at 80 MB/s; 8 MiB parts left more and measured no better), doubling
every 900 parts so that S3's and OSS's 10,000 parts hold S3's largest object (5 TiB); at most
IN_FLIGHT parts are in memory and on the wire at once. The sha256 of the output is taken from
the same bytes as they are uploaded, in order.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from typing import Protocol

from .. import progress

PART_SIZE = 5 * 2**20
IN_FLIGHT = 2
POLL_SECONDS = 0.02  # how often the tailer looks at the spool file's size
ABORT_WAIT = 10.0  # seconds an abort waits for the parts in flight


def part_size(number: int, first: int = PART_SIZE) -> int:
    """The size of part `number` (1-based): `first`, doubled every 900 parts up to 1024 times
    `first` (S3: at most 10,000 parts of at most 5 GiB, objects up to 5 TiB)."""
    return first << min(10, (number - 1) // 900)


class Parts(Protocol):
    """One object's upload requests (storage.s3.Parts, storage.oss.Parts)."""

    def put(self, data: bytes) -> None: ...  # the whole object, one request

    def create(self) -> None: ...  # start a multipart upload

    def upload(self, number: int, data: bytes) -> str: ...  # one part; its ETag

    def complete(self, etags: list[str]) -> None: ...  # parts 1..n, in order

    def abort(self) -> None: ...


class StreamingUpload:
    """Upload the file at `path`, which is being written, through `parts`; `finish()` once it
    is complete, `abort()` if it never will be or if finish() failed (`done` is False)."""

    def __init__(self, parts: Parts, path: str, what: str, *, digest: bool, first_part=PART_SIZE):
        self._parts, self._path, self._what = parts, path, what
        self._first_part = first_part
        self._digest = hashlib.sha256() if digest else None
        self._closing = threading.Event()  # the file is complete (or will never be)
        self._aborting = False
        self._slots = threading.Semaphore(IN_FLIGHT)
        self._senders: list[threading.Thread] = []
        self._etags: dict[int, str] = {}
        self._error: BaseException | None = None
        self._started = False  # a multipart upload exists
        self._expected: int | None = None
        self.size = 0
        self.done = False
        self._thread = threading.Thread(target=self._tail, name="upload", daemon=True)

    def start(self) -> StreamingUpload:
        self._thread.start()
        return self

    def finish(self, size: int | None = None) -> tuple[int, str]:
        """Upload the rest and complete; (bytes uploaded, their sha256 or ""). `size`: what the
        complete file holds; anything else is not completed (the file changed behind us)."""
        self._expected = size
        self._closing.set()
        self._thread.join()
        if self._error is not None:
            raise self._error  # not done: the caller aborts
        self.done = True
        return self.size, self._digest.hexdigest() if self._digest else ""

    def abort(self) -> None:
        """Stop, let the parts in flight end (for ABORT_WAIT seconds at most: the failure that
        led here may be a store that stopped answering), abort the multipart upload (errors
        ignored: the failure that led here is the one to report; leftovers are cleaned up by
        the next writer or the bucket's lifecycle rule)."""
        self._aborting = True
        self._closing.set()
        self._thread.join(ABORT_WAIT)
        self.done = True
        if self._started:
            with contextlib.suppress(Exception):
                self._parts.abort()

    # -- the tailer thread --------------------------------------------------------------------
    def _tail(self) -> None:
        try:
            with open(self._path, "rb") as f:
                number = 1
                while True:
                    closing = self._closing.is_set()  # before the size: then it is final
                    on_disk = os.fstat(f.fileno()).st_size
                    while on_disk - self.size >= part_size(number, self._first_part):
                        if self._stopped():
                            break
                        self._send(number, f, part_size(number, self._first_part))
                        number += 1
                    if self._stopped():
                        break
                    if closing:
                        self._last(number, f, on_disk)
                        return
                    self._closing.wait(POLL_SECONDS)
        except BaseException as exc:  # re-raised by finish()
            self._fail(exc)
        finally:
            for sender in self._senders:
                sender.join()

    def _stopped(self) -> bool:
        return self._aborting or self._error is not None

    def _read(self, f, n: int) -> bytes:
        data = f.read(n)
        if len(data) != n:
            raise OSError(f"{self._path} shrank while it was uploaded")
        if self._digest is not None:
            self._digest.update(data)
        self.size += n
        return data

    def _send(self, number: int, f, n: int) -> None:
        """Read the next `n` bytes and upload them as part `number` on a thread of its own,
        once fewer than IN_FLIGHT parts are: a part is read only when it can go."""
        if not self._started:
            self._parts.create()
            self._started = True
            progress.tick(self._what)
        self._slots.acquire()
        try:
            data = self._read(f, n)
        except BaseException:
            self._slots.release()
            raise
        sender = threading.Thread(
            target=self._upload, args=(number, data), name="upload-part", daemon=True
        )
        self._senders.append(sender)
        sender.start()

    def _upload(self, number: int, data: bytes) -> None:
        try:
            if not self._stopped():
                self._etags[number] = self._parts.upload(number, data)
                progress.tick(self._what)
        except BaseException as exc:
            self._fail(exc)
        finally:
            self._slots.release()

    def _last(self, number: int, f, on_disk: int) -> None:
        """The file is complete at `on_disk` bytes: the rest, then the completion."""
        if self._expected is not None and on_disk != self._expected:
            raise OSError(
                f"{self._path} holds {self._expected} bytes, {on_disk} on disk for the upload: "
                "it was not written front to back"
            )
        rest = on_disk - self.size
        if not self._started:
            self._parts.put(self._read(f, rest))  # smaller than a part: one PUT
            progress.tick(self._what)
            return
        if rest:
            self._send(number, f, rest)
            number += 1
        for sender in self._senders:
            sender.join()
        if self._stopped():
            return
        self._parts.complete([self._etags[n] for n in range(1, number)])
        progress.tick(self._what)

    def _fail(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc
