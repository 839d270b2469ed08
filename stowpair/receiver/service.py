"""Running a STOW-RS receiver: thread pool, storage, Site and listening port."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList, maybeDeferred
from twisted.internet.endpoints import SSL4ServerEndpoint
from twisted.internet.interfaces import IListeningPort, IStreamServerEndpoint
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from twisted.web.resource import IResource, Resource
from twisted.web.server import Request

from stowpair.api.health import HealthResource
from stowpair.config.listen import server_endpoint
from stowpair.config.model import ClientTimeouts, EmulatorConfig
from stowpair.logs import escape_console, register_events
from stowpair.metrics.registry import Metrics, MetricsResource, MetricsService
from stowpair.process import ProcessService, StartupError
from stowpair.receiver.header_workers import HeaderWorkers
from stowpair.receiver.request import StreamingRequest
from stowpair.receiver.resource import StowResource
from stowpair.receiver.settings import ReceiverSettings
from stowpair.receiver.storage import make_storage
from stowpair.web.channel import GuardedSite
from stowpair.web.errors import ErrorStyle
from stowpair.web.listen import describe, hold_until, listen

T = TypeVar("T")

register_events(
    {
        "storage.stale": ("role", "problem"),
        "receiver.header_worker.replaced": ("role", "pid", "exitcode"),
    }
)


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


def streaming_site(
    root: IResource,
    timeouts: ClientTimeouts | None = None,
    error_style: ErrorStyle = "json",
    reactor: Any = None,
) -> GuardedSite:
    """A Site whose requests stream uploads to resources that ask for it, with the
    slow-client bounds of ``timeouts`` (docs/configuration.md). The idle timeout is
    suspended while the receiver itself holds the body back (backpressure)."""
    site = GuardedSite(root, timeouts or ClientTimeouts(), error_style, reactor)
    site.requestFactory = StreamingRequest
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
        timeouts: ClientTimeouts | None = None,
        metrics: Metrics | None = None,
        header_workers: int = 0,
    ) -> None:
        self.reactor = reactor
        self.endpoint = endpoint
        self.role = role
        self.pool = ThreadPool(minthreads=0, maxthreads=threads, name=f"{role}-storage")
        self.storage = make_storage(layout, directory, self.run_blocking, fsync)
        # Blocking, so now: twistd constructs services in makeService, before the reactor
        # runs. Stale temp files are removed in a thread once the listener is open (a
        # second process on a busy port must not delete the first one's).
        try:
            self.storage.create_folders()
        except OSError as e:
            raise StartupError(
                f"cannot create the {role} directory {e.filename}: {e.strerror}"
            ) from None
        self.header_workers = (
            HeaderWorkers(header_workers, self._worker_replaced) if header_workers else None
        )
        if self.header_workers is not None and getattr(self.storage, "place", None):
            settings = replace(settings, header_workers=self.header_workers)
        self.resource = StowResource(
            settings, self.storage, reactor, self.run_blocking, random.Random(settings.faults.seed)
        )
        self.site = streaming_site(_Root(self.resource, metrics), timeouts, "text", reactor)
        self.port: IListeningPort | None = None
        self.listening: Deferred[IListeningPort] = Deferred()
        self._bound = False
        #: Fires once stale temp files are removed and token signing keys loaded: the
        #: port reads no request before.
        self._ready: Deferred[None] = Deferred()

    def run_blocking(self, f: Callable[[], T]) -> Deferred[T]:
        return deferToThreadPool(self.reactor, self.pool, f)

    def startService(self) -> None:
        super().startService()
        self.bind()  # first: a process whose port is busy stops before touching files
        self.pool.start()
        waits = [self.run_blocking(self.storage.remove_stale).addCallback(self._stale_removed)]
        if self.header_workers is not None:
            waits.append(self.run_blocking(self.header_workers.start))
        validator = self.resource.settings.bearer_validator
        if validator is not None:  # loading the keys never fails
            waits.append(validator.keys.refresh())
        ready = DeferredList(waits, consumeErrors=True)
        ready.addCallback(lambda _: self._ready.callback(None))

    def _worker_replaced(self, pid: int, exitcode: int | None) -> None:
        """In a storage thread: a header worker was gone (its part was read in the thread)."""
        self.reactor.callFromThread(
            self.log.warn,
            "{role}: header worker {pid} ended (exit code {exitcode}); a new one replaces it",
            role=self.role,
            pid=pid,
            exitcode=exitcode,
            event="receiver.header_worker.replaced",
        )

    def _stale_removed(self, outcome: tuple[int, list[str]]) -> None:
        for problem in outcome[1]:
            self.log.warn(
                "{role}: {problem}", role=self.role, problem=problem, event="storage.stale"
            )

    def bind(self) -> None:
        """Open the listener now (once); raises :class:`ListenError` when the port cannot
        be opened, so the process stops with one line instead of running without it."""
        if self._bound:
            return
        self._bound = True
        what = {"stowrsd": "STOW-RS", "emulator": "the stowrsd emulator"}.get(self.role, self.role)
        d = listen(self.endpoint, self.site, what)  # ListenError: ``listening`` never fires
        d.addCallbacks(self._listening, self._listen_failed)

    def _listen_failed(self, failure: Failure) -> None:
        """A listener that failed later than at once (not TCP or TLS)."""
        self.log.error(
            "{error}",
            tap=self.role,
            error=describe(failure.value, self.role),
            event="startup.failed",
        )
        self.listening.errback(failure)

    def _listening(self, port: IListeningPort) -> None:
        self.port = port
        hold_until(port, self._ready)
        addr: Any = port.getHost()
        scheme = "https" if isinstance(self.endpoint, SSL4ServerEndpoint) else "http"
        self.log.info(
            "{role} listening on {host}:{port}",
            role=self.role,
            host=addr.host,
            port=addr.port,
            url=f"{scheme}://{addr.host}:{addr.port}{self.resource.settings.path}",
            event="listening",
        )
        self.listening.callback(port)

    def stopService(self) -> Deferred[None] | None:
        super().stopService()
        d: Deferred[None] | None = None
        if self.port is not None:
            d = Deferred.fromCoroutine(self._stop(self.port))
        else:
            self._stop_pools()
        return d

    async def _stop(self, port: IListeningPort) -> None:
        await maybeDeferred(port.stopListening)
        self._stop_pools()

    def _stop_pools(self) -> None:
        self.pool.stop()  # joins the storage threads: no part is being read any more
        if self.header_workers is not None:
            self.header_workers.stop()


def emulator_service(cfg: EmulatorConfig, reactor: Any) -> ReceiverService:
    """The built-in stowrsd emulator of ``twistd -n stowpair`` (the ``[emulator]`` section).
    Constructed before the reactor runs; :class:`StartupError` when it cannot be."""
    try:
        endpoint = server_endpoint(reactor, cfg.listener.description)
    except ValueError as e:
        raise StartupError(f"[emulator] listen {cfg.listener.description!r}: {e}") from None
    settings = ReceiverSettings(path=cfg.path, endpoint="emulator")
    return ReceiverService(
        reactor,
        endpoint,
        settings,
        cfg.directory,
        cfg.layout,
        cfg.fsync,
        role="emulator",
        timeouts=cfg.listener.timeouts,
    )


def stowrsd_process(
    reactor: Any,
    endpoint: IStreamServerEndpoint,
    settings: ReceiverSettings,
    directory: Path,
    *,
    bind: str,
    layout: str = "uid",
    fsync: bool = True,
    timeouts: ClientTimeouts | None = None,
    json_log: Path | None = None,
    auth: str | None = None,
    header_workers: int = 0,
) -> ProcessService:
    """The service tree of ``twistd -n stowrsd``: the process (JSON log, start and stop
    events), ``/metrics``, and one receiver on ``endpoint`` (``bind`` and ``auth`` say
    where and how, for the ``startup`` event). Built before the reactor runs; a directory
    that cannot be prepared ends the process with one line and exit status 1."""
    escape_console()
    summary: dict[str, Any] = {
        "bind": bind,
        "layout": layout,
        "header_workers": header_workers,
        "directory": str(directory),
        "path": settings.path,
    }
    if auth is not None:
        summary["auth"] = auth
    top = ProcessService("stowrsd", summary, json_log)
    metrics = Metrics(receiver_only=True)
    MetricsService(metrics).setServiceParent(top)
    try:
        receiver = ReceiverService(
            reactor,
            endpoint,
            settings,
            directory,
            layout,
            fsync=fsync,
            timeouts=timeouts,
            metrics=metrics,
            header_workers=header_workers,
        )
    except StartupError as e:
        raise SystemExit(f"stowrsd: {e}") from None
    receiver.setServiceParent(top)
    # a listener that fails later than at once (none of TCP or TLS) still stops stowrsd
    receiver.listening.addErrback(lambda _: reactor.callWhenRunning(reactor.stop))
    return top
