"""The read-ahead window: requests per window, true lengths, bounded re-asks, the next window
fetched in the background (one ahead at most), the footer from one suffix GET."""

from __future__ import annotations

import threading
import time

import pytest

from workload.errors import PermissionDenied, TransientError
from workload.settings import Settings
from workload.storage import readahead
from workload.storage.readahead import (
    MIN_WINDOW,
    READ_AHEAD_BUDGET,
    SHORT_READ_ATTEMPTS,
    Tail,
    WindowReader,
    column_share,
    fetch_tail,
    window_per_input,
)

DATA = bytes(range(256)) * 400  # 102,400 bytes


class Store:
    """Ranged fetches over DATA; `short` answers that many first requests with a cut body;
    `gate`, when given, holds every fetch after the first `free` until it is set."""

    def __init__(self, short: int = 0, gate: threading.Event | None = None, free: int = 1):
        self.calls: list[tuple[int, int]] = []
        self.short = short
        self.gate, self.free = gate, free
        self.threads: set[str] = set()
        self.lock = threading.Lock()

    def fetch(self, start: int, end: int) -> bytes:
        with self.lock:
            self.calls.append((start, end))
            number = len(self.calls)
            self.threads.add(threading.current_thread().name)
        if self.gate is not None and number > self.free:
            assert self.gate.wait(5)
        if number <= self.short:
            return DATA[start : end - 7]
        return DATA[start:end]

    def wait_calls(self, n: int) -> None:
        deadline = time.monotonic() + 5
        while len(self.calls) < n:
            assert time.monotonic() < deadline, self.calls
            time.sleep(0.001)


def test_sequential_reads_cost_one_request_per_window():
    store = Store()
    reader = WindowReader(store.fetch, len(DATA), 32_768, "s3://b/x")
    out = b"".join(reader.read(1000) for _ in range(103))
    assert out == DATA
    assert reader.requests == 4 == len(store.calls)  # ceil(102,400 / 32,768)
    assert reader.bytes == len(DATA)
    assert store.calls == [(i, min(i + 32_768, len(DATA))) for i in range(0, len(DATA), 32_768)]


def test_a_seek_outside_the_window_fetches_from_there():
    store = Store()
    reader = WindowReader(store.fetch, len(DATA), 10_000, "s3://b/x")
    reader.seek(-100, 2)  # the footer, as a Parquet reader starts
    assert reader.read() == DATA[-100:]
    reader.seek(0)
    assert reader.read(10) == DATA[:10]
    store.wait_calls(3)
    # the footer window reaches the end: nothing ahead of it; the window at 0 has its next
    assert store.calls == [(len(DATA) - 100, len(DATA)), (0, 10_000), (10_000, 20_000)]


def test_the_next_window_is_fetched_while_this_one_is_read():
    gate = threading.Event()
    store = Store(gate=gate, free=1)
    reader = WindowReader(store.fetch, len(DATA), 10_000, "s3://b/x")
    assert reader.read(100) == DATA[:100]  # window 1 (in this thread), window 2 asked for
    store.wait_calls(2)
    assert store.calls[1] == (10_000, 20_000)
    time.sleep(0.05)
    assert len(store.calls) == 2  # one window ahead, no more, however long it takes
    assert reader.read(9_900) == DATA[100:10_000]  # still in window 1: no wait
    gate.set()
    assert reader.read(10_000) == DATA[10_000:20_000]  # window 2, from the background
    store.wait_calls(3)
    assert "read-ahead" in store.threads
    assert b"".join(iter(lambda: reader.read(3000), b"")) == DATA[20_000:]
    assert reader.requests == len(store.calls) == 11


def test_a_read_across_windows_is_whole():
    store = Store()
    reader = WindowReader(store.fetch, len(DATA), 10_000, "s3://b/x")
    reader.seek(9_990)
    assert reader.read(25_000) == DATA[9_990:34_990]  # longer than a window: one request
    assert store.calls[0] == (9_990, 34_990)
    assert reader.read(20) == DATA[34_990:35_010]  # from the window read ahead


def test_prefetch_asks_for_the_first_window_before_any_read():
    store = Store()
    tail_start = len(DATA) - 1000
    reader = WindowReader(
        store.fetch,
        len(DATA),
        30_000,
        "s3://b/x",
        first_window=8_000,
        tail=DATA[tail_start:],
        tail_start=tail_start,
    )
    reader.seek(tail_start)
    assert reader.read() == DATA[tail_start:]  # the footer: already held, no request
    assert store.calls == []
    reader.prefetch(4)
    store.wait_calls(1)
    assert store.calls == [(4, 8_004)]  # the smaller first window
    reader.seek(4)
    assert reader.read(100) == DATA[4:104]
    store.wait_calls(2)
    assert store.calls[1] == (8_004, 38_004)  # then whole windows
    reader.prefetch(0)  # already ahead: nothing more
    assert len(store.calls) == 2


def test_a_short_body_is_asked_for_again():
    store = Store(short=SHORT_READ_ATTEMPTS - 1)
    reader = WindowReader(store.fetch, len(DATA), 50_000, "s3://b/x")
    assert reader.read(50_000) == DATA[:50_000]
    assert store.calls[:SHORT_READ_ATTEMPTS] == [(0, 50_000)] * SHORT_READ_ATTEMPTS


def test_a_store_that_keeps_cutting_bodies_is_transient():
    store = Store(short=100)
    reader = WindowReader(store.fetch, len(DATA), 50_000, "s3://b/x")
    with pytest.raises(TransientError, match="short read from s3://b/x"):
        reader.read(10)
    assert len(store.calls) == SHORT_READ_ATTEMPTS
    assert isinstance(reader.error, TransientError)


def test_a_failed_window_ahead_fails_the_read_that_needs_it():
    calls = []

    def fetch(start: int, end: int) -> bytes:
        calls.append((start, end))
        if start >= 10_000:
            raise PermissionError(13, "denied")
        return DATA[start:end]

    reader = WindowReader(fetch, len(DATA), 10_000, "s3://b/x")
    assert reader.read(9_000) == DATA[:9_000]  # the failure ahead does not show yet
    with pytest.raises(PermissionDenied, match="s3://b/x"):
        reader.read(2_000)
    assert isinstance(reader.error, PermissionDenied)  # what the Parquet reader's error was
    assert calls == [(0, 10_000), (10_000, 20_000)]  # permanent: not asked again


def test_the_footer_and_the_size_come_from_one_suffix_request():
    asked = []

    def tail(n: int) -> Tail:
        asked.append(n)
        start = max(0, len(DATA) - n)
        body = DATA[start:] if len(asked) > 1 else DATA[start:-5]  # the first one cut short
        return Tail(body, start, len(DATA), '"etag"')

    got, responses, received = fetch_tail(tail, "s3://b/x", length=1000)
    assert got == Tail(DATA[-1000:], len(DATA) - 1000, len(DATA), '"etag"')
    assert (asked, responses, received) == ([1000, 1000], 2, 995 + 1000)
    small, _, _ = fetch_tail(tail, "s3://b/x", length=10**6)
    assert small.start == 0 and small.data == DATA
    assert fetch_tail(lambda n: None, "s3://b/x") == (None, 1, 0)  # no Content-Range


def test_the_window_shrinks_with_the_inputs_within_the_budget():
    big = 32 * 2**20
    assert window_per_input(big, 1) == big
    assert window_per_input(big, 2) == READ_AHEAD_BUDGET // 4 == 16 * 2**20
    assert window_per_input(big, 4) == READ_AHEAD_BUDGET // 8
    assert window_per_input(big, 16) == READ_AHEAD_BUDGET // 32 == 2 * 2**20
    assert window_per_input(big, 64) == window_per_input(big, 1000) == MIN_WINDOW == 2**20
    assert window_per_input(10_000, 32) == 10_000  # never above what was asked for
    assert window_per_input(big, 2, budget=4 * READ_AHEAD_BUDGET) == big
    assert Settings().read_budget == READ_AHEAD_BUDGET  # the setting's default
    # a column at a time, the share has no floor: it is all that an input holds
    assert column_share(big, 64) == READ_AHEAD_BUDGET // 128 == 2**19


# Two row groups of three columns, as a Parquet file lays them out: (start, end) per chunk.
COLUMNS = [
    [(4, 20_004), (50_004, 70_004)],  # a: 20,000 bytes per chunk
    [(20_004, 40_004), (70_004, 90_004)],  # b
    [(40_004, 50_004), (90_004, 100_004)],  # c: half as big
]


def test_each_column_is_a_walk_of_its_own_within_its_chunks(monkeypatch):
    monkeypatch.setattr(readahead, "MIN_COLUMN_WINDOW", 1_000)  # windows at this file's scale
    store = Store()
    reader = WindowReader(store.fetch, len(DATA), 50_000, "s3://b/x")
    reader.follow_columns(COLUMNS, 20_000)  # windows: a 8,000, b 8,000, c 4,000 bytes
    store.wait_calls(3)
    assert sorted(store.calls) == [(4, 8_004), (20_004, 28_004), (40_004, 44_004)]
    # a reader that streams pages: a little of each column in turn, row group by row group
    for group in range(2):
        offsets = [ranges[group][0] for ranges in COLUMNS]
        ends = [ranges[group][1] for ranges in COLUMNS]
        while offsets != ends:
            for c in range(3):
                n = min(1_000, ends[c] - offsets[c])
                reader.seek(offsets[c])
                assert reader.read(n) == DATA[offsets[c] : offsets[c] + n]
                offsets[c] += n
    store.wait_calls(len(store.calls))
    asked = sorted(store.calls)
    # every byte of every chunk asked for once, by windows that never cross a chunk's end
    assert sum(e - s for s, e in asked) == 100_000 == reader.bytes
    chunks = sorted(r for ranges in COLUMNS for r in ranges)
    assert all(any(s <= a and b <= e for s, e in chunks) for a, b in asked)
    # each column in about as many requests: ceil(20,000 / 8,000) = 3 per chunk of a and b,
    # ceil(10,000 / 4,000) = 3 of c
    assert reader.requests == len(asked) == 2 * (3 + 3 + 3)


def test_a_read_outside_the_columns_goes_to_the_files_walk():
    store = Store()
    tail_start = 100_004
    reader = WindowReader(
        store.fetch, len(DATA), 50_000, "s3://b/x", tail=DATA[tail_start:], tail_start=tail_start
    )
    reader.follow_columns(COLUMNS, 20_000)
    store.wait_calls(3)
    reader.seek(tail_start)
    assert reader.read() == DATA[tail_start:]  # the footer: held, no request
    reader.seek(0)
    assert reader.read(4) == DATA[:4]  # the magic number, outside every chunk
    assert (0, 50_000) in store.calls


def test_the_columns_share_goes_by_their_bytes_and_what_they_can_use():
    from workload.storage.readahead import MIN_COLUMN_WINDOW, _shares

    one = [[(0, 18_000)], [(0, 1_522_000)], [(0, 734_000)], [(0, 198_000)]]  # the events'
    key, ts, value, category = _shares(one, 786_432)
    assert key == 18_000  # a column never gets more than its largest chunk
    assert ts > value > category == MIN_COLUMN_WINDOW  # by bytes; no window below the floor
    assert ts + value <= 786_432 - key
    assert _shares(one, 24 * 2**20) == [18_000, 1_522_000, 734_000, 198_000]  # all whole
    assert _shares([[], [(0, 10)]], 100) == [0, 10]


def test_reads_are_projected_as_the_reader_makes_them():
    from workload.storage.readahead import project_reads

    events = dict(file_bytes=9_400_000, group_bytes=2_470_000, columns=4, window=32 * 2**20)
    few = project_reads(**events, inputs=2)
    assert not few.streamed and few.gets == 3  # footer, the first window, the rest
    many = project_reads(**events, inputs=64)
    assert many.streamed and many.held <= 2 * (READ_AHEAD_BUDGET // 128 + 4 * 64 * 1024)
    assert many.gets == 1 + 4 * 4 * 5  # an upper bound: 58 measured (moto, fan-in 64)
    more = project_reads(**events, inputs=64, budget=8 * READ_AHEAD_BUDGET)
    assert not more.streamed and more.gets < many.gets  # a bigger budget: fewer requests
