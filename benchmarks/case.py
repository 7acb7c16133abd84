"""The child side: one engine of one case in a fresh process, `python -m benchmarks.case SPEC`.

Every engine below is a setup function: it does its imports and preparation and returns `work`,
a function doing exactly what is timed (read the inputs, compute, write the outputs to disk).
main() runs setup, starts the clock, calls work(), stops the clock, reads this process's peak
RSS and prints ONE JSON line on stdout. Nothing is checked here: the parent checks the outputs
afterwards, outside any timing (benchmarks/checks.py).

Every engine writes zstd Parquet and makes its output durable before the clock stops: ours
fsyncs each file it publishes (a NAS must have the bytes before the name exists), so DuckDB's
outputs are fsynced here and Polars is asked to sync on close, which keeps the comparison fair.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Work = Callable[[], dict[str, Any]]  # returns {"outputs": [...], ...extra facts}


@dataclass(frozen=True)
class Spec:
    """What the parent asks of one child (passed as JSON)."""

    case: str
    engine: str
    inputs: list[str]  # input files: local paths, or "bucket/key" on S3
    root: str  # a tree root whose l1 holds the inputs (a local folder or s3:// URL), for ours
    out: str  # a folder for outputs of engines other than ours ("bucket/prefix" on S3)
    variant: str = ""  # rss: the op
    dataset: dict[str, int] = field(default_factory=dict)  # job: files, rows, keys, seed
    final_fan_in: int | None = None  # job
    endpoint: str = ""  # s3: the counting proxy in front of the S3 server


# -- ours ------------------------------------------------------------------------------------
def pod_ours(spec: Spec) -> Work:
    """workload's level-1 pod 0 on a root whose l1 holds the pair: l1/0 + l1/1 -> l2/0."""
    from workload import layout
    from workload.process import process
    from workload.settings import Settings

    op = spec.variant or ("aggregate" if spec.case == "pod_aggregate" else "merge")
    settings = Settings.load(root=spec.root, op=op)

    def work() -> dict[str, Any]:
        record = process(settings, 0, 1)
        output = f"{spec.root}/{layout.shard(2, 0)}"
        return {"outputs": [output], "client_requests": record["requests_in"]}

    return work


def final_ours(spec: Spec) -> Work:
    """workload's final pod over l1/0..n-1 read directly as the last level."""
    from workload import layout
    from workload.final import final
    from workload.settings import Settings

    settings = Settings.load(root=spec.root)

    def work() -> dict[str, Any]:
        final(settings, 0, len(spec.inputs), level=1, partial=True)
        return {"outputs": [f"{spec.root}/{layout.BY_KEY}", f"{spec.root}/{layout.BY_CATEGORY}"]}

    return work


def job_ours(spec: Spec) -> Work:
    """`workload run`'s whole tree (pods in a pool of 2 fresh processes each) on the cached data."""
    from workload import layout
    from workload import run_local as local
    from workload.settings import Settings

    settings = Settings.load(root=spec.root)
    d = spec.dataset
    manifest = json.loads(Path(spec.root, layout.MANIFEST).read_text())
    wanted = {
        "files": d["files"],
        "rows": d["files"] * d["rows"],
        "keys": d["keys"],
        "seed": d["seed"],
    }
    differs = sorted(k for k, v in wanted.items() if manifest.get(k) != v)
    if differs:  # local.run would then regenerate the inputs inside the timed region
        raise RuntimeError(f"cached manifest differs from the job's arguments in {differs}")

    def work() -> dict[str, Any]:
        report = local.run(
            settings,
            files=d["files"],
            rows=d["rows"],
            keys=d["keys"],
            seed=d["seed"],
            workers=2,
            final_fan_in=spec.final_fan_in,
        )
        return {
            "outputs": [f"{spec.root}/{layout.BY_KEY}", f"{spec.root}/{layout.BY_CATEGORY}"],
            # The pods are processes of their own: the job's peak is its largest process.
            "child_peak_rss_mb": max(level["max_pod_rss_mb"] for level in report["levels"]),
            "verified": report["verified"],
            "plan": report["plan"],
        }

    return work


# -- the physical copy limit -----------------------------------------------------------------
def copy_limit(spec: Spec) -> Work:
    """What ours would cost with a free merge: the same reads (same store, window and batches),
    the same writer settings (storage.parquet.Sink) and the same atomic publish, concatenating
    instead."""
    from workload import layout, schema
    from workload.settings import Settings
    from workload.storage import open_store
    from workload.storage.parquet import Sink

    settings = Settings.load(root=spec.root)
    store = open_store(settings.root)
    rels = [layout.shard(1, i) for i in range(len(spec.inputs))]
    out_rel = layout.shard(2, 0)

    def work() -> dict[str, Any]:
        shards = [store.open_parquet(rel, settings.read_window) for rel in rels]
        with (
            store.output(out_rel) as out,
            Sink(
                out.path,
                schema.EVENTS,
                sorted_by=schema.EVENTS_SORTED_BY,
                row_group_rows=settings.row_group_rows,
            ) as sink,
        ):
            for shard in shards:
                for batch in shard.batches(settings.batch_rows):
                    sink.write(batch)
        return {"outputs": [store.path(out_rel)]}

    return work


# -- DuckDB ----------------------------------------------------------------------------------
_SQL_AGGREGATES = """count(*) AS rows, count(value) AS value_count, sum(value)::BIGINT AS value_sum,
    min(value) AS value_min, max(value) AS value_max, min(ts) AS ts_min, max(ts) AS ts_max"""
_SQL_COLUMNS = "rows, value_count, value_sum, value_min, value_max, ts_min, ts_max"
_SQL_PARQUET = "FORMAT parquet, COMPRESSION zstd"


def _duckdb(spec: Spec):
    import duckdb

    con = duckdb.connect()
    # An in-memory database spills to ./.tmp by default; keep that inside the run's folder.
    con.execute(f"SET temp_directory = {_quote(spec.out + '/duckdb.tmp')}")
    source = "read_parquet([" + ", ".join(_quote(p) for p in spec.inputs) + "])"
    return con, source


def merge_duckdb(spec: Spec) -> Work:
    con, source = _duckdb(spec)
    out = f"{spec.out}/merged.parquet"

    def work() -> dict[str, Any]:
        con.execute(
            f"COPY (SELECT * FROM {source} ORDER BY key, ts) TO {_quote(out)} ({_SQL_PARQUET})"
        )
        _fsync(out)
        return {"outputs": [out]}

    return work


def aggregate_duckdb(spec: Spec) -> Work:
    con, source = _duckdb(spec)
    out = f"{spec.out}/partials.parquet"

    def work() -> dict[str, Any]:
        con.execute(
            f"COPY (SELECT key, category, {_SQL_AGGREGATES} FROM {source} GROUP BY key, category "
            f"ORDER BY key, category NULLS LAST) TO {_quote(out)} ({_SQL_PARQUET})"
        )
        _fsync(out)
        return {"outputs": [out]}

    return work


def result_duckdb(spec: Spec) -> Work:
    """by_key and by_category in one scan: GROUPING SETS, then one small COPY per file."""
    con, source = _duckdb(spec)
    by_key, by_category = f"{spec.out}/by_key.parquet", f"{spec.out}/by_category.parquet"

    def work() -> dict[str, Any]:
        con.execute(
            f"CREATE TEMP TABLE grouped AS SELECT GROUPING(key) AS by_category, key, "
            f"category::VARCHAR AS category, {_SQL_AGGREGATES} FROM {source} "
            "GROUP BY GROUPING SETS ((key), (category))"
        )
        con.execute(
            f"COPY (SELECT key, {_SQL_COLUMNS} FROM grouped WHERE by_category = 0 ORDER BY key) "
            f"TO {_quote(by_key)} ({_SQL_PARQUET})"
        )
        con.execute(
            f"COPY (SELECT category, {_SQL_COLUMNS} FROM grouped WHERE by_category = 1 "
            f"ORDER BY category NULLS LAST) TO {_quote(by_category)} ({_SQL_PARQUET})"
        )
        _fsync(by_key, by_category)
        return {"outputs": [by_key, by_category]}

    return work


# -- Polars ----------------------------------------------------------------------------------
def _polars_aggregates(pl) -> list:
    return [
        pl.len().cast(pl.Int64).alias("rows"),
        pl.col("value").count().cast(pl.Int64).alias("value_count"),
        pl.col("value").sum().alias("value_sum"),
        pl.col("value").min().alias("value_min"),
        pl.col("value").max().alias("value_max"),
        pl.col("ts").min().alias("ts_min"),
        pl.col("ts").max().alias("ts_max"),
    ]


def _sql_sum(pl):
    """Polars sums no values to 0; SQL (and ours) to null."""
    return pl.when(pl.col("value_count") > 0).then(pl.col("value_sum")).alias("value_sum")


def merge_polars(spec: Spec) -> Work:
    import polars as pl

    out = f"{spec.out}/merged.parquet"

    def work() -> dict[str, Any]:
        pl.scan_parquet(spec.inputs).sort(["key", "ts"], maintain_order=True).sink_parquet(
            out, compression="zstd", sync_on_close="all"
        )
        return {"outputs": [out]}

    return work


def aggregate_polars(spec: Spec) -> Work:
    import polars as pl

    out = f"{spec.out}/partials.parquet"

    def work() -> dict[str, Any]:
        (
            pl.scan_parquet(spec.inputs)
            .group_by("key", "category")
            .agg(_polars_aggregates(pl))
            .with_columns(_sql_sum(pl), pl.col("category").cast(pl.String))
            .sort(["key", "category"], nulls_last=True)
            .sink_parquet(out, compression="zstd", sync_on_close="all")
        )
        return {"outputs": [out]}

    return work


def result_polars(spec: Spec) -> Work:
    """by_key and by_category as one query: both sinks in one collect_all, sharing the scan."""
    import polars as pl

    by_key, by_category = f"{spec.out}/by_key.parquet", f"{spec.out}/by_category.parquet"
    sink = {"compression": "zstd", "sync_on_close": "all", "lazy": True}

    def work() -> dict[str, Any]:
        events = pl.scan_parquet(spec.inputs)
        keys = events.group_by("key").agg(_polars_aggregates(pl)).with_columns(_sql_sum(pl))
        categories = (
            events.group_by("category")
            .agg(_polars_aggregates(pl))
            .with_columns(_sql_sum(pl), pl.col("category").cast(pl.String))
        )
        pl.collect_all(
            [
                keys.sort("key").sink_parquet(by_key, **sink),
                categories.sort("category", nulls_last=True).sink_parquet(by_category, **sink),
            ]
        )
        return {"outputs": [by_key, by_category]}

    return work


# -- S3: a plain reader for comparison -------------------------------------------------------
def s3fs_read_table(spec: Spec) -> Work:
    """What a script would do without ours: pq.read_table of each input through s3fs, then one
    pq.write_table of the concatenation through s3fs."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import s3fs

    fs = s3fs.S3FileSystem(endpoint_url=spec.endpoint)  # keys from AWS_ACCESS_KEY_ID/...
    out = f"{spec.out}/out.parquet"

    def work() -> dict[str, Any]:
        tables = [pq.read_table(path, filesystem=fs) for path in spec.inputs]
        pq.write_table(pa.concat_tables(tables), out, filesystem=fs, compression="zstd")
        return {"outputs": [out]}

    return work


ENGINES: dict[tuple[str, str], Callable[[Spec], Work]] = {
    ("pod_merge", "ours"): pod_ours,
    ("pod_merge", "copy"): copy_limit,
    ("pod_merge", "duckdb"): merge_duckdb,
    ("pod_merge", "polars"): merge_polars,
    ("pod_aggregate", "ours"): pod_ours,
    ("pod_aggregate", "duckdb"): aggregate_duckdb,
    ("pod_aggregate", "polars"): aggregate_polars,
    ("final", "ours"): final_ours,
    ("final", "duckdb"): result_duckdb,
    ("final", "polars"): result_polars,
    ("job", "ours"): job_ours,
    ("job", "duckdb"): result_duckdb,
    ("job", "polars"): result_polars,
    ("rss", "ours"): pod_ours,
    ("s3", "ours"): pod_ours,
    ("s3", "s3fs_read_table"): s3fs_read_table,
}


# -- helpers ---------------------------------------------------------------------------------
def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _fsync(*paths: str) -> None:
    for path in paths:
        with open(path, "rb") as f:
            os.fsync(f.fileno())


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM), in MiB. Not ru_maxrss from the parent's wait4:
    on Linux that survives fork and exec, so a child would report the parent's peak."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def main(argv: list[str]) -> int:
    spec = Spec(**json.loads(argv[0]))
    work = ENGINES[(spec.case, spec.engine)](spec)  # imports and setup: not timed
    started = time.perf_counter()
    result = work()
    seconds = time.perf_counter() - started
    peak = max(peak_rss_mb(), result.pop("child_peak_rss_mb", 0.0))
    record = {"case": spec.case, "engine": spec.engine, "variant": spec.variant}
    print(json.dumps({**record, "seconds": seconds, "peak_rss_mb": peak, **result}), flush=True)
    return 0


if __name__ == "__main__":
    try:
        code = main(sys.argv[1:])
    except Exception:
        traceback.print_exc()
        code = 1
    # Leave without interpreter teardown, as workload's pods do: Arrow's thread pools can abort
    # the process at exit (apache/arrow#34314) after the work is done and reported.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
