"""The dataset checksum: a wrapping uint64 sum of per-row hashes, so any tree shape, file split or
row order gives the same value, and partials combine it by addition."""

from __future__ import annotations

import numpy as np

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
