"""OSS's quirks, in one place (ossfs 2025.5 over oss2): the OSS environment, the range fix,
reads, uploads, stale uploads.

Faults designed around: range ends treated as inclusive (fsspec/ossfs#166), `cat_file` without
OSS's "standard" range behaviour (a range ending at the object's end returns the whole object),
the async filesystem broken on aiohttp >= 3.10 (#167; only the sync OSSFileSystem is used), and
`open("wb")` using AppendObject, which shows readers a half-written object (never used).
Uploads are oss2's PutObject or a multipart upload (`Parts`, driven by storage/upload.py), never
AppendObject. ossfs has no public multipart API, so its oss2 Bucket is used.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from ..errors import ConfigError
from .readahead import Tail

EXTRA = "oss"
READ_CHUNK = 2**20  # a window's body is read into its buffer this much at a time
ENVIRONMENT = (
    ("endpoint", "OSS_ENDPOINT"),
    ("key", "OSS_ACCESS_KEY_ID"),
    ("secret", "OSS_ACCESS_KEY_SECRET"),
    ("token", "OSS_SESSION_TOKEN"),
)


def configure(options: dict[str, Any]) -> None:
    for option, env in ENVIRONMENT:
        if os.environ.get(env) and option not in options:
            options[option] = os.environ[env]
    if not options.get("endpoint"):
        raise ConfigError("oss:// needs an endpoint: set OSS_ENDPOINT")


def tune(fs) -> None:
    pass


def ranged(fs, full: str) -> Callable[[int, int], bytes | bytearray]:
    """Bytes start..end-1 in one GET with OSS's standard range behaviour, read into one buffer
    of their size. oss2's byte_range is inclusive; ossfs's get_object passes its `end` to it as
    is (#166), so oss2 is called here with the last byte's offset."""
    bucket_name, key = fs.split_path(full)

    def fetch(start: int, end: int) -> bytes | bytearray:
        got = fs._call_oss(
            "get_object",
            key,
            bucket=bucket_name,
            byte_range=(start, end - 1),
            headers={"x-oss-range-behavior": "standard"},
        )
        n = end - start
        if got.content_length != n:  # not what was asked for: the caller's check asks again
            return got.read()
        buffer = bytearray(n)
        with memoryview(buffer) as view:
            filled = 0
            while filled < n:
                chunk = got.read(min(n - filled, READ_CHUNK))
                if not chunk:
                    return buffer[:filled]
                view[filled : filled + len(chunk)] = chunk
                filled += len(chunk)
        return buffer

    return fetch


def exists(fs, full: str) -> bool | None:
    """Whether an object or a folder is at `full`, from one listing (ossfs asks the object's
    meta and, when it is absent, lists); None when one page of listing cannot tell."""
    bucket_name, key = fs.split_path(full)
    listing = fs._call_oss(
        "list_objects", bucket=bucket_name, prefix=key, delimiter="/", max_keys=1000
    )
    if any(o.key == key for o in listing.object_list) or key + "/" in listing.prefix_list:
        return True
    return None if listing.is_truncated else False


def tail(fs, full: str) -> Callable[[int], Tail | None]:
    """The last n bytes of the object (all of a smaller one) with its size and ETag, in one
    GET (OSS's standard range behaviour); None for an answer without a Content-Range."""
    bucket_name, key = fs.split_path(full)

    def fetch(n: int) -> Tail | None:
        got = fs._call_oss(
            "get_object",
            key,
            bucket=bucket_name,
            byte_range=(None, n),
            headers={"x-oss-range-behavior": "standard"},
        )
        data = got.read()
        content_range = got.content_range or ""
        if not content_range.startswith("bytes ") or "/" not in content_range:
            return None
        first = content_range[6:].split("-", 1)[0]
        return Tail(data, int(first), int(content_range.rsplit("/", 1)[1]), got.etag)

    return fetch


class Parts:
    """The upload requests of one object (storage/upload.py drives them) through one oss2
    Bucket: PutObject, or a multipart upload's init, parts, complete and abort. A request that
    got no answer (oss2's RequestError) is sent again, up to three times in all, as ossfs does."""

    ATTEMPTS = 3

    def __init__(self, fs, full: str):
        self.fs, self.full = fs, full
        bucket_name, self.key = fs.split_path(full)
        self.bucket = fs._get_bucket(bucket_name)
        self.upload_id = ""

    def _call(self, method: str, *args) -> Any:
        import oss2

        for attempt in range(1, self.ATTEMPTS + 1):
            try:
                return getattr(self.bucket, method)(self.key, *args)
            except oss2.exceptions.RequestError:
                if attempt == self.ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    def put(self, data: bytes) -> None:
        self._call("put_object", data)
        self.fs.invalidate_cache(self.full)

    def create(self) -> None:
        self.upload_id = self._call("init_multipart_upload").upload_id

    def upload(self, number: int, data: bytes) -> str:
        return self._call("upload_part", self.upload_id, number, data).etag

    def complete(self, etags: list[str]) -> None:
        from oss2.models import PartInfo

        parts = [PartInfo(i, etag) for i, etag in enumerate(etags, 1)]
        self._call("complete_multipart_upload", self.upload_id, parts)
        self.fs.invalidate_cache(self.full)

    def abort(self) -> None:
        self._call("abort_multipart_upload", self.upload_id)


def abort_stale_uploads(fs, bucket_name: str, key: str, cutoff: float) -> None:
    import oss2

    bucket = fs._get_bucket(bucket_name)  # ossfs has no public multipart API
    for upload in oss2.MultipartUploadIterator(bucket, prefix=key):
        if upload.key == key and upload.initiation_date <= cutoff:
            bucket.abort_multipart_upload(key, upload.upload_id)
