"""Each private Twisted name in stowpair/compat/twisted_private.py, checked against the
installed Twisted. A failure here means a Twisted upgrade changed a private name that
stowpair relies on: the message says which one and what it is needed for."""

from __future__ import annotations

import pytest
import trustme
from twisted.internet import ssl
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.web.http import HTTPChannel
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site
from zope.interface.interface import InterfaceClass

import twisted
from stowpair.compat import twisted_private

CHANGED = (
    f"Twisted {twisted.__version__} changed a private name that stowpair uses: {{what}}. "
    "Adapt stowpair/compat/twisted_private.py (its docstring says what each name is for)."
)


def test_trust_root_interface_is_still_there() -> None:
    """When Twisted moves or renames IOpenSSLTrustRoot, this fails, naming it."""
    interface = twisted_private.IOpenSSLTrustRoot
    if not isinstance(interface, InterfaceClass):
        pytest.fail(CHANGED.format(what="twisted.internet._sslverify.IOpenSSLTrustRoot"))
    ca = trustme.CA()
    roots = [ssl.platformTrust(), ssl.trustRootFromCertificates([ssl.Certificate.loadPEM(
        ca.cert_pem.bytes())])]  # fmt: skip
    for root in roots:
        if not interface.providedBy(root):
            pytest.fail(CHANGED.format(what=f"IOpenSSLTrustRoot is not provided by {root!r}"))


class _Recorder(Request):
    """Records what pending_request_line says when the headers are in."""

    seen: list[tuple[bytes, bytes] | None] = []

    def gotLength(self, length: int | None) -> None:
        _Recorder.seen.append(twisted_private.pending_request_line(self.channel))
        super().gotLength(length)


class _Slow(Resource):
    """Answers later: the channel is handling the request until ``finish``."""

    isLeaf = True
    pending: list[Request] = []

    def render(self, request: Request) -> int:
        self.pending.append(request)
        return NOT_DONE_YET


def _channel(clock: Clock, timeout: float) -> HTTPChannel:
    channel = HTTPChannel()
    channel.requestFactory = _Recorder  # type: ignore[assignment]
    channel.site = Site(_Slow())  # type: ignore[attr-defined]
    channel.callLater = clock.callLater  # type: ignore[method-assign]
    channel.timeOut = timeout
    channel.makeConnection(StringTransport())
    return channel


def test_the_request_line_is_known_when_the_headers_are_in() -> None:
    """When the headers of a POST are in (before its body), pending_request_line gives
    its method and URI; fails, naming HTTPChannel._command/_path, when Twisted changed."""
    _Recorder.seen.clear()
    channel = _channel(Clock(), 60.0)
    channel.dataReceived(b"POST /studies/1.2?x=y HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n")
    if _Recorder.seen != [(b"POST", b"/studies/1.2?x=y")]:
        pytest.fail(
            CHANGED.format(
                what="HTTPChannel._command/_path no longer hold the request line when "
                f"Request.gotLength runs (got {_Recorder.seen!r}); the receiver would "
                "buffer uploads instead of streaming them"
            )
        )


def test_the_saved_timeout_comes_back_after_the_response() -> None:
    """When a request is being handled, keep_timeout_for_next_request makes its timeout
    the one twisted.web restores after the response; fails, naming
    HTTPChannel._handlingRequest/_savedTimeOut, when Twisted changed."""
    _Slow.pending.clear()
    channel = _channel(Clock(), 60.0)
    assert not twisted_private.keep_timeout_for_next_request(channel, 7.0)
    channel.dataReceived(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx")
    assert len(_Slow.pending) == 1, "the request was not rendered"
    handling = twisted_private.keep_timeout_for_next_request(channel, 7.0)
    _Slow.pending[0].finish()
    if not handling or channel.timeOut != 7.0:
        pytest.fail(
            CHANGED.format(
                what="HTTPChannel._handlingRequest/_savedTimeOut (handling: "
                f"{handling}, timeout after the response: {channel.timeOut}); the "
                "receiver's idle timeout would be lost after backpressure"
            )
        )
