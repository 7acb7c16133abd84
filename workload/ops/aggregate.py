"""The aggregate op: combinable partials per (key, category), and the final result of both
built-in ops (by_key and by_category).

One table, AGGREGATES, drives the partials' schema, the one-row partial of an event, the reduce
and scatter loops, the final pod's dense slots, the totals and the output columns: a new
aggregate is one line there. Partials hold one array per aggregate; an event row is a partial of
one row, so one sort-and-reduceat serves level 1 (events), later levels (partials) and the final
pod. Sums are exact int64: a sum that would wrap is an error, never a wrong number.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from .. import schema
from ..errors import DataError
from ..kernels.align import first_unsorted
from ..kernels.categories import Categories
from ..kernels.checksum import checksum_hex, hash_sum, row_hashes
from ..kernels.columns import INT64_MAX, INT64_MIN, arrow, ints, validity
from . import Step


@dataclass
class Events:
    """The event columns of one batch as numpy, for the aggregates' one-row partials."""

    key: np.ndarray
    ts: np.ndarray
    value: np.ndarray  # nulls as 0
    valid: np.ndarray
    nulls: np.ndarray  # the rows whose value is null (usually few)
    cat: np.ndarray
    cats: Categories

    @classmethod
    def of(cls, table: pa.Table | pa.RecordBatch, cats: Categories) -> Events:
        value = table.column("value")
        valid = validity(value)
        return cls(
            key=ints(table.column("key")),
            ts=ints(table.column("ts")),
            value=ints(value),
            valid=valid,
            nulls=np.flatnonzero(~valid) if value.null_count else np.empty(0, np.intp),
            cat=cats.codes(table.column("category")),
            cats=cats,
        )

    def filled(self, fill: int) -> np.ndarray:
        """The values with nulls as `fill` (a copy only where there are nulls and fill != 0)."""
        if fill == 0 or not self.nulls.size:
            return self.value
        out = self.value.copy()
        out[self.nulls] = fill
        return out

    def hashes(self) -> np.ndarray:
        return row_hashes(self.key, self.ts, self.value, self.valid, self.cat, self.cats.hashes())

    def hash_sum(self) -> int:
        return hash_sum(self.key, self.ts, self.value, self.valid, self.cat, self.cats.hashes())


# Where an aggregate's one-row partial comes from; the kernels use it to skip passes (a count
# is a bincount, a min or max of ts is the first or last row of a (key, ts)-sorted run).
_SOURCES = {
    "rows": lambda e: np.ones(len(e.key), np.int64),
    "valid": lambda e: e.valid.astype(np.int64),
    "ts": lambda e: e.ts,
    "hash": Events.hashes,
}


@dataclass(frozen=True)
class Aggregate:
    """One combinable aggregate: where the partial of one event comes from (`source`: rows,
    valid, value with nulls as the identity, ts, hash), how two partials combine (a ufunc with
    its identity, the value of no rows), and its output column."""

    name: str
    source: str
    ufunc: np.ufunc
    identity: int
    type: pa.DataType
    nullable: bool = False  # null where value_count is 0 (SQL: an aggregate of no values)
    exact: bool = False  # an int64 sum: checked against overflow
    in_result: bool = True  # a column of by_key and by_category (else partials and totals only)

    def of_event(self, e: Events) -> np.ndarray:
        if self.source == "value":
            return e.filled(self.identity)
        return _SOURCES[self.source](e)


AGGREGATES: tuple[Aggregate, ...] = (
    Aggregate("rows", "rows", np.add, 0, pa.int64()),
    Aggregate("value_count", "valid", np.add, 0, pa.int64()),
    Aggregate("value_sum", "value", np.add, 0, pa.int64(), nullable=True, exact=True),
    Aggregate("value_min", "value", np.minimum, INT64_MAX, pa.int64(), nullable=True),
    Aggregate("value_max", "value", np.maximum, INT64_MIN, pa.int64(), nullable=True),
    Aggregate("ts_min", "ts", np.minimum, INT64_MAX, schema.TS),
    Aggregate("ts_max", "ts", np.maximum, INT64_MIN, schema.TS),
    # A wrapping uint64 sum of row hashes: order-independent, so any tree shape gives the same.
    Aggregate("checksum", "hash", np.add, 0, pa.uint64(), in_result=False),
)
RESULT_AGGREGATES = tuple(a for a in AGGREGATES if a.in_result)
NULL_UNLESS = "value_count"  # the nullable aggregates are null where this is 0


def _fields(aggregates: Sequence[Aggregate]) -> list[pa.Field]:
    return [pa.field(a.name, a.type, nullable=a.nullable) for a in aggregates]


_KEY = pa.field("key", pa.int64(), nullable=False)
PARTIALS = pa.schema([_KEY, pa.field("category", schema.CATEGORY), *_fields(AGGREGATES)])
BY_KEY = pa.schema([_KEY, *_fields(RESULT_AGGREGATES)])
BY_CATEGORY = pa.schema([pa.field("category", pa.string()), *_fields(RESULT_AGGREGATES)])


class Partials:
    """Combinable aggregates, one row per group: `key`, `cat` (category codes) and one array
    per aggregate (`values`). The min/max of no values hold the ufunc's identity; they become
    nulls only on output."""

    __slots__ = ("cat", "key", "values")

    def __init__(self, key: np.ndarray, cat: np.ndarray, values: dict[str, np.ndarray]):
        self.key, self.cat, self.values = key, cat, values

    def __len__(self) -> int:
        return len(self.key)

    def __getattr__(self, name: str) -> np.ndarray:  # p.rows, p.value_sum, ...
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

    @classmethod
    def from_events(cls, table: pa.Table | pa.RecordBatch, cats: Categories) -> Partials:
        e = Events.of(table, cats)
        return cls(e.key, e.cat, {a.name: a.of_event(e) for a in AGGREGATES})

    @classmethod
    def from_table(cls, table: pa.Table | pa.RecordBatch, cats: Categories) -> Partials:
        values = {a.name: ints(table.column(a.name), a.identity) for a in AGGREGATES}
        return cls(ints(table.column("key")), cats.codes(table.column("category")), values)

    @classmethod
    def concat(cls, parts: Sequence[Partials]) -> Partials:
        if len(parts) == 1:
            return parts[0]
        return cls(
            np.concatenate([p.key for p in parts]),
            np.concatenate([p.cat for p in parts]),
            {a.name: np.concatenate([p.values[a.name] for p in parts]) for a in AGGREGATES},
        )

    def reduce(self, by: str, cats: Categories) -> Partials:
        """Combine rows with equal group keys; `by` is 'key', 'key,category' or 'category'.
        The result is sorted by the group keys (categories in string order)."""
        n = len(self)
        if n == 0:
            return self
        keys = self._group_keys(by, cats)
        presorted = first_unsorted(keys) is None
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
        values = {a.name: _reduceat(a, pick(self.values[a.name]), starts) for a in AGGREGATES}
        return Partials(self.key[first], self.cat[first], values)

    def _scatter(self, slot: np.ndarray, size: int, by: str, lo: int, cats: Categories):
        """Reduce by accumulating into one slot per possible group id (ufunc.at is about 1 ns a
        row for a few thousand slots, a stable argsort 40 times that); the non-empty slots come
        out in group order."""
        rows = np.zeros(size, np.int64)
        np.add.at(rows, slot, self.rows)
        at = np.flatnonzero(rows)  # every group has at least one row
        values = {a.name: _scatter(a, self.values[a.name], slot, size)[at] for a in AGGREGATES}
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
        return Partials(key, cat, values)

    def _group_keys(self, by: str, cats: Categories) -> list[np.ndarray]:
        """Sort keys for `by`, most significant first; (key, category) packed into one int64
        when the key range allows, so one stable argsort does it."""
        if by == "key":
            return [self.key]
        rank = cats.ranks()[self.cat]
        if by == "category":
            return [rank]
        lo, hi = int(self.key.min()), int(self.key.max())
        if (hi - lo + 1) * len(cats.values) < 2**63:
            return [(self.key - lo) * len(cats.values) + rank]
        return [self.key, rank]

    def _aggregate_arrays(self, aggregates: Sequence[Aggregate] = RESULT_AGGREGATES) -> list:
        empty = self.values[NULL_UNLESS] == 0
        return [
            arrow(self.values[a.name], a.type, ~empty if a.nullable else None) for a in aggregates
        ]

    def to_partials(self, cats: Categories) -> pa.Table:
        key = arrow(self.key, pa.int64())
        arrays = [key, cats.array(self.cat), *self._aggregate_arrays(AGGREGATES)]
        return pa.Table.from_arrays(arrays, schema=PARTIALS)

    def to_by_key(self) -> pa.Table:
        key = arrow(self.key, pa.int64())
        return pa.Table.from_arrays([key, *self._aggregate_arrays()], schema=BY_KEY)

    def to_by_category(self, cats: Categories) -> pa.Table:
        arrays = [cats.strings(self.cat), *self._aggregate_arrays()]
        return pa.Table.from_arrays(arrays, schema=BY_CATEGORY)

    def totals(self) -> dict:
        """Whole-dataset totals (SQL semantics: min/max/sum of no values are None)."""
        some = len(self) > 0
        count = int(self.values[NULL_UNLESS].sum()) if some else 0
        out: dict[str, Any] = {}
        for a in AGGREGATES:
            values = self.values[a.name]
            if a.name == "checksum":
                total = int(np.add.reduce(values, dtype=np.uint64)) if some else 0
                out[a.name] = checksum_hex(total)
                continue
            if not some or (a.nullable and count == 0):
                out[a.name] = 0 if a.identity == 0 and not a.nullable else None
                continue
            out[a.name] = int(_reduceat(a, values, np.array([0]))[0])
        return out


def empty_partials() -> Partials:
    return Partials(
        np.empty(0, np.int64),
        np.empty(0, np.int32),
        {a.name: np.empty(0, _dtype(a)) for a in AGGREGATES},
    )


def _dtype(a: Aggregate) -> type:
    return np.uint64 if pa.types.is_unsigned_integer(a.type) else np.int64


def _reduceat(
    a: Aggregate, values: np.ndarray, starts: np.ndarray, *, wraps: bool | None = None
) -> np.ndarray:
    out = a.ufunc.reduceat(values, starts)
    if a.exact and (_may_wrap(values) if wraps is None else wraps):
        _check_sums(out, np.add.reduceat(values.astype(np.float64), starts))
    return out


def _scatter(
    a: Aggregate, values: np.ndarray, slot: np.ndarray, size: int, *, wraps: bool | None = None
) -> np.ndarray:
    out = np.full(size, a.identity, values.dtype)
    a.ufunc.at(out, slot, values)
    if a.exact and (_may_wrap(values) if wraps is None else wraps):
        approx = np.zeros(size, np.float64)
        np.add.at(approx, slot, values.astype(np.float64))
        _check_sums(out, approx)
    return out


@dataclass
class Summarized:
    """A batch of events summarized for the final pod: partials by key (one row per key, keys
    sorted) and by category, and the batch's checksum (the wrapping sum of its row hashes),
    kept apart: the groups' checksum columns are zero, as only the total is ever used."""

    keyed: Partials
    categorized: Partials
    checksum: int

    @property
    def rows(self) -> int:
        return int(self.keyed.rows.sum())


def summarize_events(table: pa.Table | pa.RecordBatch, cats: Categories) -> Summarized:
    """By-key and by-category partials and the checksum of a batch of events, each aggregate
    in one pass over the event columns (the general path would make a one-row partial of every
    event, then reduce twice). Keys sorted (a batch of one input, from our pods): reduceat over
    the key runs; not sorted (an aligned step's rows from several inputs, or a foreign file):
    a scatter into one slot per key of the batch's key range, or per distinct key where that
    range is sparse. The few category codes are slots too."""
    e = Events.of(table, cats)
    n = len(e.key)
    checksum = e.hash_sum()
    category = _by_slot(e, e.cat, len(cats.values))
    categorized = Partials(np.zeros(len(category[0]), np.int64), *category)
    if n and first_unsorted([e.key]) is None:
        starts = np.concatenate([[0], np.flatnonzero(e.key[1:] != e.key[:-1]) + 1])
        keyed = Partials(e.key[starts], np.zeros(len(starts), np.int32), _by_runs(e, starts))
        return Summarized(keyed, categorized, checksum)
    lo, hi = (int(e.key.min()), int(e.key.max())) if n else (0, -1)
    if hi - lo < max(4 * n, 4096):  # dense enough: one slot per key of the range
        at, values = _by_slot(e, e.key - lo, hi - lo + 1)
        key = at + lo
    else:
        distinct, slot = np.unique(e.key, return_inverse=True)
        at, values = _by_slot(e, slot, len(distinct))
        key = distinct[at]
    return Summarized(Partials(key, np.zeros(len(key), np.int32), values), categorized, checksum)


def _by_runs(e: Events, starts: np.ndarray) -> dict[str, np.ndarray]:
    """Every aggregate over the runs of equal keys beginning at `starts` (keys sorted)."""
    n, runs = len(e.key), len(starts)
    rows = np.diff(np.append(starts, n))
    ends = starts + rows - 1
    null_rows = None
    if e.nulls.size:  # nulls are few: count them per run rather than reduce a mask
        null_rows = np.bincount(np.searchsorted(starts, e.nulls, "right") - 1, minlength=runs)
    ts_sorted = first_unsorted([e.key, e.ts]) is None  # runs ordered by ts: min first, max last
    wraps = _may_wrap(e.value)
    out: dict[str, np.ndarray] = {}
    for a in AGGREGATES:
        if not a.in_result:  # not a by-key column: no pass for it
            out[a.name] = np.full(runs, a.identity, _dtype(a))
        elif a.source == "rows":
            out[a.name] = rows
        elif a.source == "valid":
            out[a.name] = rows if null_rows is None else rows - null_rows
        elif a.source == "ts" and ts_sorted and a.ufunc in (np.minimum, np.maximum):
            out[a.name] = e.ts[starts if a.ufunc is np.minimum else ends]
        else:
            out[a.name] = _reduceat(a, a.of_event(e), starts, wraps=wraps)
    return out


def _by_slot(e: Events, slot: np.ndarray, size: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Every aggregate per group id `slot` (0 <= slot < size): the non-empty slots, in order,
    and their aggregates. The hash aggregate is left at zero (Summarized keeps its total)."""
    rows = np.bincount(slot, minlength=size)
    at = np.flatnonzero(rows)
    null_rows = np.bincount(slot[e.nulls], minlength=size) if e.nulls.size else None
    wraps = _may_wrap(e.value)
    out: dict[str, np.ndarray] = {}
    for a in AGGREGATES:
        if a.source == "rows":
            values = rows
        elif a.source == "valid":
            values = rows if null_rows is None else rows - null_rows
        elif a.source == "hash":
            out[a.name] = np.zeros(at.size, _dtype(a))
            continue
        else:
            values = _scatter(a, a.of_event(e), slot, size, wraps=wraps)
        out[a.name] = values[at].astype(_dtype(a), copy=False)
    return at, out


class ByKey:
    """The final pod's by-key result, absorbing partials reduced by key (unique, sorted keys).

    When the key range is known (from the files' Parquet statistics) and not too wide, each key
    has a slot in dense arrays, so absorbing a piece is a scatter rather than a merge of sorted
    runs; otherwise pieces are merged by sorting. Not thread-safe: callers hold a lock."""

    MAX_SLOTS = 1 << 22  # 4M keys: about 260 MB of slots

    def __init__(self, lo: int | None = None, hi: int | None = None):
        self._dense = lo is not None and hi is not None and 0 < hi - lo + 1 <= self.MAX_SLOTS
        self.dense = self._dense
        self._pending: list[Partials] = []
        self._lo = 0
        if self._dense:
            assert lo is not None and hi is not None
            n = hi - lo + 1
            self._lo = lo
            self._slots: dict[str, np.ndarray] = {
                a.name: np.full(n, a.identity, _dtype(a)) for a in RESULT_AGGREGATES
            }
            # float64 twins of the exact sums detect int64 overflow
            self._approx = {a.name: np.zeros(n) for a in RESULT_AGGREGATES if a.exact}

    def add(self, p: Partials) -> None:
        if not self._dense:
            self._pending.append(p)
            if sum(len(x) for x in self._pending) > 1 << 21:
                self._pending = [Partials.concat(self._pending).reduce("key", _NO_CATEGORIES)]
            return
        i = p.key - self._lo
        if i.size and (i[0] < 0 or i[-1] >= len(self._slots["rows"])):
            raise DataError("key outside the range the files' statistics promised")
        for a in RESULT_AGGREGATES:
            slots = self._slots[a.name]
            slots[i] = a.ufunc(slots[i], p.values[a.name])
            if a.exact:
                self._approx[a.name][i] += p.values[a.name]

    def result(self) -> Partials:
        if not self._dense:
            if not self._pending:
                return empty_partials()
            return Partials.concat(self._pending).reduce("key", _NO_CATEGORIES)
        for name, approx in self._approx.items():
            _check_sums(self._slots[name], approx)
        at = np.flatnonzero(self._slots["rows"])
        values = {a.name: self._slots[a.name][at] for a in RESULT_AGGREGATES}
        for a in AGGREGATES:
            if not a.in_result:
                values[a.name] = np.full(at.size, a.identity, _dtype(a))
        return Partials(at + self._lo, np.zeros(at.size, np.int32), values)


_NO_CATEGORIES = Categories()  # reduce("key") never looks at categories


class ByCategory:
    """The final pod's by-category result: a handful of rows, merged piece by piece."""

    def __init__(self, cats: Categories):
        self._cats = cats
        self._result = empty_partials()

    def add(self, *pieces: Partials) -> None:
        """Absorb pieces (partials by category or finer) with one reduce for all of them."""
        both = Partials.concat([self._result, *pieces])
        self._result = both.reduce("category", self._cats)

    def result(self) -> Partials:
        return self._result


class Summary:
    """The final state of both built-in ops: by_key and by_category over events or partials.

    Two ways to absorb the input. With dense slots (the files' key statistics bound the range
    to at most ByKey.MAX_SLOTS keys) the final pod's reader threads summarize batches from
    every file independently and scatter them into the slots. Otherwise the state `streams`:
    the pod walks all files in step by key (kernels.align), every step's keys are complete, and
    their by_key rows are written as they come, so time is linear in the rows and memory is
    bounded by the batches and the fan-in, not by the number of distinct keys (before, past 4M
    keys, pieces were concatenated and reduced again and again: 285 s and 3.2 GB at 10M keys).
    A step's parts, one per input, are summarized as one table: one pass per aggregate a step,
    not one per part (at 32 inputs a part holds about 2k rows, and the per-part calls cost more
    than the rows).

    The checksum is kept as one running total: the groups' checksum columns are not used.
    """

    def __init__(self, *, events: bool, cats: Categories, key_range: tuple):
        self._events, self._cats = events, cats
        self._by_key = ByKey(*key_range)
        self._by_category = ByCategory(cats)
        self.streaming = not self._by_key.dense
        self.aligned_by = ("key",)  # a streamed step holds every row of its keys
        self._streamed_rows = self._streamed_keys = 0
        self._checksum = 0

    def summarize(self, batch: pa.RecordBatch | pa.Table) -> Summarized:
        if self._events:
            return summarize_events(batch, self._cats)
        p = Partials.from_table(batch, self._cats)
        checksum = _total(p.values["checksum"])
        return Summarized(p.reduce("key", self._cats), p.reduce("category", self._cats), checksum)

    def absorb(self, piece: Summarized) -> None:
        self._by_key.add(piece.keyed)
        self._by_category.add(piece.categorized)
        self._checksum = (self._checksum + piece.checksum) & 0xFFFFFFFFFFFFFFFF

    STEP_ROWS = 1 << 18  # rows summarized at a time: bounds the step's numpy temporaries

    def step(self, parts: Sequence[pa.Table | None]) -> tuple[dict[str, pa.Table], list[int]]:
        """One aligned step over every input (None where an input has no rows in it): the
        by_key rows of its keys, complete now, and the input rows behind each part.

        A step can hold a batch of every input (the first holds about batch rows x fan-in:
        2M rows at 32 inputs), so it is summarized in slices of about STEP_ROWS rows cut at
        key values, each slice's keys complete: at 10M keys over 32 inputs that took the pod's
        peak from about 650 MB to 420 MB."""
        present = [p for p in parts if p is not None]
        rows = [0 if p is None else self._rows(p) for p in parts]
        tables = [self._summarize_step(piece) for piece in _key_slices(present, self.STEP_ROWS)]
        return {"by_key": pa.concat_tables(tables)}, rows

    def _summarize_step(self, parts: list[pa.Table]) -> pa.Table:
        # One table of one chunk a column: Arrow concatenates (and unifies the parts' category
        # dictionaries) in C++, 0.3 ms a step of 32 parts; converting 32 chunks a column to
        # numpy one by one cost 5 ms.
        piece = self.summarize(pa.concat_tables(parts).combine_chunks())
        self._by_category.add(piece.categorized)
        self._checksum = (self._checksum + piece.checksum) & 0xFFFFFFFFFFFFFFFF
        self._streamed_rows += int(piece.keyed.rows.sum())
        self._streamed_keys += len(piece.keyed)
        return piece.keyed.to_by_key()

    def _rows(self, part: pa.Table) -> int:
        """Input rows behind a part: events are one each; a partial says how many."""
        return part.num_rows if self._events else _total(ints(part.column("rows")))

    def result(self) -> tuple[dict[str, pa.Table], dict[str, Any]]:
        by_category = self._by_category.result()
        totals = by_category.totals()
        totals["checksum"] = checksum_hex(self._checksum)
        tables = {}
        if self.streaming:
            keyed_rows, distinct = self._streamed_rows, self._streamed_keys
            if distinct == 0:
                tables["by_key"] = empty_partials().to_by_key()
        else:
            by_key = self._by_key.result()
            keyed_rows, distinct = int(by_key.rows.sum()), len(by_key)
            tables["by_key"] = by_key.to_by_key()
        if totals["rows"] != keyed_rows:
            raise DataError(  # the two paths disagree: never publish that
                f"result would not add up: {totals['rows']} rows by category, {keyed_rows} by key"
            )
        totals["distinct_keys"] = distinct
        tables["by_category"] = by_category.to_by_category(self._cats)
        return tables, totals


def _key_slices(parts: list[pa.Table], rows: int) -> list[list[pa.Table]]:
    """Key-sorted parts cut into slices of about `rows` rows in all, at key values (quantiles
    of the largest part's keys), so no key straddles two slices."""
    total = sum(p.num_rows for p in parts)
    if total <= rows:
        return [parts]
    keys = [ints(p.column("key")) for p in parts]
    largest = max(keys, key=len)
    count = -(-total // rows)
    bounds = np.unique(largest[[len(largest) * j // count for j in range(1, count)]])
    cuts = [np.searchsorted(k, bounds, "left") for k in keys]
    slices = []
    for j in range(len(bounds) + 1):
        piece = []
        for part, cut in zip(parts, cuts, strict=True):
            start = 0 if j == 0 else int(cut[j - 1])
            end = part.num_rows if j == len(bounds) else int(cut[j])
            if end > start:
                piece.append(part.slice(start, end - start))
        if piece:
            slices.append(piece)
    return slices


class AggregateOp:
    name = "aggregate"
    checks_manifest = True

    def schema(self, level: int) -> pa.Schema:
        return schema.EVENTS if level == 1 else PARTIALS

    def sorted_by(self, level: int) -> tuple[str, ...]:
        return ("key", "ts") if level == 1 else ("key", "category")

    def aligned_by(self, level: int) -> tuple[str, ...]:
        return ("key",)  # no (key, category) group straddles two steps

    def combine(self, parts: Sequence[pa.Table], level: int, cats: Categories) -> Step:
        convert = Partials.from_events if level == 1 else Partials.from_table
        partials = Partials.concat([convert(p, cats) for p in parts])
        reduced = partials.reduce("key,category", cats)
        conserved = {
            name: (_total(partials.values[name]), _total(reduced.values[name]))
            for name in ("rows", "checksum")
        }
        return Step(reduced.to_partials(cats), conserved)

    def final(self, level: int, cats: Categories, key_range) -> Summary:
        return Summary(events=level == 1, cats=cats, key_range=key_range)


def _total(values: np.ndarray) -> int:
    """A wrapping uint64 sum (rows never come near it)."""
    return int(np.add.reduce(values.view(np.uint64), dtype=np.uint64))


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
