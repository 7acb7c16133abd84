"""What is checked, in the parent, after each child and outside any timing.

Every engine's output is checked against what its inputs must give (`expected_totals`: rows,
sums, min/max, distinct keys and workload's order-independent checksum of all rows), then the
engines of one repeat are compared with each other:
- events out (pod_merge, s3, rss merge): the events schema (category as dictionary/categorical
  or plain string), zstd, every row present, sorted by (key, ts) (except a plain concatenation),
  and the same multiset of rows as the inputs (equal checksum and row count);
- partials out (pod_aggregate, rss aggregate): one row per (key, category), sorted, totals equal
  to the inputs', and the same table for every engine (ours' extra checksum column must add up
  to the inputs' checksum);
- results (final, job): by_key strictly sorted with one row per distinct key, by_category sorted
  (nulls last), totals equal to the inputs', and by_key and by_category equal across engines.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from workload import schema
from workload.kernels.categories import Categories
from workload.kernels.checksum import checksum_hex
from workload.ops.aggregate import BY_CATEGORY, BY_KEY, PARTIALS, Partials

Source = Any  # a local path, or a pyarrow Buffer (an object fetched from S3)

# Columns compared across engines, with the types everything is normalized to before comparing
# (engines differ in integer widths, string flavours and dictionary encoding, not in values).
PARTIAL_COLUMNS = {f.name: f.type for f in PARTIALS if f.name != "checksum"}
PARTIAL_COLUMNS["category"] = pa.string()
BY_KEY_COLUMNS = {f.name: f.type for f in BY_KEY}
BY_CATEGORY_COLUMNS = {f.name: f.type for f in BY_CATEGORY}


@dataclass
class Checked:
    """One engine's output: its problems (empty = correct) and its answer, for comparing."""

    problems: list[str]
    answer: Any = None


# -- what the inputs must give ---------------------------------------------------------------
def expected_totals(paths: list[Source], keys: int) -> dict:
    """Totals, distinct keys and checksum of the rows of `paths` (as the generator computes
    them for its manifest), streaming batch by batch."""
    cats = Categories()
    parts: list[Partials] = []
    present = np.zeros(keys, dtype=bool)
    for path in paths:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=262_144):
            p = Partials.from_events(batch, cats)
            present[p.key] = True
            parts.append(p.reduce("category", cats))  # small: one row per category
    totals = Partials.concat(parts).reduce("category", cats).totals()
    return {**totals, "distinct_keys": int(present.sum())}


# -- events ----------------------------------------------------------------------------------
def check_events(sources: list[Source], expected: dict, must_be_sorted: bool = True) -> Checked:
    problems: list[str] = []
    for src in sources:
        problems += _zstd(src)
    file = pq.ParquetFile(sources[0])
    problems += _events_schema(file.schema_arrow)
    if problems:
        return Checked(problems)
    cats = Categories()
    rows, checksum, last, unsorted_at = 0, 0, None, None
    for batch in file.iter_batches(batch_size=262_144):
        p = Partials.from_events(batch, cats)
        checksum = (checksum + int(np.add.reduce(p.checksum, dtype=np.uint64))) % 2**64
        if must_be_sorted and unsorted_at is None:
            bad = _first_unsorted(p.key, p.ts_min, last)
            if bad is not None:
                unsorted_at = rows + bad
            last = (int(p.key[-1]), int(p.ts_min[-1]))
        rows += batch.num_rows
    if rows != expected["rows"]:
        problems.append(f"has {rows} rows, the inputs {expected['rows']}")
    if checksum_hex(checksum) != expected["checksum"]:
        problems.append("rows differ from the inputs' (checksum of the row multiset differs)")
    if unsorted_at is not None:
        problems.append(f"not sorted by (key, ts) at row {unsorted_at}")
    return Checked(problems, answer=(rows, checksum_hex(checksum)))


def _events_schema(got: pa.Schema) -> list[str]:
    want = {"key": pa.int64(), "ts": schema.TS, "value": pa.int64()}
    if got.names != schema.EVENTS.names:
        return [f"columns {got.names}, expected {schema.EVENTS.names}"]
    problems = [
        f"{name} is {got.field(name).type}, expected {kind}"
        for name, kind in want.items()
        if not got.field(name).type.equals(kind)
    ]
    category = got.field("category").type
    if pa.types.is_dictionary(category):
        category = category.value_type
    if not (pa.types.is_string(category) or pa.types.is_large_string(category)):
        problems.append(f"category is {got.field('category').type}, expected strings")
    return problems


def _first_unsorted(key: np.ndarray, ts: np.ndarray, last: tuple | None) -> int | None:
    if last is not None and len(key) and (int(key[0]), int(ts[0])) < last:
        return 0
    d = np.diff(key)
    bad = np.flatnonzero((d < 0) | ((d == 0) & (np.diff(ts) < 0)))
    return int(bad[0]) + 1 if bad.size else None


# -- partials and results --------------------------------------------------------------------
def check_partials(source: Source, expected: dict) -> Checked:
    problems = _zstd(source)
    raw = pq.read_table(source)
    table, missing = normalize(raw, PARTIAL_COLUMNS)
    if missing:
        return Checked(problems + missing)
    problems += _sorted_unique(table, ["key", "category"], "(key, category)")
    problems += _sums(table, expected, "partials")
    if "checksum" in raw.column_names:  # ours carries each group's share of the checksum
        total = int(np.add.reduce(raw.column("checksum").to_numpy(), dtype=np.uint64))
        if checksum_hex(total) != expected["checksum"]:
            problems.append("partials' checksums do not add up to the inputs' checksum")
    return Checked(problems, answer=table)


def check_results(by_key_src: Source, by_category_src: Source, expected: dict) -> Checked:
    problems = _zstd(by_key_src) + _zstd(by_category_src)
    by_key, missing = normalize(pq.read_table(by_key_src), BY_KEY_COLUMNS)
    by_category, missing_c = normalize(pq.read_table(by_category_src), BY_CATEGORY_COLUMNS)
    if missing or missing_c:
        return Checked(problems + missing + missing_c)
    problems += _sorted_unique(by_key, ["key"], "key")
    problems += _sorted_unique(by_category, ["category"], "category")
    if by_key.num_rows != expected["distinct_keys"]:
        problems.append(f"by_key has {by_key.num_rows} rows, expected {expected['distinct_keys']}")
    problems += _sums(by_key, expected, "by_key") + _sums(by_category, expected, "by_category")
    for name, agg in (("value_min", "min"), ("value_max", "max"), ("ts_min", "min")):
        got = _int(pc.min_max(by_category.column(name))[agg])
        if got != expected[name]:
            problems.append(f"by_category {agg}({name}) is {got}, expected {expected[name]}")
    return Checked(problems, answer=(by_key, by_category))


def normalize(table: pa.Table, columns: dict[str, pa.DataType]) -> tuple[pa.Table, list[str]]:
    """The columns cast to common types (dictionary and large strings become plain strings)."""
    missing = [name for name in columns if name not in table.column_names]
    if missing:
        return table, [f"missing columns {missing} (has {table.column_names})"]
    out = {}
    for name, kind in columns.items():
        col = table.column(name)
        if pa.types.is_dictionary(col.type):
            col = col.cast(col.type.value_type)
        out[name] = col.cast(kind).combine_chunks()
    return pa.table(out), []


def _sorted_unique(table: pa.Table, by: list[str], what: str) -> list[str]:
    """Rows strictly increasing by `by` (strings in string order, nulls last): sorted, and one
    row per group."""
    cols = [_ranks(table.column(c)) for c in by]
    if table.num_rows < 2:
        return []
    step = np.diff(cols[0])
    increasing, equal = step > 0, step == 0
    for col in cols[1:]:
        step = np.diff(col)
        increasing |= equal & (step > 0)
        equal &= step == 0
    bad = np.flatnonzero(~increasing)
    if not bad.size:
        return []
    i = int(bad[0]) + 1
    return [f"{'repeated' if equal[i - 1] else 'not sorted by'} {what} at row {i}"]


def _ranks(column: pa.ChunkedArray) -> np.ndarray:
    """Integers ordered like the column (a string's rank among the distinct strings)."""
    if not pa.types.is_string(column.type):
        return column.to_numpy()
    values = pc.unique(column).drop_null()
    values = values.take(pc.array_sort_indices(values))
    return pc.fill_null(pc.index_in(column, value_set=values), len(values)).to_numpy()


def _sums(table: pa.Table, expected: dict, what: str) -> list[str]:
    problems = []
    for name in ("rows", "value_count", "value_sum"):
        got = _int(pc.sum(table.column(name)))
        if (got or 0) != (expected[name] or 0):
            problems.append(f"{what}.{name} sums to {got}, the inputs to {expected[name]}")
    return problems


def _int(scalar: pa.Scalar) -> int | None:
    if not scalar.is_valid:
        return None
    if pa.types.is_timestamp(scalar.type):
        return scalar.cast(pa.int64()).as_py()
    return scalar.as_py()


def _zstd(source: Source) -> list[str]:
    meta = pq.ParquetFile(source).metadata
    codecs = {
        meta.row_group(g).column(c).compression
        for g in range(meta.num_row_groups)
        for c in range(meta.num_columns)
    }
    return [] if codecs <= {"ZSTD"} else [f"compression {sorted(codecs)}, expected ZSTD"]


# -- across engines --------------------------------------------------------------------------
def disagreements(answers: dict[str, Any]) -> dict[str, list[str]]:
    """Each engine's answer against the first engine's (ours): the problems of those differing."""
    engines = list(answers)
    if len(engines) < 2:
        return {}
    first, reference = engines[0], answers[engines[0]]
    out: dict[str, list[str]] = {}
    for engine in engines[1:]:
        answer = answers[engine]
        pairs = (
            list(zip(reference, answer, strict=True))
            if isinstance(reference, tuple)
            else [(reference, answer)]
        )
        for ref, got in pairs:
            if isinstance(ref, pa.Table):
                diff = first_difference(ref, got)
                if diff:
                    out.setdefault(engine, []).append(f"differs from {first}: {diff}")
            elif ref != got:
                out.setdefault(engine, []).append(f"differs from {first}: {got} vs {ref}")
    return out


def first_difference(a: pa.Table, b: pa.Table) -> str | None:
    """None when equal, else where they first differ (for a readable failure)."""
    if a.equals(b):
        return None
    if a.schema != b.schema:
        return f"schema ({a.schema}) vs ({b.schema})"
    if a.num_rows != b.num_rows:
        return f"{a.num_rows} rows vs {b.num_rows}"
    for name in a.column_names:
        x, y = a.column(name), b.column(name)
        same = pc.or_kleene(pc.equal(x, y), pc.and_(pc.is_null(x), pc.is_null(y)))
        differ = np.flatnonzero(~pc.fill_null(same, False).to_numpy(zero_copy_only=False))
        if differ.size:
            i = int(differ[0])
            return f"column {name} row {i}: {x[i].as_py()!r} vs {y[i].as_py()!r}"
    return "tables differ"
