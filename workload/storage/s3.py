"""S3's quirks, in one place: the AWS environment, time-outs, reads, uploads, stale uploads.

Data is read through s3fs with true-length ranged GETs, not Arrow's native S3 reader: behind a
proxy that sent a short body, Arrow returned a buffer of the requested size with a zero tail and
no error (tests/test_fault_proxy.py pins it). An input's first request is a suffix range GET
whose Content-Range and ETag stand in for a HEAD (`tail`). Uploads are the requests of one
object (`Parts`: a PUT, or a multipart upload), driven by storage/upload.py.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from typing import Any

from .readahead import Tail

EXTRA = "s3"
# Time-outs for each request; a stalled store is also caught by the pod's watchdog
# (progress.py). botocore's defaults (60 s read time-out, legacy retries) under s3fs's own five
# retries held a pod about 420 s on a store that accepted connections and never answered.
CONFIG = {"connect_timeout": 10, "read_timeout": 30, "retries": {"max_attempts": 3}}
READ_CHUNK = 2**20  # a window's body is read into its buffer this much at a time


def configure(options: dict[str, Any]) -> None:
    """Options from the environment, where the user gave none."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint and "endpoint_url" not in options:
        options["endpoint_url"] = endpoint
    # A deep copy: botocore rewrites the client config's `retries` in place when it makes a
    # client (max_attempts 3 -> total_max_attempts 4, botocore/args.py), so a shared dict made
    # every later Store's options differ from the first's, missed fsspec's instance cache and
    # paid a new session (about 0.2 s of a pod's first request) each time.
    config = copy.deepcopy(dict(options.get("config_kwargs") or {}))
    for name, value in CONFIG.items():
        config.setdefault(name, copy.deepcopy(value))
    if os.environ.get("AWS_MAX_ATTEMPTS"):  # botocore's own variable wins over ours
        config.pop("retries")
    options["config_kwargs"] = config


def tune(fs) -> None:
    # s3fs's own loop around botocore's three attempts (default 5 loops: 15 requests and about
    # 45 s on a store that closes every connection)
    fs.retries = 1
    # A whole-object cat_file (a manifest, a summary) asked for the size first (a HEAD) to
    # split big objects into concurrent ranged GETs; one GET does for what the Store reads.
    fs.max_concurrency = 1


def ranged(fs, full: str) -> Callable[[int, int], bytes | bytearray]:
    """Bytes start..end-1 in one GET, read into one buffer of their size (s3fs's cat_file
    collects the body's pieces and joins them: twice a window of memory for a moment)."""
    from fsspec.asyn import sync
    from s3fs.core import _error_wrapper

    bucket, key, _ = fs.split_path(full)

    async def get(start: int, end: int) -> bytes | bytearray:
        response = await fs._call_s3(
            "get_object", Bucket=bucket, Key=key, Range=f"bytes={start}-{end - 1}"
        )
        try:
            return await read_body(response["Body"], response.get("ContentLength"), end - start)
        finally:
            response["Body"].close()

    return lambda start, end: sync(
        fs.loop, _error_wrapper, get, args=(start, end), retries=fs.retries
    )


async def read_body(body, length: int | None, n: int) -> bytes | bytearray:
    """A response body of `length` bytes that should hold `n`: read into one buffer when the
    lengths agree, whole otherwise (the caller's length check then asks again). A body cut short
    raises (botocore checks the Content-Length)."""
    if length != n:
        return await body.read()
    buffer = bytearray(n)
    with memoryview(buffer) as view:
        got = 0
        while got < n:
            chunk = await body.read(min(n - got, READ_CHUNK))
            if not chunk:
                return buffer[:got]
            view[got : got + len(chunk)] = chunk
            got += len(chunk)
    return buffer


def exists(fs, full: str) -> bool | None:
    """Whether an object or a folder is at `full`, from one listing (s3fs asks a HEAD and,
    on a 404, lists); None when one page of listing cannot tell."""
    bucket, key, _ = fs.split_path(full)
    listing = fs.call_s3("list_objects_v2", Bucket=bucket, Prefix=key, Delimiter="/")
    if any(o["Key"] == key for o in listing.get("Contents", [])):
        return True
    if any(p["Prefix"] == key + "/" for p in listing.get("CommonPrefixes", [])):
        return True
    return None if listing.get("IsTruncated") else False


def tail(fs, full: str) -> Callable[[int], Tail | None]:
    """The last n bytes of the object (all of a smaller one) with its size and ETag, in one
    GET ("Range: bytes=-n"); None for an answer without a Content-Range (an empty object)."""
    from fsspec.asyn import sync
    from s3fs.core import _error_wrapper

    bucket, key, _ = fs.split_path(full)

    async def get(n: int):
        response = await fs._call_s3("get_object", Bucket=bucket, Key=key, Range=f"bytes=-{n}")
        try:
            return response, await response["Body"].read()
        finally:
            response["Body"].close()

    def fetch(n: int) -> Tail | None:
        response, data = sync(fs.loop, _error_wrapper, get, args=(n,), retries=fs.retries)
        content_range = response.get("ContentRange") or ""
        if not content_range.startswith("bytes ") or "/" not in content_range:
            return None
        first = content_range[6:].split("-", 1)[0]
        return Tail(data, int(first), int(content_range.rsplit("/", 1)[1]), response["ETag"])

    return fetch


class Parts:
    """The upload requests of one object (storage/upload.py drives them): a PUT, or a multipart
    upload's create, parts, complete and abort."""

    def __init__(self, fs, full: str):
        self.fs, self.full = fs, full
        self.bucket, self.key, _ = fs.split_path(full)
        self.upload_id = ""

    def _call(self, method: str, **kwargs) -> Any:
        return self.fs.call_s3(method, Bucket=self.bucket, Key=self.key, **kwargs)

    def put(self, data: bytes) -> None:
        self._call("put_object", Body=data)
        self.fs.invalidate_cache(self.full)

    def create(self) -> None:
        self.upload_id = self._call("create_multipart_upload")["UploadId"]

    def upload(self, number: int, data: bytes) -> str:
        return self._call("upload_part", UploadId=self.upload_id, PartNumber=number, Body=data)[
            "ETag"
        ]

    def complete(self, etags: list[str]) -> None:
        parts = [{"PartNumber": i, "ETag": etag} for i, etag in enumerate(etags, 1)]
        self._call(
            "complete_multipart_upload",
            UploadId=self.upload_id,
            MultipartUpload={"Parts": parts},
        )
        self.fs.invalidate_cache(self.full)

    def abort(self) -> None:
        self._call("abort_multipart_upload", UploadId=self.upload_id)


def abort_stale_uploads(fs, bucket: str, key: str, cutoff: float) -> None:
    """Abort incomplete multipart uploads of `key` initiated before `cutoff`."""
    listing = fs.call_s3("list_multipart_uploads", Bucket=bucket, Prefix=key)
    for upload in listing.get("Uploads", []):
        if upload["Key"] == key and upload["Initiated"].timestamp() <= cutoff:
            fs.call_s3(
                "abort_multipart_upload", Bucket=bucket, Key=key, UploadId=upload["UploadId"]
            )
