"""Failure classes and their exit codes.

A workflow engine can only decide whether to retry a pod from its exit code, so every failure is
sorted into "retrying cannot help" (bad argv, bad data, bad configuration or credentials) and
"retrying may help" (the storage did not answer). The codes follow BSD sysexits.h, which many
batch tools already use:

    0   success
    64  EX_USAGE     bad arguments (negative, non-integer, level 0, index beyond the level)
    65  EX_DATAERR   bad input data (missing, truncated, not Parquet, schema drift, unsorted)
    75  EX_TEMPFAIL  transient storage failure (timeout, connection refused, 5xx, throttling)
    77  EX_NOPERM    credentials rejected or access denied
    78  EX_CONFIG    unknown URL scheme, missing backend, bad storage options

Only 75 is worth retrying; the Argo retry expression in workflows/ keys on it.
"""

from __future__ import annotations

import os
import re

EXIT_OK = 0
EXIT_USAGE = 64
EXIT_DATA = 65
EXIT_TRANSIENT = 75
EXIT_PERMISSION = 77
EXIT_CONFIG = 78


class WorkloadError(Exception):
    """An expected failure: one line for the log, one exit code for the scheduler."""

    exit_code = 1

    def __str__(self) -> str:
        return redact(super().__str__())


class UsageError(WorkloadError):
    exit_code = EXIT_USAGE


class DataError(WorkloadError):
    exit_code = EXIT_DATA


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


def register_secrets(options: dict | None) -> None:
    """Remember secret-looking values of storage options so that redact() can mask them."""
    for name, value in (options or {}).items():
        if isinstance(value, dict):
            register_secrets(value)
        elif isinstance(value, str) and value and _SECRET_OPTION.search(name):
            _extra_secrets.add(value)


def redact(text: str) -> str:
    """Mask every known secret value and any user:password part of a URL."""
    secrets = {os.environ.get(name, "") for name in SECRET_ENV} | _extra_secrets
    for secret in sorted((s for s in secrets if len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, "***")
    return re.sub(r"(?<=://)[^/@\s:]+:[^/@\s]+@", "***@", text)


_TRANSIENT_HINTS = (
    "timeout",
    "timed out",
    "connection refused",
    "connection reset",
    "connection aborted",
    "network_connection",
    "curlcode",
    "could not connect",
    "cannot connect",
    "temporarily unavailable",
    "slowdown",
    "slow down",
    "throttl",
    "service unavailable",
    "internal error",
    "internalerror",
    "503",
    "502",
    "500",
    "broken pipe",
    "name or service not known",
    "temporary failure in name resolution",
)
_PERMISSION_HINTS = (
    "access denied",
    "accessdenied",
    "access_denied",
    "forbidden",
    "403",
    "invalidaccesskeyid",
    "signaturedoesnotmatch",
    "invalid_access_key",
    "signature_does_not_match",
    "invalidsecuritytoken",
    "expiredtoken",
    "permission denied",
)


def classify_storage(exc: BaseException, what: str) -> WorkloadError:
    """Turn an exception raised while talking to storage into a classified WorkloadError.

    `what` names the object involved (a redacted URL), so the message says which value was bad.
    """
    if isinstance(exc, WorkloadError):
        return exc
    text = f"{type(exc).__name__}: {exc}".lower()
    detail = _first_line(exc)
    if isinstance(exc, PermissionError) or any(h in text for h in _PERMISSION_HINTS):
        return PermissionDenied(f"access denied to {what}: {detail}")
    if isinstance(exc, FileNotFoundError) or "nosuchkey" in text or "path does not exist" in text:
        return DataError(f"missing input {what}")
    if "nosuchbucket" in text or "bucket does not exist" in text:
        return ConfigError(f"bucket does not exist for {what}")
    if isinstance(exc, TimeoutError | ConnectionError) or any(h in text for h in _TRANSIENT_HINTS):
        return TransientError(f"storage unavailable for {what}: {detail}")
    if isinstance(exc, OSError):
        return TransientError(f"storage error for {what}: {detail}")
    return DataError(f"cannot read {what}: {detail}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]
