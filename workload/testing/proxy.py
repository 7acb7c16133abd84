"""TEST HELPER: a fault-injecting HTTP proxy between S3 clients and moto -- tests only.

``FaultProxy(upstream)`` listens on 127.0.0.1 (a threaded server, HTTP/1.1 keep-alive) and
forwards every request unchanged -- method, path and query, headers including Host (so SigV4
signatures stay valid), the body as the raw bytes that came with its Content-Length or
Transfer-Encoding (chunked and aws-chunked bodies are not re-framed) -- to ``upstream`` over one
persistent ``http.client`` connection per client connection, and relays the answer. Rules,
added and cleared while it runs, replace some requests' answers with a fault:

    internal_error       500 <Code>InternalError</Code>
    service_unavailable  503 <Code>ServiceUnavailable</Code>
    slow_down            503 <Code>SlowDown</Code>
    access_denied        403 <Code>AccessDenied</Code>
    error                any ``status``/``code``/``message`` (they also override the above)
    reset                close with SO_LINGER 0 (RST) before any reply, request body unread
    close                read the request, close cleanly (FIN) without a byte of reply
    truncate             upstream's status and headers with the true Content-Length, then only
                         ``keep`` bytes of the body (default half), then close (FIN)
    short                Content-Length: ``keep`` and only those bytes (default half): a
                         complete, well-framed, too-short answer; the connection stays usable
    stall                read the request, send nothing for ``seconds`` (default 30, at most
                         MAX_SECONDS; ends early when the client hangs up or the proxy closes),
                         then close
    delay                sleep ``seconds`` (default 1), then forward normally

``FaultProxy(upstream, link=Link())`` also shapes the loopback into an object store's network:
each answer's first byte waits ``first_byte_s`` after its request has arrived (or longer if
upstream is slower), and every body, request (uploads) and response (downloads) alike, is paced
at ``bytes_per_s`` per connection and direction (a sleep-based token bucket, ``chunk`` bytes at a
time): parallel connections each get their own bandwidth. ``proxy.link`` can be changed, or set
to None, while it runs. The defaults are OSS's internal network as the issue measured with (see
``Link``).

``proxy.log`` lists ``Entry(method, path, result)`` for every request, ``result`` the status
relayed or the action name of the rule that fired; ``proxy.counts`` counts requests by method;
``proxy.transfers`` lists ``Transfer(method, path, status, range, bytes_in, bytes_out, started,
finished)`` for every request answered by upstream (its Range header, the body bytes received and
upstream's body, and when its request line arrived and its answer was sent, in
``time.monotonic()`` seconds).

``moto_server()`` runs moto's ThreadedMotoServer on 127.0.0.1 and yields its URL.
"""

from __future__ import annotations

import contextlib
import http.client
import http.server
import logging
import random
import re
import select
import socket
import struct
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

__all__ = [
    "ACTIONS",
    "MAX_SECONDS",
    "Entry",
    "FaultProxy",
    "Link",
    "Rule",
    "Transfer",
    "moto_server",
]

MAX_SECONDS = 120.0  # upper bound of a stall or delay
IDLE_TIMEOUT = 30.0  # a client connection idle this long is closed
UPSTREAM_TIMEOUT = 60.0
# action -> (status, S3 error code, message)
_ERRORS = {
    "internal_error": (500, "InternalError", "We encountered an internal error. Please try again."),
    "service_unavailable": (503, "ServiceUnavailable", "Service is unable to handle request."),
    "slow_down": (503, "SlowDown", "Please reduce your request rate."),
    "access_denied": (403, "AccessDenied", "Access Denied"),
    "error": (500, "InternalError", "Injected error."),
}
ACTIONS = frozenset(_ERRORS) | {"reset", "close", "truncate", "short", "stall", "delay"}
# One hop only: never forwarded to upstream (the body's own framing headers are).
_HOP_REQUEST = {"connection", "keep-alive", "proxy-connection", "expect", "te", "upgrade"}
# Never relayed from upstream: hop headers, the framing we redo, and what send_response adds.
_HOP_RESPONSE = {"connection", "keep-alive", "transfer-encoding", "content-length", "trailer"}
_HOP_RESPONSE |= {"upgrade", "server", "date"}


class Entry(NamedTuple):
    method: str
    path: str  # as received, with the query
    result: int | str  # status relayed, or the action of the rule that fired


class Transfer(NamedTuple):
    method: str
    path: str  # as received, with the query
    status: int  # upstream's
    range: str  # the request's Range header, "" without one
    bytes_in: int  # request body as received (its chunked framing included)
    bytes_out: int  # upstream's response body (0 for HEAD)
    started: float = 0.0  # time.monotonic() when the request line arrived
    finished: float = 0.0  # time.monotonic() when the answer's last byte was sent


@dataclass(frozen=True)
class Link:
    """A shaped link: latency to each answer's first byte and bandwidth per connection.

    The defaults are OSS's internal (VPC) network as issue 11 measured with ("link shaped to
    ~15 ms first byte, ~80 MB/s per connection"): a first byte of the order of 10-20 ms for a
    small object, and tens of MB/s up to about 100 MB/s on one connection. Alibaba's OSS
    documentation gives per-account limits far above one connection (up to 100 Gbit/s over the
    internal network in some regions, "Limits and performance metrics of OSS",
    https://www.alibabacloud.com/help/doc-detail/54464.htm) and reaches them with many
    concurrent connections and range requests ("Use up to 100 Gbit/s of bandwidth over an
    internal network", https://www.alibabacloud.com/help/en/oss/bandwidth-of-100-gbit-s-in-vpcs):
    what limits one pod is its connections' own pace, which this models."""

    first_byte_s: float = 0.015
    bytes_per_s: float = 80e6
    chunk: int = 64 * 1024  # bytes per paced write or read

    def __post_init__(self) -> None:
        if not self.first_byte_s >= 0 or self.first_byte_s > MAX_SECONDS:
            raise ValueError(f"first_byte_s must be within [0, {MAX_SECONDS}]")
        if not self.bytes_per_s > 0:
            raise ValueError("bytes_per_s must be > 0")
        if self.chunk < 1:
            raise ValueError("chunk must be >= 1")


class _Pacer:
    """One direction of one connection: a body's first n bytes pass no sooner than n / rate
    seconds after the body began (a token bucket holding one chunk: no credit is saved up
    while the connection is idle). Sleeps end early when the proxy closes."""

    def __init__(self, closing: threading.Event):
        self._closing = closing
        self._began = 0.0
        self._passed = 0

    def begin(self) -> None:
        self._began, self._passed = time.monotonic(), 0

    def take(self, n: int, link: Link) -> bool:
        """Wait until `n` more bytes may pass; False when the proxy is closing."""
        self._passed += n
        delay = self._began + self._passed / link.bytes_per_s - time.monotonic()
        return delay <= 0 or not self._closing.wait(delay)


@dataclass(eq=False)
class Rule:
    """Fire ``action`` on requests that match every predicate given.

    methods: "GET" or a collection of methods; path: regex searched in the path with its query;
    nth: 1-based number (or numbers) among the requests that matched methods and path, counted
    per rule; rate: probability per request, drawn from ``random.Random(seed)`` only for requests
    that passed the other predicates; times: fire at most this many times.

    Every rule counts every request it matches; of the rules that would fire, the first added
    wins (the others' ``fired`` does not move, but a rate rule's draw is spent)."""

    action: str
    methods: str | Collection[str] | None = None
    path: str | None = None
    nth: int | Collection[int] | None = None
    rate: float | None = None
    seed: int | None = 0
    times: int | None = None
    seconds: float | None = None  # stall (default 30) and delay (default 1)
    keep: int | None = None  # truncate and short: body bytes sent (default half the body)
    status: int | None = None  # error actions: override the status, code, message
    code: str | None = None
    message: str | None = None
    seen: int = field(default=0, init=False)  # requests matched by methods and path
    fired: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown action {self.action!r}; one of {sorted(ACTIONS)}")
        if isinstance(self.methods, str):
            self.methods = {self.methods}
        if self.methods is not None:
            self.methods = frozenset(m.upper() for m in self.methods)
        if isinstance(self.nth, int):
            self.nth = {self.nth}
        if self.nth is not None:
            self.nth = frozenset(self.nth)
        if self.rate is not None and not 0 <= self.rate <= 1:
            raise ValueError("rate must be within [0, 1]")
        if self.keep is not None and self.keep < 0:
            raise ValueError("keep must be >= 0")
        default = 30.0 if self.action == "stall" else 1.0
        seconds = default if self.seconds is None else self.seconds
        self.seconds = min(max(float(seconds), 0.0), MAX_SECONDS)
        self._path = re.compile(self.path) if self.path is not None else None
        self._random = random.Random(self.seed)

    def _decide(self, method: str, path: str) -> bool:
        """Count the request if it matches; whether the rule would fire (caller holds the lock)."""
        if self.methods is not None and method not in self.methods:
            return False
        if self._path is not None and not self._path.search(path):
            return False
        self.seen += 1
        if self.nth is not None and self.seen not in self.nth:
            return False
        if self.times is not None and self.fired >= self.times:
            return False
        return self.rate is None or self._random.random() < self.rate

    def _error(self) -> tuple[int, str, str]:
        status, code, message = _ERRORS.get(self.action, _ERRORS["error"])
        return self.status or status, self.code or code, self.message or message

    def _keep(self, size: int) -> int:
        return min(size // 2 if self.keep is None else self.keep, size)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real clients expect
    timeout = IDLE_TIMEOUT  # every client socket has a timeout (StreamRequestHandler applies it)
    # An answer's head and body go out in separate writes: with Nagle's algorithm the body of a
    # small answer waited for the client's delayed ACK (40 ms on Linux) on a reused connection.
    disable_nagle_algorithm = True

    server: _Server

    def log_message(self, format, *args) -> None:
        pass

    def __getattr__(self, name: str):  # do_<ANY METHOD>: every method is forwarded
        if name.startswith("do_"):
            return self._handle
        raise AttributeError(name)

    def setup(self) -> None:
        super().setup()
        self.upstream: http.client.HTTPConnection | None = None
        self._expect_100 = False
        self._pace_in = _Pacer(self.server.closing)
        self._pace_out = _Pacer(self.server.closing)
        self._link: Link | None = None
        self._answer_at = 0.0  # the answer's first byte waits until then (a shaped link)
        self.server.track(self, add=True)

    def finish(self) -> None:
        self.server.track(self, add=False)
        self._close_upstream()
        with contextlib.suppress(OSError, ValueError):
            super().finish()

    def parse_request(self) -> bool:
        self._expect_100 = False
        return super().parse_request()

    def handle_expect_100(self) -> bool:  # answer "100 Continue" only once no fault says no
        self._expect_100 = True
        return True

    # -- the request ------------------------------------------------------------------------
    def _read_body(self) -> bytes:
        """The body's raw bytes as framed by the client (chunked framing and trailers kept),
        read at the link's pace when the link is shaped."""
        self._pace_in.begin()
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raw = []
            while True:
                line = self.rfile.readline(65537)
                if not line.endswith(b"\n"):
                    raise ConnectionError("bad chunk size line")
                raw.append(line)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    break
                raw.append(self._read_paced(size + 2))  # data and its CRLF
            while True:  # trailers up to the empty line
                line = self.rfile.readline(65537)
                raw.append(line)
                if line in (b"\r\n", b"\n", b""):
                    break
            return b"".join(raw)
        return self._read_paced(int(self.headers.get("Content-Length") or 0))

    def _read_paced(self, size: int) -> bytes:
        link = self._link
        if link is None:
            return self.rfile.read(size)
        parts = []
        while size > 0:
            part = self.rfile.read(min(size, link.chunk))
            if not part:
                break  # the client hung up: the caller sees a short body
            size -= len(part)
            parts.append(part)
            if not self._pace_in.take(len(part), link):
                raise ConnectionError("the proxy is closing")
        return b"".join(parts)

    def _handle(self) -> None:
        self.server.proxy._begin()
        try:
            self._handle_one()
        finally:
            self.server.proxy._end()

    def _handle_one(self) -> None:
        method, path = self.command, self.path
        started = time.monotonic()
        self._link = self.server.proxy.link  # one link per request, even if it changes now
        rule = self.server.proxy._match(method, path)
        action = rule.action if rule else None
        if action == "reset":
            self.server.proxy._record(method, path, action)
            return self._reset()
        if self._expect_100:
            self.send_response_only(100)
            self.end_headers()
        body = self._read_body()
        self._answer_at = time.monotonic() + (self._link.first_byte_s if self._link else 0.0)
        if action is not None:
            self.server.proxy._record(method, path, action)
        if action == "close":
            self.close_connection = True  # the server then closes cleanly: FIN, no bytes
            return None
        if action == "stall":
            return self._stall(rule.seconds)
        if action in _ERRORS:
            return self._send_error(*rule._error())
        if action == "delay" and self.server.closing.wait(rule.seconds):
            self.close_connection = True
            return None
        try:
            response = self._send_upstream(body)
            # On a shaped link a plain answer's body is relayed as it comes from upstream, so
            # upstream's own pace does not add to the link's; faults need the whole body.
            streamed = rule is None and self._link is not None and response.length is not None
            payload = b"" if streamed else response.read()
        except (OSError, http.client.HTTPException) as err:
            self._close_upstream()
            if rule is None:
                self.server.proxy._record(method, path, 502)
            return self._send_error(502, "BadGateway", f"upstream: {err!r}")
        if rule is None:
            self.server.proxy._record(method, path, response.status)
        size = 0 if method == "HEAD" else len(payload)
        try:
            if streamed:
                size = self._relay_streamed(response)
            else:
                self._relay(response, payload, rule)
        finally:
            transfer = Transfer(
                method,
                path,
                response.status,
                self.headers.get("Range", ""),
                len(body),
                size,
                started,
                time.monotonic(),
            )
            self.server.proxy._record_transfer(transfer)
        return None

    # -- upstream ---------------------------------------------------------------------------
    def _send_upstream(self, body: bytes) -> http.client.HTTPResponse:
        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in _HOP_REQUEST]
        for attempt in range(2):  # upstream may have closed an idle keep-alive connection
            fresh = self.upstream is None
            if fresh:
                self.upstream = http.client.HTTPConnection(
                    *self.server.upstream, timeout=UPSTREAM_TIMEOUT
                )
                self.server.track_upstream(self.upstream, add=True)
            try:
                self.upstream.putrequest(
                    self.command, self.path, skip_host=True, skip_accept_encoding=True
                )
                for name, value in headers:
                    self.upstream.putheader(name, value)
                self.upstream.endheaders(body)  # raw: no framing added by http.client
                return self.upstream.getresponse()
            except (ConnectionError, http.client.HTTPException):
                self._close_upstream()
                if fresh or attempt or self.server.closing.is_set():
                    raise
        raise AssertionError("unreachable")

    def _close_upstream(self) -> None:
        if self.upstream is not None:
            self.server.track_upstream(self.upstream, add=False)
            self.upstream.close()
            self.upstream = None

    # -- answers ----------------------------------------------------------------------------
    def _relay(self, response: http.client.HTTPResponse, payload: bytes, rule: Rule | None):
        head = self.command == "HEAD"
        length = int(response.getheader("Content-Length") or 0) if head else len(payload)
        send = payload
        action = rule.action if rule else None
        if action == "short":
            length = rule._keep(length)
            send = payload[:length]
        elif action == "truncate":
            send = payload[: rule._keep(len(payload))]
            self.close_connection = True
        self._answer_head(response, length, close=self.close_connection and action != "truncate")
        if not self._first_byte():
            return
        self.end_headers()
        if not head:
            self._write_paced(send)
        self.wfile.flush()

    def _relay_streamed(self, response: http.client.HTTPResponse) -> int:
        """Relay upstream's answer chunk by chunk at the link's pace; the body bytes relayed."""
        head = self.command == "HEAD"
        length = int(response.getheader("Content-Length") or 0) if head else response.length or 0
        self._answer_head(response, length, close=self.close_connection)
        if not self._first_byte():
            self._close_upstream()
            return 0
        self.end_headers()
        sent = 0
        link = self._link
        if not head and link is not None:
            self._pace_out.begin()
            while sent < length:
                try:
                    part = response.read(min(link.chunk, length - sent))
                except (OSError, http.client.HTTPException):
                    part = b""
                if not part or not self._pace_out.take(len(part), link):
                    self._close_upstream()  # upstream failed or the proxy closes: cut it off
                    self.close_connection = True
                    break
                self.wfile.write(part)
                sent += len(part)
        self.wfile.flush()
        return sent

    def _answer_head(self, response: http.client.HTTPResponse, length: int, close: bool) -> None:
        """Upstream's status and headers (buffered until end_headers), with our framing."""
        self.send_response(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in _HOP_RESPONSE:
                self.send_header(name, value)
        self.send_header("Content-Length", str(length))
        if close:
            self.send_header("Connection", "close")

    def _first_byte(self) -> bool:
        """Wait for the shaped link's first-byte latency; False when the proxy is closing
        (the connection is then closed without an answer)."""
        delay = self._answer_at - time.monotonic()
        if delay > 0 and self.server.closing.wait(delay):
            self.close_connection = True
            return False
        return True

    def _write_paced(self, data: bytes) -> None:
        link = self._link
        if link is None:
            self.wfile.write(data)
            return
        view = memoryview(data)
        self._pace_out.begin()
        for at in range(0, len(view), link.chunk):
            part = view[at : at + link.chunk]
            if not self._pace_out.take(len(part), link):
                self.close_connection = True
                return
            self.wfile.write(part)

    def _send_error(self, status: int, code: str, message: str) -> None:
        request_id = uuid.uuid4().hex[:16].upper()
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
            f"<RequestId>{request_id}</RequestId><HostId>fault-proxy</HostId></Error>"
        ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("x-amz-request-id", request_id)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        if not self._first_byte():
            return
        self.end_headers()
        if self.command != "HEAD":
            self._write_paced(body)
        self.wfile.flush()

    def _reset(self) -> None:
        """RST: linger 0 and close the descriptor now (finish() must not send a FIN first)."""
        self.close_connection = True
        sock = self.connection
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError, ValueError):
            self.rfile.close()  # the makefile() reference; wfile holds none
        sock.close()

    def _stall(self, seconds: float) -> None:
        """Send nothing until `seconds` pass, the client hangs up or the proxy closes."""
        self.close_connection = True
        sock = self.connection
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if self.server.closing.wait(min(left, 0.05)):
                return
            try:
                readable, _, _ = select.select([sock], [], [], 0)
                if readable and not sock.recv(1, socket.MSG_PEEK):
                    return  # the client closed its end
            except (OSError, ValueError):
                return


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # close() joins the handler threads itself, with a deadline

    def __init__(self, proxy: FaultProxy, upstream: tuple[str, int]):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.proxy = proxy
        self.upstream = upstream
        self.closing = threading.Event()
        self.handlers: dict[_Handler, threading.Thread] = {}
        self.upstreams: set[http.client.HTTPConnection] = set()
        self.accepted = 0
        self.lock = threading.Lock()

    def track(self, handler: _Handler, add: bool) -> None:
        with self.lock:
            if add:
                self.handlers[handler] = threading.current_thread()
                self.accepted += 1
            else:
                self.handlers.pop(handler, None)

    def track_upstream(self, conn: http.client.HTTPConnection, add: bool) -> None:
        with self.lock:
            (self.upstreams.add if add else self.upstreams.discard)(conn)

    def handle_error(self, request, client_address) -> None:
        if self.closing.is_set() or isinstance(sys.exc_info()[1], OSError):
            return  # clients hanging up or resetting, or the proxy closing: not errors
        super().handle_error(request, client_address)


class FaultProxy:
    """Fault-injecting proxy in front of ``upstream`` ("http://host:port"); a context manager.
    ``link``: shape every connection (``Link``: first-byte latency, bandwidth per connection)."""

    def __init__(self, upstream: str, rules: Collection[Rule] = (), *, link: Link | None = None):
        split = urlsplit(upstream)
        if split.scheme != "http" or not split.hostname or not split.port:
            raise ValueError(f"upstream must be http://host:port, not {upstream!r}")
        self.upstream = upstream
        self.link = link
        self._upstream = (split.hostname, split.port)
        self._lock = threading.Lock()
        self._settled = threading.Condition()  # requests in flight, for reading the records
        self._in_flight = 0
        self._rules: list[Rule] = list(rules)
        self._log: list[Entry] = []
        self._counts: Counter[str] = Counter()
        self._transfers: list[Transfer] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""
        self.host = ""
        self.port = 0

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> FaultProxy:
        self._server = _Server(self, self._upstream)
        self.host, self.port = self._server.server_address[:2]
        self.url = f"http://{self.host}:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fault-proxy",
            daemon=True,
        )
        self._thread.start()
        return self

    def close(self, timeout: float = 5.0) -> None:
        """Stop accepting, end every connection (idle, stalled, delayed), join the threads."""
        server, self._server = self._server, None
        if server is None:
            return
        deadline = time.monotonic() + timeout
        server.closing.set()
        server.shutdown()
        server.server_close()
        with server.lock:
            handlers = dict(server.handlers)
            upstreams = list(server.upstreams)
        for handler in handlers:
            with contextlib.suppress(OSError):
                handler.connection.shutdown(socket.SHUT_RDWR)
        for conn in upstreams:
            with contextlib.suppress(OSError, AttributeError):
                conn.sock.shutdown(socket.SHUT_RDWR)
        for thread in [*handlers.values(), self._thread]:
            if thread is not threading.current_thread():
                thread.join(max(deadline - time.monotonic(), 0.01))

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # -- rules ------------------------------------------------------------------------------
    def add(self, rule: Rule | None = None, /, **fields) -> Rule:
        """Add a rule (or build one from keyword fields: ``proxy.add(action="reset")``)."""
        rule = rule if rule is not None else Rule(**fields)
        with self._lock:
            self._rules.append(rule)
        return rule

    def remove(self, rule: Rule) -> None:
        with self._lock:
            self._rules.remove(rule)

    def clear(self) -> None:
        """Drop every rule (the log stays)."""
        with self._lock:
            self._rules.clear()

    @property
    def rules(self) -> list[Rule]:
        with self._lock:
            return list(self._rules)

    def _match(self, method: str, path: str) -> Rule | None:
        with self._lock:
            winner = None
            for rule in self._rules:
                if rule._decide(method, path) and winner is None:
                    winner = rule
            if winner is not None:
                winner.fired += 1
            return winner

    # -- records ----------------------------------------------------------------------------
    def _record(self, method: str, path: str, result: int | str) -> None:
        with self._lock:
            self._log.append(Entry(method, path, result))
            self._counts[method] += 1

    def _record_transfer(self, transfer: Transfer) -> None:
        with self._lock:
            self._transfers.append(transfer)

    def _begin(self) -> None:
        with self._settled:
            self._in_flight += 1

    def _end(self) -> None:
        with self._settled:
            self._in_flight -= 1
            self._settled.notify_all()

    def _settle(self, timeout: float = 2.0) -> None:
        """Wait (a little) for requests still being handled: a client can have its whole
        answer before the proxy has recorded its transfer (the log entry comes before the
        answer, so the log needs no wait)."""
        with self._settled:
            self._settled.wait_for(lambda: self._in_flight == 0, timeout)

    @property
    def transfers(self) -> list[Transfer]:
        """Requests answered by upstream, with their bytes (for counting at the server)."""
        self._settle()
        with self._lock:
            return list(self._transfers)

    @property
    def log(self) -> list[Entry]:
        with self._lock:
            return list(self._log)

    @property
    def counts(self) -> Counter[str]:
        """Requests by method."""
        with self._lock:
            return Counter(self._counts)

    @property
    def connections(self) -> int:
        """Client connections accepted so far."""
        server = self._server
        if server is None:
            return 0
        with server.lock:
            return server.accepted

    def reset_log(self) -> None:
        with self._lock:
            self._log.clear()
            self._counts.clear()
            self._transfers.clear()


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """moto's ThreadedMotoServer on 127.0.0.1 (a free port); yields "http://127.0.0.1:PORT"."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()
