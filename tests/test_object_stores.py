"""The whole tree on s3:// (moto's S3 server) and oss:// (ossfs through the OSS-dialect test
emulator in front of moto) gives the local result bit for bit."""

from __future__ import annotations

import json
import math
import os

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from moto.server import ThreadedMotoServer

from workload import errors, layout, schema
from workload.generate import generate
from workload.storage import open_store
from workload.testing.oss_emulator import OSSEmulator
from workload.testing.pods import cli, run_tree

FILES, ROWS, KEYS, SEED = 9, 4000, 700, 21
SHAPE = {"fan_in": 2, "final_fan_in": 2}  # 9 -> 5 -> 3 -> 2 -> result: odd counts everywhere
BUCKET = "workload-test"
# The environment as collected, before the autouse fixture cleans it: the real-OSS test reads it.
ORIGINAL_ENV = dict(os.environ)


@pytest.fixture(scope="module")
def s3_server():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="k",
        aws_secret_access_key="s",
        region_name="us-east-1",
    ).create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()


@pytest.fixture
def s3_env(s3_server, monkeypatch):
    env = {
        "AWS_ENDPOINT_URL": s3_server,
        "AWS_ACCESS_KEY_ID": "test-key",
        "AWS_SECRET_ACCESS_KEY": "test-secret-s3",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    return _setenv(monkeypatch, env)


@pytest.fixture(scope="module")
def oss_server():
    with OSSEmulator("oss-key-id", "oss-secret-value") as emulator:
        emulator.create_bucket(BUCKET)
        yield emulator


@pytest.fixture
def oss_env(oss_server, monkeypatch):
    env = {
        "OSS_ENDPOINT": oss_server.endpoint,
        "OSS_ACCESS_KEY_ID": "oss-key-id",
        "OSS_ACCESS_KEY_SECRET": "oss-secret-value",
    }
    return _setenv(monkeypatch, env)


def _setenv(monkeypatch, env: dict) -> dict:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


@pytest.fixture(scope="module")
def local_results(tmp_path_factory):
    """The reference: the same data and shape on a local path, per op."""
    out = {}
    for op in ("merge", "aggregate"):
        root = tmp_path_factory.mktemp(f"local-{op}")
        generate(open_store(str(root)), FILES, ROWS, KEYS, SEED)
        run_tree(str(root), op, **SHAPE)
        out[op] = result_bytes(open_store(str(root)))
    assert out["merge"] == out["aggregate"]
    return out


def result_bytes(store):
    summary = store.read_json(layout.SUMMARY)
    totals = {k: summary[k] for k in ("rows", "distinct_keys", "value_sum", "checksum", "levels")}
    return store.read_bytes(layout.BY_KEY), store.read_bytes(layout.BY_CATEGORY), totals


@pytest.mark.parametrize("op", ["merge", "aggregate"])
def test_s3_tree_matches_local(s3_env, local_results, op):
    root = f"s3://{BUCKET}/tree-{op}"
    store = open_store(root)
    generate(store, FILES, ROWS, KEYS, SEED)
    run_tree(root, op, **SHAPE)
    assert result_bytes(open_store(root)) == local_results[op]
    assert store.listdir("l2") == [f"{i}.parquet" for i in range(5)]


def test_s3_tree_read_a_column_at_a_time_matches_local(s3_env, local_results, monkeypatch):
    """With a read budget too small for a row group beside the windows, every input is read
    a column at a time (storage.readahead: WindowReader.follow_columns), several requests per
    column chunk; the result is the same, bit for bit."""
    from workload.storage import readahead

    walked = []
    follow = readahead.WindowReader.follow_columns
    monkeypatch.setattr(
        readahead.WindowReader,
        "follow_columns",
        lambda self, columns, share: walked.append(len(columns)) or follow(self, columns, share),
    )
    monkeypatch.setattr(readahead, "MIN_COLUMN_WINDOW", 4096)  # windows at this data's scale
    monkeypatch.setenv("WORKLOAD_READ_BUDGET", "16384")
    root = f"s3://{BUCKET}/tree-columns"
    generate(open_store(root), FILES, ROWS, KEYS, SEED)
    run_tree(root, "merge", **SHAPE)
    assert result_bytes(open_store(root)) == local_results["merge"]
    assert walked and set(walked) == {len(schema.EVENTS)}


@pytest.mark.parametrize("op", ["merge", "aggregate"])
def test_oss_tree_matches_local(oss_env, oss_server, local_results, op):
    root = f"oss://{BUCKET}/tree-{op}"
    oss_server.reset_counts()
    generate(open_store(root), FILES, ROWS, KEYS, SEED)
    run_tree(root, op, **SHAPE)
    assert result_bytes(open_store(root)) == local_results[op]
    assert oss_server.counts["AppendObject"] == 0  # whole objects only, never appended


def test_pod_on_s3_from_the_command_line(s3_env):
    """A pod as the cluster runs it: credentials and endpoint from the environment only; its
    reads are one ranged GET per window plus the footer."""
    root = f"s3://{BUCKET}/cli"
    generate(open_store(root), 2, 30_000, 5000, seed=1)
    result = cli("0", "1", "--root", root, module="workload.process", env=s3_env)
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout.splitlines()[-1])
    assert record["rows_out"] == 60_000
    sizes = [open_store(root).size(layout.level_file(1, i)) for i in range(2)]
    assert record["requests_in"] <= sum(2 + math.ceil(s / 2**25) for s in sizes)
    assert "test-secret-s3" not in result.stdout + result.stderr


def test_failed_pod_publishes_no_object(s3_env):
    root = f"s3://{BUCKET}/broken"
    store = open_store(root)
    generate(store, 2, 3000, 100, seed=2)
    table = pq.read_table(pa.BufferReader(store.read_bytes("l1/1.parquet")))
    store.write_bytes("l1/1.parquet", _parquet(table.take(list(range(table.num_rows - 1, -1, -1)))))
    result = cli("0", "1", "--root", root, module="workload.process", env=s3_env)
    assert result.returncode == errors.EXIT_DATA
    assert "l1/1.parquet is not sorted" in result.stderr
    assert store.listdir("l2") == []


def test_oss_bad_credentials_are_permanent_and_not_echoed(oss_env, tmp_path):
    env = {**oss_env, "OSS_ACCESS_KEY_SECRET": "wrong-secret-value"}
    root = f"oss://{BUCKET}/tree-merge"
    result = cli("0", "1", "--root", root, module="workload.process", env=env)
    assert result.returncode == errors.EXIT_PERMISSION, result.stderr
    assert "access denied" in result.stderr
    assert "wrong-secret-value" not in result.stdout + result.stderr


def test_oss_missing_input_is_bad_data(oss_env):
    result = cli(
        "7",
        "1",
        "--root",
        f"oss://{BUCKET}/nowhere",
        "--fan-in",
        "2",
        module="workload.process",
        env=oss_env,
    )
    assert result.returncode == errors.EXIT_DATA, result.stderr


def test_oss_dead_writers_multipart_upload_is_aborted(oss_env, oss_server):
    import oss2

    root = f"oss://{BUCKET}/stale-upload"
    store = open_store(root)
    generate(store, 2, 500, 50, seed=2)
    bucket = oss2.Bucket(
        oss2.Auth(oss_env["OSS_ACCESS_KEY_ID"], oss_env["OSS_ACCESS_KEY_SECRET"]),
        oss_env["OSS_ENDPOINT"],
        BUCKET,
    )
    key = "stale-upload/l2/0.parquet"
    stale = bucket.init_multipart_upload(key).upload_id
    other = bucket.init_multipart_upload(key + ".other").upload_id
    env = {**oss_env, "WORKLOAD_STALE_SECONDS": "0"}
    result = cli("0", "1", "--root", root, module="workload.process", env=env)
    assert result.returncode == 0, result.stderr
    left = {u.upload_id for u in oss2.MultipartUploadIterator(bucket, prefix="stale-upload/")}
    assert stale not in left and other in left
    bucket.abort_multipart_upload(key + ".other", other)


@pytest.mark.oss_real
@pytest.mark.skipif(
    not all(
        ORIGINAL_ENV.get(v)
        for v in (
            "WORKLOAD_TEST_OSS_ROOT",
            "OSS_ENDPOINT",
            "OSS_ACCESS_KEY_ID",
            "OSS_ACCESS_KEY_SECRET",
        )
    ),
    reason="real OSS: set WORKLOAD_TEST_OSS_ROOT, OSS_ENDPOINT, OSS_ACCESS_KEY_ID/SECRET",
)
def test_real_oss_tree(monkeypatch, local_results):
    for name in ("OSS_ENDPOINT", "OSS_ACCESS_KEY_ID", "OSS_ACCESS_KEY_SECRET", "OSS_SESSION_TOKEN"):
        if ORIGINAL_ENV.get(name):
            monkeypatch.setenv(name, ORIGINAL_ENV[name])
    root = ORIGINAL_ENV["WORKLOAD_TEST_OSS_ROOT"].rstrip("/") + "/workload-test"
    generate(open_store(root), FILES, ROWS, KEYS, SEED)
    run_tree(root, "merge", **SHAPE)
    assert result_bytes(open_store(root)) == local_results["merge"]


def _parquet(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table.cast(schema.EVENTS), sink)
    return sink.getvalue().to_pybytes()
