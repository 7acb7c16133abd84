"""The merge op: k sorted event files become one, sorted by (key, ts), every row kept, ties in
input order. Its final pod summarizes the events (the same result as the aggregate op's)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from .. import schema
from ..kernels.categories import Categories
from . import Step
from .aggregate import Summary


class _Scratch(threading.local):
    """Work arrays reused from call to call (one set per thread, grown by a quarter when a call
    needs more; about 4 MB at the default batch size). A fresh multi-MB numpy array is fresh
    memory that the kernel faults in page by page: on the 2-vCPU VM measured, 3.6 us a page,
    more than the arithmetic done in it (the old merge made 8,000 faults a pod, the copy 270)."""

    def __init__(self) -> None:
        self._arrays: dict[str, np.ndarray] = {}

    def get(self, name: str, n: int, dtype) -> np.ndarray:
        have = self._arrays.get(name)
        if have is None or len(have) < n:
            have = self._arrays[name] = np.empty(max(n + n // 4, 1 << 16), dtype)
        return have[:n]


_scratch = _Scratch()


def _raw(chunk: pa.Array, dtype) -> np.ndarray:
    """A fixed-width chunk's values as numpy, without copying (whatever lies under its nulls)."""
    return np.frombuffer(chunk.buffers()[1], dtype)[chunk.offset : chunk.offset + len(chunk)]


def _joined(name: str, chunks: list[np.ndarray], n: int, dtype) -> np.ndarray:
    """The chunks one after another, in a scratch array."""
    if len(chunks) == 1:
        return chunks[0]
    out = _scratch.get(name, n, dtype)
    at = 0
    for c in chunks:
        out[at : at + len(c)] = c
        at += len(c)
    return out


def _arrow_out(n: int, dtype) -> tuple[pa.Buffer, np.ndarray]:
    """An output column's buffer from Arrow's memory pool, which reuses the pages of the batches
    the pod has done with, and a numpy view to fill it through (numpy's own arrays of this size
    are fresh mappings each time: 8,300 page faults a pod against 1,900)."""
    buffer = pa.allocate_buffer(n * np.dtype(dtype).itemsize)
    return buffer, np.frombuffer(buffer, dtype)


def _codes(cats: Categories, chunks: Sequence[pa.Array]) -> list[np.ndarray]:
    """Registry codes per non-empty chunk (a chunk written with the registry's own dictionary,
    the usual case, costs no gather: Categories.codes hands its indices back)."""
    return [cats.codes(chunk) for chunk in chunks if len(chunk)]


def _packing(key_chunks: list[np.ndarray], ts_chunks: list[np.ndarray]) -> tuple | None:
    """(k_min, t_min, bits) such that (key - k_min) << bits | (ts - t_min) is one integer below
    2**63 that sorts as (key, ts), or None when the pairs do not fit in one."""
    # Each run is sorted by key: its first and last keys bound it (no pass over the keys).
    k_min = min(int(c[0]) for c in key_chunks)
    k_max = max(int(c[-1]) for c in key_chunks)
    t_min = min(int(c.min()) for c in ts_chunks)
    t_max = max(int(c.max()) for c in ts_chunks)
    bits = (t_max - t_min).bit_length()
    fits = bits <= 63 and k_max - k_min < 1 << (63 - bits)
    return (k_min, t_min, bits) if fits else None


def _merge_keys(key_chunks, ts_chunks, n: int, key_out: np.ndarray, ts_out: np.ndarray):
    """The stable order by (key, ts) of runs each sorted by (key, ts), and the merged key and
    ts columns written into key_out and ts_out.

    The pair packed into one integer sorts with one stable argsort (timsort finds the runs and
    merges them), and the sorted packed values unpack into both columns with a mask and a
    shift: one gather instead of a copy and a gather per column. The arithmetic is on uint64
    views, where wrapping is defined and every result is exact."""
    packing = _packing(key_chunks, ts_chunks)
    if packing is None:
        keys = _joined("key", key_chunks, n, np.int64)
        ts = _joined("ts", ts_chunks, n, np.int64)
        order = np.lexsort((ts, keys))
        np.take(keys, order, out=key_out, mode="clip")
        np.take(ts, order, out=ts_out, mode="clip")
        return order
    k_min, t_min, bits = packing
    # (key << bits) + ts - base, modulo 2**64, is exactly (key - k_min) << bits | (ts - t_min)
    base = np.uint64(((k_min << bits) + t_min) % 2**64)
    k_min, t_min = np.uint64(k_min % 2**64), np.uint64(t_min % 2**64)
    packed = _scratch.get("packed", n, np.uint64)
    at = 0
    for c in key_chunks:
        np.left_shift(c.view(np.uint64), np.uint64(bits), out=packed[at : at + len(c)])
        at += len(c)
    at = 0
    for c in ts_chunks:
        np.add(packed[at : at + len(c)], c.view(np.uint64), out=packed[at : at + len(c)])
        at += len(c)
    np.subtract(packed, base, out=packed)
    order = np.argsort(packed, kind="stable")
    keys_u, ts_u = key_out.view(np.uint64), ts_out.view(np.uint64)
    np.take(packed, order, out=keys_u, mode="clip")  # "clip": unbuffered; order is in range
    np.bitwise_and(keys_u, np.uint64((1 << bits) - 1), out=ts_u)
    np.add(ts_u, t_min, out=ts_u)
    np.right_shift(keys_u, np.uint64(bits), out=keys_u)
    np.add(keys_u, k_min, out=keys_u)
    return order


def _categories(cats: Categories, codes: np.ndarray, size: int) -> pa.DictionaryArray:
    """Codes as cats.array made them when the registry held its first `size` values: over
    that dictionary (the registry only grows, so it is a prefix of today's)."""
    array = cats.array(codes)
    if size == len(cats.values):
        return array
    prefix = cats.dictionary().slice(0, cats.dictionary_size(size))
    return pa.DictionaryArray.from_arrays(array.indices, prefix)


def merge_events(parts: Sequence[pa.Table], cats: Categories) -> pa.Table:
    """One sorted events table from sorted parts; ties keep part order, then row order."""
    return merge_steps([parts], cats)


def merge_steps(steps: Sequence[Sequence[pa.Table | None]], cats: Categories) -> pa.Table:
    """Consecutive aligned steps (one part per input, None where an input has no rows) merged
    as one: the same table, bytes and all, as merging the steps one by one and concatenating.

    Each step sorts above the one before, so input i's parts in the steps are one sorted run,
    and the steps' rows follow one another in the output (process._work says why it groups).
    The category registry is grown step by step, as before, and each step's rows keep the
    dictionary the registry had after that step: a dictionary that changes inside a column
    chunk makes the writer fall back to plain encoding there, so where it changes is part of
    the bytes.

    One run needs no sort. Several: one order and the merged keys (_merge_keys), then one
    gather per other column into the output buffers, in numpy (Arrow's take on a chunked
    column, and the first import of pyarrow.compute that it makes, cost more than the merge).
    """
    runs: list[list[pa.Table]] = [[] for _ in steps[0]]
    run_codes: list[list[np.ndarray]] = [[] for _ in steps[0]]
    segments: list[tuple[int, int]] = []  # (rows so far, registry size) where the size changes
    n = 0
    for parts in steps:
        for i, part in enumerate(parts):
            if part is not None:
                runs[i].append(part)
                run_codes[i] += _codes(cats, part.column("category").chunks)
                n += part.num_rows
        size = len(cats.values)
        if segments and segments[-1][1] == size:
            segments[-1] = (n, size)
        else:
            segments.append((n, size))
    tables = [t for run in runs for t in run]
    chunks = {
        name: [c for t in tables for c in t.column(name).chunks if len(c)]
        for name in ("key", "ts", "value")
    }
    codes = [c for run in run_codes for c in run]
    if sum(1 for run in runs if run) == 1:
        columns = [
            pa.chunked_array(chunks[name], schema.EVENTS.field(name).type)
            for name in ("key", "ts", "value")
        ]
        # Not the scratch array: the output table keeps what it is made of.
        code_out = codes[0] if len(codes) == 1 else np.concatenate([*codes, np.empty(0, np.int32)])
    else:
        key_buffer, key_out = _arrow_out(n, np.int64)
        ts_buffer, ts_out = _arrow_out(n, np.int64)
        order = _merge_keys(
            [_raw(c, np.int64) for c in chunks["key"]],
            [_raw(c, np.int64) for c in chunks["ts"]],
            n,
            key_out,
            ts_out,
        )
        value_chunks = chunks["value"]
        values = _joined("value", [_raw(c, np.int64) for c in value_chunks], n, np.int64)
        value_buffer, value_out = _arrow_out(n, np.int64)
        np.take(values, order, out=value_out, mode="clip")  # "clip": unbuffered; in range
        nulls = sum(c.null_count for c in value_chunks)
        valid = None
        if nulls:
            valid_in = _scratch.get("valid", n, np.bool_)
            at = 0
            for c in value_chunks:
                if c.null_count:
                    bits = np.unpackbits(np.frombuffer(c.buffers()[0], np.uint8), bitorder="little")
                    valid_in[at : at + len(c)] = bits[c.offset : c.offset + len(c)].view(np.bool_)
                else:
                    valid_in[at : at + len(c)] = True
                at += len(c)
            valid_out = _scratch.get("valid_out", n, np.bool_)
            np.take(valid_in, order, out=valid_out, mode="clip")
            valid = pa.py_buffer(np.packbits(valid_out, bitorder="little"))
        _, code_out = _arrow_out(n, np.int32)
        np.take(_joined("codes", codes, n, np.int32), order, out=code_out, mode="clip")
        columns = [
            pa.Array.from_buffers(pa.int64(), n, [None, key_buffer]),
            pa.Array.from_buffers(schema.TS, n, [None, ts_buffer]),
            pa.Array.from_buffers(pa.int64(), n, [valid, value_buffer], nulls),
        ]
    start = 0
    categories = []
    for end, size in segments:
        categories.append(_categories(cats, code_out[start:end], size))
        start = end
    category = categories[0] if len(categories) == 1 else pa.chunked_array(categories)
    return pa.Table.from_arrays([*columns, category], schema=schema.EVENTS)


class MergeOp:
    name = "merge"
    checks_manifest = True

    def schema(self, level: int) -> pa.Schema:
        return schema.EVENTS

    def sorted_by(self, level: int) -> tuple[str, ...]:
        return ("key", "ts")

    def aligned_by(self, level: int) -> tuple[str, ...]:
        return ("key", "ts")

    def combine(self, parts: Sequence[pa.Table], level: int, cats: Categories) -> Step:
        return self.combine_steps([parts], level, cats)

    def combine_steps(
        self, steps: Sequence[Sequence[pa.Table | None]], level: int, cats: Categories
    ) -> Step:
        """Several consecutive aligned steps at once (process.py groups them: see
        merge_steps): the same output as combining them one by one."""
        table = merge_steps(steps, cats)
        rows_in = sum(p.num_rows for parts in steps for p in parts if p is not None)
        return Step(table, {"rows": (rows_in, table.num_rows)})

    def final(self, level: int, cats: Categories, key_range) -> Summary:
        return Summary(events=True, cats=cats, key_range=key_range)
