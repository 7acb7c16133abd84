"""The read-ahead window: requests per window, true lengths, bounded re-asks."""

from __future__ import annotations

import pytest

from workload.errors import TransientError
from workload.storage.readahead import SHORT_READ_ATTEMPTS, WindowReader

DATA = bytes(range(256)) * 400  # 102,400 bytes


class Store:
    """Ranged fetches over DATA; `short` answers that many first requests with a cut body."""

    def __init__(self, short: int = 0):
        self.calls: list[tuple[int, int]] = []
        self.short = short

    def fetch(self, start: int, end: int) -> bytes:
        self.calls.append((start, end))
        if len(self.calls) <= self.short:
            return DATA[start : end - 7]
        return DATA[start:end]


def test_sequential_reads_cost_one_request_per_window():
    store = Store()
    reader = WindowReader(store.fetch, len(DATA), 32_768, "s3://b/x")
    out = b"".join(reader.read(1000) for _ in range(103))
    assert out == DATA
    assert reader.requests == 4 == len(store.calls)  # ceil(102,400 / 32,768)
    assert reader.bytes == len(DATA)


def test_a_seek_outside_the_window_fetches_from_there():
    store = Store()
    reader = WindowReader(store.fetch, len(DATA), 10_000, "s3://b/x")
    reader.seek(-100, 2)  # the footer, as a Parquet reader starts
    assert reader.read() == DATA[-100:]
    reader.seek(0)
    assert reader.read(10) == DATA[:10]
    assert store.calls == [(len(DATA) - 100, len(DATA)), (0, 10_000)]


def test_a_short_body_is_asked_for_again():
    store = Store(short=SHORT_READ_ATTEMPTS - 1)
    reader = WindowReader(store.fetch, len(DATA), 50_000, "s3://b/x")
    assert reader.read(50_000) == DATA[:50_000]
    assert len(store.calls) == SHORT_READ_ATTEMPTS


def test_a_store_that_keeps_cutting_bodies_is_transient():
    store = Store(short=100)
    reader = WindowReader(store.fetch, len(DATA), 50_000, "s3://b/x")
    with pytest.raises(TransientError, match="short read from s3://b/x"):
        reader.read(10)
    assert len(store.calls) == SHORT_READ_ATTEMPTS
