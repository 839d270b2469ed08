"""A twisted.web Request that streams its body to the resource instead of spooling it.

twisted.web normally buffers a request body (in memory below 100,000 bytes, else in a
temp file) before ``render_POST`` runs. :class:`StreamingRequest` asks the target
resource, as soon as the headers are complete (``gotLength``), what to do with the
body: a resource with ``start_upload(request, length)`` returns

* a :class:`BodySink` that receives the body chunk by chunk as it arrives;
* an :class:`EarlyResponse` (401, 404, 405, 413, 415 ...) sent at once, before the
  body is read: ``Expect: 100-continue`` is then not answered with 100, the body
  that still comes is drained and dropped (bounded), and the connection is closed;
* or None for twisted.web's default handling.

``Expect: 100-continue`` is answered by twisted.web right after ``gotLength``, so a
client waiting for it sends the body only once the request was accepted.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import unquote_to_bytes

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure
from twisted.web import server
from twisted.web.error import UnsupportedMethod
from twisted.web.http import RESPONSES, datetimeToString
from twisted.web.resource import IResource
from zope.interface import implementer

#: Body bytes drained after an early response before the connection is closed anyway.
DRAIN_LIMIT = 8 * 1024 * 1024
#: Seconds to keep draining after an early response (lets the client read it).
LINGER = 5.0


@dataclass(frozen=True)
class EarlyResponse:
    """A complete answer sent before (or instead of reading) the request body."""

    code: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = field(default=())

    def encode(self) -> bytes:
        reason = RESPONSES.get(self.code, b"Unknown").decode("latin-1")
        lines = [
            f"HTTP/1.1 {self.code} {reason}",
            f"Date: {datetimeToString().decode()}",
            f"Content-Type: {self.content_type}",
            f"Content-Length: {len(self.body)}",
            "Connection: close",
            *(f"{name}: {value}" for name, value in self.headers),
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body


class BodySink(Protocol):
    """Receives a request body as it arrives (reactor thread)."""

    def feed(self, data: bytes) -> None: ...

    def connection_lost(self) -> None: ...


class StreamingResource(Protocol):
    def start_upload(
        self, request: StreamingRequest, length: int | None
    ) -> BodySink | EarlyResponse | None: ...


class StreamingRequest(server.Request):
    """Use as ``Site.requestFactory`` wherever a resource streams uploads."""

    upload: BodySink | None = None
    early: EarlyResponse | None = None
    _drained = 0
    _linger: IDelayedCall | None = None
    #: The channel's idle timeout, kept aside while reading is paused.
    _idle_timeout: float | None = None

    def gotLength(self, length: int | None) -> None:
        decision = self._ask_resource(length)
        if decision is None:
            super().gotLength(length)
            return
        self.content = io.BytesIO()  # nothing is spooled
        if isinstance(decision, EarlyResponse):
            self.answer_early(decision)
        else:
            self.upload = decision

    def _ask_resource(self, length: int | None) -> BodySink | EarlyResponse | None:
        # The request line is known to the channel but set on the request only in
        # requestReceived (after the body); route now with the same rules.
        command = getattr(self.channel, "_command", None)
        uri = getattr(self.channel, "_path", None)
        site = getattr(self.channel, "site", None)
        if command is None or uri is None or site is None:
            return None
        self.method, self.uri = command, uri
        self.path = uri.split(b"?", 1)[0]
        self.prepath = []
        self.postpath = [unquote_to_bytes(s) for s in self.path[1:].split(b"/")]
        resource = site.getResourceFor(self)
        start = getattr(resource, "start_upload", None)
        if start is None:
            return None
        result: BodySink | EarlyResponse | None = start(self, length)
        return result

    def answer_early(self, response: EarlyResponse, clock: IReactorTime | None = None) -> None:
        """Send ``response`` now, drop the rest of the body, then close the connection."""
        if self.early is not None or self.channel is None:
            return
        self.early = response
        sink, self.upload = self.upload, None
        if sink is not None:
            sink.connection_lost()
        self.requestHeaders.removeHeader(b"Expect")  # no "100 Continue" after this
        transport = self.channel.transport
        if transport is not None:
            transport.write(response.encode())
        if clock is not None:
            self._linger = clock.callLater(LINGER, self._close)

    def _close(self) -> None:
        if self._linger is not None and self._linger.active():
            self._linger.cancel()
        self._linger = None
        if self.channel is not None and self.channel.transport is not None:
            self.channel.transport.loseConnection()

    def handleContentChunk(self, data: bytes) -> None:
        if self.early is not None:
            self._drained += len(data)
            if self._drained > DRAIN_LIMIT:
                self._close()
        elif self.upload is not None:
            self.upload.feed(data)
        else:
            super().handleContentChunk(data)

    def render(self, resrc: IResource) -> None:
        super().render(_MethodGuard(resrc))

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        if self.early is not None:
            self._close()  # answered already; the connection is not reused
            return
        super().requestReceived(command, path, version)

    def connectionLost(self, reason: Failure) -> None:
        if self._linger is not None and self._linger.active():
            self._linger.cancel()
        sink, self.upload = self.upload, None
        if sink is not None:
            sink.connection_lost()
        super().connectionLost(reason)

    def pause_body(self) -> None:
        """Stop reading the socket (backpressure while parts are being stored).

        The client is not idle while we hold its body back, so the channel's idle
        timeout is suspended until reading resumes (else a slow fsync would drop an
        upload that the client is sending as fast as it may).
        """
        channel: Any = self.channel
        transport: Any = getattr(channel, "transport", None)
        if transport is not None:
            transport.pauseProducing()
        if channel is not None and self._idle_timeout is None:
            self._idle_timeout = channel.setTimeout(None)

    def resume_body(self) -> None:
        channel: Any = self.channel
        saved, self._idle_timeout = self._idle_timeout, None
        if channel is not None and saved is not None:
            if getattr(channel, "_handlingRequest", False):
                # The body ended while paused: twisted.web restores the idle timeout it
                # saved when the response is done, so that is where ours goes.
                channel._savedTimeOut = saved
            else:
                channel.setTimeout(saved)
        transport: Any = getattr(channel, "transport", None)
        if transport is not None:
            transport.resumeProducing()


#: An HTTP method is a token (RFC 9110 §9.1, §5.6.2).
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


@implementer(IResource)
class _MethodGuard:
    """Wraps the resource being rendered: a method it does not support gets a JSON
    405 with ``Allow`` (twisted.web answers 501 to methods it does not know, such as
    PUT, and an HTML page to the others); a method that is not an RFC 9110 token gets a 400.
    """

    isLeaf = True

    def __init__(self, inner: IResource) -> None:
        self.inner = inner

    def getChildWithDefault(self, name: bytes, request: Any) -> IResource:
        return self.inner.getChildWithDefault(name, request)

    def putChild(self, path: bytes, child: IResource) -> None:
        self.inner.putChild(path, child)

    def render(self, request: Any) -> Any:
        method: bytes = request.method
        if _TOKEN.fullmatch(method) is None:
            return _json_error(request, 400, f"{method!r} is not an HTTP method", ())
        try:
            return self.inner.render(request)
        except UnsupportedMethod as e:
            allowed: tuple[bytes, ...] = tuple(e.allowedMethods)
            if method == b"HEAD" and b"GET" in allowed:
                raise  # twisted.web answers HEAD with the headers of GET
        name = method.decode("ascii")
        return _json_error(request, 405, f"Method {name} not allowed here", allowed)


def _json_error(request: Any, code: int, message: str, allowed: tuple[bytes, ...]) -> bytes:
    names = sorted({m.decode("latin-1") for m in allowed})
    if names:
        message += f" (allowed: {', '.join(names)})"
        request.setHeader(b"Allow", ", ".join(names).encode())
    request.setResponseCode(code)
    request.setHeader(b"Content-Type", b"application/json")
    return json.dumps({"errorMessage": message}).encode() + b"\n"
