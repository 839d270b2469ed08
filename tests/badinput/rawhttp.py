"""A raw HTTP/1.1 client over a real socket: sends any bytes, parses one response.

treq (and every well-behaved client) refuses to send malformed requests; this one
writes exactly the bytes it is given, optionally in pieces with pauses (slow bodies),
and returns the first final response (1xx interim answers are skipped) or notes that
the server closed without answering. Every call counts one request sent.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure

#: Requests sent by every raw client in this test session, by target name.
SENT: dict[str, int] = {}
#: Answers seen, by (target name, HTTP status; 0 = closed without an answer).
STATUSES: Counter[tuple[str, int]] = Counter()
#: Measured figures by name (the slow-client test's), printed at the end of the run.
FIGURES: dict[str, dict[str, Any]] = {}


@dataclass
class RawResponse:
    """The first final response on a connection, or ``status`` 0 when none came."""

    status: int = 0
    reason: bytes = b""
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""
    #: The response was complete (length known and read, or read to close).
    complete: bool = False
    timed_out: bool = False
    #: The request was HEAD: the answer has headers only (RFC 9110 §9.3.2).
    head: bool = False

    def header(self, name: bytes) -> list[bytes]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    @property
    def content_type(self) -> str:
        found = self.header(b"content-type")
        return found[0].decode("latin-1").split(";")[0].strip().lower() if found else ""


class _Parser:
    """Incremental HTTP response parser (Content-Length, chunked, or read-to-close)."""

    def __init__(self, head: bool = False) -> None:
        self.head = head
        self.buf = b""
        self.response: RawResponse | None = None
        self._length: int | None = None
        self._chunked = False

    def feed(self, data: bytes) -> bool:
        """Add bytes; True once a final response is complete."""
        self.buf += data
        while self.response is None:
            head, sep, rest = self.buf.partition(b"\r\n\r\n")
            if not sep:
                return False
            response = _parse_head(head)
            self.buf = rest
            if 100 <= response.status < 200:
                continue  # 100 Continue and friends
            self.response = response
            response.head = self.head
            if self.head:
                response.complete = True
                return True
            length = response.header(b"content-length")
            te = b",".join(response.header(b"transfer-encoding")).lower()
            self._chunked = b"chunked" in te
            self._length = int(length[0]) if length and not self._chunked else None
        return self._try_body()

    def _try_body(self) -> bool:
        assert self.response is not None
        if self._chunked:
            body = _dechunk(self.buf)
            if body is None:
                return False
            self.response.body = body
        elif self._length is not None:
            if len(self.buf) < self._length:
                return False
            self.response.body = self.buf[: self._length]
        else:
            self.response.body = self.buf
            return False  # read to close
        self.response.complete = True
        return True

    def closed(self) -> RawResponse:
        if self.response is None:
            return RawResponse()
        if self._length is None and not self._chunked:
            self.response.body = self.buf
            self.response.complete = True
        return self.response


def _parse_head(head: bytes) -> RawResponse:
    lines = head.split(b"\r\n")
    version, _, rest = lines[0].partition(b" ")
    code, _, reason = rest.partition(b" ")
    if not version.startswith(b"HTTP/1.") or not code.isdigit():
        raise ValueError(f"not an HTTP status line: {lines[0]!r}")
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers.append((name.strip(), value.strip()))
    return RawResponse(int(code), reason, headers)


def _dechunk(data: bytes) -> bytes | None:
    out, pos = b"", 0
    while True:
        end = data.find(b"\r\n", pos)
        if end < 0:
            return None
        size = int(data[pos:end].split(b";")[0], 16)
        if size == 0:
            return out
        if len(data) < end + 2 + size + 2:
            return None
        out += data[end + 2 : end + 2 + size]
        pos = end + 2 + size + 2


Piece = bytes | float


class _RawClient(Protocol):
    def __init__(self, reactor: Any, pieces: Sequence[Piece], half_close: bool) -> None:
        self.reactor = reactor
        self.pieces = list(pieces)
        self.half_close = half_close
        # the whole request, not its first write: a split may cut "HEAD " itself
        data = b"".join(p for p in pieces if isinstance(p, bytes))
        self.parser = _Parser(head=data.startswith(b"HEAD "))
        self.done: Deferred[RawResponse] = Deferred()
        self._pending: Any = None

    def connectionMade(self) -> None:
        self._send_next()

    def _send_next(self) -> None:
        self._pending = None
        while self.pieces and self.transport is not None:
            piece = self.pieces.pop(0)
            if isinstance(piece, float):
                self._pending = self.reactor.callLater(piece, self._send_next)
                return
            self.transport.write(piece)
        if self.half_close and self.transport is not None:
            self.transport.loseWriteConnection()  # type: ignore[attr-defined]

    def dataReceived(self, data: bytes) -> None:
        try:
            complete = self.parser.feed(data)
        except ValueError:
            complete = False
        if complete and self.transport is not None:
            self.transport.abortConnection()  # type: ignore[attr-defined]

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        if self._pending is not None and self._pending.active():
            self._pending.cancel()
        if not self.done.called:
            self.done.callback(self.parser.closed())


async def send_raw(
    reactor: Any,
    port: int,
    pieces: Sequence[Piece] | bytes,
    target: str,
    timeout: float = 20.0,
    half_close: bool = False,
    count: bool = True,
) -> RawResponse:
    """Connect to 127.0.0.1:``port``, send ``pieces`` (bytes, or float = pause seconds),
    and return the first final response. ``half_close`` shuts the write side after the
    last piece (a body shorter than declared then ends instead of idling). ``count``:
    add the request and its answer to the bad-input suite's figures.
    """
    if isinstance(pieces, bytes):
        pieces = [pieces]
    if count:
        SENT[target] = SENT.get(target, 0) + 1
    endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port)
    client = _RawClient(reactor, pieces, half_close)
    protocol = await connectProtocol(endpoint, client)
    timer = reactor.callLater(timeout, _expire, protocol)
    try:
        response = await protocol.done
    finally:
        if timer.active():
            timer.cancel()
    if getattr(protocol, "expired", False):
        response.timed_out = True
    if count:
        STATUSES[target, response.status] += 1
    return response


def _expire(protocol: _RawClient) -> None:
    protocol.expired = True  # type: ignore[attr-defined]
    if protocol.transport is not None:
        protocol.transport.abortConnection()  # type: ignore[attr-defined]
