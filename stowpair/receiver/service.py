"""Running a STOW-RS receiver: thread pool, storage, Site and listening port."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from twisted.application.service import Service
from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.internet.interfaces import IListeningPort, IStreamServerEndpoint
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from twisted.web.http import HTTPChannel
from twisted.web.resource import IResource, Resource
from twisted.web.server import Request, Site

from stowpair.api.health import HealthResource
from stowpair.console import AccessLogAtDebug
from stowpair.logs import register_events
from stowpair.metrics.registry import Metrics, MetricsResource
from stowpair.receiver.request import StreamingRequest
from stowpair.receiver.resource import StowResource
from stowpair.receiver.settings import ReceiverSettings
from stowpair.receiver.storage import make_storage

T = TypeVar("T")

register_events({"receiver.listen_failed": ("role", "error")})


class _Root(Resource):
    """``/health`` for probes, ``/metrics`` when given; every other path goes to the
    STOW-RS resource."""

    def __init__(self, stow: StowResource, metrics: Metrics | None = None) -> None:
        super().__init__()
        self.stow = stow
        self.putChild(b"health", HealthResource())
        if metrics is not None:
            self.putChild(b"metrics", MetricsResource(metrics))

    def getChildWithDefault(self, path: bytes, request: Request) -> Resource:
        if path in self.children and not request.postpath:
            return super().getChildWithDefault(path, request)
        # give the segment back: the STOW-RS resource matches the whole path itself
        if request.prepath and request.postpath is not None:
            request.postpath.insert(0, request.prepath.pop())
        return self.stow


class StowChannel(HTTPChannel):
    """HTTP/1.1 channel that answers an over-long request or header line.

    twisted.web's line reader just drops the connection when a line passes
    ``MAX_LENGTH`` (16 KiB); a client then sees a reset instead of a reason.
    """

    def lineLengthExceeded(self, line: bytes) -> None:
        body = f"a request or header line is longer than {self.MAX_LENGTH} bytes\n".encode()
        self.transport.write(  # type: ignore[union-attr]
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body) + body
        )
        self.loseConnection()


class _Site(AccessLogAtDebug, Site):
    """twisted.web's Site with its access log at DEBUG (``stowpair.console``)."""


def streaming_site(root: IResource, timeout: float = 60.0) -> Site:
    """A Site whose requests stream uploads to resources that ask for it.

    ``timeout``: seconds a connection may stay silent (twisted.web's idle timeout);
    it is suspended while the receiver itself holds the body back (backpressure).
    """
    site = _Site(root, timeout=timeout)
    site.requestFactory = StreamingRequest
    site.protocol = StowChannel  # type: ignore[method-assign, assignment]  # HTTP/1.1 only
    return site


class ReceiverService(Service):
    """Listens on ``endpoint`` with a STOW-RS resource storing under ``directory``."""

    log = Logger()

    def __init__(
        self,
        reactor: Any,
        endpoint: IStreamServerEndpoint,
        settings: ReceiverSettings,
        directory: Path,
        layout: str = "uid",
        fsync: bool = True,
        role: str = "stowrsd",
        threads: int = 4,
        metrics: Metrics | None = None,
    ) -> None:
        self.reactor = reactor
        self.endpoint = endpoint
        self.role = role
        self.pool = ThreadPool(minthreads=0, maxthreads=threads, name=f"{role}-storage")
        self.storage = make_storage(layout, directory, self.run_blocking, fsync)
        self.resource = StowResource(
            settings, self.storage, reactor, self.run_blocking, random.Random(settings.faults.seed)
        )
        self.site = streaming_site(_Root(self.resource, metrics))
        self.port: IListeningPort | None = None
        self.listening: Deferred[IListeningPort] = Deferred()

    def run_blocking(self, f: Callable[[], T]) -> Deferred[T]:
        return deferToThreadPool(self.reactor, self.pool, f)

    def startService(self) -> None:
        super().startService()
        self.pool.start()
        self.storage.prepare()  # mkdir + remove stale temp files, before accepting requests
        validator = self.resource.settings.bearer_validator
        # Token signing keys are loaded before the first request can come (never fails).
        d: Deferred[Any] = validator.keys.refresh() if validator else succeed(None)
        d.addCallback(lambda _: self.endpoint.listen(self.site))
        d.addCallbacks(self._listening, self._listen_failed)

    def _listen_failed(self, failure: Failure) -> None:
        self.log.error(
            "{role} cannot listen: {error}",
            role=self.role,
            error=failure.getErrorMessage(),
            event="receiver.listen_failed",
        )
        self.listening.errback(failure)

    def _listening(self, port: IListeningPort) -> None:
        self.port = port
        addr: Any = port.getHost()
        self.log.info(
            "{role} listening on {host}:{port}",
            role=self.role,
            host=addr.host,
            port=addr.port,
            url=f"http://{addr.host}:{addr.port}{self.resource.settings.path}",
            event="listening",
        )
        self.listening.callback(port)

    def stopService(self) -> Deferred[None] | None:
        super().stopService()
        d: Deferred[None] | None = None
        if self.port is not None:
            d = Deferred.fromCoroutine(self._stop(self.port))
        else:
            self.pool.stop()
        return d

    async def _stop(self, port: IListeningPort) -> None:
        await maybeDeferred(port.stopListening)
        self.pool.stop()
