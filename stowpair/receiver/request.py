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
from typing import Any, Protocol
from urllib.parse import unquote_to_bytes

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import server
from twisted.web.resource import IResource

from stowpair.compat.twisted_private import keep_timeout_for_next_request, pending_request_line
from stowpair.web.errors import (
    EarlyResponse,
    ErrorStyle,
    ResourceGuard,
    error_response,
    error_style,
    shown,
)

__all__ = ["BodySink", "EarlyResponse", "StreamingRequest", "StreamingResource"]

#: Body bytes drained after an early response before the connection is closed anyway.
DRAIN_LIMIT = 8 * 1024 * 1024
#: Seconds to keep draining after an early response (lets the client read it).
LINGER = 5.0
_INTERNAL = "Internal error while answering this request; see the service log"


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

    log = Logger()
    upload: BodySink | None = None
    early: EarlyResponse | None = None
    #: How the resource this request goes to words its refusals (set once routed).
    error_style: ErrorStyle | None = None
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
        line = pending_request_line(self.channel)
        site = getattr(self.channel, "site", None)
        if line is None or site is None:
            return None
        self.method, self.uri = line
        self.path = self.uri.split(b"?", 1)[0]
        self.prepath = []
        self.postpath = [unquote_to_bytes(s) for s in self.path[1:].split(b"/")]
        try:
            resource = site.getResourceFor(self)
            self.error_style = error_style(resource)
            start = getattr(resource, "start_upload", None)
            if start is None:
                return None
            result: BodySink | EarlyResponse | None = start(self, length)
        except Exception:
            self._log_fault(Failure())
            return error_response(500, _INTERNAL, self.error_style or "json")
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
            transport.write(response.encode(head=self.method == b"HEAD"))
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
        self.error_style = error_style(resrc)
        super().render(ResourceGuard(resrc))

    def processingFailed(self, reason: Failure) -> None:
        """A genuine fault while routing or rendering: logged once with its traceback,
        answered 500 in the resource's error style (twisted.web would send HTML)."""
        self._log_fault(reason)
        if self.startedWriting or self.finished or self.channel is None:
            if self.channel is not None and self.channel.transport is not None:
                self.channel.transport.loseConnection()
            return
        response = error_response(500, _INTERNAL, self.error_style or "json")
        self.setResponseCode(response.code)
        self.setHeader(b"Content-Type", response.content_type.encode())
        self.setHeader(b"Content-Length", b"%d" % len(response.body))
        self.write(response.body)
        self.finish()

    def _log_fault(self, reason: Failure) -> None:
        self.log.failure(
            "{method} {uri} failed: {error}",
            reason,
            method=shown(self.method or b""),
            uri=shown(self.uri or b"", 300),
            error=str(reason.value),
            event="http.error",
        )

    def __repr__(self) -> str:
        # twisted.web's repr decodes the URI as ASCII and fails on other bytes; log
        # events hold requests, so their repr must never raise.
        method = shown(getattr(self, "method", b"") or b"")
        uri = shown(getattr(self, "uri", b"") or b"", 200)
        return f"<{type(self).__name__} {method} {uri}>"

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
        getattr(channel, "body_paused", lambda: None)()  # nor the body-rate bound

    def resume_body(self) -> None:
        channel: Any = self.channel
        saved, self._idle_timeout = self._idle_timeout, None
        if channel is not None and saved is not None:
            # When the body ended while paused, twisted.web restores the idle timeout it
            # saved once the response is done, so that is where ours goes.
            if not keep_timeout_for_next_request(channel, saved):
                channel.setTimeout(saved)
        getattr(channel, "body_resumed", lambda: None)()
        transport: Any = getattr(channel, "transport", None)
        if transport is not None:
            transport.resumeProducing()
