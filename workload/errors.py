"""Failure classes and their exit codes: one table, shared by the pods and the manifests.

A workflow engine can only decide whether to retry a pod from its exit code, so every failure is
sorted into "retrying cannot help" (bad argv, bad data, bad configuration or credentials) and
"retrying may help" (the storage did not answer). The codes follow BSD sysexits.h where Argo
leaves them free: Argo's emissary exits 64 when it fails itself (the controller marks such a
node Error, cmd/argoexec/commands/emissary.go, workflow/controller/operator.go) and 65 when its
supervisor fails before main starts (workflow/common/common.go), so neither is ours:

    0   success
    2   EX_USAGE     bad arguments (negative, non-integer, level 0, index beyond the level)
    66  EX_NOINPUT   bad input data (missing, damaged, not Parquet, schema drift, unsorted)
    70  EX_SOFTWARE  internal error (a bug)
    73  EX_CANTCREAT an output cannot be written: no space left on the device or over quota
    75  EX_TEMPFAIL  transient storage failure (timeout, closed connection, 5xx, throttling)
    77  EX_NOPERM    credentials rejected or access denied
    78  EX_CONFIG    bad configuration: URL scheme, backend, storage options, missing bucket

Only 75 is worth retrying; the Argo retry expression in workflows/ keys on it. Classification
goes by exception type, errno and the storage client's structured error code or HTTP status,
never by words in a message (messages hold object and bucket names).
"""

from __future__ import annotations

import errno
import os
import re
import sys
from collections.abc import Iterator, Mapping

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_DATA = 66
EXIT_INTERNAL = 70
EXIT_NO_SPACE = 73
EXIT_TRANSIENT = 75
EXIT_PERMISSION = 77
EXIT_CONFIG = 78


class WorkloadError(Exception):
    """An expected failure: one line for the log, one exit code for the scheduler."""

    exit_code = EXIT_INTERNAL

    def __str__(self) -> str:
        return redact(super().__str__())


class UsageError(WorkloadError):
    exit_code = EXIT_USAGE


class DataError(WorkloadError):
    exit_code = EXIT_DATA


class Missing(DataError):
    """The object or file does not exist."""


class DamagedInput(DataError):
    """An input's bytes did not check out: a page checksum, the footer, or decoding failed.

    The same symptom comes from a bad transfer and from damaged data, so a pod that sees it
    reads again once (errors.reread_once); only a second failure on an unchanged object is
    damaged data. `identity` is what the store said about the object (size, ETag or mtime)."""

    def __init__(self, message: str, what: str, identity: tuple = ()):
        super().__init__(message)
        self.what, self.identity = what, identity


class InternalError(WorkloadError):
    exit_code = EXIT_INTERNAL


class NoSpace(WorkloadError):
    exit_code = EXIT_NO_SPACE


class TransientError(WorkloadError):
    exit_code = EXIT_TRANSIENT


class PermissionDenied(WorkloadError):
    exit_code = EXIT_PERMISSION


class ConfigError(WorkloadError):
    exit_code = EXIT_CONFIG


# Environment variables whose values must never reach a log line, an error or a manifest.
SECRET_ENV = (
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "OSS_ACCESS_KEY_SECRET",
    "OSS_SESSION_TOKEN",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
    "ALIBABA_CLOUD_SECURITY_TOKEN",
)
_SECRET_OPTION = re.compile(r"secret|token|password|passwd|credential", re.IGNORECASE)
_extra_secrets: set[str] = set()
# user:password@ after a scheme. The password may hold "/" (about half of real secret keys
# do) and even "@", so the credentials run to the LAST "@" of the token: over-masking an
# object name that holds "@" is better than printing half a key.
_URL_CREDENTIALS = re.compile(r"(?<=://)[^\s'\"]*@")


def register_secrets(options: dict | None) -> None:
    """Remember secret-looking values of storage options so that redact() can mask them."""
    for name, value in (options or {}).items():
        if isinstance(value, dict):
            register_secrets(value)
        elif isinstance(value, str) and value and _SECRET_OPTION.search(name):
            _extra_secrets.add(value)


def register_secret(value: str) -> None:
    if value:
        _extra_secrets.add(value)


def redact(text: str) -> str:
    """Mask every known secret value and any credentials part of a URL."""
    secrets = {os.environ.get(name, "") for name in SECRET_ENV} | _extra_secrets
    for secret in sorted((s for s in secrets if len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, "***")
    return _URL_CREDENTIALS.sub("***@", text)


# -- classification ----------------------------------------------------------------------------
# By errno (local files, NAS mounts, sockets). EIO is counted transient: on a NAS it is the
# mount's way of saying the server did not answer in time.
_ERRNO_TRANSIENT = {
    errno.ETIMEDOUT,
    errno.ECONNRESET,
    errno.ECONNREFUSED,
    errno.ECONNABORTED,
    errno.EPIPE,
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
    errno.ENETDOWN,
    errno.EAGAIN,
    errno.EIO,
    errno.ESTALE,
}
_ERRNO_PERMISSION = {errno.EACCES, errno.EPERM, errno.EROFS}
_ERRNO_NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
# By the store's structured error code (S3's Error.Code, OSS's code: the same spellings).
_CODE_MISSING = {"NoSuchKey", "NotFound", "NoSuchUpload"}
_CODE_NO_BUCKET = {"NoSuchBucket"}
_CODE_PERMISSION = {
    "AccessDenied",
    "AllAccessDisabled",
    "AccountProblem",
    "ExpiredToken",
    "InvalidAccessKeyId",
    "InvalidObjectState",
    "InvalidSecurityToken",
    "InvalidToken",
    "SecurityTokenExpired",
    "SignatureDoesNotMatch",
    "TokenRefreshRequired",
    "UserDisable",
}
_CODE_TRANSIENT = {
    "InternalError",
    "OperationAborted",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "ServiceUnavailable",
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "TooManyRequests",
}
# The errno an OSError subclass stands for, when it was raised without one.
_ERRNO_OF_CLASS = (
    (PermissionError, errno.EACCES),
    (IsADirectoryError, errno.EISDIR),
    (NotADirectoryError, errno.ENOTDIR),
    (FileNotFoundError, errno.ENOENT),
)
OSS_CLIENT_ERROR = -1  # oss2.exceptions.OSS_CLIENT_ERROR_STATUS
# Client exception classes that mean "the connection, not the data, failed", by module. Looked
# up only when that module is already imported: classifying must not import a backend.
_TRANSIENT_CLASSES = {
    "botocore.exceptions": (
        "HTTPClientError",  # EndpointConnectionError, ConnectTimeout, ReadTimeout, closed, ...
        "IncompleteReadError",
        "ResponseStreamingError",
        "FlexibleChecksumError",  # the response's CRC did not match: damaged in flight
        "ConnectionError",
    ),
    "aiohttp": ("ClientConnectionError", "ClientPayloadError", "ServerTimeoutError"),
    "requests.exceptions": ("ConnectionError", "Timeout", "ChunkedEncodingError"),
    "urllib3.exceptions": ("HTTPError",),
    "http.client": ("HTTPException",),
    "fsspec.exceptions": ("FSTimeoutError",),
}
_CONFIG_CLASSES = {
    "botocore.exceptions": ("NoCredentialsError", "PartialCredentialsError", "NoRegionError"),
}


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]


def _is_instance(exc: BaseException, table: Mapping[str, tuple[str, ...]]) -> bool:
    for module, names in table.items():
        mod = sys.modules.get(module)
        if mod is None:
            continue
        classes = tuple(c for n in names if isinstance(c := getattr(mod, n, None), type))
        if classes and isinstance(exc, classes):
            return True
    return False


def _store_code(exc: BaseException) -> tuple[str, int] | None:
    """(error code, HTTP status) from botocore's ClientError or oss2's OssError."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and "Error" in response:  # botocore ClientError
        code = str(response["Error"].get("Code", ""))
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status is None and code.isdigit():
            status = int(code)
        return code, int(status or 0)
    status = getattr(exc, "status", None)
    if isinstance(status, int) and hasattr(exc, "code") and hasattr(exc, "request_id"):  # oss2
        return str(exc.code or ""), status
    return None


def _from_code(code: str, status: int, what: str, bucket: str | None, writing: bool):
    if code in _CODE_NO_BUCKET:
        return ConfigError(f"bucket {bucket!r} does not exist (for {what})")
    if code in _CODE_PERMISSION or status in (401, 403):
        return PermissionDenied(f"access denied to {what} ({code or status})")
    if code in _CODE_MISSING or status == 404:
        return Missing(f"missing {'output folder for' if writing else 'input'} {what}")
    if status == OSS_CLIENT_ERROR:  # oss2 refused to send it (a bad bucket name, ...)
        return ConfigError(f"the storage client refused the request for {what}")
    if code in _CODE_TRANSIENT or status in (408, 429) or status >= 500 or status < 0:
        # oss2: -2 no reply (RequestError), -3 CRC mismatch in flight, -4 unreadable reply
        return TransientError(f"storage unavailable for {what} ({code or f'HTTP {status}'})")
    if 400 <= status < 500:
        return ConfigError(f"storage rejected the request for {what} ({code or status})")
    return None


def _from_errno(err: int, what: str, writing: bool):
    if err == errno.ENOENT:
        return Missing(f"missing {'output folder for' if writing else 'input'} {what}")
    if err == errno.EISDIR:
        return DataError(f"wrong layout: {what} is a directory, expected a file")
    if err == errno.ENOTDIR:
        return DataError(f"wrong layout: a part of {what} is a file, expected a directory")
    if err in _ERRNO_PERMISSION:
        return PermissionDenied(f"access denied to {what} ({errno.errorcode[err]})")
    if err in _ERRNO_NO_SPACE:
        return NoSpace(f"no space left to write {what} ({errno.errorcode[err]})")
    if err in _ERRNO_TRANSIENT:
        return TransientError(f"storage unavailable for {what} ({errno.errorcode[err]})")
    return None


def classify_storage(
    exc: BaseException, what: str, *, bucket: str | None = None, writing: bool = False
) -> WorkloadError:
    """Turn an exception raised while talking to storage into a classified WorkloadError.

    `what` names the object involved (a redacted URL), so the message says which value was bad.
    The verdict comes from types, errno and the store's structured code, most specific first:
    the client's own error (which s3fs and ossfs chain as __cause__), then errno, then the
    connection-level exception classes. Never from the words of a message."""
    if isinstance(exc, WorkloadError):
        return exc
    chain = list(_chain(exc))
    for e in chain:
        if (found := _store_code(e)) is not None:
            verdict = _from_code(*found, what, bucket, writing)
            if verdict is not None:
                return verdict
    for e in chain:
        if isinstance(e, OSError) and isinstance(e.errno, int):
            verdict = _from_errno(e.errno, what, writing)
            if verdict is not None:
                return verdict
    for e in chain:
        if _is_instance(e, _CONFIG_CLASSES):
            return ConfigError(f"no usable credentials or region for {what} ({type(e).__name__})")
        if isinstance(e, TimeoutError | ConnectionError) or _is_instance(e, _TRANSIENT_CLASSES):
            return TransientError(f"storage unavailable for {what} ({type(e).__name__})")
    for e in chain:  # an OSError subclass raised without an errno
        for cls, err in _ERRNO_OF_CLASS:
            if isinstance(e, cls):
                return _from_errno(err, what, writing)
    return InternalError(f"unexpected storage failure for {what}: {type(exc).__name__}")
