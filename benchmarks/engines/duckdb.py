"""DuckDB, in-process and multi-threaded, with the oracle's SQL (workload.testing.oracle)."""

from __future__ import annotations

from collections.abc import Callable

from . import Spec, Work, engine, fsync

PARQUET = "FORMAT parquet, COMPRESSION zstd"
COLUMNS = "rows, value_count, value_sum, value_min, value_max, ts_min, ts_max"


def _query(spec: Spec, *outputs: str, sql: Callable[..., list[str]]) -> Work:
    """Work running the statements `sql(source, *quoted output paths)`, then fsyncing them."""
    import duckdb

    from workload.testing.oracle import parquet_source

    con = duckdb.connect()
    if spec.cpus:
        con.execute(f"SET threads = {spec.cpus}")
    # An in-memory database spills to ./.tmp by default; keep that inside the run's folder.
    con.execute(f"SET temp_directory = {_q(spec.out + '/duckdb.tmp')}")
    paths = [f"{spec.out}/{name}" for name in outputs]
    statements = sql(parquet_source(spec.inputs), *map(_q, paths))

    def work():
        for statement in statements:
            con.execute(statement)
        fsync(*paths)
        return {"outputs": paths}

    return work


@engine("duckdb", "pod_merge")
def merge(spec: Spec) -> Work:
    def sql(source, out):
        return [f"COPY (SELECT * FROM {source} ORDER BY key, ts) TO {out} ({PARQUET})"]

    return _query(spec, "merged.parquet", sql=sql)


@engine("duckdb", "pod_aggregate")
def aggregate(spec: Spec) -> Work:
    from workload.testing.oracle import AGGREGATES_SQL

    def sql(source, out):
        return [
            f"COPY (SELECT key, category, {AGGREGATES_SQL} FROM {source} GROUP BY key, category "
            f"ORDER BY key, category NULLS LAST) TO {out} ({PARQUET})"
        ]

    return _query(spec, "partials.parquet", sql=sql)


@engine("duckdb", "final", "final_10m", "job")
def result(spec: Spec) -> Work:
    """by_key and by_category in one scan: GROUPING SETS, then one small COPY per file."""
    from workload.testing.oracle import AGGREGATES_SQL

    def sql(source, by_key, by_category):
        return [
            f"CREATE TEMP TABLE grouped AS SELECT GROUPING(key) AS by_category, key, "
            f"category::VARCHAR AS category, {AGGREGATES_SQL} FROM {source} "
            "GROUP BY GROUPING SETS ((key), (category))",
            f"COPY (SELECT key, {COLUMNS} FROM grouped WHERE by_category = 0 ORDER BY key) "
            f"TO {by_key} ({PARQUET})",
            f"COPY (SELECT category, {COLUMNS} FROM grouped WHERE by_category = 1 "
            f"ORDER BY category NULLS LAST) TO {by_category} ({PARQUET})",
        ]

    return _query(spec, "by_key.parquet", "by_category.parquet", sql=sql)


def _q(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
