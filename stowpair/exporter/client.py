"""One HTTP client per Web Application: persistent pool, TLS policy, idle timeout.

Timeouts (dcm4chee 5.31 ``connectTimeout``/``readTimeout``, improved as docs/dcm4chee.md,
"Timeouts", says): ``connect-timeout`` bounds the TCP connect; ``response-timeout``
bounds each *idle* period — time in which neither a body byte was sent nor a response
byte received — never the whole exchange, so a 2 GB upload is not cut off at a fixed
deadline while a silent peer is detected.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hyperlink import EncodedURL
from treq.client import HTTPClient
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.protocol import Protocol
from twisted.internet.task import Cooperator
from twisted.python.failure import Failure
from twisted.web.client import Agent, HTTPConnectionPool, ResponseDone
from twisted.web.http import PotentialDataLoss
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgent, IResponse

from stowpair.config.model import WebApplication
from stowpair.exporter.body import BodyPart, MultipartRelatedProducer
from stowpair.exporter.tls import StowTLSPolicy

#: Answers are kept up to this size; a longer body is truncated (and then unparseable).
MAX_RESPONSE_BYTES = 32 * 1024 * 1024


class IdleTimeout(Exception):
    """Nothing was sent or received for ``seconds``."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"no progress for {seconds:g} s (response-timeout)")
        self.seconds = seconds


class IdleWatchdog:
    """Calls ``on_expire`` once after ``timeout`` seconds without ``touch()``."""

    def __init__(
        self,
        clock: IReactorTime,
        timeout: float | None,
        on_expire: Callable[[], None],
        first_timeout: float | None = None,
    ) -> None:
        self._clock, self._timeout, self._on_expire = clock, timeout, on_expire
        self.expired = False
        self._call: IDelayedCall | None = None
        if timeout is not None:
            self._call = clock.callLater(first_timeout or timeout, self._expire)

    def _expire(self) -> None:
        self._call = None
        self.expired = True
        self._on_expire()

    def touch(self, _: int = 0) -> None:
        """Progress happened: restart the idle period."""
        if self._call is not None and self._timeout is not None:
            self._call.reset(self._timeout)

    def stop(self) -> None:
        if self._call is not None:
            self._call.cancel()
            self._call = None


@dataclass(frozen=True)
class HTTPAnswer:
    """What the server said: status, headers and (up to MAX_RESPONSE_BYTES of) body."""

    status: int
    headers: Headers
    body: bytes
    truncated: bool = False

    def header(self, name: str) -> str | None:
        values = self.headers.getRawHeaders(name)
        return values[0] if values else None


class _Collector(Protocol):
    """Gathers the response body, touching the watchdog for each chunk."""

    def __init__(self, done: Deferred[tuple[bytes, bool]], on_data: Callable[[int], None]):
        self._done, self._on_data = done, on_data
        self._chunks: list[bytes] = []
        self._size = 0
        self._truncated = False

    def dataReceived(self, data: bytes) -> None:
        self._on_data(len(data))
        if self._size < MAX_RESPONSE_BYTES:
            self._chunks.append(data[: MAX_RESPONSE_BYTES - self._size])
            self._size += len(self._chunks[-1])
        self._truncated = self._truncated or self._size >= MAX_RESPONSE_BYTES

    def connectionLost(self, reason: Failure = Failure(ResponseDone())) -> None:  # noqa: B008
        if reason.check(ResponseDone, PotentialDataLoss):
            self._done.callback((b"".join(self._chunks), self._truncated))
        else:
            self._done.errback(reason)

    def abort(self) -> None:
        producer = getattr(self.transport, "stopProducing", None)
        if producer is not None:
            producer()


def idle_timeout_of(webapp: WebApplication) -> float | None:
    """The idle watchdog's period: ``response-timeout`` (default 300 s in the model, so a
    silent peer never hangs an export for ever); None (written 0) disables it."""
    value = webapp.properties.response_timeout
    return value if value is not None and value > 0 else None


class StowClient:
    """POSTs multipart/related bodies to one web app's ``/studies`` URL.

    ``agent`` may be injected (tests pass a RequestTraversalAgent); otherwise an Agent
    over a persistent HTTPConnectionPool with :class:`StowTLSPolicy` is built, with
    enough keep-alive connections for ``concurrency``.
    """

    def __init__(
        self,
        reactor: Any,
        webapp: WebApplication,
        agent: IAgent | None = None,
        cooperator: Cooperator | None = None,
    ) -> None:
        self.webapp = webapp
        self._reactor = reactor
        props = webapp.properties
        self._pool: HTTPConnectionPool | None = None
        if agent is None:
            self._pool = HTTPConnectionPool(reactor, persistent=True)
            self._pool.maxPersistentPerHost = max(2, props.concurrency)
            connect = props.connect_timeout if props.connect_timeout else None
            agent = Agent(
                reactor,
                contextFactory=StowTLSPolicy(webapp),
                connectTimeout=connect,
                pool=self._pool,
            )
        self._http = HTTPClient(agent)
        #: Parsed once, as treq would parse the text for every request.
        self._url = EncodedURL.from_text(webapp.studies_url)
        self.cooperator = cooperator or Cooperator(
            scheduler=lambda f: reactor.callLater(0, f), started=True
        )
        self.idle_timeout = idle_timeout_of(webapp)
        #: Cleared when the peer proved to ignore parts carrying the parameter.
        self.transfer_syntax_parameter = True

    def producer(
        self, parts: Sequence[BodyPart], on_progress: Callable[[int], None] | None = None
    ) -> MultipartRelatedProducer:
        return MultipartRelatedProducer(
            parts,
            self.cooperator,
            chunked=self.webapp.properties.chunked,
            on_progress=on_progress,
            transfer_syntax_parameter=self.transfer_syntax_parameter,
        )

    def post(self, parts: Sequence[BodyPart], headers: Mapping[bytes, bytes]) -> Deferred[Any]:
        """Send one request; fires with (HTTPAnswer, body bytes sent) or fails with the
        transport error (IdleTimeout when the watchdog fired)."""
        return Deferred.fromCoroutine(self._post(parts, headers))

    async def _post(
        self, parts: Sequence[BodyPart], headers: Mapping[bytes, bytes]
    ) -> tuple[HTTPAnswer, int]:
        holder: dict[str, Any] = {}

        def expire() -> None:
            if "collector" in holder:
                holder["collector"].abort()
            elif "request" in holder:
                holder["request"].cancel()

        connect = self.webapp.properties.connect_timeout or 0
        first = None if self.idle_timeout is None else self.idle_timeout + connect
        watchdog = IdleWatchdog(self._reactor, self.idle_timeout, expire, first)
        body = self.producer(parts, on_progress=watchdog.touch)
        all_headers = {**headers, b"Content-Type": body.content_type}
        try:
            holder["request"] = self._http.post(
                self._url,
                data=body,
                headers=Headers({k: [v] for k, v in all_headers.items()}),
                unbuffered=True,  # the body is read once, by _Collector
            )
            response: IResponse = await holder["request"]
            watchdog.touch()
            done: Deferred[tuple[bytes, bool]] = Deferred()
            holder["collector"] = _Collector(done, watchdog.touch)
            response.deliverBody(holder["collector"])
            data, truncated = await done
        except Exception:
            if watchdog.expired:
                raise IdleTimeout(self.idle_timeout or 0.0) from None
            raise
        finally:
            watchdog.stop()
        answer = HTTPAnswer(response.code, response.headers, data, truncated)
        return answer, body.bytes_written

    def close(self) -> Deferred[None]:
        """Close kept-alive connections (when the web app is reconfigured or at stop)."""
        if self._pool is None:
            return Deferred.fromCoroutine(_nothing())
        return self._pool.closeCachedConnections()


async def _nothing() -> None:
    return None
