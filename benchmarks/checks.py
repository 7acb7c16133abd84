"""What is checked, in the parent, after each child and outside any timing.

Every output against what its inputs must give, then the engines of one repeat against each
other (each against the first, ours):
- events (pod_merge, s3, rss merge): the events schema (category as dictionary or plain
  strings), zstd, sorted by (key, ts) unless the engine only concatenates, and the inputs' rows:
  the same count and workload's order-independent checksum of the row multiset;
- partials (pod_aggregate, rss aggregate) and results (final, job): zstd, and equal to the
  answer of workload.testing.oracle's DuckDB SQL over the same inputs (so sorted, one row per
  group, every aggregate right); ours' partials' checksum column adds up to the inputs'.
Types are normalized first: engines differ in integer widths, string flavours and dictionary
encoding, not in values.
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
PARTIAL_COLUMNS = {f.name: f.type for f in PARTIALS if f.name != "checksum"}
PARTIAL_COLUMNS["category"] = pa.string()
RESULT_COLUMNS = ({f.name: f.type for f in BY_KEY}, {f.name: f.type for f in BY_CATEGORY})


@dataclass
class Checked:
    """One engine's output: its problems (empty = correct) and its answer, for comparing."""

    problems: list[str]
    answer: Any = None


def expected_totals(paths: list[Source]) -> dict:
    """Totals and checksum of the rows of `paths`, as the generator computes them for its
    manifest, streaming batch by batch."""
    cats = Categories()
    parts = [
        Partials.from_events(batch, cats).reduce("category", cats)  # one row per category
        for path in paths
        for batch in pq.ParquetFile(path).iter_batches(batch_size=262_144)
    ]
    return Partials.concat(parts).reduce("category", cats).totals()


def oracle(paths: list[Any], partials: bool = False) -> Any:
    """The inputs' answer from the tests' DuckDB oracle, normalized: (by_key, by_category), or
    the partials, one row per (key, category) with the oracle's aggregates."""
    import duckdb

    from workload.testing.oracle import AGGREGATES_SQL, duckdb_result, parquet_source

    files = [str(p) for p in paths]
    if partials:
        table = duckdb.sql(
            f"SELECT key, category::VARCHAR AS category, {AGGREGATES_SQL} "
            f"FROM {parquet_source(files)} GROUP BY key, category "
            "ORDER BY key, category NULLS LAST"
        ).to_arrow_table()
        return normalize(table, PARTIAL_COLUMNS)[0]
    tables = duckdb_result(files)
    return tuple(normalize(t, c)[0] for t, c in zip(tables, RESULT_COLUMNS, strict=True))


def check_events(sources: list[Source], expected: dict, must_be_sorted: bool = True) -> Checked:
    """The rows of all `sources` together against the inputs' (each source sorted, if asked)."""
    problems = [p for src in sources for p in _zstd(src)]
    for src in sources:
        problems += _events_schema(pq.ParquetFile(src).schema_arrow)
    if problems:
        return Checked(sorted(set(problems)))
    cats = Categories()
    rows, checksum, unsorted_at = 0, 0, None
    for src in sources:
        last = None
        for batch in pq.ParquetFile(src).iter_batches(batch_size=262_144):
            p = Partials.from_events(batch, cats)
            checksum = (checksum + int(np.add.reduce(p.checksum, dtype=np.uint64))) % 2**64
            if must_be_sorted and unsorted_at is None and len(p.key):
                keys = np.column_stack([p.key, p.ts_min])
                if last is not None:
                    keys = np.vstack([last, keys])
                step = np.diff(keys, axis=0)
                bad = np.flatnonzero((step[:, 0] < 0) | ((step[:, 0] == 0) & (step[:, 1] < 0)))
                if bad.size:
                    unsorted_at = rows + int(bad[0]) + (0 if last is not None else 1)
                last = keys[-1]
            rows += batch.num_rows
    if rows != expected["rows"]:
        problems.append(f"has {rows} rows, the inputs {expected['rows']}")
    if checksum_hex(checksum) != expected["checksum"]:
        problems.append("rows differ from the inputs' (checksum of the row multiset differs)")
    if unsorted_at is not None:
        problems.append(f"not sorted by (key, ts) at row {unsorted_at}")
    return Checked(problems, answer=(rows, checksum_hex(checksum)))


def _events_schema(got: pa.Schema) -> list[str]:
    if got.names != schema.EVENTS.names:
        return [f"columns {got.names}, expected {schema.EVENTS.names}"]
    want = {"key": pa.int64(), "ts": schema.TS, "value": pa.int64()}
    problems = [
        f"{name} is {got.field(name).type}, expected {kind}"
        for name, kind in want.items()
        if not got.field(name).type.equals(kind)
    ]
    category = got.field("category").type
    category = category.value_type if pa.types.is_dictionary(category) else category
    if not (pa.types.is_string(category) or pa.types.is_large_string(category)):
        problems.append(f"category is {got.field('category').type}, expected strings")
    return problems


def check_partials(source: Source, expected: dict, want: pa.Table) -> Checked:
    problems = _zstd(source)
    raw = pq.read_table(source)
    table, missing = normalize(raw, PARTIAL_COLUMNS)
    diff = missing or first_difference(want, table)
    if diff:
        problems.append(f"differs from the DuckDB oracle over the inputs: {diff}")
    if "checksum" in raw.column_names:  # ours carries each group's share of the checksum
        total = int(np.add.reduce(raw.column("checksum").to_numpy(), dtype=np.uint64))
        if checksum_hex(total) != expected["checksum"]:
            problems.append("partials' checksums do not add up to the inputs' checksum")
    return Checked(problems, answer=None if missing else table)


def check_results(by_key: Source, by_category: Source, want: tuple[pa.Table, ...]) -> Checked:
    problems = _zstd(by_key) + _zstd(by_category)
    tables = []
    for name, src, columns, expected in zip(
        ("by_key", "by_category"), (by_key, by_category), RESULT_COLUMNS, want, strict=True
    ):
        table, missing = normalize(pq.read_table(src), columns)
        tables.append(table)
        diff = missing or first_difference(expected, table)
        if diff:  # missing columns, or the first difference
            problems.append(f"{name} differs from the DuckDB oracle over the inputs: {diff}")
    return Checked(problems, answer=tuple(tables))


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


def _zstd(source: Source) -> list[str]:
    meta = pq.ParquetFile(source).metadata
    codecs = {
        meta.row_group(g).column(c).compression
        for g in range(meta.num_row_groups)
        for c in range(meta.num_columns)
    }
    return [] if codecs <= {"ZSTD"} else [f"compression {sorted(codecs)}, expected ZSTD"]


def disagreements(answers: dict[str, Any]) -> dict[str, list[str]]:
    """Each engine's answer against the first engine's (ours): the problems of those differing."""
    if len(answers) < 2:
        return {}
    (first, reference), *others = answers.items()
    out: dict[str, list[str]] = {}
    for engine, answer in others:
        tuples = isinstance(reference, tuple)
        for ref, got in zip(reference, answer, strict=True) if tuples else [(reference, answer)]:
            if isinstance(ref, pa.Table):
                diff = first_difference(ref, got)
            else:
                diff = None if ref == got else f"{got} vs {ref}"
            if diff:
                out.setdefault(engine, []).append(f"differs from {first}: {diff}")
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
