"""The HTTP/1.1 channel and Site of every listener: clear refusals for what twisted.web
would drop or answer with an empty 400, and bounds on slow clients.

Slow clients (docs/configuration.md, "Slow clients"): twisted.web's idle timeout only
catches silence; a client sending one byte every few seconds keeps its connection, and
enough of them use up the process's file descriptors. Here, per connection:

* the request line and headers must arrive within ``header`` seconds of their first byte
  (nginx ``client_header_timeout``);
* the body is watched in windows of ``body`` seconds, each of which must bring at least
  ``body_min_rate`` bytes per second (nginx ``client_body_timeout``, Apache
  ``mod_reqtimeout`` ``MinRate``); windows stop while the server itself holds the body
  back (backpressure, :meth:`body_paused`);
* ``idle`` seconds of silence close the connection (twisted.web's timeout).

A client that misses a bound gets ``408 Request Timeout`` and the connection is closed.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.http import HTTPChannel
from twisted.web.resource import IResource
from twisted.web.server import Site

from stowpair.config.model import ClientTimeouts
from stowpair.console import AccessLogAtDebug
from stowpair.logs import register_events
from stowpair.web.errors import (
    ErrorStyle,
    HeaderCheck,
    error_response,
    request_line_problem,
)

register_events(
    {
        "http.timeout": ("peer", "phase", "elapsed", "received", "limit", "message"),
        "http.refused": ("peer", "status", "error"),
        "http.error": ("method", "uri", "error"),
    }
)


class GuardedSite(AccessLogAtDebug, Site):
    """A Site for :class:`GuardedChannel`: its bounds and the style of its refusals
    before a resource is known (``text`` on a STOW-RS-only listener); its access log
    is at DEBUG (``stowpair.console``)."""

    def __init__(
        self,
        root: IResource,
        timeouts: ClientTimeouts,
        error_style: ErrorStyle = "json",
        reactor: Any = None,
    ) -> None:
        super().__init__(root, timeout=timeouts.idle, reactor=reactor)
        self.timeouts = timeouts
        self.error_style: ErrorStyle = error_style
        self.protocol = GuardedChannel  # type: ignore[assignment]  # HTTP/1.1 only


class GuardedChannel(HTTPChannel):
    """HTTP/1.1 channel with header and body-rate deadlines and clear refusals."""

    log = Logger()
    site: GuardedSite

    def connectionMade(self) -> None:
        super().connectionMade()
        self._closing = False
        self._awaiting_request = True  # the next bytes start a request (line, headers)
        self._expect_request_line = True
        self._head = False  # the request being read is a HEAD: answers carry no body
        self._header = HeaderCheck(0, self.totalHeadersSize, self.maxHeaders)
        self._header_timer: IDelayedCall | None = None
        self._body_timer: IDelayedCall | None = None
        self._abort_timer: IDelayedCall | None = None
        self._in_body = False
        self._window_bytes = 0
        self._phase_started = 0.0
        self._start_header_clock()

    # -- bytes in ----------------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        if self._closing:
            return
        if self._awaiting_request and self._header_timer is None:
            self._start_header_clock()
        elif self._in_body:
            self._window_bytes += len(data)
        super().dataReceived(data)

    def lineReceived(self, line: bytes) -> None:
        if self._closing:
            return
        refusal: tuple[int, str] | None = None
        if self._expect_request_line:
            if line and self.persistent:
                self._expect_request_line = False
                self._head = line.startswith(b"HEAD ")
                self._header = HeaderCheck(len(line), self.totalHeadersSize, self.maxHeaders)
                problem = request_line_problem(line)
                refusal = (400, problem) if problem is not None else None
        elif self._awaiting_request and line:
            refusal = self._header.problem(line)
        if refusal is not None:
            self._refuse(*refusal)
            return
        super().lineReceived(line)

    def lineLengthExceeded(self, line: bytes) -> None:
        # twisted.web's line reader just drops the connection at MAX_LENGTH (16 KiB).
        self._refuse(431, f"a request or header line is longer than {self.MAX_LENGTH} bytes")

    def allHeadersReceived(self) -> None:
        self._stop(self._header_timer)
        self._header_timer = None
        self._awaiting_request = False
        self._in_body = True
        self._phase_started = self._now()
        self._start_body_window()
        super().allHeadersReceived()

    def allContentReceived(self) -> None:
        self._end_body()
        super().allContentReceived()

    def requestDone(self, request: Any) -> None:
        # Set before twisted.web replays pipelined bytes into dataReceived.
        self._awaiting_request = True
        self._expect_request_line = True
        super().requestDone(request)

    def connectionLost(self, reason: Failure) -> None:  # type: ignore[override]
        self._closing = True
        for timer in (self._header_timer, self._body_timer, self._abort_timer):
            self._stop(timer)
        self._header_timer = self._body_timer = self._abort_timer = None
        super().connectionLost(reason)

    # -- backpressure (StreamingRequest.pause_body / resume_body) -----------------------

    def body_paused(self) -> None:
        """The server holds the body back: the client cannot be slow meanwhile."""
        self._stop(self._body_timer)
        self._body_timer = None

    def body_resumed(self) -> None:
        if self._in_body and not self._closing:
            self._start_body_window()

    # -- deadlines ---------------------------------------------------------------------

    @property
    def timeouts(self) -> ClientTimeouts:
        return getattr(self.site, "timeouts", None) or ClientTimeouts()

    def _now(self) -> float:
        reactor = getattr(self.site, "reactor", None)
        return float(reactor.seconds()) if reactor is not None else 0.0

    def _start_header_clock(self) -> None:
        self._phase_started = self._now()
        self._header_timer = self.callLater(self.timeouts.header, self._header_late)

    def _header_late(self) -> None:
        self._header_timer = None
        limit = self.timeouts.header
        self._time_out(
            "headers",
            f"the request line and headers did not arrive within {limit:g} s",
            received=None,
            limit=limit,
        )

    def _start_body_window(self) -> None:
        self._stop(self._body_timer)
        self._window_bytes = 0
        self._body_timer = self.callLater(self.timeouts.body, self._body_window_ended)

    def _body_window_ended(self) -> None:
        self._body_timer = None
        t = self.timeouts
        if self._window_bytes >= max(1.0, t.body_min_rate * t.body):
            self._start_body_window()
            return
        self._time_out(
            "body",
            f"the request body arrived at {self._window_bytes / t.body:.0f} bytes/s over the"
            f" last {t.body:g} s; at least {t.body_min_rate:g} bytes/s are required",
            received=self._window_bytes,
            limit=t.body_min_rate,
        )

    def _end_body(self) -> None:
        self._in_body = False
        self._stop(self._body_timer)
        self._body_timer = None

    def _time_out(self, phase: str, message: str, received: int | None, limit: float) -> None:
        self.log.info(
            "Closing a slow client {peer}: {message}",
            peer=_peer(self),
            phase=phase,
            elapsed=round(self._now() - self._phase_started, 3),
            received=received,
            limit=limit,
            message=message,
            event="http.timeout",
        )
        request = self.requests[-1] if self.requests else None
        if getattr(request, "early", None) is not None:
            self._close()  # answered already; only the rest of the body was awaited
            return
        style = getattr(request, "error_style", None) or self.site.error_style
        self._close(error_response(408, message, style).encode(head=self._head))

    # -- refusing and closing -----------------------------------------------------------

    def _refuse(self, code: int, message: str) -> None:
        self.log.info(
            "Refused a request from {peer}: {status} {error}",
            peer=_peer(self),
            status=code,
            error=message,
            event="http.refused",
        )
        answer = error_response(code, message, self.site.error_style)
        self._close(answer.encode(head=self._head))

    def _close(self, answer: bytes = b"") -> None:
        """Write ``answer``, stop reading, close; abort if the peer does not let go."""
        if self._closing or self.transport is None:
            return
        self._closing = True
        self._end_body()
        self._stop(self._header_timer)
        self._header_timer = None
        self.setTimeout(None)
        if answer:
            self.transport.write(answer)
        self.loseConnection()
        if self.abortTimeout is not None:
            self._abort_timer = self.callLater(self.abortTimeout, self._abort)

    def _abort(self) -> None:
        self._abort_timer = None
        if self.transport is not None:
            self.transport.abortConnection()  # type: ignore[attr-defined]

    @staticmethod
    def _stop(timer: IDelayedCall | None) -> None:
        if timer is not None and timer.active():
            timer.cancel()


def _peer(channel: HTTPChannel) -> str:
    transport: Any = channel.transport
    address: Any = transport.getPeer() if transport is not None else None
    host, port = getattr(address, "host", None), getattr(address, "port", None)
    return f"{host}:{port}" if host is not None else str(address)
