"""The benchmarks' smoke test: `python -m benchmarks run --scale smoke` runs every case and
engine on tiny data, every answer check passes, S3 requests are counted at the server, and the
CSV, results.md and plots are written. No timing is asserted: the smoke scale's numbers mean
nothing, and CI machines are noisy.

Also: the checks catch wrong answers, the harness fails loudly when engines disagree, and the
settings load like workload's (defaults < BENCH_* environment < command line)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from workload.generate import generate
from workload.storage import open_store
from workload.testing.pods import REPO

# What the issue asks for, spelled out here rather than imported from the harness.
ENGINES = {
    "pod_merge": {"ours", "copy", "duckdb", "polars"},
    "pod_aggregate": {"ours", "duckdb", "polars"},
    "final": {"ours", "duckdb", "polars"},
    "final_10m": {"ours", "duckdb", "polars"},
    "job": {"ours", "copy", "duckdb", "polars"},
    "pod_process": {"ours", "import_pyarrow"},
    "rss": {"ours"},
    "s3": {"ours", "s3fs_read_table", "download", "upload"},
    "fan_in": {"ours"},
}
# The limits that write no answer: the floor of a process, the s3 case's transfers.
WRITES_NOTHING = {"import_pyarrow", "download", "upload"}
PNG = b"\x89PNG\r\n\x1a\n"


def bench(*args: str) -> subprocess.CompletedProcess:
    ours = ("BENCH_", "WORKLOAD_", "AWS_", "OSS_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    out = tmp / "results"
    args = ["--scale", "smoke", "--repeats", "1", "--output", str(out), "--data", str(tmp / "data")]
    result = bench("run", *args)
    assert result.returncode == 0, result.stderr[-4000:]
    with open(out / "results.csv", newline="") as f:
        return out, list(csv.DictReader(f))


def test_every_case_and_engine_is_measured_and_checked(smoke):
    _, rows = smoke
    measured: dict[str, set[str]] = {}
    for row in rows:
        measured.setdefault(row["case"], set()).add(row["engine"])
    assert measured == ENGINES
    failed = [(r["case"], r["engine"], r["check"]) for r in rows if r["check"] != "ok"]
    assert not failed
    rss = {(r["variant"], int(r["rows_per_input"])) for r in rows if r["case"] == "rss"}
    assert {op for op, _ in rss} == {"merge", "aggregate"} and len({n for _, n in rss}) >= 2
    for case in ENGINES:  # every case at 1 CPU and at 2 (the child's affinity)
        assert {r["cpus"] for r in rows if r["case"] == case} == {"1", "2"}, case
    for row in rows:  # self-describing rows
        assert row["scale"] == "smoke" and row["repeat"] == "1"
        writes = row["engine"] not in WRITES_NOTHING
        assert int(row["rows"]) > 0 and int(row["bytes_in"]) > 0
        assert (int(row["bytes_out"]) > 0) == writes
        assert float(row["peak_rss_mb"]) > 0 and row["seconds"]
        assert row["pyarrow_version"] and row["duckdb_version"] and row["cores"]


def test_s3_requests_are_counted_at_the_server(smoke):
    _, rows = smoke
    ours = next(r for r in rows if r["case"] == "s3" and r["engine"] == "ours")
    gets = [int(g) for g in ours["input_gets"].split(";")]
    targets = [int(t) for t in ours["input_get_targets"].split(";")]
    assert len(gets) == 2 and all(0 < g <= t for g, t in zip(gets, targets, strict=True))
    assert ours["uploads_per_output_ok"] == "yes"
    assert int(ours["puts"]) + int(ours["multipart_uploads"]) == 1
    assert int(ours["bytes_served"]) > 0


def test_fan_in_is_measured_local_and_on_s3_beside_its_projection(smoke):
    out, rows = smoke
    fan_in = [r for r in rows if r["case"] == "fan_in"]
    # The smoke dataset has 32 files: fan-ins 2..32, each on local disk and on S3.
    wanted = {f"{storage}-{k}" for storage in ("local", "s3") for k in (2, 4, 8, 16, 32)}
    assert {r["variant"] for r in fan_in} == wanted
    for row in fan_in:
        assert int(row["inputs"]) == int(row["variant"].rpartition("-")[2])
        assert float(row["projected_mb"]) > 0
        assert bool(row["requests"]) == row["variant"].startswith("s3-")  # counted at the server
    projected = {r["variant"]: float(r["projected_mb"]) for r in fan_in}
    assert projected["s3-2"] > projected["local-2"]  # the object store's client and windows
    assert all(not r["projected_mb"] for r in rows if r["case"] != "fan_in")
    text = (out / "results.md").read_text()
    assert "merge pod RSS < 400 MB at every fan-in 2..64, local" in text
    assert "projection >= measured and <= 1.4x measured at every fan-in" in text


def test_report_and_plots_are_written_and_rebuilt(smoke):
    out, _ = smoke
    files = [out / "results.md", out / "time-smoke.png", out / "rss-smoke.png"]
    files.append(out / "fan_in-smoke.png")
    for path in files:
        assert path.exists()
    text = (out / "results.md").read_text()
    for heading in ("### Targets", *(f"### {case}:" for case in ENGINES)):
        assert heading in text
    for path in files:
        path.unlink()
    result = bench("report", "--output", str(out))
    assert result.returncode == 0, result.stderr
    assert (out / "results.md").read_text() == text
    assert all(p.read_bytes().startswith(PNG) for p in files[1:])


# -- the checks themselves, in process -------------------------------------------------------
@pytest.fixture
def checks(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO))
    from benchmarks import checks

    return checks


@pytest.fixture
def events(tmp_path):
    generate(open_store(str(tmp_path)), 2, 3000, 200, seed=5)
    return [tmp_path / "l1/0.parquet", tmp_path / "l1/1.parquet"]


def test_checks_catch_wrong_events(checks, events, tmp_path):
    expected = checks.expected_totals(events)
    both = pa.concat_tables([pq.read_table(p) for p in events])
    assert checks.check_events([events[0]], expected).problems  # half the rows

    def write(table: pa.Table) -> str:
        path = str(tmp_path / f"{len(list(tmp_path.iterdir()))}.parquet")
        pq.write_table(table, path, compression="zstd")
        return path

    ordered = write(both.sort_by([("key", "ascending"), ("ts", "ascending")]))
    assert checks.check_events([ordered], expected).problems == []
    unsorted = write(both)
    assert checks.check_events([unsorted], expected, must_be_sorted=False).problems == []
    assert any("not sorted" in p for p in checks.check_events([unsorted], expected).problems)
    changed = both.set_column(2, "value", pa.array([1] * both.num_rows, pa.int64()))
    problems = checks.check_events([write(changed)], expected, must_be_sorted=False).problems
    assert any("checksum" in p for p in problems)
    snappy = str(tmp_path / "snappy.parquet")
    pq.write_table(both, snappy, compression="snappy")
    assert any("ZSTD" in p for p in checks.check_events([snappy], expected, False).problems)


def test_checks_catch_wrong_results(checks, events, tmp_path):
    from workload.testing.oracle import duckdb_result

    oracle = checks.oracle(events)
    by_key, by_category = duckdb_result([str(p) for p in events])
    paths = [str(tmp_path / "by_key.parquet"), str(tmp_path / "by_category.parquet")]
    pq.write_table(by_key, paths[0], compression="zstd")
    pq.write_table(by_category, paths[1], compression="zstd")
    assert checks.check_results(*paths, oracle).problems == []
    pq.write_table(by_key.slice(1), paths[0], compression="zstd")  # a key lost
    (problem,) = checks.check_results(*paths, oracle).problems
    assert problem.startswith("by_key differs from the DuckDB oracle")
    partials = checks.oracle(events, partials=True)
    pq.write_table(partials, paths[0], compression="zstd")
    assert checks.check_partials(paths[0], {}, partials).problems == []
    wrong = partials.set_column(2, "rows", pc.add(partials.column("rows"), 1))
    pq.write_table(wrong, paths[0], compression="zstd")
    (problem,) = checks.check_partials(paths[0], {}, partials).problems
    assert "differs from the DuckDB oracle over the inputs: column rows row 0" in problem


def test_disagreeing_engines_fail_loudly(checks, monkeypatch, tmp_path):
    from benchmarks import harness

    bench_ = harness.Bench(harness.BenchSettings.load(scale="smoke", repeats=1, data=str(tmp_path)))
    answers = {"ours": pa.table({"key": [1, 2]}), "duckdb": pa.table({"key": [1, 3]})}

    def measure(case, run_, repeat):
        row = {"seconds": 0.1, "peak_rss_mb": 1.0}
        return row, checks.Checked([], answers[run_.engine])

    monkeypatch.setattr(bench_, "measure", measure)
    runs = harness.plan("pod_aggregate", bench_.scale, ["ours", "duckdb"])
    with pytest.raises(harness.CaseFailed, match="duckdb: differs from ours: column key row 1"):
        bench_.repeats("pod_aggregate", runs)
    checked = [r["check"] for r in bench_.rows]
    assert checked == ["ok", "differs from ours: column key row 1: 2 vs 3"]


def test_settings_load_like_workloads(checks, monkeypatch):
    from benchmarks.harness import BenchSettings, SettingsError

    monkeypatch.setenv("BENCH_REPEATS", "3")
    monkeypatch.setenv("BENCH_ENGINES", "ours, duckdb")
    loaded = BenchSettings.load(scale="smoke", repeats=None)
    assert (loaded.repeats, loaded.engines) == (3, ("ours", "duckdb"))
    assert BenchSettings.load(scale="smoke", repeats=2).repeats == 2  # the command line wins
    monkeypatch.setenv("BENCH_REPEATS", "many")
    with pytest.raises(SettingsError, match="BENCH_REPEATS='many' is not a valid int"):
        BenchSettings.load()
    assert bench("run", "--scale", "nope").returncode == 2
