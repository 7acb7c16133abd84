"""The fault-injecting proxy (workload/testing/proxy.py) with moto behind it, as clients see it."""

from __future__ import annotations

import http.client
import itertools
import random
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    FlexibleChecksumError,
    ReadTimeoutError,
    ResponseStreamingError,
)

from workload.testing.proxy import Entry, FaultProxy, Link, Rule, moto_server

DATA = random.Random(20260101).randbytes(10_000)
_names = itertools.count()
# moto routes a request to S3 by a SigV4-looking Authorization header (it checks no signature)
SIGV4 = (
    "AWS4-HMAC-SHA256 Credential=fault-key/20260101/us-east-1/s3/aws4_request, "
    "SignedHeaders=host, Signature=0"
)


@pytest.fixture(scope="module")
def moto():
    with moto_server() as url:
        yield url


@pytest.fixture
def proxy(moto):
    with FaultProxy(moto) as p:
        yield p


def client(url: str, **config):
    # NB botocore's retries={"max_attempts": 1} means ONE RETRY (two attempts, see
    # test_max_attempts_is_retries): total_max_attempts=1 is what makes every fault surface.
    config.setdefault("retries", {"total_max_attempts": 1})
    return boto3.client(
        "s3",
        endpoint_url=url,
        aws_access_key_id="fault-key",
        aws_secret_access_key="fault-secret",
        region_name="us-east-1",
        config=Config(**config),
    )


@pytest.fixture
def s3(proxy):
    return client(proxy.url)


@pytest.fixture
def bucket(proxy, s3):
    """A fresh bucket with DATA at "obj", made through the proxy; the log starts empty."""
    name = f"fault-{next(_names)}"
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="obj", Body=DATA)
    proxy.reset_log()
    return name


def test_forwards_everything_over_one_keep_alive_connection(proxy, s3):
    s3.create_bucket(Bucket="fwd")
    s3.put_object(Bucket="fwd", Key="a/empty", Body=b"")
    s3.put_object(Bucket="fwd", Key="a/data", Body=DATA, Metadata={"k": "v"})
    got = s3.get_object(Bucket="fwd", Key="a/data")
    assert got["Body"].read() == DATA
    assert got["Metadata"] == {"k": "v"}
    assert s3.get_object(Bucket="fwd", Key="a/empty")["Body"].read() == b""
    ranged = s3.get_object(Bucket="fwd", Key="a/data", Range="bytes=100-199")
    assert ranged["Body"].read() == DATA[100:200]
    assert ranged["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert s3.head_object(Bucket="fwd", Key="a/data")["ContentLength"] == len(DATA)
    listed = s3.list_objects_v2(Bucket="fwd", Prefix="a/")
    assert [o["Key"] for o in listed["Contents"]] == ["a/data", "a/empty"]
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket="fwd", Key="missing")
    assert err.value.response["Error"]["Code"] == "NoSuchKey"
    s3.delete_object(Bucket="fwd", Key="a/empty")
    # a multipart upload: POST ?uploads, PUT ?partNumber, POST ?uploadId
    upload = s3.create_multipart_upload(Bucket="fwd", Key="mp")["UploadId"]
    part = s3.upload_part(Bucket="fwd", Key="mp", UploadId=upload, PartNumber=1, Body=DATA)
    s3.complete_multipart_upload(
        Bucket="fwd",
        Key="mp",
        UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    assert s3.get_object(Bucket="fwd", Key="mp")["Body"].read() == DATA

    assert proxy.connections == 1  # sequential requests reuse one HTTP/1.1 connection
    results = [(e.method, e.result) for e in proxy.log]
    assert results[:3] == [("PUT", 200), ("PUT", 200), ("PUT", 200)]
    assert ("GET", 404) in results and ("HEAD", 200) in results and ("DELETE", 204) in results
    assert proxy.log[5].path == "/fwd/a/data"  # the ranged GET, path as received
    assert any(e.path.startswith("/fwd?list-type=2") for e in proxy.log)  # query kept
    assert proxy.counts == {"PUT": 4, "GET": 6, "HEAD": 1, "POST": 2, "DELETE": 1}


def test_raw_chunked_request_body_is_forwarded_as_sent(proxy):
    conn = http.client.HTTPConnection(proxy.host, proxy.port, timeout=5)
    auth = {"Authorization": SIGV4}
    try:
        conn.request("PUT", "/chunky", headers=auth)
        assert conn.getresponse().read() is not None
        body = (DATA[:3000], DATA[3000:3001], DATA[3001:])
        conn.request("PUT", "/chunky/obj", body=iter(body), headers=auth, encode_chunked=True)
        response = conn.getresponse()
        response.read()
        assert response.status == 200
        conn.request("GET", "/chunky/obj", headers=auth)
        assert conn.getresponse().read() == DATA
    finally:
        conn.close()
    assert proxy.connections == 1


ERRORS = [
    ("internal_error", 500, "InternalError"),
    ("service_unavailable", 503, "ServiceUnavailable"),
    ("slow_down", 503, "SlowDown"),
    ("access_denied", 403, "AccessDenied"),
]


@pytest.mark.parametrize(("action", "status", "code"), ERRORS)
def test_error_responses(proxy, s3, bucket, action, status, code):
    proxy.add(Rule(action, methods="GET", times=1))
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="obj")
    assert err.value.response["Error"]["Code"] == code
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert s3.get_object(Bucket=bucket, Key="obj")["Body"].read() == DATA  # fired once
    assert proxy.log == [
        Entry("GET", f"/{bucket}/obj", action),
        Entry("GET", f"/{bucket}/obj", 200),
    ]


def test_error_on_head_has_no_body_so_the_code_is_the_status(proxy, s3, bucket):
    proxy.add(Rule("slow_down", methods="HEAD"))
    with pytest.raises(ClientError) as err:
        s3.head_object(Bucket=bucket, Key="obj")
    assert err.value.response["Error"]["Code"] == "503"
    proxy.add(Rule("error", methods="PUT", status=409, code="OperationAborted"))
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=bucket, Key="new", Body=b"x")
    assert err.value.response["Error"]["Code"] == "OperationAborted"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409


def test_reset_and_close_are_connection_closed_errors(proxy, s3, bucket):
    # Both surface as ConnectionClosedError wrapping urllib3's ProtocolError; the cause tells
    # them apart: ConnectionResetError (RST) or http.client.RemoteDisconnected (FIN).
    proxy.add(Rule("reset", methods="GET", nth=1))
    proxy.add(Rule("close", methods="GET", nth=2))
    with pytest.raises(ConnectionClosedError) as reset:
        s3.get_object(Bucket=bucket, Key="obj")
    assert isinstance(reset.value.kwargs["error"].args[1], ConnectionResetError)
    with pytest.raises(ConnectionClosedError) as closed:
        s3.get_object(Bucket=bucket, Key="obj")
    assert isinstance(closed.value.kwargs["error"].args[1], http.client.RemoteDisconnected)
    # a PUT that expects "100 Continue" is reset before it: no body read, nothing stored
    proxy.add(Rule("reset", methods="PUT"))
    with pytest.raises(ConnectionClosedError):
        s3.put_object(Bucket=bucket, Key="never", Body=DATA)
    proxy.clear()
    assert s3.get_object(Bucket=bucket, Key="obj")["Body"].read() == DATA
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="never")
    assert [e.result for e in proxy.log] == ["reset", "close", "reset", 200, 404]


def test_truncated_body_raises_on_read(proxy, s3, bucket):
    proxy.add(Rule("truncate", methods="GET", keep=1000))
    response = s3.get_object(Bucket=bucket, Key="obj")  # status and headers arrive intact
    assert response["ContentLength"] == len(DATA)
    with pytest.raises(ResponseStreamingError, match="IncompleteRead"):
        response["Body"].read()
    assert proxy.log[-1].result == "truncate"


def test_short_body(proxy, s3, bucket):
    proxy.add(Rule("short", methods="GET", keep=1000))
    # By default botocore asks for the object's checksum (ChecksumMode=ENABLED), moto returns
    # the CRC32 stored at put_object, and the too-short body fails that check at the end.
    with pytest.raises(FlexibleChecksumError):
        s3.get_object(Bucket=bucket, Key="obj")["Body"].read()
    # Without response checksums the short body is accepted silently.
    lax = client(proxy.url, response_checksum_validation="when_required")
    response = lax.get_object(Bucket=bucket, Key="obj")
    assert response["ContentLength"] == 1000
    assert response["Body"].read() == DATA[:1000]
    ranged = s3.get_object(Bucket=bucket, Key="obj", Range="bytes=0-4999")  # never validated
    assert ranged["Body"].read() == DATA[:1000]
    proxy.clear()
    assert lax.get_object(Bucket=bucket, Key="obj")["Body"].read() == DATA
    assert proxy.connections == 2  # the short answers were well framed: connections kept


def test_stall_gives_read_timeout_and_ends_when_the_client_leaves(proxy, bucket):
    s3 = client(proxy.url, read_timeout=1, connect_timeout=1)
    proxy.add(Rule("stall", methods="GET", times=1, seconds=30))
    start = time.monotonic()
    with pytest.raises(ReadTimeoutError):
        s3.get_object(Bucket=bucket, Key="obj")
    assert 0.9 < time.monotonic() - start < 3
    assert s3.get_object(Bucket=bucket, Key="obj")["Body"].read() == DATA
    assert [e.result for e in proxy.log] == ["stall", 200]


def test_delay_forwards_late(proxy, s3, bucket):
    proxy.add(Rule("delay", methods="GET", seconds=0.3))
    start = time.monotonic()
    assert s3.get_object(Bucket=bucket, Key="obj")["Body"].read() == DATA
    assert time.monotonic() - start >= 0.3
    assert proxy.log[-1].result == "delay"


def test_rules_fire_by_method_number_path_and_times(proxy, s3, bucket):
    puts = proxy.add(Rule("internal_error", methods="PUT", nth=(2, 4)))
    deny = proxy.add(Rule("access_denied", path=r"/secret"))
    slow = proxy.add(Rule("slow_down", methods=("GET", "HEAD"), path=r"/obj$", times=2))
    failed = []
    for i in range(1, 6):
        try:
            s3.put_object(Bucket=bucket, Key=f"k{i}", Body=b"x")
        except ClientError:
            failed.append(i)
        s3.get_object(Bucket=bucket, Key="k1")  # these GETs never match
    assert failed == [2, 4]
    with pytest.raises(ClientError, match="AccessDenied"):
        s3.get_object(Bucket=bucket, Key="secret/x")
    codes = []
    for _ in range(4):
        try:
            s3.get_object(Bucket=bucket, Key="obj")
            codes.append(200)
        except ClientError as err:
            codes.append(err.response["ResponseMetadata"]["HTTPStatusCode"])
    assert codes == [503, 503, 200, 200]
    assert (puts.seen, puts.fired) == (5, 2)
    assert (deny.seen, deny.fired) == (1, 1)
    assert (slow.seen, slow.fired) == (4, 2)


def test_rate_rule_is_deterministic_with_a_seed(moto):
    def pattern() -> list[bool]:
        with FaultProxy(moto) as p:
            s3 = client(p.url)
            s3.create_bucket(Bucket="rate")
            p.add(Rule("service_unavailable", methods="HEAD", rate=0.3, seed=7))
            out = []
            for _ in range(20):
                try:
                    s3.head_bucket(Bucket="rate")
                    out.append(False)
                except ClientError:
                    out.append(True)
            assert [e.result == "service_unavailable" for e in p.log[1:]] == out
            return out

    rng = random.Random(7)
    expected = [rng.random() < 0.3 for _ in range(20)]
    assert 0 < sum(expected) < 20
    assert pattern() == expected
    assert pattern() == expected


def test_max_attempts_is_retries(proxy, bucket):
    """botocore's retries={"max_attempts": 1} is one retry: a single fault is hidden."""
    proxy.add(Rule("internal_error", methods="GET", times=1))
    retrying = client(proxy.url, retries={"max_attempts": 1})
    assert retrying.get_object(Bucket=bucket, Key="obj")["Body"].read() == DATA
    assert [e.result for e in proxy.log] == ["internal_error", 200]


def test_concurrent_requests_and_rule_changes_are_all_logged(proxy, bucket):
    s3 = client(proxy.url, max_pool_connections=8)
    rule = proxy.add(Rule("internal_error", methods="GET", rate=0.5, seed=3))
    outcomes: list[bool] = []
    lock = threading.Lock()

    def get(i: int) -> None:
        if i == 40:
            proxy.clear()  # while others run
        try:
            s3.get_object(Bucket=bucket, Key="obj")["Body"].read()
            ok = True
        except ClientError:
            ok = False
        with lock:
            outcomes.append(ok)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(get, range(80)))
    log = proxy.log
    assert len(log) == 80 == proxy.counts["GET"]
    assert sum(e.result == "internal_error" for e in log) == rule.fired == outcomes.count(False)
    assert 0 < rule.fired <= rule.seen <= 80
    assert proxy.connections > 1  # urllib3 may briefly exceed its pool size


def test_close_is_prompt_with_idle_stalled_and_delayed_connections(moto):
    proxy = FaultProxy(moto).start()
    s3 = client(proxy.url)
    s3.list_buckets()  # leaves an idle keep-alive connection
    proxy.add(Rule("stall", path="^/stalled", seconds=60))
    proxy.add(Rule("delay", path="^/delayed", seconds=60))
    socks = []
    for path in ("/stalled", "/delayed"):
        sock = socket.create_connection((proxy.host, proxy.port), timeout=5)
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        socks.append(sock)
    deadline = time.monotonic() + 5
    while len(proxy.log) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sorted(map(str, (e.result for e in proxy.log))) == ["200", "delay", "stall"]
    server = proxy._server
    start = time.monotonic()
    proxy.close()
    assert time.monotonic() - start < 2
    assert not server.handlers  # every handler thread has finished
    for sock in socks:
        assert sock.recv(100) == b""  # closed without a byte
        sock.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((proxy.host, proxy.port), timeout=1)


def test_pyarrow_short_and_truncated_bodies(proxy, bucket):
    pafs = pytest.importorskip("pyarrow.fs")
    fs = pafs.S3FileSystem(
        endpoint_override=f"{proxy.host}:{proxy.port}",
        scheme="http",
        access_key="fault-key",
        secret_key="fault-secret",
        region="us-east-1",
        retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=1),
    )
    # Its uploads are aws-chunked with a trailing checksum: forwarded raw, moto decodes them.
    with fs.open_output_stream(f"{bucket}/pa") as out:
        out.write(DATA)
    assert fs.get_file_info(f"{bucket}/pa").size == len(DATA)

    proxy.add(Rule("short", methods="GET", keep=100))
    f = fs.open_input_file(f"{bucket}/obj")  # a HEAD, not faulted
    buf = f.read_at(1024, 0)  # GET Range: bytes=0-1023, answered 206 with 100 bytes
    # pyarrow 26 does NOT notice: read_at returns a full-size 1024-byte buffer whose first 100
    # bytes are the object's and whose last 924 are whatever was in the (uninitialised)
    # buffer -- zeros on a fresh allocation, garbage on a reused one. No error, no short read.
    assert len(buf) == 1024
    assert bytes(buf)[:100] == DATA[:100]
    assert bytes(buf)[100:] != DATA[100:1024]

    proxy.clear()
    proxy.add(Rule("truncate", methods="GET", keep=100))
    f = fs.open_input_file(f"{bucket}/obj")
    with pytest.raises(OSError, match="curlCode: 18"):  # "Transferred a partial file"
        f.read_at(1024, 0)
    # A single RST is retried once by the AWS SDK/curl even with max_attempts=1.
    proxy.clear()
    proxy.add(Rule("reset", methods="GET", times=1))
    assert bytes(fs.open_input_file(f"{bucket}/obj").read_at(1024, 0)) == DATA[:1024]
    assert [e.result for e in proxy.log[-3:]] == [200, "reset", 206]


# -- the shaped link ---------------------------------------------------------------------------
BIG = random.Random(11).randbytes(4_000_000)


@pytest.fixture
def shaped(moto):
    """A proxy whose link each test sets, with BIG at shaped/big (put before the link is set)."""
    with FaultProxy(moto) as p:
        s3 = client(p.url)
        s3.create_bucket(Bucket="shaped")
        s3.put_object(Bucket="shaped", Key="big", Body=BIG)
        s3.put_object(Bucket="shaped", Key="small", Body=b"x")
        p.reset_log()
        yield p, s3


class Raw:
    """One plain HTTP/1.1 connection to the proxy (no SDK: its own time stays out of the
    figures under test)."""

    def __init__(self, proxy: FaultProxy):
        self.conn = http.client.HTTPConnection(proxy.host, proxy.port, timeout=10)

    def __call__(self, method: str, path: str, body: bytes | None = None) -> bytes:
        self.conn.request(method, path, body=body, headers={"Authorization": SIGV4})
        response = self.conn.getresponse()
        data = response.read()
        assert response.status < 300, (response.status, data[:200])
        return data

    def close(self) -> None:
        self.conn.close()


def timed(fn, *args):
    start = time.monotonic()
    out = fn(*args)
    return time.monotonic() - start, out


def test_link_paces_a_download_at_its_bandwidth(shaped):
    proxy, _ = shaped
    proxy.link = Link(first_byte_s=0, bytes_per_s=20e6)
    raw = Raw(proxy)
    raw("GET", "/shaped/small")  # the connection is made
    seconds, got = timed(raw, "GET", "/shaped/big")
    raw.close()
    assert got == BIG
    assert 0.2 * 0.7 < seconds < 0.2 * 1.3, seconds  # 4 MB at 20 MB/s


def test_link_paces_an_upload_at_its_bandwidth(shaped):
    proxy, s3 = shaped
    proxy.link = Link(first_byte_s=0, bytes_per_s=20e6)
    raw = Raw(proxy)
    raw("GET", "/shaped/small")
    seconds, _ = timed(raw, "PUT", "/shaped/up", BIG)
    raw.close()
    assert 0.2 * 0.7 < seconds < 0.2 * 1.3, seconds
    deadline = time.monotonic() + 2  # the proxy records it just after it answered
    while not (puts := [t for t in proxy.transfers if t.path == "/shaped/up"]):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert puts[0].bytes_in == len(BIG)
    proxy.link = None
    assert s3.get_object(Bucket="shaped", Key="up")["Body"].read() == BIG


def test_each_connection_has_its_own_bandwidth(shaped):
    proxy, _ = shaped
    proxy.link = Link(first_byte_s=0, bytes_per_s=20e6)
    before = proxy.connections
    raws = [Raw(proxy), Raw(proxy)]
    for raw in raws:
        raw("GET", "/shaped/small")
    with ThreadPoolExecutor(2) as pool:
        seconds, got = timed(lambda: list(pool.map(lambda r: r("GET", "/shaped/big"), raws)))
    for raw in raws:
        raw.close()
    assert got == [BIG, BIG]
    assert proxy.connections == before + 2
    # Each answer took the time of 4 MB at 20 MB/s, not 8 MB's, and they ran at the same time:
    # 8 MB came in about the time of 4 MB, twice one connection's bandwidth (the client side,
    # two threads reading 8 MB, adds a little).
    big = [t for t in proxy.transfers if t.path.endswith("/big")]
    assert len(big) == 2 and max(t.started for t in big) < min(t.finished for t in big)
    assert all(0.2 * 0.7 < t.finished - t.started < 0.2 * 1.3 for t in big), big
    assert seconds < 0.2 * 1.5, seconds


def test_link_delays_every_answers_first_byte(shaped):
    proxy, s3 = shaped
    proxy.link = Link(first_byte_s=0.1, bytes_per_s=1e9)
    before = proxy.connections
    raw = Raw(proxy)
    seconds = [timed(raw, "GET", "/shaped/small")[0] for _ in range(3)]  # one connection
    seconds.append(timed(raw, "HEAD", "/shaped/small")[0])
    raw.close()
    for fault in (None, Rule("internal_error", methods="GET")):  # errors come as late
        if fault:
            proxy.add(fault)
        start = time.monotonic()
        with pytest.raises(ClientError):
            s3.get_object(Bucket="shaped", Key="missing")
        seconds.append(time.monotonic() - start)
    assert all(0.1 <= s < 0.1 * 1.3 for s in seconds), seconds
    assert proxy.connections == before + 1  # the raw connection's requests, then the client's


def test_link_defaults_are_the_issues_figures():
    assert (Link().first_byte_s, Link().bytes_per_s) == (0.015, 80e6)
    with pytest.raises(ValueError):
        Link(bytes_per_s=0)
