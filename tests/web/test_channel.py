"""The listener's channel with a Clock: header and body-rate deadlines, clear refusals."""

from __future__ import annotations

import json

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.web.resource import Resource

from stowpair.api.health import HealthResource
from stowpair.config.model import ClientTimeouts
from stowpair.receiver.request import StreamingRequest
from stowpair.receiver.service import streaming_site
from stowpair.web.channel import GuardedChannel
from stowpair.web.errors import ErrorStyle

BOUNDS = ClientTimeouts(header=10.0, body=5.0, body_min_rate=100.0, idle=60.0)
POST_HEAD = b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"


def _connect(
    clock: Clock, style: ErrorStyle = "json", bounds: ClientTimeouts = BOUNDS
) -> tuple[GuardedChannel, StringTransport]:
    root = Resource()
    root.putChild(b"health", HealthResource())
    site = streaming_site(root, bounds, style, clock)
    channel = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
    assert isinstance(channel, GuardedChannel)
    transport = StringTransport()
    channel.makeConnection(transport)
    return channel, transport


def _trickle(clock: Clock, channel: GuardedChannel, data: bytes, every: float) -> None:
    for byte in data:
        channel.dataReceived(bytes([byte]))
        clock.advance(every)


def _answer(transport: StringTransport) -> tuple[int, bytes, bytes]:
    head, _, body = transport.value().partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), head, body


def test_headers_trickled_past_the_bound_get_408() -> None:
    """When headers trickle in one byte a second, the connection is closed with 408 once
    the header bound has passed since the first byte (the idle timeout never fires)."""
    clock = Clock()
    channel, transport = _connect(clock)
    _trickle(clock, channel, b"GET /health HTTP/1.1\r\nX-Slow: ", every=1.0)
    assert transport.disconnecting
    code, _, body = _answer(transport)
    assert code == 408
    assert "headers did not arrive within 10 s" in json.loads(body)["errorMessage"]


def test_headers_within_the_bound_are_served() -> None:
    """When headers arrive slowly but within the bound, the request is answered."""
    clock = Clock()
    channel, transport = _connect(clock)
    _trickle(clock, channel, b"GET /health HTTP/1.1\r\n\r\n", every=0.3)
    code, _, body = _answer(transport)
    assert code == 200 and json.loads(body)["status"] == "ok"


def test_slow_body_gets_408_after_one_window() -> None:
    """When a body arrives below the minimum rate, the connection is closed with 408 at
    the end of the first window."""
    clock = Clock()
    channel, transport = _connect(clock)
    channel.dataReceived(POST_HEAD)
    _trickle(clock, channel, b"x" * 4, every=1.0)
    assert not transport.disconnecting
    clock.advance(1.0)
    assert transport.disconnecting
    code, _, body = _answer(transport)
    assert code == 408 and "bytes/s" in json.loads(body)["errorMessage"]


def test_body_at_the_minimum_rate_keeps_going() -> None:
    """When a body arrives at the minimum rate, window after window, it is not closed."""
    clock = Clock()
    channel, transport = _connect(clock)
    channel.dataReceived(POST_HEAD)
    for _ in range(40):
        channel.dataReceived(b"x" * 100)
        clock.advance(1.0)
    assert not transport.disconnecting


def test_paused_body_is_not_timed() -> None:
    """When the server holds the body back (backpressure), no window runs; a new one
    starts when reading resumes."""
    clock = Clock()
    channel, transport = _connect(clock)
    channel.dataReceived(POST_HEAD)
    request = channel.requests[-1]
    assert isinstance(request, StreamingRequest)
    request.pause_body()
    clock.advance(BOUNDS.body * 10)
    assert not transport.disconnecting
    request.resume_body()
    clock.advance(BOUNDS.body - 0.1)
    assert not transport.disconnecting
    clock.advance(0.2)
    assert transport.disconnecting


def test_kept_alive_connection_waits_for_the_next_request() -> None:
    """When a request was answered on a kept-alive connection, the header bound starts
    only with the next request's first byte; until then the idle timeout applies."""
    clock = Clock()
    channel, transport = _connect(clock)
    channel.dataReceived(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert _answer(transport)[0] == 200
    transport.clear()
    clock.advance(BOUNDS.header * 3)
    assert not transport.disconnecting
    _trickle(clock, channel, b"GET /health HTTP/1.1\r\nX: " + b"y" * 20, every=1.0)
    assert transport.disconnecting and _answer(transport)[0] == 408


@pytest.mark.parametrize(
    ("line", "text"),
    [
        (b"GET /health HTTP/2.0", "use HTTP/1.1"),
        (b"GET /a\x99b HTTP/1.1", "percent-encode"),
        (b"G\xffT /health HTTP/1.1", "not an HTTP method"),
        (b"GET  /health HTTP/1.1", "malformed request line"),
        (b"GET /health", "malformed request line"),
    ],
    ids=["version", "raw-byte", "method", "two-spaces", "no-version"],
)
@pytest.mark.parametrize("style", ["json", "text"])
def test_bad_request_line_gets_400_with_a_reason(line: bytes, text: str, style: str) -> None:
    """When the request line is malformed, the answer is a 400 naming the problem, in
    the listener's error style (twisted.web alone sends an empty 400)."""
    clock = Clock()
    channel, transport = _connect(clock, "text" if style == "text" else "json")
    channel.dataReceived(line + b"\r\nHost: x\r\n\r\n")
    code, head, body = _answer(transport)
    assert code == 400 and transport.disconnecting
    message = json.loads(body)["errorMessage"] if style == "json" else body.decode()
    assert text in message
    assert (b"text/plain" in head) == (style == "text")


def test_bad_head_request_line_gets_headers_only() -> None:
    """When a HEAD request line is refused, the 400 carries no body (RFC 9110 §9.3.2)."""
    clock = Clock()
    channel, transport = _connect(clock)
    channel.dataReceived(b"HEAD /health\x99 HTTP/1.1\r\n\r\n")
    code, _, body = _answer(transport)
    assert code == 400 and body == b""


def test_overlong_line_gets_431() -> None:
    """When a header line passes 16 KiB, the answer is 431 with a reason."""
    clock = Clock()
    channel, transport = _connect(clock)
    channel.dataReceived(b"GET /health HTTP/1.1\r\nX: " + b"y" * 20_000 + b"\r\n")
    code, _, body = _answer(transport)
    assert code == 431 and "longer than" in json.loads(body)["errorMessage"]


HEADER_CASES = [
    ("no-colon", b"NoColonHere\r\n", 400, "has no colon"),
    ("name-not-token", b"Bad Name: x\r\n", 400, "not a token"),
    ("nul-in-value", b"X-Nul: a\x00b\r\n", 400, "NUL, CR or LF"),
    ("length-not-number", b"Content-Length: 1e3\r\n", 400, "not a number of bytes"),
    ("length-twice", b"Content-Length: 1\r\nContent-Length: 2\r\n", 400, "declared twice"),
    ("length-and-chunked", b"Content-Length: 1\r\nTransfer-Encoding: chunked\r\n", 400,
     "declared twice"),
    ("coding-unknown", b"Transfer-Encoding: gzip, chunked\r\n", 400, "not supported"),
    ("too-many", b"".join(b"X-%d: v\r\n" % i for i in range(501)), 431, "more than 500"),
    ("too-long", b"".join(b"X-%d: %s\r\n" % (i, b"v" * 8000) for i in range(3)), 431,
     "longer than 16384 bytes"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("headers", "status", "text"), [c[1:] for c in HEADER_CASES], ids=[c[0] for c in HEADER_CASES]
)
def test_bad_header_gets_a_reason(headers: bytes, status: int, text: str) -> None:
    """When a header line is one twisted.web refuses, the answer names what was wrong
    (twisted.web alone sends an empty 400)."""
    clock = Clock()
    channel, transport = _connect(clock)
    channel.dataReceived(b"POST /health HTTP/1.1\r\n" + headers + b"\r\n")
    code, _, body = _answer(transport)
    assert code == status and transport.disconnecting
    assert text in json.loads(body)["errorMessage"]


def test_folded_and_identity_headers_pass() -> None:
    """When a header is folded or Transfer-Encoding is identity, the request is served."""
    clock = Clock()
    channel, transport = _connect(clock)
    channel.dataReceived(
        b"GET /health HTTP/1.1\r\nX-Folded: a\r\n b\r\nTransfer-Encoding: identity\r\n\r\n"
    )
    assert _answer(transport)[0] == 200
