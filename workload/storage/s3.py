"""S3's quirks, in one place: the AWS environment, time-outs, upload tuning, stale uploads.

Data is read through s3fs with true-length ranged GETs, not Arrow's native S3 reader: behind a
proxy that sent a short body, Arrow returned a buffer of the requested size with a zero tail and
no error (tests/test_fault_proxy.py pins it).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

EXTRA = "s3"
# Time-outs for each request; a stalled store is also caught by the pod's watchdog
# (progress.py). botocore's defaults (60 s read time-out, legacy retries) under s3fs's own five
# retries held a pod about 420 s on a store that accepted connections and never answered.
CONFIG = {"connect_timeout": 10, "read_timeout": 30, "retries": {"max_attempts": 3}}


def configure(options: dict[str, Any]) -> None:
    """Options from the environment, where the user gave none."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint and "endpoint_url" not in options:
        options["endpoint_url"] = endpoint
    config = dict(options.get("config_kwargs") or {})
    for name, value in CONFIG.items():
        config.setdefault(name, value)
    if os.environ.get("AWS_MAX_ATTEMPTS"):  # botocore's own variable wins over ours
        config.pop("retries")
    options["config_kwargs"] = config


def tune(fs) -> None:
    # s3fs's own loop around botocore's three attempts (default 5 loops: 15 requests and about
    # 45 s on a store that closes every connection)
    fs.retries = 1


def ranged(fs, full: str) -> Callable[[int, int], bytes]:
    return lambda start, end: fs.cat_file(full, start=start, end=end)


def upload(fs, local: str, final: str, callback) -> None:
    """One whole object: a single PUT, or a multipart upload completed only at the end. s3fs
    defaults to 50 MiB parts, ten in flight: up to 500 MB of buffers for one upload; two 16 MiB
    parts in flight keep a pod's memory flat (a pod on an 8M-row pair: 532 -> 307 MB)."""
    size = os.path.getsize(local)
    chunksize = max(16 * 2**20, -(-size // 10_000))
    fs.put_file(local, final, callback=callback, chunksize=chunksize, max_concurrency=2)


def abort_stale_uploads(fs, bucket: str, key: str, cutoff: float) -> None:
    """Abort incomplete multipart uploads of `key` initiated before `cutoff`."""
    listing = fs.call_s3("list_multipart_uploads", Bucket=bucket, Prefix=key)
    for upload in listing.get("Uploads", []):
        if upload["Key"] == key and upload["Initiated"].timestamp() <= cutoff:
            fs.call_s3(
                "abort_multipart_upload", Bucket=bucket, Key=key, UploadId=upload["UploadId"]
            )
