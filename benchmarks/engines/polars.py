"""Polars, lazy and streaming, multi-threaded in one process (POLARS_MAX_THREADS from the
harness: the child's CPUs)."""

from __future__ import annotations

from . import Spec, Work, engine

SINK = {"compression": "zstd", "sync_on_close": "all"}


def _aggregates(pl) -> list:
    return [
        pl.len().cast(pl.Int64).alias("rows"),
        pl.col("value").count().cast(pl.Int64).alias("value_count"),
        pl.col("value").sum().alias("value_sum"),
        pl.col("value").min().alias("value_min"),
        pl.col("value").max().alias("value_max"),
        pl.col("ts").min().alias("ts_min"),
        pl.col("ts").max().alias("ts_max"),
    ]


def _grouped(pl, frame, *by: str):
    """GROUP BY `by`, with SQL's sum (Polars sums no values to 0; SQL and ours to null)."""
    sql_sum = pl.when(pl.col("value_count") > 0).then(pl.col("value_sum")).alias("value_sum")
    out = frame.group_by(*by).agg(_aggregates(pl)).with_columns(sql_sum)
    return out.with_columns(pl.col("category").cast(pl.String)) if "category" in by else out


@engine("polars", "pod_merge")
def merge(spec: Spec) -> Work:
    import polars as pl

    out = f"{spec.out}/merged.parquet"

    def work():
        events = pl.scan_parquet(spec.inputs)
        events.sort(["key", "ts"], maintain_order=True).sink_parquet(out, **SINK)
        return {"outputs": [out]}

    return work


@engine("polars", "pod_aggregate")
def aggregate(spec: Spec) -> Work:
    import polars as pl

    out = f"{spec.out}/partials.parquet"

    def work():
        partials = _grouped(pl, pl.scan_parquet(spec.inputs), "key", "category")
        partials.sort(["key", "category"], nulls_last=True).sink_parquet(out, **SINK)
        return {"outputs": [out]}

    return work


@engine("polars", "final", "final_10m", "job")
def result(spec: Spec) -> Work:
    """by_key and by_category as one query: both sinks in one collect_all, sharing the scan."""
    import polars as pl

    by_key, by_category = f"{spec.out}/by_key.parquet", f"{spec.out}/by_category.parquet"

    def work():
        events = pl.scan_parquet(spec.inputs)
        keys = _grouped(pl, events, "key").sort("key")
        categories = _grouped(pl, events, "category").sort("category", nulls_last=True)
        pl.collect_all(
            [
                keys.sink_parquet(by_key, lazy=True, **SINK),
                categories.sink_parquet(by_category, lazy=True, **SINK),
            ]
        )
        return {"outputs": [by_key, by_category]}

    return work
