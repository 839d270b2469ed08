"""Regression tests for the bugs the bad-input suite found (one behaviour each)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import pytest_twisted
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.web.http import HTTPChannel
from twisted.web.resource import Resource
from twisted.web.server import Site

from stowpair.receiver.request import StreamingRequest
from tests.badinput.servers import Target, start_stowpair, start_stowrsd


def _channel(clock: Clock, timeout: float) -> HTTPChannel:
    channel = HTTPChannel()
    channel.callLater = clock.callLater  # type: ignore[method-assign]
    channel.timeOut = timeout
    channel.site = Site(Resource())  # type: ignore[attr-defined]
    channel.makeConnection(StringTransport())
    return channel


def test_paused_body_suspends_idle_timeout() -> None:
    """When the receiver pauses reading for backpressure, the idle timeout does not
    drop the connection; it runs again once reading resumes."""
    clock = Clock()
    channel = _channel(clock, 1.0)
    request = StreamingRequest(channel)
    request.pause_body()
    clock.advance(5)
    assert not channel.transport.disconnecting  # type: ignore[union-attr]
    request.resume_body()
    clock.advance(1.5)
    assert channel.transport.disconnecting  # type: ignore[union-attr]


def test_body_ending_while_paused_keeps_the_timeout() -> None:
    """When the body ends while reading is paused, the idle timeout is handed back to
    twisted.web for after the response (the keep-alive connection keeps one)."""
    clock = Clock()
    channel = _channel(clock, 1.0)
    request = StreamingRequest(channel)
    request.pause_body()
    channel._handlingRequest = True  # what allContentReceived does
    request.resume_body()
    assert channel._savedTimeOut == 1.0


@pytest.fixture(scope="module", params=["stowrsd", "rest"])
def target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    root = tmp_path_factory.mktemp(request.param)
    yield from (start_stowrsd(root) if request.param == "stowrsd" else start_stowpair(root))


@pytest_twisted.ensureDeferred
async def test_overlong_header_line_gets_431(target: Target) -> None:
    """When a header line passes 16 KiB, the answer is 431 with a reason, not a reset."""
    r = await target.send(b"GET /health HTTP/1.1\r\nX-Big: " + b"x" * 20_000 + b"\r\n\r\n")
    assert r.status == 431
    assert b"longer than" in r.body


@pytest.mark.parametrize("method", [b"PUT", b"FOO", b"POST"], ids=["PUT", "FOO", "POST"])
@pytest_twisted.ensureDeferred
async def test_unsupported_method_gets_json_405(target: Target, method: bytes) -> None:
    """When /health gets a method it does not support, the answer is a JSON 405 with
    Allow (twisted.web alone answers 501 or an HTML page)."""
    r = await target.send(method + b" /health HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    assert r.status == 405
    assert r.header(b"allow")
    assert "errorMessage" in json.loads(r.body)


@pytest_twisted.ensureDeferred
async def test_non_token_method_gets_400(target: Target) -> None:
    """When the method is not an HTTP token, the answer is a 400 (twisted.web's own)."""
    r = await target.send(b"G\xffT /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert r.status == 400, (r.headers, r.body)


@pytest_twisted.ensureDeferred
async def test_stow_405_is_plain_text(target: Target) -> None:
    """When a STOW-RS path gets GET (PUT on the archive, where GET is QIDO-RS), the 405
    says text/plain (it was text/html)."""
    path = target.prefix.encode() + b"/studies"
    method = b"PUT" if path.startswith(b"/dcm4chee-arc/") else b"GET"
    r = await target.send(method + b" " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert r.status == 405
    assert r.content_type == "text/plain"


@pytest_twisted.ensureDeferred
async def test_unknown_rest_path_gets_json_404(target: Target) -> None:
    """When the REST listener gets an unknown top-level path, the 404 is JSON (it was
    twisted.web's HTML page); stowrsd answers its plain-text 404."""
    r = await target.send(b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
    assert r.status == 404
    if target.name == "ingest":
        assert "errorMessage" in json.loads(r.body)
    else:
        assert r.content_type == "text/plain"
