"""Object storage overlapped (issue 11, item 3): on s3:// (moto behind the fault proxy) and
oss:// (the OSS emulator, with the proxy in front of it), a pod opens its inputs in parallel
with one GET each and no HEAD, reads each input's next window while it computes on the current
one, and uploads its output in parts while it writes it, completing the upload only at the end
and aborting it on failure. The bytes are the local run's, bit for bit."""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from urllib.parse import unquote

import boto3
import pytest

from workload import errors
from workload.generate import generate
from workload.storage import open_store
from workload.storage.upload import PART_SIZE
from workload.testing.oss_emulator import OSSEmulator
from workload.testing.pods import cli
from workload.testing.proxy import FaultProxy, Link, moto_server

BUCKET = "overlap"
ROWS = 500_000  # per input: about 4.7 MB; the merged output (about 9.4 MB) is over one part
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "test-key",
    "AWS_SECRET_ACCESS_KEY": "test-secret-overlap",
    "AWS_DEFAULT_REGION": "us-east-1",
}
OSS_KEY, OSS_SECRET = "oss-overlap-id", "oss-overlap-secret"
INPUTS = ("l1/0.parquet", "l1/1.parquet", "l1/_manifest.json")


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    """Two inputs and a level pod's output, on a local path: the reference bytes."""
    root = tmp_path_factory.mktemp("local")
    generate(open_store(str(root)), 2, ROWS, 50_000, seed=11)
    assert cli("0", "1", "--root", str(root), module="workload.process").returncode == 0
    return {rel: (root / rel).read_bytes() for rel in (*INPUTS, "l2/0.parquet")}


@pytest.fixture(scope="module")
def moto():
    with moto_server() as url:
        s3(url).create_bucket(Bucket=BUCKET)
        yield url


def s3(url: str):
    return boto3.client(
        "s3",
        endpoint_url=url,
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=CREDENTIALS["AWS_DEFAULT_REGION"],
    )


@pytest.fixture
def proxy(moto):
    with FaultProxy(moto) as p:
        yield p


@pytest.fixture
def s3_env(proxy, tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    return {**CREDENTIALS, "AWS_ENDPOINT_URL": proxy.url, "TMPDIR": str(spool)}


def put_inputs(client, prefix: str, local: dict) -> None:
    for rel in INPUTS:
        client.put_object(Bucket=BUCKET, Key=f"{prefix}/{rel}", Body=local[rel])


def kind(t) -> str:
    query = t.path.partition("?")[2]
    if t.method == "GET":
        return "list" if query.startswith(("list-type", "uploads", "prefix")) else "get"
    if t.method == "PUT":
        return "part" if "partNumber" in query else "put"
    if t.method == "POST":
        return "create" if query.startswith("uploads") else "complete"
    return t.method.lower()


def on_the_wire(transfers) -> float:
    """Seconds during which at least one of `transfers` was on the wire."""
    total, end = 0.0, float("-inf")
    for t in sorted(transfers, key=lambda t: t.started):
        if t.finished > end:
            total += t.finished - max(t.started, end)
            end = t.finished
    return total


def wait_for(condition, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def no_uploads_left(client, key: str) -> bool:
    uploads = client.list_multipart_uploads(Bucket=BUCKET, Prefix=key).get("Uploads", [])
    return [u for u in uploads if u["Key"] == key] == []


def missing(client, key: str) -> bool:
    try:
        client.head_object(Bucket=BUCKET, Key=key)
    except client.exceptions.ClientError as err:
        return err.response["Error"]["Code"] in ("404", "NoSuchKey")
    return False


# -- writes ------------------------------------------------------------------------------------
def store_through(proxy) -> object:
    options = {"endpoint_url": proxy.url, "key": "k", "secret": "s", "skip_instance_cache": True}
    return open_store(f"s3://{BUCKET}/store", options)


def test_an_output_is_uploaded_in_parts_while_it_is_written(moto, proxy):
    store = store_through(proxy)
    client = s3(moto)
    data = os.urandom(2 * PART_SIZE + 12_345)
    with store.output("w/big.bin", digest=True) as out, open(out.path, "wb") as f:
        f.write(data[: PART_SIZE + 10])
        f.flush()
        wait_for(lambda: any(kind(t) == "part" for t in proxy.transfers))  # while writing
        assert missing(client, "store/w/big.bin")  # nothing under the name before the end
        f.write(data[PART_SIZE + 10 :])
    assert (out.size, out.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    body = client.get_object(Bucket=BUCKET, Key="store/w/big.bin")["Body"].read()
    assert body == data
    kinds = [kind(t) for t in proxy.transfers]
    assert kinds == ["list", "create", "part", "part", "part", "complete"]  # stale-upload check
    assert no_uploads_left(client, "store/w/big.bin")


def test_an_output_smaller_than_a_part_is_one_put(moto, proxy):
    store = store_through(proxy)
    out = store.write_bytes("w/small.json", b'{"a": 1}\n', digest=True)
    assert out.sha256 == hashlib.sha256(b'{"a": 1}\n').hexdigest()
    assert [kind(t) for t in proxy.transfers] == ["list", "put"]
    assert s3(moto).get_object(Bucket=BUCKET, Key="store/w/small.json")["Body"].read() == (
        b'{"a": 1}\n'
    )


@pytest.mark.parametrize("where", ["the writer", "a part"])
def test_a_failure_mid_upload_leaves_no_object_and_no_upload(moto, proxy, where):
    store = store_through(proxy)
    client = s3(moto)
    key = f"store/w/failed-{where[0]}.bin"
    if where == "a part":
        proxy.add(action="access_denied", methods="PUT", path="partNumber=2")
    data = os.urandom(3 * PART_SIZE)
    with (
        pytest.raises((errors.PermissionDenied, RuntimeError)) as raised,
        store.output(key.removeprefix("store/")) as out,
        open(out.path, "wb") as f,
    ):
        f.write(data[: 2 * PART_SIZE])
        f.flush()
        wait_for(lambda: sum(kind(t) == "part" for t in proxy.transfers) >= 1)
        if where == "the writer":
            raise RuntimeError("the pod failed")
        f.write(data[2 * PART_SIZE :])
    if where == "a part":
        assert raised.type is errors.PermissionDenied and key in str(raised.value)
    assert missing(client, key)
    assert no_uploads_left(client, key)
    assert any(t.method == "DELETE" and "uploadId=" in t.path for t in proxy.transfers)
    assert not os.path.exists(out.path)


def test_exists_is_one_listing(moto, proxy):
    store = store_through(proxy)
    client = s3(moto)
    for key in ("store/e/file", "store/e/near.bak", "store/e/folder/x", "store/e/other-x"):
        client.put_object(Bucket=BUCKET, Key=key, Body=b"x")
    proxy.reset_log()
    names = ("e/file", "e/folder", "e/near", "e/other", "e/no")
    assert [store.exists(rel) for rel in names] == [True, True, False, False, False]
    assert [kind(t) for t in proxy.transfers] == ["list"] * 5


def test_exists_on_oss_is_one_listing(oss):
    import oss2

    emulator, oss_proxy = oss
    bucket = oss2.Bucket(oss2.Auth(OSS_KEY, OSS_SECRET), emulator.endpoint, BUCKET)
    for key in ("e/file", "e/near.bak", "e/folder/x"):
        bucket.put_object(key, b"x")
    options = {"endpoint": oss_proxy.url, "key": OSS_KEY, "secret": OSS_SECRET}
    store = open_store(f"oss://{BUCKET}/e", options)
    oss_proxy.reset_log()
    found = {rel: store.exists(rel) for rel in ("file", "folder", "near", "no")}
    assert found == {"file": True, "folder": True, "near": False, "no": False}
    assert [t.method for t in oss_proxy.transfers] == ["GET"] * 4


# -- pods --------------------------------------------------------------------------------------
def test_a_pod_on_s3_overlaps_its_requests_and_writes_the_local_bytes(local, moto, proxy, s3_env):
    """Through a link shaped like OSS's internal network: the inputs are opened with one GET
    each (no HEAD) at once, their first windows fetched at once, the output uploaded in parts
    and completed at the end."""
    client = s3(moto)
    put_inputs(client, "pod", local)
    proxy.link = Link()
    proxy.reset_log()
    result = cli("0", "1", "--root", f"s3://{BUCKET}/pod", module="workload.process", env=s3_env)
    assert result.returncode == 0, result.stderr
    assert (
        client.get_object(Bucket=BUCKET, Key="pod/l2/0.parquet")["Body"].read()
        == (local["l2/0.parquet"])
    )
    transfers = proxy.transfers
    heads = [t.path for t in transfers if t.method == "HEAD"]
    assert not any(p.endswith(("l1/0.parquet", "l1/1.parquet", "_manifest.json")) for p in heads)
    gets = {i: [t for t in transfers if t.path.endswith(f"l1/{i}.parquet")] for i in range(2)}
    for i, requests in gets.items():
        assert requests[0].range == "bytes=-65536"  # the footer, and the size, in one GET
        size = len(local[f"l1/{i}.parquet"])
        assert len(requests) <= 2 + math.ceil(size / 2**25)  # the documented bound: 3
    firsts = [next(t for t in gets[i] if t.range.startswith("bytes=4-")) for i in range(2)]
    # both inputs' first windows were on the wire at the same time (two connections)
    assert max(t.started for t in firsts) < min(t.finished for t in firsts)
    assert [kind(t) for t in transfers if "l2/0.parquet" in unquote(t.path)] == [
        "list",  # stale uploads of this key
        "create",
        "part",
        "part",
        "complete",
    ]
    busy = sum(t.finished - t.started for t in transfers)
    assert on_the_wire(transfers) < 0.9 * busy  # requests overlap: less than their serial sum
    record = json.loads(result.stdout.splitlines()[-1])
    assert record["requests_in"] == sum(len(r) for r in gets.values())


def test_a_pod_whose_upload_fails_mid_way_publishes_nothing_and_leaves_no_upload(
    local, moto, proxy, s3_env
):
    client = s3(moto)
    put_inputs(client, "denied", local)
    proxy.add(action="access_denied", methods="PUT", path="partNumber=1")
    result = cli("0", "1", "--root", f"s3://{BUCKET}/denied", module="workload.process", env=s3_env)
    assert result.returncode == errors.EXIT_PERMISSION, result.stderr
    assert "denied/l2/0.parquet" in result.stderr
    assert missing(client, "denied/l2/0.parquet")
    assert no_uploads_left(client, "denied/l2/0.parquet")
    assert os.listdir(s3_env["TMPDIR"]) == []  # no spool file left either


# -- OSS ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def oss():
    with OSSEmulator(OSS_KEY, OSS_SECRET) as emulator:
        emulator.create_bucket(BUCKET)
        with FaultProxy(emulator.endpoint) as oss_proxy:
            yield emulator, oss_proxy


def test_a_pod_on_oss_writes_the_local_bytes_in_parts(local, oss, tmp_path):
    import oss2

    emulator, oss_proxy = oss
    bucket = oss2.Bucket(oss2.Auth(OSS_KEY, OSS_SECRET), emulator.endpoint, BUCKET)
    for rel in INPUTS:
        bucket.put_object(f"pod/{rel}", local[rel])
    emulator.reset_counts()
    oss_proxy.reset_log()
    env = {
        "OSS_ENDPOINT": oss_proxy.url,
        "OSS_ACCESS_KEY_ID": OSS_KEY,
        "OSS_ACCESS_KEY_SECRET": OSS_SECRET,
        "TMPDIR": str(tmp_path),
    }
    result = cli("0", "1", "--root", f"oss://{BUCKET}/pod", module="workload.process", env=env)
    assert result.returncode == 0, result.stderr
    assert bucket.get_object("pod/l2/0.parquet").read() == local["l2/0.parquet"]
    counts = emulator.counts
    assert counts["InitiateMultipartUpload"] == counts["CompleteMultipartUpload"] == 1
    assert counts["UploadPart"] == 2 and counts["AppendObject"] == counts["PutObject"] == 0
    # no HEAD: sizes from Content-Range, l1/2.parquet's absence from one listing
    assert counts["HeadObject"] == counts["GetObjectMeta"] == counts["HEAD"] == 0
    footers = [t for t in oss_proxy.transfers if t.range == "bytes=-65536"]
    assert len(footers) == 2
