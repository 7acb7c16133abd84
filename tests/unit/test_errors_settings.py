"""Classification by structured codes (the 403 path included), masking, and settings."""

from __future__ import annotations

import pytest

from workload import errors
from workload.errors import ConfigError, classify_storage, redact
from workload.settings import Settings


class ClientError(Exception):
    """Shaped as botocore's: the code and status live in .response."""

    def __init__(self, code: str, status: int):
        super().__init__(f"An error occurred ({code}) in bucket evil-403-timeout")
        self.response = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}


class OssError(Exception):
    """Shaped as oss2's: .status, .code and .request_id."""

    def __init__(self, status: int, code: str):
        super().__init__(code)
        self.status, self.code, self.request_id = status, code, "r1"


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (ClientError("AccessDenied", 403), errors.EXIT_PERMISSION),
        (ClientError("NoSuchKey", 404), errors.EXIT_DATA),
        (ClientError("NoSuchBucket", 404), errors.EXIT_CONFIG),
        (ClientError("SlowDown", 503), errors.EXIT_TRANSIENT),
        (ClientError("InternalError", 500), errors.EXIT_TRANSIENT),
        (ClientError("InvalidArgument", 400), errors.EXIT_CONFIG),
        (OssError(403, "SignatureDoesNotMatch"), errors.EXIT_PERMISSION),
        (OssError(-2, ""), errors.EXIT_TRANSIENT),  # no reply
        (OssError(-1, ""), errors.EXIT_CONFIG),  # refused by the client
        (TimeoutError(), errors.EXIT_TRANSIENT),
        (ValueError("x"), errors.EXIT_INTERNAL),
    ],
)
def test_structured_codes_decide(exc, code):
    assert classify_storage(exc, "s3://b/k", bucket="b").exit_code == code


def test_the_store_code_wins_over_a_translated_exception():
    # s3fs turns a ClientError into a FileNotFoundError with the original as its cause
    translated = FileNotFoundError(2, "No such file")
    translated.__cause__ = ClientError("NoSuchBucket", 404)
    verdict = classify_storage(translated, "s3://gone/k", bucket="gone")
    assert verdict.exit_code == errors.EXIT_CONFIG and "bucket 'gone'" in str(verdict)


def test_redact_masks_registered_secrets_and_url_credentials(monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "abcd/efgh+ijkl")
    assert redact("key abcd/efgh+ijkl here") == "key *** here"
    assert redact("oss://id:se/cr@et@bucket/x") == "oss://***@bucket/x"


def test_settings_from_the_environment_and_their_checks(monkeypatch):
    monkeypatch.setenv("WORKLOAD_FAN_IN", "4")
    monkeypatch.setenv("WORKLOAD_STALL_SECONDS", "7.5")
    settings = Settings.load(root="/x")
    assert (settings.fan_in, settings.stall_seconds, settings.root) == (4, 7.5, "/x")
    monkeypatch.setenv("WORKLOAD_ROW_GROUP_ROWS", "1e3")
    with pytest.raises(ConfigError, match="WORKLOAD_ROW_GROUP_ROWS='1e3' is not a valid int"):
        Settings.load()
    monkeypatch.delenv("WORKLOAD_ROW_GROUP_ROWS")
    with pytest.raises(ConfigError, match="unknown op"):
        Settings.load(op="median")


def test_every_store_of_one_s3_root_shares_its_client(monkeypatch):
    """botocore rewrites the config's retries in place when it makes a client; the options
    of the next Store must not see that (it would miss fsspec's cache: a new session, ~0.2 s)."""
    pytest.importorskip("s3fs")
    from fsspec.asyn import sync

    for name, value in {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # never reached
    settings = Settings.load(root="s3://bucket/tree")
    first = settings.store()
    sync(first.fs.loop, first.fs.set_session)  # makes the client: no request
    assert settings.store().fs is first.fs
