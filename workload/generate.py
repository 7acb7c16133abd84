"""Deterministic sample data: N files of `events`, each sorted by (key, ts).

Every file draws its rows over the whole key space [0, keys), so every file overlaps every other.
A file is produced key range by key range (a multinomial draw gives each key's row count up
front), so memory stays flat however many rows a file has. Same arguments, same bytes.

The generator also computes what the final result must be (totals, distinct keys, the
order-independent checksum) and records it in l1/_manifest.json for `workload verify`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

from . import __version__, layout, schema
from .errors import UsageError
from .kernels.categories import Categories
from .ops.aggregate import Partials, empty_partials
from .storage import Store
from .storage.parquet import Sink

CATEGORIES = [f"c{i:02d}" for i in range(50)]
TS_START = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1_000_000)
TS_SPAN = 365 * 24 * 3600 * 1_000_000
VALUE_LIMIT = 1_000_000
NULL_FRACTION = 0.01
CHUNK_ROWS = 262_144


def key_weights(keys: int, skew: float) -> np.ndarray:
    """Probability of each key: uniform for skew 0, Zipf-like (rank ** -skew) otherwise."""
    if skew <= 0:
        return np.full(keys, 1.0 / keys)
    w = np.arange(1, keys + 1, dtype=np.float64) ** -skew
    return w / w.sum()


def file_chunks(index: int, rows: int, keys: int, seed: int, skew: float):
    """The rows of input file `index` as sorted record batches of about CHUNK_ROWS rows."""
    rng = np.random.default_rng([seed, index])
    counts = rng.multinomial(rows, key_weights(keys, skew)) if rows else np.zeros(keys, np.int64)
    ends = np.cumsum(counts)
    # Cut at key boundaries so no key straddles two chunks (each chunk sorts on its own).
    cuts = np.unique(np.searchsorted(ends, np.arange(CHUNK_ROWS, rows, CHUNK_ROWS), "left"))
    starts = np.concatenate([[0], cuts + 1])
    stops = np.concatenate([cuts + 1, [keys]])
    dictionary = pa.array(CATEGORIES, pa.string())
    for lo, hi in zip(starts, stops, strict=True):
        n = int(counts[lo:hi].sum())
        if n == 0:
            continue
        key = np.repeat(np.arange(lo, hi, dtype=np.int64), counts[lo:hi])
        ts = TS_START + rng.integers(0, TS_SPAN, n, dtype=np.int64)
        order = np.lexsort((ts, key))
        ts = ts[order]
        value = rng.integers(-VALUE_LIMIT, VALUE_LIMIT + 1, n, dtype=np.int64)
        null = rng.random(n) < NULL_FRACTION
        category = rng.integers(0, len(CATEGORIES), n, dtype=np.int32)
        yield pa.RecordBatch.from_arrays(
            [
                pa.array(key),
                pa.array(ts).view(schema.TS),
                pa.array(value, mask=null),
                pa.DictionaryArray.from_arrays(pa.array(category), dictionary),
            ],
            schema=schema.EVENTS,
        )


def generate(
    store: Store,
    files: int,
    rows: int | Sequence[int],
    keys: int,
    seed: int = 0,
    skew: float = 0.0,
    row_group_rows: int = 262_144,
    progress=None,
) -> dict:
    """Write l1/0..files-1 and the manifest; return the manifest."""
    layout.check_positive("files", files, minimum=1)
    layout.check_positive("keys", keys, minimum=1)
    layout.check_positive("seed", seed, minimum=0)
    if not (isinstance(skew, int | float) and math.isfinite(skew) and skew >= 0):
        raise UsageError(f"skew must be a finite number >= 0, got {skew!r}")
    per_file = [rows] * files if isinstance(rows, int) else list(rows)
    if len(per_file) != files:
        raise UsageError(f"rows lists {len(per_file)} files but files is {files}")
    for r in per_file:
        layout.check_positive("rows", r, minimum=0)
    started = time.perf_counter()
    cats = Categories()
    totals: list[Partials] = []
    present = np.zeros(keys, dtype=bool)
    for i in range(files):
        with (
            store.output(layout.level_file(1, i)) as out,
            Sink(
                out.path,
                schema.EVENTS,
                sorted_by=schema.EVENTS_SORTED_BY,
                row_group_rows=row_group_rows,
            ) as sink,
        ):
            for batch in file_chunks(i, per_file[i], keys, seed, skew):
                sink.write(batch)
                p = Partials.from_events(batch, cats)
                present[p.key] = True
                totals.append(p.reduce("category", cats))  # small: one row per category
        if progress:
            progress(i + 1, files)
    total = Partials.concat(totals).reduce("category", cats) if totals else None
    expected = (total if total is not None else empty_partials()).totals()
    expected["distinct_keys"] = int(present.sum())
    manifest = {
        "schema": "events",
        "columns": schema.describe(schema.EVENTS),
        "files": files,
        "rows_per_file": per_file,
        "rows": int(sum(per_file)),
        "keys": keys,
        "seed": seed,
        "skew": skew,
        "expected": expected,
        "generator": {"workload": __version__, "pyarrow": pa.__version__, "numpy": np.__version__},
        "seconds": round(time.perf_counter() - started, 3),
    }
    store.write_json(layout.MANIFEST, manifest)
    return manifest
