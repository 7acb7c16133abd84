"""End-to-end tests of the OSS test emulator with the real, unpatched ``ossfs``/``oss2``."""

from __future__ import annotations

import errno
import os

import boto3
import oss2
import pytest
import requests
from ossfs import OSSFileSystem
from ossfs.base import SIMPLE_TRANSFER_THRESHOLD

from workload.testing.oss_emulator import OSSEmulator, crc64_ecma, crc64_ecma_py

KEY, SECRET = "test-key", "test-secret"
BUCKET = "emu-bucket"


@pytest.fixture(scope="module")
def emu():
    with OSSEmulator(KEY, SECRET) as emulator:
        emulator.create_bucket(BUCKET)
        yield emulator


def make_fs(emu: OSSEmulator, **kwargs) -> OSSFileSystem:
    kwargs.setdefault("key", KEY)
    kwargs.setdefault("secret", SECRET)
    return OSSFileSystem(endpoint=emu.endpoint, skip_instance_cache=True, **kwargs)


@pytest.fixture
def fs(emu):
    emu.reset_counts()
    return make_fs(emu)


def bucket_api(emu: OSSEmulator) -> oss2.Bucket:
    return oss2.Bucket(oss2.Auth(KEY, SECRET), emu.endpoint, BUCKET)


def test_crc64_matches_reference_and_oss2():
    assert crc64_ecma(b"123456789") == 0x995DC9BBDF1939FA  # CRC-64/XZ check value
    data = os.urandom(5000)
    reference = oss2.utils.Crc64()
    reference.update(data)
    assert crc64_ecma(data) == crc64_ecma_py(data) == reference.crc


def test_pipe_small_single_put_and_cat(emu, fs):
    data = b"hello, oss emulator"
    fs.pipe_file(f"{BUCKET}/small/hello.txt", data)
    assert emu.counts["PutObject"] == 1
    assert emu.counts["InitiateMultipartUpload"] == 0
    assert fs.cat_file(f"{BUCKET}/small/hello.txt") == data
    assert emu.counts["GetObject"] == 1
    assert emu.counts["bytes_in"] >= len(data)
    assert emu.counts["bytes_out"] >= len(data)
    assert emu.counts["AppendObject"] == 0


def test_cat_file_ranges(emu, fs):
    data = bytes(range(256)) * 4
    path = f"{BUCKET}/ranges/blob.bin"
    fs.pipe_file(path, data)
    # Known ossfs 2025.5 fault (fsspec/ossfs#166): cat_file passes (start, end) straight to
    # oss2 as an HTTP Range, whose end is *inclusive* -> one byte more than fsspec's [start, end).
    assert fs.cat_file(path, 10, 20) == data[10:21]
    assert fs.cat_file(path, start=1000) == data[1000:]
    # cat_file sends no "x-oss-range-behavior: standard", so an end beyond the object makes
    # OSS ignore the Range entirely and return the whole object with HTTP 200.
    assert fs.cat_file(path, 1000, 1024) == data
    # get_object (used by open()) sends the standard behaviour: the end is clamped ...
    assert fs.get_object(path, 1000, 5000) == data[1000:]
    # ... but its end is inclusive too.
    assert fs.get_object(path, 10, 20) == data[10:21]


def test_range_behavior_via_oss2(emu):
    bucket = bucket_api(emu)
    bucket.put_object("ranges/r.bin", b"0123456789")
    standard = {"x-oss-range-behavior": "standard"}
    assert bucket.get_object("ranges/r.bin", byte_range=(2, 4)).read() == b"234"
    assert bucket.get_object("ranges/r.bin", byte_range=(None, 3)).read() == b"789"
    assert bucket.get_object("ranges/r.bin", byte_range=(20, 30)).read() == b"0123456789"
    result = bucket.get_object("ranges/r.bin", byte_range=(5, 30), headers=standard)
    assert (result.status, result.read()) == (206, b"56789")
    with pytest.raises(oss2.exceptions.ServerError) as excinfo:
        bucket.get_object("ranges/r.bin", byte_range=(20, 30), headers=standard)
    assert (excinfo.value.status, excinfo.value.code) == (416, "InvalidRange")


def test_open_rb_seek_read(emu, fs):
    data = os.urandom(300_000)
    path = f"{BUCKET}/open/data.bin"
    fs.pipe_file(path, data)
    with fs.open(path, "rb", block_size=64 * 1024) as f:
        assert f.read(100) == data[:100]
        f.seek(150_000)
        assert f.read(10) == data[150_000:150_010]
        f.seek(-50, os.SEEK_END)
        assert f.read() == data[-50:]
        f.seek(70_000)
        assert f.read(100_000) == data[70_000:170_000]
    assert emu.counts["GetObject"] >= 3
    assert emu.counts["AppendObject"] == 0


def test_put_file_small_and_get_file(emu, fs, tmp_path):
    local = tmp_path / "small.bin"
    local.write_bytes(os.urandom(4096))
    fs.put_file(str(local), f"{BUCKET}/files/small.bin")
    assert emu.counts["PutObject"] == 1
    out = tmp_path / "back.bin"
    fs.get_file(f"{BUCKET}/files/small.bin", str(out))  # get_object_to_file checks the CRC
    assert out.read_bytes() == local.read_bytes()


def test_pipe_large_uses_multipart(emu, fs):
    data = os.urandom(10 * 2**20 + 123)  # >= 2 * ossfs block size (5 MiB)
    fs.pipe_file(f"{BUCKET}/large/piped.bin", data)
    assert emu.counts["InitiateMultipartUpload"] == 1
    assert emu.counts["UploadPart"] == 3
    assert emu.counts["CompleteMultipartUpload"] == 1  # oss2 verified the combined CRC
    assert emu.counts["PutObject"] == 0
    assert fs.cat_file(f"{BUCKET}/large/piped.bin") == data


def test_put_file_large_resumable_upload(emu, fs, tmp_path):
    size = SIMPLE_TRANSFER_THRESHOLD + 12345  # ossfs switches to oss2.resumable_upload
    local = tmp_path / "big.bin"
    local.write_bytes(os.urandom(size))
    store = oss2.ResumableStore(root=str(tmp_path))  # keep checkpoints out of $HOME
    fs.put_file(str(local), f"{BUCKET}/large/big.bin", store=store)
    parts = -(-size // oss2.defaults.part_size)
    assert emu.counts["InitiateMultipartUpload"] == 1
    assert emu.counts["UploadPart"] == parts
    assert emu.counts["CompleteMultipartUpload"] == 1
    assert emu.counts["AppendObject"] == 0
    assert fs.info(f"{BUCKET}/large/big.bin")["size"] == size
    with local.open("rb") as f:
        f.seek(size - 5000)
        tail = f.read()
    assert fs.cat_file(f"{BUCKET}/large/big.bin", start=size - 5000) == tail
    head = bucket_api(emu).head_object("large/big.bin")
    assert head.object_type == "Multipart"
    assert head.server_crc == crc64_ecma(local.read_bytes())


def test_ls_find_info_exists_rm(emu, fs):
    for name in ("tree/a.txt", "tree/sub/b.txt", "tree/sub/deeper/c.txt"):
        fs.pipe_file(f"{BUCKET}/{name}", name.encode())
    emu.reset_counts()
    assert fs.ls(f"{BUCKET}/tree", detail=False) == [f"{BUCKET}/tree/a.txt", f"{BUCKET}/tree/sub/"]
    assert fs.find(f"{BUCKET}/tree") == [
        f"{BUCKET}/tree/a.txt",
        f"{BUCKET}/tree/sub/b.txt",
        f"{BUCKET}/tree/sub/deeper/c.txt",
    ]
    info = fs.info(f"{BUCKET}/tree/sub/b.txt")
    assert (info["type"], info["size"]) == ("file", len(b"tree/sub/b.txt"))
    assert fs.info(f"{BUCKET}/tree/sub")["type"] == "directory"
    assert emu.counts["ListObjects"] >= 1 and emu.counts["HEAD"] == 0  # info() only lists
    emu.reset_counts()
    assert fs.exists(f"{BUCKET}/tree/a.txt")
    assert (emu.counts["GetBucketInfo"], emu.counts["GetObjectMeta"]) == (1, 1)
    assert fs.exists(f"{BUCKET}/tree/sub")  # no object: falls back to a listing
    assert not fs.exists(f"{BUCKET}/tree/nope")
    assert fs.exists(BUCKET)
    # ossfs catches OssError in _bucket_exist, but _call_oss already translated it:
    with pytest.raises(FileNotFoundError):
        fs.exists("no-such-bucket/x")
    fs.rm(f"{BUCKET}/tree/a.txt")
    assert not fs.exists(f"{BUCKET}/tree/a.txt")
    emu.reset_counts()
    fs.rm(f"{BUCKET}/tree", recursive=True)
    assert emu.counts["DeleteMultipleObjects"] == 1
    fs.invalidate_cache()
    assert not fs.find(f"{BUCKET}/tree")  # ossfs returns {} (not []) when nothing is found


def test_ls_root_lists_buckets_and_bucket_info(emu, fs):
    names = [entry["name"] for entry in fs.ls("")]
    assert BUCKET in names
    assert emu.counts["ListBuckets"] == 1
    info = bucket_api(emu).get_bucket_info()
    assert (info.name, info.location, info.acl.grant) == (BUCKET, "oss-cn-hangzhou", "private")


def test_copy_object(emu, fs):
    fs.pipe_file(f"{BUCKET}/copy/src.txt", b"copy me")
    fs.cp_file(f"{BUCKET}/copy/src.txt", f"{BUCKET}/copy/dst.txt")
    assert emu.counts["CopyObject"] == 1
    assert fs.cat_file(f"{BUCKET}/copy/dst.txt") == b"copy me"


def test_missing_key_raises_file_not_found(emu, fs):
    with pytest.raises(FileNotFoundError):
        fs.cat_file(f"{BUCKET}/missing/key.txt")
    with pytest.raises(FileNotFoundError):
        fs.info(f"{BUCKET}/missing/key.txt")
    with pytest.raises(FileNotFoundError):
        fs.cat_file("no-such-bucket/key.txt")
    assert not fs.exists(f"{BUCKET}/missing/key.txt")
    with pytest.raises(oss2.exceptions.NoSuchKey):
        bucket_api(emu).get_object_meta("missing/key.txt")  # HEAD: error via x-oss-err


def test_wrong_secret_is_rejected_without_leaking_it(emu):
    secret = "wrong-secret-3f9a1c"
    bad = make_fs(emu, secret=secret)
    with pytest.raises(OSError) as excinfo:
        bad.cat_file(f"{BUCKET}/anything.txt")
    err = excinfo.value
    # ossfs only maps AccessDenied to PermissionError; SignatureDoesNotMatch -> OSError(EIO).
    assert type(err) is OSError and err.errno == errno.EIO
    assert isinstance(err.__cause__, oss2.exceptions.SignatureDoesNotMatch)
    assert err.__cause__.status == 403
    for text in (str(err), repr(err), str(err.__cause__), repr(err.__cause__.body)):
        assert secret not in text
    # ls() iterates oss2.ObjectIterator outside ossfs' _call_oss: the raw oss2 error escapes.
    with pytest.raises(oss2.exceptions.SignatureDoesNotMatch) as ls_info:
        bad.ls(f"{BUCKET}/")
    assert secret not in str(ls_info.value)
    # exists() only swallows OssError/PermissionError, but gets the translated OSError.
    with pytest.raises(OSError, match="SignatureDoesNotMatch"):
        bad.exists(f"{BUCKET}/anything.txt")


def test_wrong_key_id_and_anonymous(emu):
    with pytest.raises(OSError, match="InvalidAccessKeyId"):
        make_fs(emu, key="other-key").cat_file(f"{BUCKET}/anything.txt")
    with pytest.raises(PermissionError):  # no Authorization header -> AccessDenied
        OSSFileSystem(endpoint=emu.endpoint, skip_instance_cache=True).cat_file(
            f"{BUCKET}/anything.txt"
        )


def test_security_token(emu):
    sts = make_fs(emu, token="sts-token-1")
    sts.pipe_file(f"{BUCKET}/sts/a.txt", b"via sts")  # token is signed as x-oss-security-token
    emu.security_token = "sts-token-1"
    try:
        assert sts.cat_file(f"{BUCKET}/sts/a.txt") == b"via sts"
        with pytest.raises(OSError, match="security token"):
            make_fs(emu, token="sts-token-2").cat_file(f"{BUCKET}/sts/a.txt")
        with pytest.raises(OSError, match="security token"):
            make_fs(emu).cat_file(f"{BUCKET}/sts/a.txt")
    finally:
        emu.security_token = None


def test_signature_covers_subresources(emu):
    url = f"{emu.endpoint}/{BUCKET}/"
    req = oss2.http.Request("GET", url, params={"bucketInfo": ""})
    oss2.Auth(KEY, SECRET)._sign_request(req, BUCKET, "")
    headers = dict(req.headers)
    assert requests.get(url, params={"bucketInfo": ""}, headers=headers).status_code == 200
    tampered = requests.get(url, params={"bucketInfo": "", "acl": ""}, headers=headers)
    assert tampered.status_code == 403
    assert "<Code>SignatureDoesNotMatch</Code>" in tampered.text
    assert "xmlns" not in tampered.text


def test_append_object_is_emulated_and_counted(emu, fs):
    bucket = bucket_api(emu)
    assert bucket.append_object("append/log.txt", 0, b"ab").next_position == 2
    assert bucket.append_object("append/log.txt", 2, b"cd").next_position == 4
    with pytest.raises(oss2.exceptions.PositionNotEqualToLength) as excinfo:
        bucket.append_object("append/log.txt", 1, b"zz")
    assert excinfo.value.headers["x-oss-next-append-position"] == "4"
    assert bucket.get_object("append/log.txt").read() == b"abcd"
    assert bucket.head_object("append/log.txt").object_type == "Appendable"
    bucket.put_object("append/normal.txt", b"x")
    with pytest.raises(oss2.exceptions.ObjectNotAppendable):
        bucket.append_object("append/normal.txt", 1, b"y")
    assert emu.counts["AppendObject"] == 4
    # Surprise: ossfs' writable files (open(..., "wb")) are built on AppendObject.
    emu.reset_counts()
    with fs.open(f"{BUCKET}/append/written.txt", "wb") as f:
        f.write(b"written")
    assert emu.counts["AppendObject"] == 1
    assert fs.cat_file(f"{BUCKET}/append/written.txt") == b"written"


def test_moto_holds_the_data_behind_the_proxy(emu, fs):
    fs.pipe_file(f"{BUCKET}/behind/x.txt", b"stored in moto")
    s3 = boto3.client(
        "s3",
        endpoint_url=emu.s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    body = s3.get_object(Bucket=BUCKET, Key="behind/x.txt")["Body"].read()
    assert body == b"stored in moto"
    s3.put_object(Bucket=BUCKET, Key="behind/y.txt", Body=b"written behind")
    assert fs.cat_file(f"{BUCKET}/behind/y.txt") == b"written behind"  # CRC computed lazily


def test_counts_and_reset(emu, fs):
    fs.pipe_file(f"{BUCKET}/counts/c.txt", b"c")
    fs.cat_file(f"{BUCKET}/counts/c.txt")
    assert emu.counts["PUT"] == 1 and emu.counts["GET"] == 1
    assert emu.counts["PutObject"] == 1 and emu.counts["GetObject"] == 1
    emu.reset_counts()
    assert sum(emu.counts.values()) == 0
