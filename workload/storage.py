"""Storage by URL: a local path or file:// (a NAS mount is a local path), s3:// or oss://.

Reads go through Arrow's native filesystem where one exists (local, S3) and fsspec otherwise
(ossfs). On object stores a Parquet file is read through a read-ahead window: one ranged GET
fetches `read_window` bytes (32 MiB by default), so a file costs one GET for its footer plus about
one GET per 32 MiB, and memory per open input stays at one window whatever the file's size.

Writes are atomic and whole: the file is written to a temporary name (beside the target on a
local path, in TMPDIR for an object store) and only a complete file is renamed or uploaded. Uploads
are single PUTs or completed multipart uploads (s3fs, ossfs `put_file`), never ossfs's
`open("wb")`, which uses AppendObject and leaves a half-written object visible to readers.
"""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from .errors import ConfigError, DataError, WorkloadError, classify_storage, redact

_BACKENDS = {"s3": "s3", "s3a": "s3", "oss": "oss"}


class Store:
    """A root URL and the filesystems that reach it. Paths given to methods are relative."""

    def __init__(self, url: str, options: dict[str, Any] | None = None):
        self.url = url.rstrip("/") or url
        options = dict(options or {})
        protocol = url.split("://", 1)[0].lower() if "://" in url else "file"
        self.protocol = protocol
        if protocol == "file":
            path = url.split("://", 1)[1] if "://" in url else url
            self.fs = fsspec.filesystem("file")
            self.root = os.path.abspath(path)
            self.arrow_fs: pafs.FileSystem | None = pafs.LocalFileSystem()
            return
        if protocol in ("s3", "s3a"):
            self._s3_env(options)
        elif protocol == "oss":
            self._oss_env(options)
        try:
            self.fs, self.root = fsspec.core.url_to_fs(url, **options)
        except ImportError:
            extra = _BACKENDS.get(protocol, protocol)
            raise ConfigError(
                f"{protocol}:// needs an optional backend: pip install 'workload[{extra}]'"
            ) from None
        except ValueError as exc:
            if "protocol" in str(exc).lower():
                raise ConfigError(f"unknown storage URL scheme {protocol!r} in {self}") from None
            raise ConfigError(f"bad storage URL {self}: {exc}") from None
        except Exception as exc:
            raise classify_storage(exc, str(self)) from None
        self.root = self.root.rstrip("/")
        self.arrow_fs = _arrow_s3(options) if protocol in ("s3", "s3a") else None

    @staticmethod
    def _s3_env(options: dict[str, Any]) -> None:
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint and "endpoint_url" not in options:
            options["endpoint_url"] = endpoint

    @staticmethod
    def _oss_env(options: dict[str, Any]) -> None:
        for option, env in (
            ("endpoint", "OSS_ENDPOINT"),
            ("key", "OSS_ACCESS_KEY_ID"),
            ("secret", "OSS_ACCESS_KEY_SECRET"),
            ("token", "OSS_SESSION_TOKEN"),
        ):
            if os.environ.get(env) and option not in options:
                options[option] = os.environ[env]
        if not options.get("endpoint"):
            raise ConfigError("oss:// needs an endpoint: set OSS_ENDPOINT")

    def __str__(self) -> str:
        return redact(self.url)

    @property
    def is_local(self) -> bool:
        return self.protocol == "file"

    def path(self, rel: str) -> str:
        return posixpath.join(self.root, rel) if rel else self.root

    def describe(self, rel: str) -> str:
        """The URL of `rel` for messages (credentials masked)."""
        return redact(f"{self.url}/{rel}")

    # -- metadata -------------------------------------------------------------------------
    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except WorkloadError:
            raise
        except Exception as exc:
            raise classify_storage(exc, what) from None

    def exists(self, rel: str) -> bool:
        return self._call(self.describe(rel), lambda: self.fs.exists(self.path(rel)))

    def size(self, rel: str) -> int:
        return self._call(self.describe(rel), lambda: self.fs.size(self.path(rel)))

    def listdir(self, rel: str = "") -> list[str]:
        """Names directly under `rel`; empty when it does not exist."""

        def names() -> list[str]:
            try:
                entries = self.fs.ls(self.path(rel), detail=False, refresh=True)
            except FileNotFoundError:
                return []
            except TypeError:  # filesystems without a refresh option
                entries = self.fs.ls(self.path(rel), detail=False)
            return sorted(posixpath.basename(e.rstrip("/")) for e in entries)

        return self._call(self.describe(rel), names)

    def read_bytes(self, rel: str) -> bytes:
        return self._call(self.describe(rel), lambda: self.fs.cat_file(self.path(rel)))

    def read_json(self, rel: str, missing: Any = ...) -> Any:
        """The parsed JSON at `rel`; `missing` when it does not exist, if given.

        One GET rather than exists() + GET: on ossfs an exists() costs two or three requests."""
        try:
            data = self.fs.cat_file(self.path(rel))
        except FileNotFoundError:
            if missing is ...:
                raise DataError(f"missing {self.describe(rel)}") from None
            return missing
        except Exception as exc:
            raise classify_storage(exc, self.describe(rel)) from None
        try:
            return json.loads(data)
        except ValueError:
            raise DataError(f"{self.describe(rel)} is not valid JSON") from None

    def remove(self, rel: str) -> None:
        """Remove a file or a folder tree; absent is fine (runs are re-runnable)."""
        full = self.path(rel)

        def rm() -> None:
            with contextlib.suppress(FileNotFoundError):
                if self.fs.isdir(full):
                    self.fs.rm(full, recursive=True)
                elif self.fs.exists(full):
                    self.fs.rm(full)

        self._call(self.describe(rel), rm)

    # -- atomic writes --------------------------------------------------------------------
    @contextlib.contextmanager
    def output(self, rel: str) -> Iterator[str]:
        """Yield a local path to write `rel` to; publish it only if the block succeeds."""
        final = self.path(rel)
        if self.is_local:
            folder = os.path.dirname(final)
            os.makedirs(folder, exist_ok=True)
            tmp = os.path.join(folder, f".{os.path.basename(final)}.{uuid.uuid4().hex}.tmp")
        else:
            fd, tmp = tempfile.mkstemp(prefix="workload-", suffix=".tmp")
            os.close(fd)
        try:
            yield tmp
            if self.is_local:
                with open(tmp, "rb+") as f:
                    os.fsync(f.fileno())  # a NAS must have the bytes before the name exists
                os.replace(tmp, final)
            else:
                self._call(self.describe(rel), lambda: self._upload(tmp, final))
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.remove(tmp)

    def _upload(self, local: str, final: str) -> None:
        """One whole object: a single PUT, or a multipart upload completed only at the end."""
        extra: dict[str, Any] = {}
        if self.protocol in ("s3", "s3a"):
            # s3fs defaults to 50 MiB parts, ten in flight: up to 500 MB of buffers for one
            # upload. Two 16 MiB parts in flight keep a pod's memory flat.
            size = os.path.getsize(local)
            extra = {"chunksize": max(16 * 2**20, -(-size // 10_000)), "max_concurrency": 2}
        elif self.protocol == "oss":
            import oss2
            from ossfs.base import SIMPLE_TRANSFER_THRESHOLD

            if os.path.getsize(local) >= SIMPLE_TRANSFER_THRESHOLD:
                # oss2 keeps resumable-upload checkpoints under $HOME by default, which a
                # non-root pod may not be able to write.
                extra["store"] = oss2.ResumableStore(root=tempfile.gettempdir())
        self.fs.put_file(local, final, **extra)

    def write_bytes(self, rel: str, data: bytes) -> None:
        with self.output(rel) as tmp, open(tmp, "wb") as f:
            f.write(data)

    def write_json(self, rel: str, value: Any) -> None:
        self.write_bytes(rel, (json.dumps(value, indent=2, sort_keys=True) + "\n").encode())

    # -- Parquet input --------------------------------------------------------------------
    def open_parquet(self, rel: str, window: int) -> Shard:
        what = self.describe(rel)
        full = self.path(rel)
        if self.is_local:
            try:
                source: Any = self.arrow_fs.open_input_file(full)  # type: ignore[union-attr]
            except FileNotFoundError:
                raise DataError(f"missing input {what}") from None
            except OSError as exc:
                raise classify_storage(exc, what) from None
            reader = None
        else:
            fetch, size = self._ranged(full, what)
            reader = WindowReader(fetch, size, window, what)
            source = pa.PythonFile(reader, mode="r")
        try:
            size = reader.size() if reader else source.size()
            return Shard(pq.ParquetFile(source, pre_buffer=False), what, reader, size)
        except (pa.ArrowInvalid, OSError) as exc:
            raise reader.error if reader and reader.error else _bad_parquet(what, exc) from None

    def _ranged(self, full: str, what: str) -> tuple[Callable[[int, int], bytes], int]:
        if self.arrow_fs is not None:
            handle = self._call(what, lambda: self.arrow_fs.open_input_file(full))
            return (lambda start, end: handle.read_at(end - start, start)), handle.size()
        size = self._call(what, lambda: self.fs.size(full))
        if self.protocol == "oss":
            # ossfs 2025.5 treats range ends as inclusive (fsspec/ossfs#166), and its cat_file
            # omits OSS's "standard" range behaviour, so a range ending at the object's end
            # returns the whole object. get_object sends that header; asking for one byte past
            # `end` and slicing is right whether or not a release makes the end exclusive.
            def fetch(start: int, end: int) -> bytes:
                return self.fs.get_object(full, start, end)[: end - start]

            return fetch, size
        return (lambda start, end: self.fs.cat_file(full, start=start, end=end)), size


class WindowReader:
    """A read-only file object over ranged fetches, with a read-ahead window.

    Sequential reads (how a Parquet reader walks row groups and column chunks) hit the window;
    a miss fetches the next `window` bytes in one request. Counts requests and bytes.
    """

    def __init__(self, fetch: Callable[[int, int], bytes], size: int, window: int, what: str):
        self._fetch, self._size, self._window, self._what = fetch, size, window, what
        self._pos = 0
        self._buf = memoryview(b"")
        self._buf_start = 0
        self._lock = threading.Lock()
        self.requests = 0
        self.bytes = 0
        self.error: WorkloadError | None = None
        self.closed = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def size(self) -> int:
        return self._size

    def close(self) -> None:
        self.closed = True
        self._buf = memoryview(b"")

    def read(self, n: int = -1) -> bytes:
        with self._lock:
            end = self._size if n is None or n < 0 else min(self._size, self._pos + n)
            if end <= self._pos:
                return b""
            lo = self._pos - self._buf_start
            if lo < 0 or end - self._buf_start > len(self._buf):
                self._load(self._pos, max(end, min(self._size, self._pos + self._window)))
                lo = 0
            out = bytes(self._buf[lo : lo + end - self._pos])
            self._pos = end
            return out

    def _load(self, start: int, end: int) -> None:
        self._buf = memoryview(b"")  # let the old window go before the new one arrives
        try:
            data = self._fetch(start, end)
        except Exception as exc:
            self.error = classify_storage(exc, self._what)
            raise self.error from None
        if len(data) != end - start:
            self.error = DataError(f"short read from {self._what}: object changed while reading")
            raise self.error
        self.requests += 1
        self.bytes += len(data)
        self._buf, self._buf_start = memoryview(data), start


class Shard:
    """One Parquet input: its schema, row count, and a batch stream that classifies failures."""

    def __init__(self, file: pq.ParquetFile, what: str, reader: WindowReader | None, size: int):
        self.file, self.what, self._reader, self.size = file, what, reader, size
        self.schema = file.schema_arrow
        self.rows = file.metadata.num_rows

    @property
    def requests(self) -> int:
        return self._reader.requests if self._reader else 0

    @property
    def bytes_read(self) -> int:
        return self._reader.bytes if self._reader else self.size

    def batches(self, batch_rows: int) -> Iterator[pa.RecordBatch]:
        try:
            for batch in self.file.iter_batches(batch_size=batch_rows, use_threads=False):
                if batch.num_rows:
                    yield batch
        except (pa.ArrowInvalid, OSError) as exc:
            if self._reader is not None and self._reader.error is not None:
                raise self._reader.error from None
            raise _bad_parquet(self.what, exc) from None


def _bad_parquet(what: str, exc: BaseException) -> WorkloadError:
    if isinstance(exc, FileNotFoundError):
        return DataError(f"missing input {what}")
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return DataError(f"{what} is not a readable Parquet file (truncated or corrupt?): {first}")


def _arrow_s3(options: dict[str, Any]) -> pafs.S3FileSystem:
    """Arrow's native S3 client configured like s3fs: options first, then the AWS variables."""
    client = options.get("client_kwargs") or {}
    endpoint = options.get("endpoint_url") or client.get("endpoint_url")
    kwargs: dict[str, Any] = {
        "region": options.get("region")
        or client.get("region_name")
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or "us-east-1",
        "connect_timeout": 10,
        "request_timeout": 60,
        "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=3),
    }
    if endpoint:
        scheme, _, host = endpoint.partition("://")
        kwargs["endpoint_override"] = host.rstrip("/") if host else scheme
        kwargs["scheme"] = scheme if host else "https"
    if options.get("key") or options.get("secret"):
        kwargs["access_key"] = options.get("key")
        kwargs["secret_key"] = options.get("secret")
        kwargs["session_token"] = options.get("token")
    if options.get("anon"):
        kwargs["anonymous"] = True
    return pafs.S3FileSystem(**kwargs)


def open_store(url: str, options: dict[str, Any] | None = None) -> Store:
    return Store(url, options)
