"""TEST EMULATOR of Alibaba Cloud OSS -- for tests only, never a production endpoint.

``OSSEmulator`` runs a small HTTP proxy on 127.0.0.1 that speaks the part of the OSS REST
dialect used by ``oss2``/``ossfs`` (path-style URLs, V1 ``Authorization: OSS id:signature``,
OSS XML bodies, ``x-oss-*`` headers, CRC-64/ECMA checksums) and keeps the data in a moto S3
server behind it, so the real, unpatched ``ossfs.OSSFileSystem`` can run against ``endpoint``.

Only V1 signatures are verified (ossfs uses ``oss2.Auth``/``oss2.StsAuth``, V1 by default).
Operations: ListBuckets GetBucketInfo ListObjects(V1) PutObject CopyObject GetObject(Range)
HeadObject GetObjectMeta DeleteObject DeleteMultipleObjects AppendObject InitiateMultipartUpload
UploadPart ListParts ListMultipartUploads CompleteMultipartUpload AbortMultipartUpload;
``counts`` counts requests by HTTP method and operation name, plus ``bytes_in``/``bytes_out``
body totals.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import email.utils
import hashlib
import hmac
import http.server
import logging
import socket
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qsl, quote, unquote, urlsplit
from xml.sax.saxutils import escape

import requests
from moto.server import ThreadedMotoServer

__all__ = ["OSSEmulator", "crc64_ecma", "crc64_ecma_py"]

REGION = "oss-cn-hangzhou"  # fixed, fake region reported by GetBucketInfo / ListBuckets
OWNER_ID = "1234567890123456"
# Query parameters that belong to the V1 canonicalized resource (OSS's list, as in oss2).
_SUBRESOURCE_NAMES = """
response-content-type response-content-language response-cache-control logging
response-content-encoding acl uploadId uploads partNumber group link delete website location
objectInfo objectMeta response-expires response-content-disposition cors lifecycle restore qos
referer stat bucketInfo append position security-token live comp status vod startTime endTime
x-oss-process symlink callback callback-var tagging encryption versions versioning versionId
policy requestPayment x-oss-traffic-limit qosInfo asyncFetch x-oss-request-payer sequential
inventory inventoryId continuation-token worm wormId wormExtend replication replicationLocation
replicationProgress transferAcceleration cname metaQuery x-oss-ac-source-ip x-oss-ac-subnet-mask
x-oss-ac-vpc-id x-oss-ac-forward-allow resourceGroup style styleName x-oss-async-process
regionList x-oss-write-get-object-response
"""
SUBRESOURCES = frozenset(_SUBRESOURCE_NAMES.split())
_MESSAGES = {
    "NoSuchKey": "The specified key does not exist.",
    "NoSuchBucket": "The specified bucket does not exist.",
    "InvalidDigest": "The Content-MD5 is invalid.",
}
# moto only needs *a* SigV4-looking header to route a request to its S3 backend.
_S3_AUTH = (
    "AWS4-HMAC-SHA256 Credential=oss-emulator/20250101/us-east-1/s3/aws4_request, "
    "SignedHeaders=host, Signature=0"
)
_PASS_HEADERS = ("content-type", "cache-control", "content-disposition", "content-encoding")
_XML = {"Content-Type": "application/xml"}

# OSS response bodies; values are XML-escaped by _fill unless they are _Frag fragments.
_ERROR = (
    "<Error><Code>{code}</Code><Message>{message}</Message><RequestId>{request_id}</RequestId>"
    "<HostId>127.0.0.1</HostId>"
)
_OWNER = f"<Owner><ID>{OWNER_ID}</ID><DisplayName>{OWNER_ID}</DisplayName></Owner>"
_BUCKET = (
    "<Bucket><CreationDate>{created}</CreationDate><ExtranetEndpoint>{region}.aliyuncs.com"
    "</ExtranetEndpoint><IntranetEndpoint>{region}-internal.aliyuncs.com</IntranetEndpoint>"
    "<Location>{region}</Location><Name>{name}</Name><StorageClass>Standard</StorageClass>{more}"
    "</Bucket>"
)
_BUCKET_INFO_MORE = (
    "<AccessMonitor>Disabled</AccessMonitor><TransferAcceleration>Disabled</TransferAcceleration>"
    "<CrossRegionReplication>Disabled</CrossRegionReplication><Comment></Comment>"
    f"<DataRedundancyType>LRS</DataRedundancyType>{_OWNER}"
    "<AccessControlList><Grant>private</Grant></AccessControlList>"
)
_CONTENTS = (
    "<Contents><Key>{key}</Key><LastModified>{modified}</LastModified><ETag>{etag}</ETag>"
    "<Type>{kind}</Type><Size>{size}</Size><StorageClass>Standard</StorageClass>"
    f"{_OWNER}</Contents>"
)
_PART = (
    "<Part><PartNumber>{number}</PartNumber><LastModified>{modified}</LastModified>"
    "<ETag>{etag}</ETag><Size>{size}</Size></Part>"
)


# --- CRC-64/ECMA-182 as used by OSS (reflected, init and xor-out all ones: "CRC-64/XZ") ---
def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0xC96C5795D7870F42 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc_table()


def crc64_ecma_py(data: bytes) -> int:
    """Pure-python table implementation (slow; the reference and fallback)."""
    crc = 0xFFFFFFFFFFFFFFFF
    for b in data:
        crc = _CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFFFFFFFFFF


try:  # crcmod is installed with oss2 and has a C extension (~1 GB/s instead of ~5 MB/s)
    import crcmod

    crc64_ecma = crcmod.mkCrcFun(0x142F0E1EBA9EA3693, initCrc=0, rev=True, xorOut=(1 << 64) - 1)
except ImportError:  # pragma: no cover
    crc64_ecma = crc64_ecma_py


class OSSError(Exception):
    """An OSS error response: HTTP status, <Code>, <Message>, extra headers and fields."""

    def __init__(self, status: int, code: str, message: str = "", headers=None, **fields):
        super().__init__(code)
        self.status, self.code, self.message = status, code, message or _MESSAGES.get(code, code)
        self.headers, self.fields = headers or {}, fields


@dataclass
class _Request:
    method: str
    bucket: str
    key: str
    query: dict
    headers: dict  # lower-cased names
    body: bytes


class _Frag(str):
    """A piece of already-escaped XML."""


def _fill(template: str, **values) -> _Frag:
    esc = {k: v if isinstance(v, _Frag) else escape(str(v)) for k, v in values.items()}
    return _Frag(template.format(**esc))


def _tag(name: str, value) -> _Frag:
    return _Frag(f"<{name}>{escape(str(value))}</{name}>")


def _doc(body: str) -> bytes:
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + body).encode()


def _parse(body: bytes) -> ET.Element:
    """Parse XML and drop namespaces (S3 uses one, OSS none)."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError as err:
        raise OSSError(400, "MalformedXML") from err
    for el in root.iter():
        el.tag = el.tag.rpartition("}")[2]
    return root


def _iso(text: str) -> str:  # oss2 insists on "...T12:34:56.000Z"
    return datetime.fromisoformat(text.replace("Z", "+00:00")).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _oss_etag(etag: str) -> str:
    return etag.upper()  # OSS ETags are upper-case hex, S3's lower-case


def _parse_range(value: str | None, size: int, standard: bool):
    """Inclusive (first, last) to send, or None for "ignore the Range: whole object, 200"."""
    spec = (value or "").strip()
    if not spec.startswith("bytes="):
        return None
    first_s, sep, last_s = spec[6:].split(",")[0].strip().partition("-")  # first range only
    if not sep or not (first_s or last_s) or not (first_s + last_s).isdigit():
        return None  # malformed: ignored
    if not first_s:  # suffix range "bytes=-N"
        n = int(last_s)
        if n == 0 or size == 0 or (n > size and not standard):
            return None
        return max(size - n, 0), size - 1
    first, last = int(first_s), int(last_s) if last_s else size - 1
    if last_s and first > last:
        return None
    if first >= size:  # legacy OSS ignores such a Range, "standard" answers 416
        if standard:
            raise OSSError(416, "InvalidRange", "The requested range cannot be satisfied")
        return None
    if last >= size:  # legacy OSS ignores such a Range, "standard" truncates it
        if not standard:
            return None
        last = size - 1
    return first, last


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def version_string(self) -> str:
        return "AliyunOSS"

    def log_message(self, format, *args) -> None:  # silence the access log
        pass

    def setup(self) -> None:
        super().setup()
        self.server.connections.add(self.connection)

    def finish(self) -> None:
        self.server.connections.discard(self.connection)
        super().finish()

    def _read_body(self) -> bytes:
        if "chunked" not in self.headers.get("Transfer-Encoding", "").lower():
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        chunks = []
        while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
            chunks.append(self.rfile.read(size))
            self.rfile.readline()
        while self.rfile.readline().strip():  # trailers
            pass
        return b"".join(chunks)

    def _handle(self) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, out, payload = self.server.emulator._respond(
            self.command, self.path, headers, self._read_body()
        )
        self.send_response(status)
        out.setdefault("Content-Length", str(len(payload)))
        for name, value in out.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle


class OSSEmulator:
    """OSS-dialect HTTP proxy in front of a moto S3 server (tests only)."""

    def __init__(self, access_key_id: str = "test-key", access_key_secret: str = "test-secret"):
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        self.security_token: str | None = None  # if set, requests must carry exactly this token
        self.counts: collections.Counter = collections.Counter()
        self.endpoint = self.s3_endpoint = ""
        self._lock, self._append_lock = threading.Lock(), threading.Lock()
        self._objects: dict = {}  # (bucket, key) -> (moto ETag, crc64, OSS object type)
        self._local, self._sessions = threading.local(), []
        self._moto = self._server = self._thread = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> OSSEmulator:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._moto.start()
        host, port = self._moto.get_host_and_port()
        self.s3_endpoint = f"http://{host}:{port}"
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.emulator, self._server.connections = self, set()
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            for conn in list(self._server.connections):  # idle keep-alive connections
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None
        if self._moto is not None:
            self._moto.stop()
            self._moto = None
        for session in self._sessions:
            session.close()

    def __enter__(self) -> OSSEmulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def create_bucket(self, name: str) -> None:
        self._s3_ok("PUT", name)

    def reset_counts(self) -> None:
        with self._lock:
            self.counts.clear()

    # ------------------------------------------------------------------ moto side
    def _s3(self, method, bucket="", key="", params=None, headers=None, data=None):
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            self._sessions.append(session)
        url = f"{self.s3_endpoint}/{bucket}" + (f"/{quote(key, safe='/')}" if key else "")
        headers = {"Authorization": _S3_AUTH, **(headers or {})}
        return session.request(method, url, params=params, headers=headers, data=data)

    def _s3_ok(self, method, bucket="", key="", **kwargs) -> requests.Response:
        """Call moto; turn an S3 error into the matching OSS error."""
        resp = self._s3(method, bucket, key, **kwargs)
        if resp.status_code < 300:
            return resp
        code = message = None
        if resp.content:
            err = _parse(resp.content)
            code, message = err.findtext("Code"), err.findtext("Message")
        if not code and resp.status_code == 404:  # HEAD: no body
            missing_bucket = not key or self._s3("HEAD", bucket).status_code == 404
            code = "NoSuchBucket" if missing_bucket else "NoSuchKey"
        fields = {"Key": key} if code == "NoSuchKey" else {"BucketName": bucket}
        raise OSSError(resp.status_code, code or "InternalError", message or "", **fields)

    def _state(self, bucket: str, key: str, etag: str) -> tuple[int, str]:
        """(crc64, object type) of the current object version, computed once per ETag."""
        with self._lock:
            state = self._objects.get((bucket, key))
        if state and state[0] == etag:
            return state[1], state[2]
        crc = crc64_ecma(self._s3_ok("GET", bucket, key).content)  # e.g. written behind us
        kind = "Multipart" if "-" in etag else "Normal"
        self._remember(bucket, key, etag, crc, kind)
        return crc, kind

    def _remember(self, bucket, key, etag, crc, kind) -> None:
        with self._lock:
            self._objects[(bucket, key)] = (etag, crc, kind)

    @staticmethod
    def _to_s3_headers(headers: dict) -> dict:
        out = {k: v for k, v in headers.items() if k in _PASS_HEADERS}
        for name, value in headers.items():
            if name.startswith("x-oss-meta-"):
                out["x-amz-meta-" + name[11:]] = value
        return out

    def _object_headers(self, bucket: str, key: str, s3h) -> dict:
        crc, kind = self._state(bucket, key, s3h["ETag"])
        out = {
            "Content-Type": s3h.get("Content-Type", "application/octet-stream"),
            "ETag": _oss_etag(s3h["ETag"]),
            "Last-Modified": s3h["Last-Modified"],
            "Accept-Ranges": "bytes",
            "x-oss-object-type": kind,
            "x-oss-storage-class": "Standard",
            "x-oss-hash-crc64ecma": str(crc),
        }
        for name, value in s3h.items():
            if name.lower().startswith("x-amz-meta-"):
                out["x-oss-meta-" + name[11:].lower()] = value
            elif name.lower() in _PASS_HEADERS[1:]:
                out[name] = value
        return out

    # ------------------------------------------------------------------ OSS side
    def _respond(self, method: str, raw_path: str, headers: dict, body: bytes):
        request_id = uuid.uuid4().hex[:24].upper()
        split = urlsplit(raw_path)
        bucket, _, key = unquote(split.path)[1:].partition("/")
        req = _Request(method, bucket, key, dict(parse_qsl(split.query, True)), headers, body)
        op = self._operation(req)
        with self._lock:
            self.counts.update([method, op])
            self.counts["bytes_in"] += len(body)
        try:
            self._authenticate(req)
            md5 = headers.get("content-md5")
            if md5 is not None and md5 != base64.b64encode(hashlib.md5(body).digest()).decode():
                raise OSSError(400, "InvalidDigest")
            if op == "Unsupported":
                raise OSSError(501, "NotImplemented", "Not supported by the OSS test emulator.")
            status, out, payload = getattr(self, "_op_" + op)(req)
        except Exception as err:
            if not isinstance(err, OSSError):  # an emulator bug: report it as an OSS 500
                logging.getLogger(__name__).exception("OSS emulator failure")
                err = OSSError(500, "InternalError", repr(err))
            xml = _fill(_ERROR, code=err.code, message=err.message, request_id=request_id)
            xml += "".join(_tag(k, v) for k, v in err.fields.items()) + "</Error>"
            status, out, payload = err.status, {**err.headers, **_XML}, _doc(xml)
            if method == "HEAD":  # no body for HEAD: OSS sends the XML base64-encoded instead
                out["x-oss-err"], payload = base64.b64encode(payload).decode(), b""
        out["x-oss-request-id"] = request_id
        if method != "HEAD":
            with self._lock:
                self.counts["bytes_out"] += len(payload)
        return status, out, payload

    @staticmethod
    def _operation(req: _Request) -> str:
        q, m = req.query, req.method
        if not req.bucket:
            return "ListBuckets" if m == "GET" else "Unsupported"
        if not req.key:
            if m == "GET" and "bucketInfo" in q:
                return "GetBucketInfo"
            if m == "GET" and "uploads" in q:
                return "ListMultipartUploads"
            if m == "GET":
                return "Unsupported" if q.get("list-type") == "2" else "ListObjects"
            return "DeleteMultipleObjects" if m == "POST" and "delete" in q else "Unsupported"
        if m == "GET":
            return "ListParts" if "uploadId" in q else "GetObject"
        if m == "HEAD":
            return "GetObjectMeta" if "objectMeta" in q else "HeadObject"
        if m == "PUT" and "uploadId" in q and "partNumber" in q:
            return "UploadPart"
        if m == "PUT":
            return "CopyObject" if "x-oss-copy-source" in req.headers else "PutObject"
        if m == "DELETE":
            return "AbortMultipartUpload" if "uploadId" in q else "DeleteObject"
        if m == "POST" and "uploads" in q:
            return "InitiateMultipartUpload"
        if m == "POST" and "uploadId" in q:
            return "CompleteMultipartUpload"
        return "AppendObject" if m == "POST" and "append" in q else "Unsupported"

    @staticmethod
    def string_to_sign(req: _Request) -> str:
        """VERB, Content-MD5, Content-Type, Date, x-oss-* headers + resource (OSS V1)."""
        h = req.headers
        canon = "".join(f"{k}:{h[k]}\n" for k in sorted(h) if k.startswith("x-oss-"))
        resource = f"/{req.bucket}/{req.key}" if req.bucket else "/"
        sub = sorted((k, v) for k, v in req.query.items() if k in SUBRESOURCES)
        if sub:
            resource += "?" + "&".join(f"{k}={v}" if v else k for k, v in sub)
        date = h.get("x-oss-date") or h.get("date", "")
        md5, ctype = h.get("content-md5", ""), h.get("content-type", "")
        return "\n".join([req.method, md5, ctype, date, canon + resource])

    def _authenticate(self, req: _Request) -> None:
        auth = req.headers.get("authorization")
        if not auth:
            raise OSSError(403, "AccessDenied", "You have no right to access this object.")
        if not auth.startswith("OSS ") or ":" not in auth:
            raise OSSError(400, "InvalidArgument", "Only OSS V1 signatures are emulated.")
        key_id, _, signature = auth[4:].strip().rpartition(":")
        if key_id != self.access_key_id:
            msg = "The OSS Access Key Id you provided does not exist in our records."
            raise OSSError(403, "InvalidAccessKeyId", msg, OSSAccessKeyId=key_id)
        token = req.headers.get("x-oss-security-token")
        if self.security_token is not None and token != self.security_token:
            msg = "The security token you provided is invalid."
            raise OSSError(403, "InvalidAccessKeyId", msg, OSSAccessKeyId=key_id)
        date = req.headers.get("x-oss-date") or req.headers.get("date", "")
        try:
            skew = abs(time.time() - email.utils.parsedate_to_datetime(date).timestamp())
        except (TypeError, ValueError) as err:
            raise OSSError(403, "AccessDenied", "Invalid or missing Date header.") from err
        if skew > 15 * 60:
            raise OSSError(403, "RequestTimeTooSkewed", "The request time is too skewed.")
        to_sign = self.string_to_sign(req)
        digest = hmac.new(self.access_key_secret.encode(), to_sign.encode(), hashlib.sha1)
        if not hmac.compare_digest(base64.b64encode(digest.digest()), signature.encode()):
            msg = "The request signature we calculated does not match the signature you provided."
            fields = {"StringToSign": to_sign, "SignatureProvided": signature}
            raise OSSError(403, "SignatureDoesNotMatch", msg, OSSAccessKeyId=key_id, **fields)

    # ------------------------------------------------------------------ buckets
    def _bucket_xml(self, bucket: ET.Element, more: str = "") -> _Frag:
        created = _iso(bucket.findtext("CreationDate"))
        name, more = bucket.findtext("Name"), _Frag(more)
        return _fill(_BUCKET, created=created, region=REGION, name=name, more=more)

    def _op_ListBuckets(self, req):
        buckets = _parse(self._s3_ok("GET").content).iter("Bucket")
        body = "".join(self._bucket_xml(b) for b in buckets)
        body = f"<ListAllMyBucketsResult>{_OWNER}<Buckets>{body}</Buckets></ListAllMyBucketsResult>"
        return 200, dict(_XML), _doc(body)

    def _op_GetBucketInfo(self, req):
        self._s3_ok("HEAD", req.bucket)  # NoSuchBucket
        buckets = _parse(self._s3_ok("GET").content).iter("Bucket")
        bucket = next(b for b in buckets if b.findtext("Name") == req.bucket)
        body = f"<BucketInfo>{self._bucket_xml(bucket, _BUCKET_INFO_MORE)}</BucketInfo>"
        return 200, dict(_XML), _doc(body)

    def _op_ListObjects(self, req):
        q, url_encoded = req.query, req.query.get("encoding-type") == "url"
        params = {k: q[k] for k in ("prefix", "delimiter", "marker", "max-keys") if q.get(k)}
        root = _parse(self._s3_ok("GET", req.bucket, params=params).content)

        def enc(text: str | None) -> str:
            return quote(text or "", safe="/") if url_encoded else text or ""

        contents, prefixes = root.findall("Contents"), root.findall("CommonPrefixes")
        truncated = root.findtext("IsTruncated")
        out = [_tag("Name", req.bucket), _tag("Prefix", enc(q.get("prefix")))]
        out += [_tag("Marker", enc(q.get("marker"))), _tag("MaxKeys", q.get("max-keys", "100"))]
        out += [_tag("Delimiter", enc(q.get("delimiter"))), _tag("IsTruncated", truncated)]
        if truncated == "true":  # OSS always sends NextMarker, S3 only with a delimiter
            names = [c.findtext("Key") for c in contents] + [p.findtext("Prefix") for p in prefixes]
            out.append(_tag("NextMarker", enc(root.findtext("NextMarker") or max(names))))
        if url_encoded:
            out.append(_tag("EncodingType", "url"))
        for c in contents:
            key, etag, modified = c.findtext("Key"), c.findtext("ETag"), c.findtext("LastModified")
            with self._lock:
                state = self._objects.get((req.bucket, key))
            kind = "Multipart" if "-" in etag else "Normal"
            kind = state[2] if state and state[0] == etag else kind
            values = {
                "modified": _iso(modified),
                "etag": _oss_etag(etag),
                "size": c.findtext("Size"),
            }
            out.append(_fill(_CONTENTS, key=enc(key), kind=kind, **values))
        for p in prefixes:
            out.append(
                f"<CommonPrefixes>{_tag('Prefix', enc(p.findtext('Prefix')))}</CommonPrefixes>"
            )
        return 200, dict(_XML), _doc("<ListBucketResult>" + "".join(out) + "</ListBucketResult>")

    def _op_DeleteMultipleObjects(self, req):
        root = _parse(req.body)
        url_encoded = req.query.get("encoding-type") == "url"
        out = [_tag("EncodingType", "url")] if url_encoded else []
        for obj in root.findall("Object"):
            key = obj.findtext("Key")
            self._s3_ok("DELETE", req.bucket, key)
            if root.findtext("Quiet", "false").lower() != "true":
                key = quote(key, safe="/") if url_encoded else key
                out.append(f"<Deleted>{_tag('Key', key)}</Deleted>")
        return 200, dict(_XML), _doc("<DeleteResult>" + "".join(out) + "</DeleteResult>")

    # ------------------------------------------------------------------ objects
    def _op_GetObject(self, req):
        size = int(self._s3_ok("HEAD", req.bucket, req.key).headers["Content-Length"])
        standard = req.headers.get("x-oss-range-behavior", "").lower() == "standard"
        rng = _parse_range(req.headers.get("range"), size, standard)
        s3h = {"Range": f"bytes={rng[0]}-{rng[1]}"} if rng else {}
        resp = self._s3_ok("GET", req.bucket, req.key, headers=s3h)
        out = self._object_headers(req.bucket, req.key, resp.headers)
        if rng:
            out["Content-Range"] = f"bytes {rng[0]}-{rng[1]}/{size}"
        return (206 if rng else 200), out, resp.content

    def _op_HeadObject(self, req):
        s3h = self._s3_ok("HEAD", req.bucket, req.key).headers
        out = self._object_headers(req.bucket, req.key, s3h)
        return 200, {**out, "Content-Length": s3h["Content-Length"]}, b""

    def _op_GetObjectMeta(self, req):
        s3h = self._s3_ok("HEAD", req.bucket, req.key).headers
        out = {"ETag": _oss_etag(s3h["ETag"]), "Last-Modified": s3h["Last-Modified"]}
        return 200, {**out, "Content-Length": s3h["Content-Length"]}, b""

    def _put(self, req, data: bytes, s3h: dict, kind: str) -> dict:
        etag = self._s3_ok("PUT", req.bucket, req.key, data=data, headers=s3h).headers["ETag"]
        crc = crc64_ecma(data)
        self._remember(req.bucket, req.key, etag, crc, kind)
        return {"ETag": _oss_etag(etag), "x-oss-hash-crc64ecma": str(crc)}

    def _op_PutObject(self, req):
        return 200, self._put(req, req.body, self._to_s3_headers(req.headers), "Normal"), b""

    def _op_CopyObject(self, req):
        source = unquote(req.headers["x-oss-copy-source"].split("?")[0]).lstrip("/")
        s3h = {**self._to_s3_headers(req.headers), "x-amz-copy-source": quote(source, safe="/")}
        if "x-oss-metadata-directive" in req.headers:
            s3h["x-amz-metadata-directive"] = req.headers["x-oss-metadata-directive"]
        root = _parse(self._s3_ok("PUT", req.bucket, req.key, headers=s3h).content)
        etag, modified = _oss_etag(root.findtext("ETag")), _iso(root.findtext("LastModified"))
        crc, _ = self._state(req.bucket, req.key, root.findtext("ETag"))
        body = f"<CopyObjectResult>{_tag('ETag', etag)}{_tag('LastModified', modified)}"
        out = {**_XML, "ETag": etag, "x-oss-hash-crc64ecma": str(crc)}
        return 200, out, _doc(body + "</CopyObjectResult>")

    def _op_DeleteObject(self, req):
        self._s3_ok("DELETE", req.bucket, req.key)
        return 204, {}, b""

    def _op_AppendObject(self, req):
        """Faithful AppendObject: creates or extends an Appendable object at ``position``."""
        if not req.query.get("position", "").isdigit():
            raise OSSError(400, "InvalidArgument", "Invalid position.")
        with self._append_lock:  # read-modify-write of the whole object, one at a time
            with self._lock:
                state = self._objects.get((req.bucket, req.key))
            head = self._s3("HEAD", req.bucket, req.key)
            if head.status_code == 404:
                self._s3_ok("HEAD", req.bucket)  # NoSuchBucket
                length, s3h = 0, self._to_s3_headers(req.headers)
            elif not state or state[0] != head.headers["ETag"] or state[2] != "Appendable":
                raise OSSError(409, "ObjectNotAppendable", "The object is not appendable")
            else:
                length = int(head.headers["Content-Length"])
                s3h = {k: v for k, v in head.headers.items() if k.lower().startswith("x-amz-meta-")}
                s3h["Content-Type"] = head.headers.get("Content-Type", "application/octet-stream")
            if int(req.query["position"]) != length:
                headers = {"x-oss-next-append-position": str(length)}
                msg = "Position is not equal to file length"
                raise OSSError(409, "PositionNotEqualToLength", msg, headers=headers)
            current = self._s3_ok("GET", req.bucket, req.key).content if length else b""
            out = self._put(req, current + req.body, s3h, "Appendable")
        out["x-oss-next-append-position"] = str(length + len(req.body))
        return 200, out, b""

    # ------------------------------------------------------------------ multipart
    def _op_InitiateMultipartUpload(self, req):
        s3h = self._to_s3_headers(req.headers)
        resp = self._s3_ok("POST", req.bucket, req.key, params={"uploads": ""}, headers=s3h)
        body = _tag("Bucket", req.bucket) + _tag("Key", req.key)
        body += _tag("UploadId", _parse(resp.content).findtext("UploadId"))
        body = f"<InitiateMultipartUploadResult>{body}</InitiateMultipartUploadResult>"
        return 200, dict(_XML), _doc(body)

    def _op_UploadPart(self, req):
        params = {"partNumber": req.query["partNumber"], "uploadId": req.query["uploadId"]}
        resp = self._s3_ok("PUT", req.bucket, req.key, params=params, data=req.body)
        crc = str(crc64_ecma(req.body))
        return 200, {"ETag": _oss_etag(resp.headers["ETag"]), "x-oss-hash-crc64ecma": crc}, b""

    def _op_ListParts(self, req):
        q = req.query
        params = {k: q[k] for k in ("uploadId", "part-number-marker", "max-parts") if q.get(k)}
        root = _parse(self._s3_ok("GET", req.bucket, req.key, params=params).content)
        out = [_tag("Bucket", req.bucket), _tag("Key", req.key), _tag("UploadId", q["uploadId"])]
        out.append(_tag("PartNumberMarker", q.get("part-number-marker") or "0"))
        out.append(_tag("NextPartNumberMarker", root.findtext("NextPartNumberMarker") or "0"))
        out.append(_tag("MaxParts", q.get("max-parts", "1000")))
        out.append(_tag("IsTruncated", root.findtext("IsTruncated", "false")))
        for p in root.findall("Part"):
            modified, etag = _iso(p.findtext("LastModified")), _oss_etag(p.findtext("ETag"))
            number, size = p.findtext("PartNumber"), p.findtext("Size")
            out.append(_fill(_PART, number=number, modified=modified, etag=etag, size=size))
        return 200, dict(_XML), _doc("<ListPartsResult>" + "".join(out) + "</ListPartsResult>")

    def _op_CompleteMultipartUpload(self, req):
        parts = "".join(
            _fill("<Part><PartNumber>{n}</PartNumber><ETag>{etag}</ETag></Part>", n=n, etag=etag)
            for p in _parse(req.body).findall("Part")
            for n, etag in [(p.findtext("PartNumber", ""), p.findtext("ETag", "").lower())]
        )
        data = f"<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>".encode()
        params = {"uploadId": req.query["uploadId"]}
        resp = self._s3_ok("POST", req.bucket, req.key, data=data, params=params)
        etag = _parse(resp.content).findtext("ETag")
        crc, _ = self._state(req.bucket, req.key, etag)  # oss2 checks it against its parts
        location = f"{self.endpoint}/{req.bucket}/{quote(req.key)}"
        body = _tag("Location", location) + _tag("Bucket", req.bucket) + _tag("Key", req.key)
        body += _tag("ETag", _oss_etag(etag))
        body = f"<CompleteMultipartUploadResult>{body}</CompleteMultipartUploadResult>"
        out = {**_XML, "ETag": _oss_etag(etag), "x-oss-hash-crc64ecma": str(crc)}
        return 200, out, _doc(body)

    def _op_ListMultipartUploads(self, req):
        q = req.query
        params = {"uploads": "", **{k: q[k] for k in ("prefix", "key-marker") if q.get(k)}}
        root = _parse(self._s3_ok("GET", req.bucket, params=params).content)
        out = [_tag("Bucket", req.bucket), _tag("Prefix", q.get("prefix", ""))]
        out += [_tag("KeyMarker", ""), _tag("UploadIdMarker", ""), _tag("MaxUploads", "1000")]
        out += [_tag("NextKeyMarker", ""), _tag("NextUploadIdMarker", "")]
        out.append(_tag("IsTruncated", "false"))  # moto returns every upload in one page
        for u in root.findall("Upload"):
            fields = _tag("Key", u.findtext("Key")) + _tag("UploadId", u.findtext("UploadId"))
            out.append(
                f"<Upload>{fields}{_tag('Initiated', _iso(u.findtext('Initiated')))}</Upload>"
            )
        body = "<ListMultipartUploadsResult>" + "".join(map(str, out))
        return 200, dict(_XML), _doc(body + "</ListMultipartUploadsResult>")

    def _op_AbortMultipartUpload(self, req):
        self._s3_ok("DELETE", req.bucket, req.key, params={"uploadId": req.query["uploadId"]})
        return 204, {}, b""
