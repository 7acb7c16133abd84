"""Bad input: one clear line naming the bad value, a documented exit code, nothing written."""

from __future__ import annotations

import json
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from workload import errors, schema
from workload.generate import generate
from workload.storage import open_store
from workload.testing.pods import REPO, cli


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    root = tmp_path_factory.mktemp("sample")
    generate(open_store(str(root)), 6, 2000, 300, seed=5)
    return root


@pytest.fixture
def root(sample, tmp_path):
    """A private copy of the sample, so each test may damage it."""
    shutil.copytree(sample, tmp_path / "root")
    return tmp_path / "root"


def pod(root, *args, module="workload.process", env=None):
    return cli(*args, "--root", str(root), module=module, env=env)


def error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def nothing_written(root) -> bool:
    return not (root / "l2").exists() or not any((root / "l2").iterdir())


def test_good_pod_prints_one_metrics_line(root, tmp_path):
    metrics_file = tmp_path / "m.json"
    result = pod(root, "2", "1", "--metrics-file", str(metrics_file))
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout.strip().splitlines()[-1])
    assert record == json.loads(metrics_file.read_text())
    assert record["step"] == "process" and record["level"] == 1 and record["index"] == 2
    assert record["inputs"] == ["l1/4.parquet", "l1/5.parquet"]
    assert record["rows_in"] == record["rows_out"] == 4000
    for field in ("bytes_in", "bytes_out", "read_s", "compute_s", "write_s", "peak_rss_mb"):
        assert record[field] > 0, field
    assert (root / "l2/2.parquet").exists()


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["-1", "1"], "file_number must be an integer >= 0, got -1"),
        (["abc", "1"], "'abc'"),
        (["0", "0"], "level must be an integer >= 1, got 0"),
        (["0", "x1"], "'x1'"),
        (["3", "1"], "file_number 3 is beyond level 1"),
        (["0"], "usage"),
        (["0", "1", "--fan-in", "1"], "--fan-in must be an integer >= 2, got 1"),
        (["0", "1", "--op", "sum"], "unknown op 'sum'"),
    ],
)
def test_bad_argv(root, argv, needle):
    result = pod(root, *argv)
    assert result.returncode == errors.EXIT_USAGE, result.stderr
    assert needle in error_line(result)
    assert nothing_written(root)


def test_bad_merge_argv(root):
    result = pod(root, "0", "99", module="workload.final")
    assert result.returncode == errors.EXIT_USAGE
    assert "files 0..98 requested but level 1 has 6 files" in error_line(result)
    assert not (root / "result").exists()


def test_missing_input(root):
    (root / "l1/1.parquet").unlink()
    result = pod(root, "0", "1")
    assert result.returncode == errors.EXIT_DATA
    assert "missing input" in error_line(result) and "l1/1.parquet" in error_line(result)
    assert nothing_written(root)


def test_truncated_input(root):
    path = root / "l1/3.parquet"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    result = pod(root, "1", "1")
    assert result.returncode == errors.EXIT_DATA
    assert "l1/3.parquet is not a readable Parquet file" in error_line(result)
    assert nothing_written(root)


def test_not_parquet(root):
    (root / "l1/0.parquet").write_text("key,ts,value\n1,2,3\n")
    result = pod(root, "0", "1")
    assert result.returncode == errors.EXIT_DATA
    assert "l1/0.parquet is not a readable Parquet file" in error_line(result)
    assert nothing_written(root)


def test_schema_drift(root):
    table = pq.read_table(root / "l1/1.parquet")
    drifted = table.set_column(2, "value", table.column("value").cast(pa.float64()))
    pq.write_table(drifted, root / "l1/1.parquet")
    result = pod(root, "0", "1")
    assert result.returncode == errors.EXIT_DATA
    line = error_line(result)
    assert "schema drift" in line and "l1/1.parquet" in line and "value: double" in line
    assert nothing_written(root)


def test_schema_drift_at_final_pod(root):
    pq.write_table(pq.read_table(root / "l1/4.parquet").drop(["category"]), root / "l1/4.parquet")
    result = pod(root, "0", "6", module="workload.final")
    assert result.returncode == errors.EXIT_DATA
    assert "schema drift" in error_line(result) and "l1/4.parquet" in error_line(result)
    assert not (root / "result").exists()


def test_unsorted_input_to_merge(root):
    table = pq.read_table(root / "l1/0.parquet")
    # Reverse the second half: the file is sorted up to a point, then not; the pod has already
    # streamed some output when it finds out, and must still publish nothing.
    half = table.num_rows // 2
    reversed_tail = table.slice(half).take(list(range(half - 1, -1, -1)))
    broken = pa.concat_tables([table.slice(0, half), reversed_tail])
    pq.write_table(broken.cast(schema.EVENTS), root / "l1/0.parquet", row_group_size=300)
    result = pod(root, "0", "1")
    assert result.returncode == errors.EXIT_DATA
    line = error_line(result)
    assert "l1/0.parquet is not sorted by (key, ts) at row" in line
    assert nothing_written(root)
    assert result.stdout == ""  # no metrics line for a failed pod


def test_unknown_url_scheme(root):
    result = cli("0", "1", "--root", "nosuch://bucket/x", module="workload.process")
    assert result.returncode == errors.EXIT_CONFIG
    assert "unsupported storage URL scheme 'nosuch'" in error_line(result)


def test_bad_storage_options_are_not_echoed():
    result = cli(
        "0",
        "1",
        "--root",
        "/tmp",
        "--storage-options",
        '{"secret": "hunter22"',
        module="workload.process",
    )
    assert result.returncode == errors.EXIT_CONFIG
    assert "--storage-options is not valid JSON" in error_line(result)
    assert "hunter22" not in result.stderr + result.stdout


def test_unreachable_object_store_is_transient(tmp_path):
    env = {
        "AWS_ACCESS_KEY_ID": "id",
        "AWS_SECRET_ACCESS_KEY": "very-secret-value",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",  # discard port: nothing listens
        "AWS_MAX_ATTEMPTS": "1",
    }
    result = cli("0", "1", "--root", "s3://bucket/root", module="workload.process", env=env)
    assert result.returncode == errors.EXIT_TRANSIENT, result.stderr
    assert "s3://bucket/root" in error_line(result)
    assert "very-secret-value" not in result.stderr + result.stdout


def test_image_scripts_run_the_seed_argv(root, tmp_path):
    """`python3 process.py <file_number> <level>` and `python3 merge.py 0 <number>` in the
    image's working directory, with the root from the environment as in a pod."""
    workdir = tmp_path / "app"
    workdir.mkdir()
    for name in ("process.py", "merge.py"):
        shutil.copy(REPO / "image" / name, workdir / name)
    env = {"WORKLOAD_ROOT": str(root)}
    for i in range(3):
        r = cli("process.py", str(i), "1", env=env, cwd=str(workdir))
        assert r.returncode == 0, r.stderr
    r = cli("merge.py", "0", "3", env=env, cwd=str(workdir))
    assert r.returncode == 0, r.stderr
    summary = json.loads((root / "result/summary.json").read_text())
    assert summary["rows"] == 12000 and summary["final_level"] == 2
    r = cli("-m", "workload", "verify", "--root", str(root))
    assert r.returncode == 0 and r.stdout.startswith("ok:")


def test_array_job_index_from_environment(root):
    result = pod(root, "1", env={"AWS_BATCH_JOB_ARRAY_INDEX": "2"})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1])["index"] == 2
    assert (root / "l2/2.parquet").exists()


def test_verify_fails_on_a_wrong_result(root):
    for i in range(3):
        assert pod(root, str(i), "1").returncode == 0
    assert pod(root, "0", "3", module="workload.final").returncode == 0
    summary = json.loads((root / "result/summary.json").read_text())
    summary["value_sum"] += 1
    (root / "result/summary.json").write_text(json.dumps(summary))
    r = cli("-m", "workload", "verify", "--root", str(root))
    assert r.returncode == errors.EXIT_DATA
    assert "value_sum" in r.stderr
