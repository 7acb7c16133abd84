"""Pods on s3:// behind a fault-injecting proxy in front of moto (all on 127.0.0.1): faults at a
rate are absorbed with identical output; persistent faults give the documented code with one
line, within a bounded time; dead writers' spool files and multipart uploads are cleaned up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import boto3
import pytest

from workload import errors, layout
from workload.generate import generate
from workload.storage import open_store
from workload.testing.pods import cli
from workload.testing.proxy import FaultProxy, moto_server

BUCKET = "faults"
ROOT = f"s3://{BUCKET}/root"
FILES, ROWS, KEYS = 4, 6000, 800
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "test-key",
    "AWS_SECRET_ACCESS_KEY": "test-secret-faults",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="module")
def moto():
    with moto_server() as url:
        client = boto3.client("s3", endpoint_url=url, **_boto(CREDENTIALS))
        client.create_bucket(Bucket=BUCKET)
        yield url


def _boto(env: dict) -> dict:
    return {
        "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
        "region_name": env["AWS_DEFAULT_REGION"],
    }


@pytest.fixture(scope="module")
def reference(moto):
    """The sample on S3 and the undisturbed level-1 outputs and result, as bytes."""
    options = {"endpoint_url": moto, "key": "k", "secret": "s"}
    store = open_store(ROOT, options)
    generate(store, FILES, ROWS, KEYS, seed=4)
    env = {**CREDENTIALS, "AWS_ENDPOINT_URL": moto}
    for i in range(2):
        assert cli(str(i), "1", "--root", ROOT, module="workload.process", env=env).returncode == 0
    assert cli("0", "2", "--root", ROOT, module="workload.final", env=env).returncode == 0
    return {rel: store.read_bytes(rel) for rel in ("l2/0.parquet", "l2/1.parquet", *_RESULT)}


_RESULT = (layout.BY_KEY, layout.BY_CATEGORY)


@pytest.fixture
def proxy(moto):
    with FaultProxy(moto) as p:
        yield p


@pytest.fixture
def env(proxy, tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    return {
        **CREDENTIALS,
        "AWS_ENDPOINT_URL": proxy.url,
        "TMPDIR": str(spool),
        "WORKLOAD_STALE_SECONDS": "0",
    }


def s3(moto):
    return boto3.client("s3", endpoint_url=moto, **_boto(CREDENTIALS))


def read(moto, rel: str) -> bytes:
    return s3(moto).get_object(Bucket=BUCKET, Key=f"root/{rel}")["Body"].read()


def level_pod(env, index=0, **kwargs):
    return cli(str(index), "1", "--root", ROOT, module="workload.process", env=env, **kwargs)


def final_pod(env):
    return cli("0", "2", "--root", ROOT, module="workload.final", env=env)


def error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize(
    "action", ["internal_error", "service_unavailable", "slow_down", "reset", "close", "truncate"]
)
def test_one_request_in_five_failing_is_absorbed(moto, reference, proxy, env, action):
    proxy.add(action=action, rate=0.2, seed=7)
    assert (r := level_pod(env, 1)).returncode == 0, r.stderr
    assert read(moto, "l2/1.parquet") == reference["l2/1.parquet"]
    assert proxy.rules[0].fired >= 1  # the fault did happen


def test_short_bodies_are_asked_for_again(moto, reference, proxy, env):
    proxy.add(action="short", methods="GET", nth=[1, 2, 4])
    assert (r := level_pod(env, 0)).returncode == 0, r.stderr
    assert read(moto, "l2/0.parquet") == reference["l2/0.parquet"]


def test_the_whole_tree_under_one_fault_in_twenty(moto, reference, proxy, env):
    for seed, action in enumerate(["service_unavailable", "reset", "truncate", "slow_down"]):
        proxy.add(action=action, rate=0.05 / 4, seed=seed)
    proxy.add(action="short", methods="GET", rate=0.05, seed=9)
    for i in range(2):
        assert (r := level_pod(env, i)).returncode == 0, r.stderr
    assert (r := final_pod(env)).returncode == 0, r.stderr
    for rel in _RESULT:
        assert read(moto, rel) == reference[rel]


@pytest.mark.parametrize(
    ("rule", "code", "needle"),
    [
        ({"action": "service_unavailable", "methods": "GET"}, errors.EXIT_TRANSIENT, "ServiceU"),
        ({"action": "slow_down"}, errors.EXIT_TRANSIENT, "storage unavailable"),
        ({"action": "reset"}, errors.EXIT_TRANSIENT, "storage unavailable"),
        ({"action": "close", "methods": "GET"}, errors.EXIT_TRANSIENT, "storage unavailable"),
        ({"action": "truncate", "methods": "GET"}, errors.EXIT_TRANSIENT, "storage unavailable"),
        (
            {"action": "short", "methods": "GET", "path": "l1/0"},
            errors.EXIT_TRANSIENT,
            "l1/0.parquet",
        ),
        ({"action": "access_denied"}, errors.EXIT_PERMISSION, "access denied"),
        ({"action": "access_denied", "methods": "PUT"}, errors.EXIT_PERMISSION, "l2/0.parquet"),
    ],
)
def test_persistent_faults_give_their_code(moto, reference, proxy, env, rule, code, needle):
    proxy.add(**rule)
    started = time.monotonic()
    # The first case keeps the clients' own retries (bounded: under a minute); the others
    # take botocore's to one attempt, since the verdict, not the back-off, is under test.
    quick = {} if rule["action"] == "service_unavailable" else {"AWS_MAX_ATTEMPTS": "1"}
    result = level_pod({**env, **quick}, 0)
    assert result.returncode == code, result.stderr
    assert needle in error_line(result)
    assert time.monotonic() - started < 60
    assert "test-secret-faults" not in result.stderr + result.stdout


def test_a_store_that_never_answers_is_given_up_within_the_budget(reference, proxy, env):
    proxy.add(action="stall", seconds=60)
    started = time.monotonic()
    result = level_pod({**env, "WORKLOAD_STALL_SECONDS": "3"}, 0)
    elapsed = time.monotonic() - started
    assert result.returncode == errors.EXIT_TRANSIENT, result.stderr
    line = error_line(result)
    assert "no progress for 3 s" in line and "s3://faults/root" in line
    assert elapsed < 20, elapsed


def test_a_missing_bucket_is_configuration_and_named(moto, tmp_path):
    env = {**CREDENTIALS, "AWS_ENDPOINT_URL": moto}
    for argv, module in (
        (["0", "1", "--root", "s3://no-such-bucket/x"], "workload.process"),
        (
            ["generate", "--files", "1", "--rows", "10", "--root", "s3://no-such-bucket/x"],
            "workload",
        ),
    ):
        result = cli(*argv, module=module, env=env)
        assert result.returncode == errors.EXIT_CONFIG, result.stderr
        assert "bucket 'no-such-bucket' does not exist" in error_line(result)


def test_a_dead_writers_spool_and_multipart_upload_are_cleaned_up(moto, reference, proxy, env):
    client = s3(moto)
    key = "root/l2/0.parquet"
    client.delete_object(Bucket=BUCKET, Key=key)
    stale = client.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    other = client.create_multipart_upload(Bucket=BUCKET, Key=key + ".other")["UploadId"]
    # A pod killed while its upload waits: its spool file stays behind in TMPDIR.
    proxy.add(action="delay", methods="PUT", seconds=20)
    spool = env["TMPDIR"]
    full = {k: v for k, v in os.environ.items() if not k.startswith(("WORKLOAD_", "AWS_"))}
    command = [sys.executable, "-m", "workload.process", "0", "1", "--root", ROOT]
    proc = subprocess.Popen(command, env={**full, **env}, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not any(n.startswith("workload-") for n in os.listdir(spool)):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert [n for n in os.listdir(spool) if n.startswith("workload-")]
    proxy.clear()

    assert (r := level_pod(env, 0)).returncode == 0, r.stderr
    assert read(moto, "l2/0.parquet") == reference["l2/0.parquet"]
    assert [n for n in os.listdir(spool) if n.startswith("workload-")] == []
    uploads = client.list_multipart_uploads(Bucket=BUCKET, Prefix="root/l2/").get("Uploads", [])
    assert stale not in {u["UploadId"] for u in uploads}
    assert other in {u["UploadId"] for u in uploads}  # another key's upload is not ours to end
    client.abort_multipart_upload(Bucket=BUCKET, Key=key + ".other", UploadId=other)
