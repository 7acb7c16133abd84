"""One registry of category strings per pod, so a code means the same in every batch."""

from __future__ import annotations

import hashlib
import threading

import numpy as np
import pyarrow as pa

from .columns import arrow


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
        assert self._arrow is not None
        return self._arrow

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
        valid = (codes != none) if none is not None else None
        indices = arrow(codes.astype(np.int32, copy=False), pa.int32(), valid)
        return pa.DictionaryArray.from_arrays(indices, self.dictionary())

    def strings(self, codes: np.ndarray) -> pa.Array:
        return self.array(codes).cast(pa.string())
