"""Storage by URL: a local path or file:// (a NAS mount is a local path), s3:// or oss://.

Reads: a local file through Arrow's native filesystem; an object through ranged GETs whose true
length is checked (s3fs, ossfs), behind a read-ahead window (readahead.py): an input is opened
with one GET of its last 64 KiB (its footer; the answer's Content-Range gives the size and its
ETag the version, so no HEAD), its first data window (4 MiB) is asked for at once, and every
window in use has the next one (32 MiB by default, less with many inputs) fetched in the
background: a file costs one GET for its footer plus about one per window, and memory per open
input stays at two windows whatever the file's size. Inputs are opened in parallel
(inputs.open_inputs). Arrow's native S3 reader is not used for data: behind a proxy that sent a
short body it returned a buffer of the requested size with a zero tail and no error
(tests/test_fault_proxy.py pins it). Every Parquet page that carries a CRC is verified as it is
decoded.

Writes are atomic and whole: the file is written to a temporary name (beside the target on a
local path, in TMPDIR for an object store) and only a complete file is renamed, or completed as
an object. On an object store the temporary is uploaded while it is written (upload.py): whole
parts go as a multipart upload during the computing, the rest and the completion at the end, a
file smaller than one part is one PUT at the end; a failure aborts the upload. Never ossfs's
`open("wb")`, which uses AppendObject and leaves a half-written object visible to readers. A
temporary is held under an exclusive lock (flock) while its writer lives, so the next writer of
the same output can tell a dead writer's leftovers from a live copy's and remove only those.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import glob
import hashlib
import importlib
import inspect
import json
import os
import posixpath
import stat
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any
from urllib.parse import unquote, urlsplit

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from .. import layout, progress
from ..errors import (
    ConfigError,
    DataError,
    Missing,
    TransientError,
    WorkloadError,
    classify_storage,
    redact,
    register_secret,
)
from .local import LocalFS
from .parquet import ParquetInput, damaged, reread_once
from .readahead import (
    FIRST_WINDOW,
    READ_AHEAD_BUDGET,
    SHORT_READ_ATTEMPTS,
    WindowReader,
    column_share,
    fetch_tail,
    streams_columns,
    window_per_input,
)

__all__ = ["Output", "ParquetInput", "Store", "open_store", "reread_once"]

# protocol -> the module that holds its quirks (configure, tune, ranged, upload, stale uploads)
BACKENDS = {"s3": "s3", "s3a": "s3", "oss": "oss"}
SCHEMES = ("file", *BACKENDS)


READ_BUFFER = 64 * 1024  # bytes a Parquet reader asks for at a time within a column chunk


@dataclass
class Output:
    """A temporary local file for one output; size and sha256 are set once it is published.
    On an object store it is uploaded while it is written: write it front to back, never
    rewriting what was written (upload.py)."""

    path: str
    size: int = 0
    sha256: str = ""


class Store:
    """A root URL and the filesystems that reach it. Paths given to methods are relative."""

    def __init__(
        self,
        url: str,
        options: dict[str, Any] | None = None,
        *,
        stale_seconds=300.0,
        run: str = "",
    ):
        self.url = url.rstrip("/") or url
        self.stale_seconds = stale_seconds
        self.run = layout.check_run(run)
        options = dict(options or {})
        protocol = url.split("://", 1)[0].lower() if "://" in url else "file"
        self.protocol = protocol
        if protocol not in SCHEMES:
            raise ConfigError(
                f"unsupported storage URL scheme {protocol!r} in {self}; "
                f"expected a path or one of {', '.join(s + '://' for s in SCHEMES)}"
            )
        if protocol == "file":
            path = url.split("://", 1)[1] if "://" in url else url
            if options:
                raise ConfigError(f"unknown storage option(s) for a local path: {sorted(options)}")
            self.fs: Any = LocalFS()
            self.root = os.path.abspath(path)
            self.bucket = None
            self.arrow_fs = pafs.LocalFileSystem()
            return
        parts = urlsplit(url)
        for secret in (parts.username, parts.password):  # s3://KEY:SECRET@bucket/...
            register_secret(unquote(secret or ""))
            register_secret(secret or "")
        self.backend: ModuleType = importlib.import_module(f".{BACKENDS[protocol]}", __name__)
        self.backend.configure(options)
        _check_options(self._backend_class(protocol), options, protocol)
        import fsspec  # only object stores need it (about 90 ms of a pod's start)

        try:
            self.fs, self.root = fsspec.core.url_to_fs(url, **options)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"bad storage options or URL {self}: {type(exc).__name__}") from None
        except Exception as exc:
            raise classify_storage(exc, str(self)) from None
        self.root = self.root.rstrip("/")
        self.bucket = self.root.lstrip("/").split("/", 1)[0]  # ossfs roots start with "/"
        self.backend.tune(self.fs)

    @staticmethod
    def _backend_class(protocol: str) -> type:
        import fsspec

        try:
            return fsspec.get_filesystem_class(protocol)
        except ImportError:
            raise ConfigError(
                f"{protocol}:// needs an optional backend: "
                f"pip install 'workload[{BACKENDS[protocol]}]'"
            ) from None

    def __str__(self) -> str:
        return redact(self.url)

    @property
    def is_local(self) -> bool:
        return self.protocol == "file"

    def where(self, rel: str) -> str:
        """`rel` under the root. With a run, everything but the input (l1) is the run's own:
        RUN/l2/..., RUN/result/... (layout.run_path), so runs on one root never share a file."""
        return layout.run_path(self.run, rel)

    def path(self, rel: str) -> str:
        rel = self.where(rel)
        return posixpath.join(self.root, rel) if rel else self.root

    def describe(self, rel: str) -> str:
        """The URL of `rel` for messages (credentials masked)."""
        where = self.where(rel)
        return redact(f"{self.url}/{where}" if where else self.url)

    # -- metadata -------------------------------------------------------------------------
    def _call(self, rel: str, fn: Callable[[], Any], *, writing: bool = False) -> Any:
        progress.tick(self.describe(rel))
        try:
            return fn()
        except WorkloadError:
            raise
        except Exception as exc:
            raise classify_storage(
                exc, self.describe(rel), bucket=self.bucket, writing=writing
            ) from None

    def exists(self, rel: str) -> bool:
        """An object, a file or a folder at `rel`. On an object store one listing (the
        backend's `exists`), not a HEAD and then a listing."""
        full = self.path(rel)

        def check() -> bool:
            found = None if self.is_local else self.backend.exists(self.fs, full)
            return self.fs.exists(full) if found is None else found

        return self._call(rel, check)

    def size(self, rel: str) -> int:
        return self._call(rel, lambda: self.fs.size(self.path(rel)))

    def identity(self, rel: str) -> tuple:
        """What tells two versions of an object apart: (size, ETag) or (size, mtime)."""
        if self.is_local:
            st = self._call(rel, lambda: os.stat(self.path(rel)))
            if stat.S_ISDIR(st.st_mode):
                raise DataError(
                    f"wrong layout: {self.describe(rel)} is a directory, expected a file"
                )
            return st.st_size, st.st_mtime_ns
        info = self._call(rel, lambda: self.fs.info(self.path(rel)))
        if info.get("type") == "directory":
            raise DataError(f"wrong layout: {self.describe(rel)} is a directory, expected a file")
        etag = info.get("ETag") or info.get("etag") or info.get("LastModified") or ""
        return int(info["size"]), str(etag)

    def listdir(self, rel: str = "") -> list[str]:
        """Names directly under `rel`; empty when it does not exist."""
        full = self.path(rel)

        def names() -> list[str]:
            if self.is_local:
                if os.path.isfile(full):
                    raise NotADirectoryError(errno.ENOTDIR, "not a directory", full)
                return sorted(os.listdir(full)) if os.path.isdir(full) else []
            try:
                entries = self.fs.ls(full, detail=False, refresh=True)
            except FileNotFoundError:
                return []
            except TypeError:  # filesystems without a refresh option
                entries = self.fs.ls(full, detail=False)
            return sorted(posixpath.basename(e.rstrip("/")) for e in entries)

        return self._call(rel, names)

    def read_bytes(self, rel: str) -> bytes:
        return self._call(rel, lambda: self.fs.cat_file(self.path(rel)))

    def read_json(self, rel: str, missing: Any = ...) -> Any:
        """The parsed JSON at `rel`; `missing` when it does not exist, if given.

        One GET rather than exists() + GET: on ossfs an exists() costs two or three requests."""
        # A body cut short or damaged in flight does not parse or fails the client's checksum;
        # on an object store it is asked for again, a bounded number of times.
        attempts = 1 if self.is_local else SHORT_READ_ATTEMPTS
        for attempt in range(1, attempts + 1):
            try:
                data = self.read_bytes(rel)
            except Missing:
                if missing is ...:
                    raise
                return missing
            except TransientError:
                if attempt == attempts:
                    raise
                continue
            try:
                return json.loads(data)
            except ValueError:
                pass
        raise DataError(f"{self.describe(rel)} is not valid JSON")

    def remove(self, rel: str) -> None:
        """Remove a file or a folder tree; absent is fine (runs are re-runnable)."""
        full = self.path(rel)

        def rm() -> None:
            with contextlib.suppress(FileNotFoundError):
                if self.fs.isdir(full):
                    self.fs.rm(full, recursive=True)
                elif self.fs.exists(full):
                    self.fs.rm(full)

        self._call(rel, rm, writing=True)

    # -- atomic writes --------------------------------------------------------------------
    @contextlib.contextmanager
    def output(self, rel: str, *, digest: bool = False) -> Iterator[Output]:
        """Yield a local temporary to write `rel` to; publish it only if the block succeeds.

        Before the temporary is made, the leftovers of dead writers of the same output (their
        temporaries, their incomplete multipart uploads) are removed. On an object store the
        temporary is uploaded as it grows and the upload completed when the block ends, or
        aborted if it fails (upload.py)."""
        final = self.path(rel)
        if self.is_local:
            folder = os.path.dirname(final)
            self._call(rel, lambda: _make_folder(folder), writing=True)
            if os.path.isdir(final):
                raise DataError(f"wrong layout: output {self.describe(rel)} is a directory")
            prefix = os.path.join(folder, f".{os.path.basename(final)}.")
        else:
            name = hashlib.sha256(f"{self.url}/{self.where(rel)}".encode()).hexdigest()[:16]
            prefix = os.path.join(tempfile.gettempdir(), f"workload-{name}.")
            self._abort_stale_uploads(rel)
        remove_stale(prefix + "*.tmp", self.stale_seconds)
        tmp = f"{prefix}{uuid.uuid4().hex}.tmp"
        lock = self._call(rel, lambda: _locked_file(tmp), writing=True)
        out = Output(tmp)
        upload = None
        try:
            if not self.is_local:
                from .upload import StreamingUpload

                parts = self._call(rel, lambda: self.backend.Parts(self.fs, final), writing=True)
                upload = StreamingUpload(parts, tmp, self.describe(rel), digest=digest).start()
            try:
                yield out
            except OSError as exc:  # writing the temporary: a full disk, a lost mount, ...
                raise classify_storage(exc, self.describe(rel), writing=True) from None
            out.size = os.path.getsize(tmp)
            if upload is not None:
                _, out.sha256 = self._call(rel, lambda: upload.finish(out.size), writing=True)
            else:
                if digest:
                    out.sha256 = file_sha256(tmp)

                def publish() -> None:
                    with open(tmp, "rb+") as f:
                        os.fsync(f.fileno())  # a NAS must have the bytes before the name exists
                    os.replace(tmp, final)

                self._call(rel, publish, writing=True)
        finally:
            if upload is not None and not upload.done:
                upload.abort()
            with contextlib.suppress(FileNotFoundError):
                os.remove(tmp)
            os.close(lock)

    def _abort_stale_uploads(self, rel: str) -> None:
        """Abort incomplete multipart uploads of this output's key that a dead writer left
        (initiated more than stale_seconds ago; a live copy's upload is younger). README names
        the bucket lifecycle rule that covers everything else."""
        key = self.path(rel).lstrip("/").split("/", 1)[1]
        cutoff = time.time() - self.stale_seconds
        abort = self.backend.abort_stale_uploads
        self._call(rel, lambda: abort(self.fs, self.bucket, key, cutoff), writing=True)

    def write_bytes(self, rel: str, data: bytes, *, digest: bool = False) -> Output:
        with self.output(rel, digest=digest) as out, open(out.path, "wb") as f:
            f.write(data)
        return out

    def write_json(self, rel: str, value: Any) -> Output:
        return self.write_bytes(rel, (json.dumps(value, indent=2, sort_keys=True) + "\n").encode())

    # -- Parquet input --------------------------------------------------------------------
    def open_parquet(
        self,
        rel: str,
        window: int,
        *,
        inputs: int = 1,
        budget: int = READ_AHEAD_BUDGET,
        first_window: int = FIRST_WINDOW,
    ) -> ParquetInput:
        """Open a Parquet input (its footer is read and checked), one of `inputs` that a pod
        reads at once with the `window` and `budget` settings (storage.readahead: each input's
        windows shrink with their number). On an object store its first data is then fetched
        in the background."""
        what = self.describe(rel)
        full = self.path(rel)
        reader = None
        share = column_share(window, inputs, budget)
        if self.is_local:
            identity = self.identity(rel)  # also: absent, a directory, no access
            source: Any = self._call(rel, lambda: self.arrow_fs.open_input_file(full))
            size = source.size()
        else:
            per_input = window_per_input(window, inputs, budget)
            reader, identity = self._open_object(rel, per_input, first_window)
            size = identity[0]
            source = pa.PythonFile(reader, mode="r")
        try:
            meta = pq.read_metadata(source)
            # Column chunks streamed through a small buffer rather than read whole: a reader
            # then holds about a page per column, not a row group's compressed chunks (on
            # local disk, the final pod over 32 inputs, 10M keys: peak 422 -> 356 MB, no
            # slower). From an object store, the same when a row group would not fit beside
            # the input's windows (then each column is a walk of its own: follow_columns);
            # else chunks are read whole out of one walk of windows, in fewer requests.
            streamed = reader is None or streams_columns(_largest_row_group(meta), share)
            file = pq.ParquetFile(
                source,
                metadata=meta,
                pre_buffer=False,
                buffer_size=READ_BUFFER if streamed else 0,
                page_checksum_verification=True,
            )
        except (pa.ArrowInvalid, OSError) as exc:
            if reader is not None and reader.error is not None:
                raise reader.error from None
            raise damaged(what, identity, exc) from None
        if reader is not None and meta.num_row_groups:
            if streamed:
                reader.follow_columns(_column_chunks(meta), share)
            else:
                reader.prefetch(len(b"PAR1"))  # the first column chunk follows the magic number
        return ParquetInput(file, what, reader, size, identity)

    def _open_object(self, rel: str, window: int, first_window: int) -> tuple[WindowReader, tuple]:
        """A reader over the object at `rel` holding its last bytes, and its identity, from one
        suffix range GET (no HEAD). Absent or a folder: identity() says which; an answer
        without a Content-Range (an empty object): identity() and a reader without them."""
        what, full = self.describe(rel), self.path(rel)
        ranged = self.backend.ranged(self.fs, full)
        try:
            tail, responses, received = fetch_tail(
                self.backend.tail(self.fs, full), what, bucket=self.bucket
            )
        except Missing:
            tail, responses, received = None, 0, 0
        if tail is None:
            identity = self.identity(rel)
            reader = WindowReader(ranged, identity[0], window, what, first_window=first_window)
        else:
            identity = (tail.size, str(tail.etag))
            reader = WindowReader(
                ranged,
                tail.size,
                window,
                what,
                first_window=first_window,
                tail=tail.data,
                tail_start=tail.start,
            )
        reader.count(responses, received)
        return reader, identity


def _column_chunks(meta: pq.FileMetaData) -> list[list[tuple[int, int]]]:
    """Each column's chunks as byte ranges (from its dictionary page, when it has one), row
    group by row group."""
    columns: list[list[tuple[int, int]]] = [[] for _ in range(meta.num_columns)]
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        for c in range(group.num_columns):
            chunk = group.column(c)
            start = chunk.data_page_offset
            if chunk.has_dictionary_page and 0 < chunk.dictionary_page_offset < start:
                start = chunk.dictionary_page_offset
            columns[c].append((start, start + chunk.total_compressed_size))
    return columns


def _largest_row_group(meta: pq.FileMetaData) -> int:
    """The compressed bytes of the file's largest row group."""
    return max(
        (
            sum(meta.row_group(g).column(c).total_compressed_size for c in range(meta.num_columns))
            for g in range(meta.num_row_groups)
        ),
        default=0,
    )


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(4 * 2**20):
            digest.update(chunk)
    return digest.hexdigest()


def remove_stale(pattern: str, stale_seconds: float) -> None:
    """Remove temporaries matching `pattern` whose writer is gone: no process holds their lock
    and they are older than `stale_seconds` (the age guards volumes whose locks are local to
    one node, such as some FUSE mounts)."""
    cutoff = time.time() - stale_seconds
    for path in glob.glob(pattern):
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue  # a live writer holds it
        try:
            if os.fstat(fd).st_mtime <= cutoff:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)
        finally:
            os.close(fd)


def _make_folder(folder: str) -> None:
    os.makedirs(folder, exist_ok=True)
    if not os.path.isdir(folder):
        raise NotADirectoryError(errno.ENOTDIR, "not a directory", folder)


def _locked_file(path: str) -> int:
    """Create `path` and hold an exclusive lock on it for as long as the writer lives."""
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def _check_options(cls: type, options: dict[str, Any], protocol: str) -> None:
    """Refuse storage options the backend does not take (fsspec would pass them on and fail
    later, or ignore them)."""
    accepted: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        params = inspect.signature(init).parameters
        accepted |= {
            n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        }
    accepted |= {"skip_instance_cache", "use_listings_cache", "listings_expiry_time", "max_paths"}
    unknown = sorted(set(options) - accepted - {"self"})
    if unknown:
        raise ConfigError(f"unknown storage option(s) for {protocol}://: {', '.join(unknown)}")


def open_store(url: str, options: dict[str, Any] | None = None, **kwargs) -> Store:
    return Store(url, options, **kwargs)
