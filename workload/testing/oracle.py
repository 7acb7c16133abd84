"""The independent answer: by_key and by_category in one pass of DuckDB over the inputs."""

from __future__ import annotations

import pyarrow as pa

AGGREGATES_SQL = """count(*) AS rows, count(value) AS value_count, sum(value)::BIGINT AS value_sum,
    min(value) AS value_min, max(value) AS value_max, min(ts) AS ts_min, max(ts) AS ts_max"""


def parquet_source(files: str | list[str]) -> str:
    """DuckDB's read_parquet of a glob pattern or a list of files, quoted."""
    files = [files] if isinstance(files, str) else files
    return "read_parquet([" + ", ".join("'" + str(f).replace("'", "''") + "'" for f in files) + "])"


def duckdb_result(pattern: str | list[str]) -> tuple[pa.Table, pa.Table]:
    """(by_key, by_category) of the Parquet files matching `pattern` (or of a list of files), as
    DuckDB computes them."""
    import duckdb

    con = duckdb.connect()
    source = parquet_source(pattern)
    by_key = con.sql(
        f"SELECT key, {AGGREGATES_SQL} FROM {source} GROUP BY key ORDER BY key"
    ).to_arrow_table()
    by_cat = con.sql(
        f"SELECT category::VARCHAR AS category, {AGGREGATES_SQL} FROM {source} "
        "GROUP BY category ORDER BY category NULLS LAST"
    ).to_arrow_table()
    return by_key, by_cat


def comparable(table: pa.Table) -> list[dict]:
    """Rows with timestamps as integers, so time zone spellings do not matter."""
    columns = {}
    for name in table.column_names:
        col = table.column(name)
        if pa.types.is_timestamp(col.type):
            col = col.cast(pa.timestamp("us")).cast(pa.int64())
        columns[name] = col
    return pa.table(columns).to_pylist()
