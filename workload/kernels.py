"""Vectorized merge and aggregate kernels. No I/O: record batches in, tables and arrays out.

Three pieces:
- `aligned` walks k sorted batch streams in lockstep and yields, per step, every input's rows that
  are below a common bound, so each step can be finished on its own with memory bounded by about
  one batch per input (a k-way merge at batch granularity).
- `merge_events` sorts one step's rows by (key, ts). The inputs are sorted runs, so a stable
  argsort (timsort) on a packed key is close to a linear merge, and stability keeps ties in input
  order.
- `Partials` holds combinable aggregates per group. An event row is a partial of one row, so one
  sort-and-reduceat serves level 1 (events), later levels (partials) and the final pod.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, fields

import numpy as np
import pyarrow as pa

from . import schema
from .errors import DataError

INT64_MAX = np.iinfo(np.int64).max
INT64_MIN = np.iinfo(np.int64).min


# -- categories ------------------------------------------------------------------------------
class Categories:
    """A process-wide registry of category strings, so codes mean the same in every batch.

    Parquet gives each row group its own dictionary; mapping them onto one registry is a
    lookup over the (small) dictionary, then one gather over the rows. Thread-safe.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.values: list[str | None] = []
        self._index: dict[str | None, int] = {}
        self._seen: list[tuple[pa.Array, np.ndarray]] = []
        self._arrow: pa.Array | None = None
        self._hashes = np.empty(0, np.uint64)
        self._ranks = np.empty(0, np.int64)

    def _code(self, value: str | None) -> int:
        code = self._index.get(value)
        if code is None:
            code = self._index[value] = len(self.values)
            self.values.append(value)
            self._arrow = None
        return code

    def _mapping(self, dictionary: pa.Array) -> np.ndarray:
        for known, mapping in self._seen:
            if known is dictionary or known.equals(dictionary):
                return mapping
        mapping = np.array([self._code(v) for v in dictionary.to_pylist()], dtype=np.int32)
        self._seen = [(dictionary, mapping), *self._seen[:7]]
        return mapping

    def codes(self, column: pa.Array | pa.ChunkedArray) -> np.ndarray:
        chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
        out = []
        for chunk in chunks:
            if not pa.types.is_dictionary(chunk.type):
                chunk = chunk.dictionary_encode()
            indices = chunk.indices
            with self._lock:
                mapping = self._mapping(chunk.dictionary)
                if indices.null_count:  # nulls get a code of their own, after the mapping
                    mapping = np.append(mapping, np.int32(self._code(None)))
            if indices.null_count:
                indices = indices.fill_null(len(mapping) - 1)
            out.append(mapping[indices.to_numpy(zero_copy_only=False)])
        if not out:
            return np.empty(0, np.int32)
        return out[0] if len(out) == 1 else np.concatenate(out)

    def _refresh(self) -> None:
        with self._lock:
            if self._arrow is None:
                self._rebuild()

    def _rebuild(self) -> None:
        # Parquet cannot write a null inside a dictionary; the None code is written as a null
        # index (see array()), so its dictionary slot only needs a placeholder.
        self._arrow = pa.array(["\x00null" if v is None else v for v in self.values], pa.string())
        self._hashes = np.array(
            [
                int.from_bytes(hashlib.blake2b(v.encode(), digest_size=8).digest(), "little")
                if v is not None
                else 0x5BD1E995
                for v in self.values
            ],
            dtype=np.uint64,
        )
        values = self.values
        order = sorted(range(len(values)), key=lambda i: (values[i] is None, values[i] or ""))
        self._ranks = np.empty(len(self.values), np.int64)
        self._ranks[order] = np.arange(len(self.values))

    def dictionary(self) -> pa.Array:
        self._refresh()
        return self._arrow  # type: ignore[return-value]

    def hashes(self) -> np.ndarray:
        self._refresh()
        return self._hashes

    def ranks(self) -> np.ndarray:
        """Position of each code in string order (nulls last), for sorting by category."""
        self._refresh()
        return self._ranks

    def array(self, codes: np.ndarray) -> pa.DictionaryArray:
        """Codes as a dictionary array over the registry; the None code becomes a null."""
        none = self._index.get(None)
        mask = (codes == none) if none is not None else None
        indices = pa.array(codes.astype(np.int32, copy=False), pa.int32(), mask=mask)
        return pa.DictionaryArray.from_arrays(indices, self.dictionary())

    def strings(self, codes: np.ndarray) -> pa.Array:
        return self.array(codes).cast(pa.string())


# -- checksum --------------------------------------------------------------------------------
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_SEED = np.uint64(0x9E3779B97F4A7C15)
_NULL_VALUE = np.uint64(0xD6E8FEB86659FD93)


def _mix(x: np.ndarray, tmp: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer, in place (`tmp` is scratch of the same shape): a cheap,
    well-spread 64-bit hash."""
    for shift, multiplier in ((30, _M1), (27, _M2), (31, None)):
        np.right_shift(x, np.uint64(shift), out=tmp)
        x ^= tmp
        if multiplier is not None:
            x *= multiplier
    return x


def ints(column: pa.Array | pa.ChunkedArray, fill: int = 0) -> np.ndarray:
    """A fixed-width integer or timestamp column as int64/uint64 numpy, nulls replaced by
    `fill`. Reads the value buffer directly: pyarrow's fill_null costs about 6 ms per 64k rows,
    half the final pod's compute."""
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    parts = []
    for chunk in chunks:
        if len(chunk) == 0:  # may have no data buffer at all
            continue
        dtype = np.uint64 if pa.types.is_unsigned_integer(chunk.type) else np.int64
        raw = np.frombuffer(chunk.buffers()[1], dtype)[chunk.offset : chunk.offset + len(chunk)]
        parts.append(np.where(validity(chunk), raw, fill) if chunk.null_count else raw)
    if not parts:
        unsigned = pa.types.is_unsigned_integer(column.type)
        return np.empty(0, np.uint64 if unsigned else np.int64)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def validity(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The column's non-null mask as booleans, unpacked from Arrow's validity bitmap (several
    times faster than is_valid().to_numpy())."""
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    parts = []
    for chunk in chunks:
        bitmap = chunk.buffers()[0]
        if chunk.null_count == 0 or bitmap is None:
            parts.append(np.ones(len(chunk), dtype=bool))
            continue
        bits = np.unpackbits(np.frombuffer(bitmap, np.uint8), bitorder="little")
        parts.append(bits[chunk.offset : chunk.offset + len(chunk)].view(bool))
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def row_hashes(
    key: np.ndarray, ts: np.ndarray, value: np.ndarray, valid: np.ndarray, cat_hash: np.ndarray
) -> np.ndarray:
    """One uint64 per row over all four columns; their wrapping sum is the dataset checksum,
    which is independent of row order and file boundaries, so any tree shape gives the same."""
    # The fields are spread by odd multipliers (key and value, so that moving a value to another
    # row changes bits everywhere), combined, then mixed once; the value of a null row is a
    # marker no int64 value is likely to take.
    h = key.view(np.uint64) * _M2
    h += ts.view(np.uint64)
    h ^= np.where(valid, value.view(np.uint64), _NULL_VALUE) * _M1
    h ^= cat_hash
    return _mix(h, np.empty_like(h))


def checksum_hex(total: int) -> str:
    return f"{int(total) & 0xFFFFFFFFFFFFFFFF:016x}"


# -- aligned streaming -----------------------------------------------------------------------
def _columns(batch: pa.RecordBatch | pa.Table, by: Sequence[str]) -> list[np.ndarray]:
    return [ints(batch.column(name)) for name in by]


def _first_unsorted(cols: list[np.ndarray]) -> int | None:
    """Index i where row i+1 sorts before row i, or None when sorted."""
    a = cols[0]
    bad = a[1:] < a[:-1]  # boolean masks, not int64 diffs: an eighth of the memory traffic
    if len(cols) > 1:
        b = cols[1]
        bad |= (a[1:] == a[:-1]) & (b[1:] < b[:-1])
    if not bad.any():
        return None
    return int(bad.argmax())


def _rows_below(cols: list[np.ndarray], bound: tuple) -> int:
    """How many leading rows sort strictly below `bound` (cols sorted lexicographically)."""
    lo, hi = 0, len(cols[0])
    for i, (col, b) in enumerate(zip(cols, bound, strict=True)):
        part = col[lo:hi]
        left = lo + int(np.searchsorted(part, b, "left"))
        if i == len(cols) - 1:
            return left
        hi = lo + int(np.searchsorted(part, b, "right"))
        lo = left
        if lo == hi:
            return lo
    return lo


class _Input:
    def __init__(self, name: str, batches: Iterable[pa.RecordBatch], by: Sequence[str]):
        self.name, self.by, self._it = name, by, iter(batches)
        self.done = False
        self.table: pa.Table | None = None
        self.cols: list[np.ndarray] = []
        self._last: tuple | None = None
        self._row = 0  # rows pulled so far, for error messages

    @property
    def rows(self) -> int:
        return 0 if self.table is None else self.table.num_rows

    def last(self) -> tuple:
        return tuple(c[-1] for c in self.cols)

    def pull(self) -> None:
        for batch in self._it:
            if batch.num_rows:
                self._append(batch)
                return
        self.done = True

    def _append(self, batch: pa.RecordBatch) -> None:
        cols = _columns(batch, self.by)
        bad = _first_unsorted(cols)
        first = tuple(c[0] for c in cols)
        if bad is None and self._last is not None and first < self._last:
            bad = -1
        if bad is not None:
            raise DataError(
                f"{self.name} is not sorted by ({', '.join(self.by)}) at row {self._row + bad + 1}"
            )
        self._last = tuple(c[-1] for c in cols)
        self._row += batch.num_rows
        new = pa.Table.from_batches([batch])
        if self.table is None or self.table.num_rows == 0:
            self.table, self.cols = new, cols
        else:
            self.table = pa.concat_tables([self.table, new])
            self.cols = [np.concatenate([a, b]) for a, b in zip(self.cols, cols, strict=True)]

    def take(self, n: int) -> pa.Table | None:
        if self.table is None or n == 0:
            return None
        head = self.table.slice(0, n)
        self.table = self.table.slice(n)
        self.cols = [c[n:] for c in self.cols]
        return head


def aligned(
    streams: Sequence[tuple[str, Iterable[pa.RecordBatch]]], by: Sequence[str]
) -> Iterator[list[pa.Table]]:
    """Yield lists of per-input tables (input order kept, empty ones dropped) such that, for
    every step, all rows of all inputs sorting below the step's upper bound are in that step.

    Each input must be sorted by `by`; a DataError names the input and row where it is not.
    """
    inputs = [_Input(name, batches, by) for name, batches in streams]
    for x in inputs:
        x.pull()
    while True:
        live = [x for x in inputs if not x.done]
        if not live:
            parts = [x.take(x.rows) for x in inputs]
            parts = [p for p in parts if p is not None]
            if parts:
                yield parts
            return
        bound = min(x.last() for x in live)
        parts = [x.take(_rows_below(x.cols, bound)) if x.rows else None for x in inputs]
        parts = [p for p in parts if p is not None]
        if parts:
            yield parts
        for x in live:
            if x.last() == bound:
                x.pull()


# -- merge op --------------------------------------------------------------------------------
def _fits(span_a: int, span_b: int) -> bool:
    return span_a * span_b < 2**63


def sort_order(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Stable order by (a, b)."""
    a_min, a_max, b_min, b_max = int(a.min()), int(a.max()), int(b.min()), int(b.max())
    if _fits(a_max - a_min + 1, b_max - b_min + 1):
        packed = (a - a_min) * (b_max - b_min + 1) + (b - b_min)
        return np.argsort(packed, kind="stable")
    return np.lexsort((b, a))


def merge_events(parts: Sequence[pa.Table], cats: Categories) -> pa.Table:
    """One sorted events table from sorted parts; ties keep part order, then row order."""
    keys = np.concatenate([ints(p.column("key")) for p in parts])
    ts = np.concatenate([ints(p.column("ts")) for p in parts])
    codes = np.concatenate([cats.codes(p.column("category")) for p in parts])
    value = pa.chunked_array([c for p in parts for c in p.column("value").chunks], pa.int64())
    # Each part is sorted (aligned() checked it), so one part needs no sort; several are sorted
    # runs, which timsort merges in close to linear time.
    if len(parts) > 1:
        order = sort_order(keys, ts)
        keys, ts, codes = keys[order], ts[order], codes[order]
        value = value.take(pa.array(order))
    return pa.Table.from_arrays(
        [pa.array(keys), pa.array(ts).view(schema.TS), value, cats.array(codes)],
        schema=schema.EVENTS,
    )


# -- aggregates ------------------------------------------------------------------------------
@dataclass
class Partials:
    """Combinable aggregates, one row per group. value_min/value_max hold INT64_MAX/INT64_MIN
    for groups without a non-null value; they become nulls only on output."""

    key: np.ndarray
    cat: np.ndarray
    rows: np.ndarray
    value_count: np.ndarray
    value_sum: np.ndarray
    value_min: np.ndarray
    value_max: np.ndarray
    ts_min: np.ndarray
    ts_max: np.ndarray
    checksum: np.ndarray

    def __len__(self) -> int:
        return len(self.rows)

    @classmethod
    def from_events(cls, table: pa.Table | pa.RecordBatch, cats: Categories) -> Partials:
        key = ints(table.column("key"))
        ts = ints(table.column("ts"))
        value_col = table.column("value")
        valid = validity(value_col)
        value = ints(value_col)
        cat = cats.codes(table.column("category"))
        return cls(
            key=key,
            cat=cat,
            rows=np.ones(len(key), np.int64),
            value_count=valid.astype(np.int64),
            value_sum=value,
            value_min=np.where(valid, value, INT64_MAX),
            value_max=np.where(valid, value, INT64_MIN),
            ts_min=ts,
            ts_max=ts,
            checksum=row_hashes(key, ts, value, valid, cats.hashes()[cat]),
        )

    @classmethod
    def from_table(cls, table: pa.Table | pa.RecordBatch, cats: Categories) -> Partials:
        def col(name: str, fill: int = 0) -> np.ndarray:
            return ints(table.column(name), fill)

        return cls(
            key=col("key"),
            cat=cats.codes(table.column("category")),
            rows=col("rows"),
            value_count=col("value_count"),
            value_sum=col("value_sum"),
            value_min=col("value_min", INT64_MAX),
            value_max=col("value_max", INT64_MIN),
            ts_min=col("ts_min"),
            ts_max=col("ts_max"),
            checksum=col("checksum"),
        )

    @classmethod
    def concat(cls, parts: Sequence[Partials]) -> Partials:
        if len(parts) == 1:
            return parts[0]
        columns = {f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)}
        return cls(**columns)

    def reduce(self, by: str, cats: Categories) -> Partials:
        """Combine rows with equal group keys; `by` is 'key', 'key,category' or 'category'.
        The result is sorted by the group keys (categories in string order)."""
        n = len(self)
        if n == 0:
            return self
        keys = self._group_keys(by, cats)
        presorted = _first_unsorted(keys) is None
        if len(keys) == 1 and not presorted:
            lo, hi = int(keys[0].min()), int(keys[0].max())
            if hi - lo < max(4 * n, 4096):  # dense enough: a scatter beats a sort
                return self._scatter(keys[0] - lo, hi - lo + 1, by, lo, cats)
        if presorted:
            order = None
        elif len(keys) == 1:
            order = np.argsort(keys[0], kind="stable")
        else:
            order = np.lexsort(keys[::-1])
        ordered = keys if order is None else [k[order] for k in keys]
        change = ordered[0][1:] != ordered[0][:-1]
        for k in ordered[1:]:
            change |= k[1:] != k[:-1]
        starts = np.concatenate([[0], np.flatnonzero(change) + 1])
        if len(starts) == n and order is None:
            return self  # already one row per group

        def pick(a: np.ndarray) -> np.ndarray:
            return a if order is None else a[order]

        first = starts if order is None else order[starts]
        return Partials(
            key=self.key[first],
            cat=self.cat[first],
            rows=np.add.reduceat(pick(self.rows), starts),
            value_count=np.add.reduceat(pick(self.value_count), starts),
            value_sum=_sum(pick(self.value_sum), starts),
            value_min=np.minimum.reduceat(pick(self.value_min), starts),
            value_max=np.maximum.reduceat(pick(self.value_max), starts),
            ts_min=np.minimum.reduceat(pick(self.ts_min), starts),
            ts_max=np.maximum.reduceat(pick(self.ts_max), starts),
            checksum=np.add.reduceat(pick(self.checksum), starts),
        )

    def _scatter(self, slot: np.ndarray, size: int, by: str, lo: int, cats: Categories):
        """Reduce by accumulating into one slot per possible group id (ufunc.at is about 1 ns a
        row for a few thousand slots, a stable argsort 40 times that); the non-empty slots come
        out in group order."""
        rows = np.zeros(size, np.int64)
        np.add.at(rows, slot, self.rows)
        at = np.flatnonzero(rows)  # every group has at least one row

        def acc(values: np.ndarray, ufunc: np.ufunc, start: int | float) -> np.ndarray:
            out = np.full(size, start, values.dtype)
            ufunc.at(out, slot, values)
            return out[at]

        value_sum = acc(self.value_sum, np.add, 0)
        if _may_wrap(self.value_sum):
            _check_sums(value_sum, acc(self.value_sum.astype(np.float64), np.add, 0.0))
        group = at + lo
        ncat = len(cats.values)
        code_of_rank = np.argsort(cats.ranks()).astype(np.int32)
        if by == "key":
            key, cat = group, np.zeros(at.size, np.int32)
        elif by == "category":
            key, cat = np.zeros(at.size, np.int64), code_of_rank[group]
        else:  # packed (key - key_lo) * ncat + rank, with lo the packed minimum
            key_lo = int(self.key.min())
            key, cat = group // ncat + key_lo, code_of_rank[group % ncat]
        return Partials(
            key=key,
            cat=cat,
            rows=rows[at],
            value_count=acc(self.value_count, np.add, 0),
            value_sum=value_sum,
            value_min=acc(self.value_min, np.minimum, INT64_MAX),
            value_max=acc(self.value_max, np.maximum, INT64_MIN),
            ts_min=acc(self.ts_min, np.minimum, INT64_MAX),
            ts_max=acc(self.ts_max, np.maximum, INT64_MIN),
            checksum=acc(self.checksum, np.add, 0),
        )

    def _group_keys(self, by: str, cats: Categories) -> list[np.ndarray]:
        """Sort keys for `by`, most significant first; (key, category) packed into one int64
        when the key range allows, so one stable argsort does it."""
        if by == "key":
            return [self.key]
        rank = cats.ranks()[self.cat]
        if by == "category":
            return [rank]
        lo, hi = int(self.key.min()), int(self.key.max())
        if _fits(hi - lo + 1, len(cats.values)):
            return [(self.key - lo) * len(cats.values) + rank]
        return [self.key, rank]

    def _aggregate_arrays(self) -> list[pa.Array]:
        empty = self.value_count == 0
        return [
            pa.array(self.rows),
            pa.array(self.value_count),
            pa.array(self.value_sum, mask=empty),
            pa.array(self.value_min, mask=empty),
            pa.array(self.value_max, mask=empty),
            pa.array(self.ts_min).view(schema.TS),
            pa.array(self.ts_max).view(schema.TS),
        ]

    def to_partials(self, cats: Categories) -> pa.Table:
        arrays = [pa.array(self.key), cats.array(self.cat), *self._aggregate_arrays()]
        return pa.Table.from_arrays([*arrays, pa.array(self.checksum)], schema=schema.PARTIALS)

    def to_by_key(self) -> pa.Table:
        arrays = [pa.array(self.key), *self._aggregate_arrays()]
        return pa.Table.from_arrays(arrays, schema=schema.BY_KEY)

    def to_by_category(self, cats: Categories) -> pa.Table:
        arrays = [cats.strings(self.cat), *self._aggregate_arrays()]
        return pa.Table.from_arrays(arrays, schema=schema.BY_CATEGORY)

    def totals(self) -> dict:
        """Whole-dataset totals (SQL semantics: min/max/sum of no values are None)."""
        count = int(self.value_count.sum()) if len(self) else 0
        return {
            "rows": int(self.rows.sum()) if len(self) else 0,
            "value_count": count,
            "value_sum": int(_sum(self.value_sum, np.array([0]))[0]) if count else None,
            "value_min": int(self.value_min.min()) if count else None,
            "value_max": int(self.value_max.max()) if count else None,
            "ts_min": int(self.ts_min.min()) if len(self) else None,
            "ts_max": int(self.ts_max.max()) if len(self) else None,
            "checksum": checksum_hex(int(np.add.reduce(self.checksum, dtype=np.uint64)))
            if len(self)
            else checksum_hex(0),
        }


def summarize_events(table: pa.Table | pa.RecordBatch, cats: Categories):
    """(by key, by category) partials of one batch of events, for the final pod.

    The general path would first make a one-row partial of every event (eight new columns),
    then reduce twice; here each aggregate is one pass over the event columns: reduceat over
    the key runs of a key-sorted batch, and ufunc.at over the few category codes."""
    key = ints(table.column("key"))
    if _first_unsorted([key]) is not None:  # not from our pods: the general path sorts
        p = Partials.from_events(table, cats)
        return p.reduce("key", cats), p.reduce("category", cats)
    ts = ints(table.column("ts"))
    value_col = table.column("value")
    valid = validity(value_col)
    value = ints(value_col)
    codes = cats.codes(table.column("category"))
    low = np.where(valid, value, INT64_MAX)
    high = np.where(valid, value, INT64_MIN)
    n = len(key)
    starts = np.concatenate([[0], np.flatnonzero(key[1:] != key[:-1]) + 1])
    by_key = Partials(
        key=key[starts],
        cat=np.zeros(len(starts), np.int32),
        rows=np.diff(np.append(starts, n)),
        value_count=np.add.reduceat(valid, starts, dtype=np.int64),
        value_sum=_sum(value, starts),
        value_min=np.minimum.reduceat(low, starts),
        value_max=np.maximum.reduceat(high, starts),
        ts_min=np.minimum.reduceat(ts, starts),
        ts_max=np.maximum.reduceat(ts, starts),
        checksum=np.zeros(len(starts), np.uint64),
    )
    size = len(cats.values)

    def scatter(values: np.ndarray, ufunc: np.ufunc, start: int) -> np.ndarray:
        out = np.full(size, start, values.dtype)
        ufunc.at(out, codes, values)
        return out

    rows = np.bincount(codes, minlength=size).astype(np.int64)
    at = np.flatnonzero(rows)
    sums = scatter(value, np.add, 0)
    if _may_wrap(value):  # per category, as the other sums are checked per group
        _check_sums(sums, scatter(value.astype(np.float64), np.add, 0))
    hashes = row_hashes(key, ts, value, valid, cats.hashes()[codes])
    by_category = Partials(
        key=np.zeros(at.size, np.int64),
        cat=at.astype(np.int32),
        rows=rows[at],
        value_count=np.bincount(codes[valid], minlength=size)[at].astype(np.int64),
        value_sum=sums[at],
        value_min=scatter(low, np.minimum, INT64_MAX)[at],
        value_max=scatter(high, np.maximum, INT64_MIN)[at],
        ts_min=scatter(ts, np.minimum, INT64_MAX)[at],
        ts_max=scatter(ts, np.maximum, INT64_MIN)[at],
        checksum=scatter(hashes, np.add, 0)[at],
    )
    return by_key, by_category


class ByKey:
    """The final pod's by-key result, absorbing partials reduced by key (unique, sorted keys).

    When the key range is known (from the files' Parquet statistics) and not too wide, each key
    has a slot in dense arrays, so absorbing a piece is a scatter rather than a merge of sorted
    runs; otherwise pieces are merged by sorting. Not thread-safe: callers hold a lock."""

    MAX_SLOTS = 1 << 22  # 4M keys: about 260 MB of slots

    def __init__(self, lo: int | None = None, hi: int | None = None):
        self._dense = lo is not None and hi is not None and 0 < hi - lo + 1 <= self.MAX_SLOTS
        self._pending: list[Partials] = []
        if self._dense:
            n = hi - lo + 1
            self._lo = lo
            zeros = [np.zeros(n, np.int64) for _ in range(3)]
            self._rows, self._count, self._sum = zeros
            self._approx_sum = np.zeros(n, np.float64)  # detects int64 overflow of the sums
            self._vmin, self._tmin = np.full(n, INT64_MAX), np.full(n, INT64_MAX)
            self._vmax, self._tmax = np.full(n, INT64_MIN), np.full(n, INT64_MIN)

    def add(self, p: Partials) -> None:
        if not self._dense:
            self._pending.append(p)
            if sum(len(x) for x in self._pending) > 1 << 21:
                self._pending = [Partials.concat(self._pending).reduce("key", _NO_CATEGORIES)]
            return
        i = p.key - self._lo
        if i.size and (i[0] < 0 or i[-1] >= len(self._rows)):
            raise DataError("key outside the range the files' statistics promised")
        self._rows[i] += p.rows
        self._count[i] += p.value_count
        self._sum[i] += p.value_sum
        self._approx_sum[i] += p.value_sum
        self._vmin[i] = np.minimum(self._vmin[i], p.value_min)
        self._vmax[i] = np.maximum(self._vmax[i], p.value_max)
        self._tmin[i] = np.minimum(self._tmin[i], p.ts_min)
        self._tmax[i] = np.maximum(self._tmax[i], p.ts_max)

    def result(self) -> Partials:
        if not self._dense:
            if not self._pending:
                return empty_partials()
            return Partials.concat(self._pending).reduce("key", _NO_CATEGORIES)
        _check_sums(self._sum, self._approx_sum)
        at = np.flatnonzero(self._rows)
        return Partials(
            key=at + self._lo,
            cat=np.zeros(at.size, np.int32),
            rows=self._rows[at],
            value_count=self._count[at],
            value_sum=self._sum[at],
            value_min=self._vmin[at],
            value_max=self._vmax[at],
            ts_min=self._tmin[at],
            ts_max=self._tmax[at],
            checksum=np.zeros(at.size, np.uint64),
        )


_NO_CATEGORIES = Categories()  # reduce("key") never looks at categories


class ByCategory:
    """The final pod's by-category result: a handful of rows, merged piece by piece."""

    def __init__(self, cats: Categories):
        self._cats = cats
        self._result = empty_partials()

    def add(self, p: Partials) -> None:
        both = Partials.concat([self._result, p.reduce("category", self._cats)])
        self._result = both.reduce("category", self._cats)

    def result(self) -> Partials:
        return self._result


def empty_partials() -> Partials:
    i64 = np.empty(0, np.int64)
    return Partials(i64, np.empty(0, np.int32), *([i64] * 7), np.empty(0, np.uint64))


def _may_wrap(values: np.ndarray) -> bool:
    """Whether some sum of these int64 values could leave int64's range."""
    if not values.size:
        return False
    return max(-int(values.min()), int(values.max())) * values.size >= 2**63


def _check_sums(exact: np.ndarray, approx: np.ndarray) -> None:
    """Raise if int64 sums wrapped: their float64 twins (exact to well within 2**40) disagree."""
    if np.any(np.abs(approx - exact.astype(np.float64)) > 2.0**40) or np.any(
        np.abs(approx) >= 2.0**63
    ):
        raise DataError("value_sum overflows int64; values are too large for exact sums")


def _sum(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Exact int64 group sums; raises instead of wrapping around."""
    out = np.add.reduceat(values, starts)
    if _may_wrap(values):
        _check_sums(out, np.add.reduceat(values.astype(np.float64), starts))
    return out
