"""OSS's quirks, in one place (ossfs 2025.5 over oss2): the OSS environment, the range fix,
resumable-upload checkpoints, stale uploads.

Faults designed around: range ends treated as inclusive (fsspec/ossfs#166), `cat_file` without
OSS's "standard" range behaviour (a range ending at the object's end returns the whole object),
the async filesystem broken on aiohttp >= 3.10 (#167; only the sync OSSFileSystem is used), and
`open("wb")` using AppendObject, which shows readers a half-written object (never used).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from typing import Any

from ..errors import ConfigError

EXTRA = "oss"
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


def ranged(fs, full: str) -> Callable[[int, int], bytes]:
    # get_object sends OSS's standard-range header; asking for one byte past `end` and slicing
    # is right whether or not a release makes the end exclusive (#166).
    return lambda start, end: fs.get_object(full, start, end)[: end - start]


def upload(fs, local: str, final: str, callback) -> None:
    """One whole object: ossfs's put_file (a PUT, or a resumable multipart upload completed at
    the end). It takes no fsspec callback."""
    import oss2
    from ossfs.base import SIMPLE_TRANSFER_THRESHOLD

    if os.path.getsize(local) < SIMPLE_TRANSFER_THRESHOLD:
        fs.put_file(local, final)
        return
    # oss2 keeps resumable-upload checkpoints under $HOME by default, which a non-root pod may
    # not be able to write; a private folder goes with the upload.
    with tempfile.TemporaryDirectory(prefix="workload-oss-") as store:
        fs.put_file(local, final, store=oss2.ResumableStore(root=store))


def abort_stale_uploads(fs, bucket_name: str, key: str, cutoff: float) -> None:
    import oss2

    bucket = fs._get_bucket(bucket_name)  # ossfs has no public multipart API
    for upload in oss2.MultipartUploadIterator(bucket, prefix=key):
        if upload.key == key and upload.initiation_date <= cutoff:
            bucket.abort_multipart_upload(key, upload.upload_id)
