"""The streaming upload: parts go while the file is written, at most IN_FLIGHT at once, the
rest and the completion at the end, one PUT for a small file, an abort on failure."""

from __future__ import annotations

import hashlib
import os
import threading
import time

import pytest

from workload.storage.upload import IN_FLIGHT, StreamingUpload, part_size

PART = 1000


class Parts:
    """Records the requests; `hold` keeps part uploads waiting until it is set; `fail_part`
    fails that part's upload."""

    def __init__(self, hold: threading.Event | None = None, fail_part: int | None = None):
        self.log: list[tuple] = []
        self.parts: dict[int, bytes] = {}
        self.hold, self.fail_part = hold, fail_part
        self.busy = self.most_busy = 0
        self.lock = threading.Lock()

    def put(self, data: bytes) -> None:
        self.log.append(("put", len(data)))
        self.object = data

    def create(self) -> None:
        self.log.append(("create",))

    def upload(self, number: int, data: bytes) -> str:
        with self.lock:
            self.busy += 1
            self.most_busy = max(self.most_busy, self.busy)
        try:
            if self.hold is not None:
                assert self.hold.wait(5)
            if number == self.fail_part:
                raise ConnectionResetError(104, "reset")
            self.parts[number] = data
            with self.lock:
                self.log.append(("part", number, len(data)))
            return f"etag-{number}"
        finally:
            with self.lock:
                self.busy -= 1

    def complete(self, etags: list[str]) -> None:
        self.log.append(("complete", etags))
        self.object = b"".join(self.parts[n] for n in range(1, len(etags) + 1))

    def abort(self) -> None:
        self.log.append(("abort",))


def wait_for(condition, seconds: float = 5) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.002)


def test_parts_go_while_the_file_is_written(tmp_path):
    path = tmp_path / "out.tmp"
    data = os.urandom(3 * PART + 123)
    parts = Parts()
    with open(path, "wb", buffering=0) as f:
        upload = StreamingUpload(parts, str(path), "s3://b/out", digest=True, first_part=PART)
        upload.start()
        f.write(data[: 2 * PART + 10])
        wait_for(lambda: len(parts.parts) == 2)  # uploaded before the file is complete
        assert parts.log[0] == ("create",)
        f.write(data[2 * PART + 10 :])
    size, sha256 = upload.finish()
    assert (size, sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert parts.object == data
    assert parts.log[-1] == ("complete", ["etag-1", "etag-2", "etag-3", "etag-4"])
    assert ("part", 4, 123) in parts.log  # the rest, the last part


def test_a_file_smaller_than_a_part_is_one_put(tmp_path):
    path = tmp_path / "out.tmp"
    path.write_bytes(b"x" * (PART - 1))
    parts = Parts()
    upload = StreamingUpload(parts, str(path), "s3://b/out", digest=False, first_part=PART)
    assert upload.start().finish() == (PART - 1, "")
    assert parts.log == [("put", PART - 1)]


def test_an_empty_file_is_one_put(tmp_path):
    path = tmp_path / "out.tmp"
    path.write_bytes(b"")
    parts = Parts()
    StreamingUpload(parts, str(path), "s3://b/out", digest=True, first_part=PART).start().finish()
    assert parts.log == [("put", 0)]


def test_a_file_of_whole_parts_completes_without_an_empty_part(tmp_path):
    path = tmp_path / "out.tmp"
    path.write_bytes(b"y" * (2 * PART))
    parts = Parts()
    StreamingUpload(parts, str(path), "s3://b/out", digest=False, first_part=PART).start().finish()
    assert parts.log[0] == ("create",)
    assert parts.log[-1] == ("complete", ["etag-1", "etag-2"])
    assert parts.object == b"y" * (2 * PART)


def test_at_most_in_flight_parts_at_once(tmp_path):
    path = tmp_path / "out.tmp"
    path.write_bytes(os.urandom(6 * PART))
    hold = threading.Event()
    parts = Parts(hold=hold)
    upload = StreamingUpload(parts, str(path), "s3://b/out", digest=False, first_part=PART)
    upload.start()
    wait_for(lambda: parts.busy == IN_FLIGHT)
    time.sleep(0.05)
    assert parts.busy == IN_FLIGHT  # the tailer waits for a free slot
    assert upload.size == IN_FLIGHT * PART  # and has read no more: two parts in memory
    hold.set()
    upload.finish()
    assert parts.most_busy == IN_FLIGHT
    assert parts.object == path.read_bytes()


def test_a_failed_part_fails_the_upload_and_it_is_aborted(tmp_path):
    path = tmp_path / "out.tmp"
    path.write_bytes(os.urandom(4 * PART))
    parts = Parts(fail_part=2)
    upload = StreamingUpload(parts, str(path), "s3://b/out", digest=False, first_part=PART)
    upload.start()
    with pytest.raises(ConnectionResetError):
        upload.finish()
    upload.abort()
    assert not any(entry[0] == "complete" for entry in parts.log)
    assert parts.log[-1] == ("abort",)


def test_abort_while_writing_stops_and_aborts(tmp_path):
    path = tmp_path / "out.tmp"
    parts = Parts()
    with open(path, "wb", buffering=0) as f:
        upload = StreamingUpload(parts, str(path), "s3://b/out", digest=False, first_part=PART)
        upload.start()
        f.write(b"z" * (PART + 1))
        wait_for(lambda: len(parts.parts) == 1)
    upload.abort()  # the writer failed: no complete, and the upload is aborted
    assert [e[0] for e in parts.log] == ["create", "part", "abort"]


def test_an_abort_before_any_part_sends_nothing(tmp_path):
    path = tmp_path / "out.tmp"
    path.write_bytes(b"small")
    parts = Parts()
    upload = StreamingUpload(parts, str(path), "s3://b/out", digest=False, first_part=PART)
    upload.start().abort()
    assert parts.log == []


def test_part_sizes_grow_so_that_ten_thousand_parts_hold_five_terabytes():
    assert [part_size(n, 8) for n in (1, 900, 901, 1801, 9_901, 10_000)] == [
        8,
        8,
        16,
        32,
        8192,
        8192,
    ]
    assert part_size(10_000) == 5 * 2**30  # S3's largest part
    assert sum(part_size(n) for n in range(1, 10_001)) > 5 * 2**40  # S3's largest object


def test_a_file_that_changed_behind_the_upload_is_not_completed(tmp_path):
    path = tmp_path / "out.tmp"
    path.write_bytes(b"w" * (PART + 5))
    parts = Parts()
    upload = StreamingUpload(parts, str(path), "s3://b/out", digest=False, first_part=PART)
    upload.start()
    with pytest.raises(OSError, match="not written front to back"):
        upload.finish(PART + 6)  # the writer's size and what was read disagree
    upload.abort()
    assert [e[0] for e in parts.log] == ["create", "part", "abort"]
