"""Object storage for the `s3` case: moto's S3 server behind a counting reverse proxy.

Request counts are taken AT THE SERVER, never from a client's own bookkeeping: every request a
pod makes goes through `CountingProxy` (127.0.0.1, in this parent process), which records its
method, object, whether it carried a Range header, and the body bytes each way, then forwards it
unchanged to moto. The children get the proxy as AWS_ENDPOINT_URL. Setup and checks talk to moto
directly, so they are never counted.

The targets (README, Storage): an input costs at most 2 + ceil(bytes / 32 MiB) GETs (the footer
and one per 32 MiB read-ahead window), and an output exactly one PUT or one multipart upload.
"""

from __future__ import annotations

import contextlib
import http.client
import http.server
import logging
import math
import socket
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

BUCKET = "bench"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "bench-key",
    "AWS_SECRET_ACCESS_KEY": "bench-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}
WINDOW = 32 * 2**20  # workload's read window (Settings.read_window)
# Headers that belong to one hop, not to the request: never forwarded either way.
_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer"}
_HOP |= {"upgrade", "host", "expect", "content-length"}


@dataclass(frozen=True)
class Request:
    method: str
    bucket: str
    key: str  # "" for a bucket request (a listing)
    query: str
    ranged: bool
    status: int
    bytes_out: int  # response body sent to the client
    bytes_in: int  # request body received from the client


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real clients expect

    def log_message(self, format, *args) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        self.server.connections.add(self.connection)
        self.upstream: http.client.HTTPConnection | None = None

    def finish(self) -> None:
        self.server.connections.discard(self.connection)
        if self.upstream is not None:
            self.upstream.close()
        super().finish()

    def _body(self) -> bytes:
        if "chunked" not in self.headers.get("Transfer-Encoding", "").lower():
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        chunks = []
        while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
            chunks.append(self.rfile.read(size))
            self.rfile.readline()
        while self.rfile.readline().strip():  # trailers
            pass
        return b"".join(chunks)

    def _send_upstream(self, body: bytes) -> http.client.HTTPResponse:
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
        headers["Content-Length"] = str(len(body))
        for attempt in range(2):  # moto may have closed an idle keep-alive connection
            if self.upstream is None:
                self.upstream = http.client.HTTPConnection(*self.server.upstream, timeout=300)
            try:
                self.upstream.request(self.command, self.path, body=body, headers=headers)
                return self.upstream.getresponse()
            except (ConnectionError, http.client.HTTPException):
                self.upstream.close()
                self.upstream = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _forward(self) -> None:
        body = self._body()
        response = self._send_upstream(body)
        payload = response.read()
        self.send_response(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in _HOP | {"server", "date"}:
                self.send_header(name, value)
        head = self.command == "HEAD"
        length = response.getheader("Content-Length", "0") if head else str(len(payload))
        self.send_header("Content-Length", length)
        self.end_headers()
        if not head:
            self.wfile.write(payload)
        self.server.record(self, response.status, 0 if head else len(payload), len(body))

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream: tuple[str, int]):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.upstream = upstream
        self.connections: set[socket.socket] = set()
        self.requests: list[Request] = []
        self.lock = threading.Lock()

    def record(self, handler: _Handler, status: int, bytes_out: int, bytes_in: int) -> None:
        url = urlsplit(handler.path)
        bucket, _, key = unquote(url.path).lstrip("/").partition("/")
        ranged = "range" in {k.lower() for k in handler.headers}
        request = Request(
            handler.command, bucket, key, url.query, ranged, status, bytes_out, bytes_in
        )
        with self.lock:
            self.requests.append(request)


class S3Server:
    """moto's S3 server with the counting proxy in front; one bucket, BUCKET."""

    def __init__(self) -> None:
        self.endpoint = ""  # the proxy: what the children use
        self.moto_endpoint = ""
        self._moto = self._proxy = self._thread = None
        self._client = None

    def __enter__(self) -> S3Server:
        import boto3
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._moto.start()
        host, port = self._moto.get_host_and_port()
        self.moto_endpoint = f"http://{host}:{port}"
        self._proxy = _Server((host, port))
        self._thread = threading.Thread(
            target=self._proxy.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        self.endpoint = f"http://127.0.0.1:{self._proxy.server_address[1]}"
        self._client = boto3.client(
            "s3",
            endpoint_url=self.moto_endpoint,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=CREDENTIALS["AWS_REGION"],
        )
        self._client.create_bucket(Bucket=BUCKET)
        return self

    def __exit__(self, *exc) -> None:
        if self._proxy is not None:
            self._proxy.shutdown()
            for conn in list(self._proxy.connections):  # idle keep-alive connections
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
            self._proxy.server_close()
            self._thread.join(timeout=5)
        if self._moto is not None:
            self._moto.stop()

    def env(self) -> dict[str, str]:
        """What a child needs to reach the bucket through the proxy."""
        return {**CREDENTIALS, "AWS_ENDPOINT_URL": self.endpoint}

    # -- uncounted: straight to moto --------------------------------------------------------
    def upload(self, local: Path, key: str) -> None:
        self._client.upload_file(str(local), BUCKET, key)

    def read(self, key: str) -> bytes:
        return self._client.get_object(Bucket=BUCKET, Key=key)["Body"].read()

    def size(self, key: str) -> int:
        return self._client.head_object(Bucket=BUCKET, Key=key)["ContentLength"]

    def delete_prefix(self, prefix: str) -> None:
        listed = self._client.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
        for item in listed:
            self._client.delete_object(Bucket=BUCKET, Key=item["Key"])

    # -- the counts -------------------------------------------------------------------------
    def reset(self) -> None:
        with self._proxy.lock:
            self._proxy.requests.clear()

    def requests(self) -> list[Request]:
        with self._proxy.lock:
            return list(self._proxy.requests)


def get_target(size: int) -> int:
    """GETs an input of `size` bytes may cost: the footer, plus one per 32 MiB window, plus one."""
    return 2 + math.ceil(size / WINDOW)


def summarize(requests: list[Request], inputs: dict[str, int], outputs: list[str]) -> dict:
    """Counts for one pod: totals by kind, GETs per input against the target, uploads per output.

    A multipart upload is one POST ?uploads, PUTs ?partNumber=..., one POST ?uploadId=...; a
    single PUT is a PUT on the key without partNumber."""
    kinds: Counter[str] = Counter()
    per_key: Counter[tuple[str, str]] = Counter()
    for r in requests:
        params = parse_qs(r.query, keep_blank_values=True)
        if r.method == "GET":
            kind = "lists" if not r.key else "range_gets" if r.ranged else "whole_gets"
        elif r.method == "PUT":
            kind = "upload_parts" if "partNumber" in params else "puts"
        elif r.method == "POST" and "uploads" in params:
            kind = "multipart_uploads"
        elif r.method == "POST" and "uploadId" in params:
            kind = "completes"
        else:
            kind = r.method.lower() + "s"
        kinds[kind] += 1
        per_key[kind, r.key] += 1
    input_gets = [per_key["range_gets", k] + per_key["whole_gets", k] for k in inputs]
    uploads_ok = all(
        (per_key["puts", k], per_key["multipart_uploads", k]) in ((1, 0), (0, 1))
        and per_key["completes", k] == per_key["multipart_uploads", k]
        for k in outputs
    )
    return {
        "requests": len(requests),
        "gets": kinds["range_gets"] + kinds["whole_gets"],
        "range_gets": kinds["range_gets"],
        "heads": kinds["heads"],
        "lists": kinds["lists"],
        "puts": kinds["puts"],
        "multipart_uploads": kinds["multipart_uploads"],
        "upload_parts": kinds["upload_parts"],
        "bytes_served": sum(r.bytes_out for r in requests),
        "bytes_received": sum(r.bytes_in for r in requests),
        "input_gets": ";".join(map(str, input_gets)),
        "input_get_targets": ";".join(str(get_target(size)) for size in inputs.values()),
        "uploads_per_output_ok": "yes" if uploads_ok else "no",
        # 4xx/5xx answers; a 404 on a HEAD is a client probing whether an object exists.
        "error_responses": sum(1 for r in requests if r.status >= 400),
    }
