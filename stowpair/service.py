"""The whole ``twistd -n stowpair`` service: archive, queue, exporters, REST API, emulator.

:class:`StowpairService` owns the order of things: it listens, opens the stores, builds
the subsystems from the configuration, and on stop drains the queue before it closes the
stores. :func:`stowpair_process` is the tree ``twistd -n stowpair`` runs. Configuration
reloads (SIGHUP, ``POST /dcm4chee-arc/ctrl/reload``) swap web applications, exporters,
queues and rules without touching queued tasks.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import treq
from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, DeferredList, ensureDeferred, maybeDeferred, succeed
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IListeningPort, IStreamServerEndpoint
from twisted.internet.task import Cooperator
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool
from twisted.web.http_headers import Headers
from twisted.web.resource import IResource, Resource

from stowpair.api.dcm4chee import Dcm4cheeApi, Dcm4cheeArcResource
from stowpair.api.health import HealthResource
from stowpair.api.respond import ErrorResource
from stowpair.api.sync_export import sync_export
from stowpair.archive.backend import ArchiveStorage, incoming_folder
from stowpair.archive.demo import generate_demo_study
from stowpair.archive.ingest import make_ingest_resource
from stowpair.archive.rules import RuleEngine
from stowpair.auth.jwks import make_key_set
from stowpair.auth.jwt_validator import TokenValidator
from stowpair.auth.rest import RestAuthentication, warn_if_insecure
from stowpair.config.diff import changes_text, config_changes
from stowpair.config.errors import ConfigError
from stowpair.config.listen import ListenOverrides, server_endpoint
from stowpair.config.loader import load_config
from stowpair.config.model import Config, Listener
from stowpair.config.secret import SecretError
from stowpair.db.errors import DatabaseUnavailable, SchemaError
from stowpair.db.stores import Stores, open_stores
from stowpair.dicom.transcode import Transcoder
from stowpair.dicom.transfer_syntax import EXPLICIT_VR_LE
from stowpair.dimse.exporter import DicomExporter
from stowpair.dimse.service import DimseService
from stowpair.exporter.body import BodyPart, MultipartRelatedProducer
from stowpair.exporter.outcome import ExporterProvider
from stowpair.exporter.stow import StowExporter
from stowpair.logs import escape_console, register_events
from stowpair.metrics.registry import Metrics, MetricsResource, MetricsService
from stowpair.metrics.tasks import TaskGauges
from stowpair.process import OnHangup, ProcessService, StartupError
from stowpair.queue.info import index_task_info
from stowpair.queue.manager import TaskManager
from stowpair.queue.scheduler import ExportScheduler
from stowpair.queue.service import QueueService
from stowpair.receiver.service import ReceiverService, emulator_service, streaming_site
from stowpair.receiver.settings import ReceiverSettings
from stowpair.receiver.storage import INCOMING, remove_stale
from stowpair.ui.resource import ConsoleRedirect, ConsoleResource
from stowpair.web.listen import ListenError, describe, hold_until, listen

T = TypeVar("T")

register_events(
    {
        "config.reloaded": (
            "source",
            "summary",
            "changes",
            "webapps",
            "exporters",
            "queues",
            "rules",
            "keycloak_clients",
        ),
        "config.reload_refused": ("source", "errors"),
        "demo.loading": ("instances", "url"),
        "demo.loaded": ("instances", "status", "stored"),
        "demo.failed": ("error",),
        "cluster.node.started": ("device", "process", "database", "lease", "heartbeat_interval"),
    }
)

DEMO_INSTANCES = 20
DEMO_SIZE_KB = 64


class StowpairService(MultiService):
    """Every subsystem of the stowpair process, built from one :class:`Config`.

    Constructing it does the blocking preparation (archive folders created, TLS and key
    files read): twistd constructs services in ``makeService``, before the reactor runs.
    ``startService`` opens the listeners, then the stores (on their own threads), removes
    the temp files a crash left (in a thread; requests and the export queue wait for it)
    and assembles the rest without blocking.
    """

    log = Logger()

    def __init__(
        self,
        config: Config,
        reactor: Any,
        config_path: Path | None = None,
        listen: ListenOverrides | None = None,
    ) -> None:
        super().__init__()
        self.listen_overrides = listen or ListenOverrides()
        self.config = config
        self.reactor = reactor
        self.config_path = config_path if config_path is not None else config.source
        self.pool = ThreadPool(minthreads=0, maxthreads=4, name="stowpair-blocking")
        self.rest_port: IListeningPort | None = None
        self.ready: Deferred[None] = Deferred()
        self._reloading = False
        self._queue: QueueService | None = None
        # nodes sharing the storage folder keep their temp files apart
        self.node = config.device.name if config.database.url is not None else ""
        self.work_dir = prepare_folders(config, self.node)
        self._root = _RestRoot()
        # Every child of the root is behind the authentication guard ([rest.auth]).
        self.rest_auth = RestAuthentication(self._root, config, reactor)
        self.ingest_validator = ingest_validator(config, reactor)
        self._rest_endpoint = _endpoint(reactor, config.rest, "[rest] listen")
        self._emulator: ReceiverService | None = None
        if config.emulator.enabled:
            self._emulator = emulator_service(config.emulator, reactor)
            self._emulator.setServiceParent(self)
        self.dimse: DimseService | None = None
        if config.dimse.enabled:
            self.dimse = DimseService(config.dimse, _ArchiveWhenOpen(self), reactor)
            self.dimse.setServiceParent(self)

    def run_blocking(self, f: Callable[[], T]) -> Deferred[T]:
        return deferToThreadPool(self.reactor, self.pool, f)

    # -- start -----------------------------------------------------------------------

    def startService(self) -> None:
        # Listeners first: a busy port stops the process (ListenError) before any pool,
        # store or worker exists. No request is read before the reactor runs.
        listening = self._bind_listeners()
        self.pool.start()
        self.rest_auth.start()
        self.stores: Stores = open_stores(self.config, self.reactor)  # on their threads
        # Only now that the listeners are open: a second process on a busy port never
        # deletes the first one's temp files. Requests wait for it (see _start).
        self._stale = self.run_blocking(lambda: remove_stale_files(self.config, self.node))
        self._assemble()
        super().startService()
        self._log_config("Configuration loaded from {source}")
        Deferred.fromCoroutine(self._start(listening)).addCallbacks(
            self.ready.callback, self._start_failed
        )

    def _assemble(self) -> None:
        """The subsystems on the opened stores; constructors only, nothing blocks."""
        cfg = self.config
        self.index = self.stores.index
        self.archive = ArchiveStorage(
            cfg.archive.storage, self.index, self.reactor, self.run_blocking, node=self.node
        )
        self.transcoder = Transcoder(self.reactor)
        self.transcoder.start()
        self.exporter = StowExporter(
            self.reactor,
            self.index,
            cfg.webapps,
            self.transcoder,
            self.work_dir,
            keycloak_clients=cfg.keycloak_clients,
        )
        self.dicom_exporter = DicomExporter(
            self.reactor, self.index, cfg.remote_aes, self.transcoder, self.work_dir
        )
        self.tasks = self.stores.tasks
        providers: dict[str, ExporterProvider] = {
            "stow": self.exporter,
            "stowrs": self.exporter,
            "dicom": self.dicom_exporter,
        }
        self.scheduler = ExportScheduler(
            cfg,
            self.tasks,
            providers,
            self.reactor,
            task_info=index_task_info(self.index),
            process=process_name(),
        )
        self.rules = RuleEngine(
            cfg, self.tasks, self.scheduler.kick, self.reactor, self.scheduler.wake_at
        )
        self.archive.add_listener(self.rules.on_instance_received)
        self.manager = TaskManager(self.tasks, self.scheduler, self.reactor)
        self.api = Dcm4cheeApi(
            cfg,
            self.manager,
            sync_export=self._sync_export,
            ingest_resource_for=self._ingest_for,
            reload=self.reload,
            index=self.index,
            loaded_time=self.reactor.seconds(),
        )
        self._ingest: dict[str, IResource] = {}
        self._root.putChild(b"health", HealthResource())
        self._root.putChild(b"dcm4chee-arc", Dcm4cheeArcResource(self.api))
        self._root.putChild(b"ui", ConsoleResource())
        self._root.putChild(b"", ConsoleRedirect())
        self.api.emulator = self._emulator
        self.metrics = Metrics()
        self.task_gauges = TaskGauges(
            self.tasks, self.reactor, lambda: self.config.device.name, lambda: self.config.queues
        )
        self._root.putChild(b"metrics", MetricsResource(self.metrics))

    def _start_queue(self) -> None:
        """The scheduler starts once stale export files are removed (it writes there)."""
        self._queue = QueueService(self.tasks, self.scheduler)
        self._queue.setServiceParent(self)
        # After the queue: stopped before it, so no gauge query outlives the store.
        MetricsService(self.metrics, self.task_gauges).setServiceParent(self)

    def _bind_listeners(self) -> Deferred[IListeningPort]:
        """REST API, emulator, DICOM: opened before any pool, store or worker exists, so a
        busy port stops the process (ListenError) cleanly. No request is read before the
        reactor runs; DICOM stores reach the archive through the reactor too."""
        cfg = self.config
        site = streaming_site(self.rest_auth.guard, cfg.rest.timeouts, "json", self.reactor)
        listening = listen(self._rest_endpoint, site, "the REST API")
        opened: list[IListeningPort] = []

        def bound(port: IListeningPort) -> IListeningPort:
            opened.append(port)
            return port

        listening.addCallback(bound)
        try:
            if self._emulator is not None:
                self._emulator.bind()
                self._emulator.listening.addCallback(bound)
            if self.dimse is not None:
                try:
                    self.dimse.listen()
                except CannotListenError as e:
                    raise ListenError(describe(e, "the DICOM listener")) from None
        except ListenError:
            for port in opened:
                port.stopListening()
            raise
        return listening

    def _log_config(self, text: str) -> None:
        cfg = self.config
        self.log.info(
            text,
            source=str(self.config_path or cfg.source),
            webapps=sorted(cfg.webapps),
            exporters=sorted(cfg.exporters),
            queues=sorted(cfg.queues),
            rules=[r.name for r in cfg.rules],
            event="config.loaded",
        )

    async def _start(self, listening: Deferred[IListeningPort]) -> None:
        port = await listening
        # The port is open (a busy one stops the process before the reactor runs), but
        # no request is read before stale temp files are removed and the signing keys
        # are loaded.
        waits: list[Deferred[Any]] = [self._stale]
        if self.ingest_validator is not None:
            waits.append(self.ingest_validator.keys.refresh())
        waits.append(self.rest_auth.keys_loaded())  # [rest.auth] of type bearer
        keys = DeferredList(waits, consumeErrors=True)
        hold_until(port, keys)
        for problem in await self._stale or []:
            self.log.warn("archive: {problem}", role="archive", problem=problem,
                          event="storage.stale")  # fmt: skip
        if self.running:
            self._start_queue()
        await keys
        warn_if_insecure(self.config)
        self._bound(port)
        instances = await self.index.opened
        self._announce_node()
        if not instances and self.config.demo_on_empty:
            try:
                await self._load_demo()
            except Exception as e:  # the service runs on without its demo
                self.log.error("Demo study not loaded: {error}", error=str(e), event="demo.failed")

    def _bound(self, listening: IListeningPort) -> None:
        self.rest_port = listening
        address: Any = listening.getHost()
        scheme = self.config.rest.scheme
        self.log.info(
            "REST API listening on {scheme}://{host}:{port}/dcm4chee-arc",
            scheme=scheme,
            role="rest",
            host=address.host,
            port=address.port,
            url=f"{scheme}://{address.host}:{address.port}",
            event="listening",
        )

    def _announce_node(self) -> None:
        db = self.config.database
        if self.stores.database is None:
            return
        self.log.info(
            "Node {device} ({process}) joined the cluster on {database}: lease {lease:g}s,"
            " heartbeat every {heartbeat_interval:g}s",
            device=self.config.device.name,
            process=process_name(),
            database=self.stores.where,
            lease=db.lease,
            heartbeat_interval=db.heartbeat_interval,
            event="cluster.node.started",
        )

    def _start_failed(self, failure: Any) -> None:
        if failure.check(DatabaseUnavailable, SchemaError, SecretError):
            # an unreachable or too new database: one sentence, no traceback
            self.log.error(
                "stowpair could not start: {error}",
                tap="stowpair",
                error=failure.getErrorMessage(),
                event="startup.failed",
            )
        else:
            self.log.failure(
                "stowpair could not start: {error}",
                failure,
                tap="stowpair",
                error=failure.getErrorMessage(),
                event="startup.failed",
            )
        self.ready.errback(failure)
        # start-up runs before reactor.run() under twistd: stop once it runs
        self.reactor.callWhenRunning(self.reactor.stop)

    def _ingest_for(self, aet: str) -> IResource:
        if aet not in self._ingest:
            settings = ReceiverSettings(
                server_name=f"stowpair-{aet}",
                bearer_validator=self.ingest_validator,
                max_request_size=self.config.archive.max_request_bytes,
                max_request_size_option="archive.max_request_bytes",
            )
            self._ingest[aet] = make_ingest_resource(
                aet, self.archive, self.reactor, self.run_blocking, settings
            )
        return self._ingest[aet]

    def _sync_export(
        self, aet: str, study: str, series: str, sop: str, webapp: str
    ) -> Deferred[tuple[int, dict[str, Any]]]:
        return sync_export(
            self.exporter,
            aet,
            study,
            None if series == "*" else series,
            None if sop == "*" else sop,
            webapp,
        )

    # -- demo ------------------------------------------------------------------------

    async def _load_demo(self) -> None:
        """POST a generated study to our own ingest endpoint, so export rules fire."""
        folder = self.config.archive.storage.parent / "demo"
        files = await self.run_blocking(
            lambda: generate_demo_study(folder, DEMO_INSTANCES, DEMO_SIZE_KB)
        )
        address: Any = self.rest_port.getHost() if self.rest_port else None
        aet = self.config.device.ae_titles[0]
        url = (
            f"{self.config.rest.scheme}://{address.host}:{address.port}"
            f"/dcm4chee-arc/aets/{aet}/rs/studies"
        )
        self.log.info(
            "Loading a demo study of {instances} instances into {url}",
            instances=len(files),
            url=url,
            event="demo.loading",
        )
        parts = [BodyPart(p, EXPLICIT_VR_LE, p.stat().st_size) for p in files]
        producer = MultipartRelatedProducer(parts, Cooperator(scheduler=self._schedule))
        response = await treq.post(
            url,
            data=producer,
            headers=Headers(
                {
                    b"Content-Type": [producer.content_type],
                    b"Accept": [b"application/json"],
                    b"Authorization": [self.rest_auth.internal_authorization],
                }
            ),
            reactor=self.reactor,
        )
        body = await response.json()
        stored = len((body.get("00081199") or {}).get("Value") or [])
        self.log.info(
            "Demo study loaded: HTTP {status}, {stored} instances stored",
            instances=len(files),
            status=response.code,
            stored=stored,
            event="demo.loaded",
        )
        await self.run_blocking(lambda: shutil.rmtree(folder, ignore_errors=True))

    def _schedule(self, work: Callable[[], None]) -> Any:
        return self.reactor.callLater(0, work)

    # -- reload ----------------------------------------------------------------------

    def reload(self) -> Deferred[list[str]]:
        """Load the configuration file again; apply it only when it is valid."""
        return ensureDeferred(self._reload())

    async def _reload(self) -> list[str]:
        if self.config_path is None:
            return ["no configuration file to reload"]
        path = self.config_path
        try:
            new = await self.run_blocking(lambda: self.listen_overrides.apply(load_config(path)))
        except ConfigError as e:
            self.log.warn(
                "Configuration reload refused, keeping the running one: {errors}",
                source=str(path),
                errors=e.errors,
                event="config.reload_refused",
            )
            self.api.record_reload(e.errors)
            return e.errors
        auth_changed = new.rest_auth != self.config.rest_auth
        policy = await self.rest_auth.prepare(new) if auth_changed else None
        changes = self._restart_only_changes(new)
        applied = config_changes(self.config, new)
        self.config = new
        if auth_changed:
            self.rest_auth.guard.set_policy(policy)
        self.scheduler.set_config(new)
        self.rules.set_config(new)
        self.api.set_config(new)
        self.exporter.reconfigure(new.webapps, new.keycloak_clients)
        self.dicom_exporter.reconfigure(new.remote_aes)
        summary = (
            changes_text(applied)
            + ("; rest.auth changed" if auth_changed else "")
            + "".join(f"; {c}" for c in changes)
        )
        self.api.record_reload([], summary)
        self.log.info(
            "Configuration reloaded from {source}: {summary}",
            source=str(path),
            summary=summary,
            changes=changes,
            **applied,
            event="config.reloaded",
        )
        self._log_config("Configuration loaded from {source} (reload)")
        return []

    def _restart_only_changes(self, new: Config) -> list[str]:
        """Settings a reload cannot apply (listeners, stores): named, not applied."""
        old = self.config
        pairs = {
            "rest": (old.rest, new.rest),
            "emulator": (old.emulator, new.emulator),
            "archive": (old.archive, new.archive),
            "dimse": (old.dimse, new.dimse),
            "logging": (old.json_log, new.json_log),
            "ingest": (old.ingest_auth, new.ingest_auth),
        }
        return [f"{name} changed: restart to apply" for name, (a, b) in pairs.items() if a != b]

    # -- stop ------------------------------------------------------------------------

    def stopService(self) -> Deferred[None]:
        d: Deferred[Any]
        if self.rest_port is not None:
            d = Deferred.fromCoroutine(_wait(self.rest_port.stopListening()))
        else:
            d = Deferred.fromCoroutine(_wait(None))
        d.addCallback(lambda _: super(StowpairService, self).stopService())
        d.addBoth(lambda _: self._close_stores())
        return d

    def _close_stores(self) -> Deferred[None]:
        # the queue service closes the task store; stopped before the queue started,
        # this does
        first = succeed(None) if self._queue is not None else maybeDeferred(self.tasks.close)
        d = first.addBoth(lambda _: DeferredList(self._closing(), consumeErrors=True))
        d.addCallback(lambda _: self.rest_auth.stop())
        return d.addCallback(lambda _: self.pool.stop())

    def _closing(self) -> list[Deferred[Any]]:
        return [
            self.dicom_exporter.close(),
            self.transcoder.stop(),
            self.exporter.close(),
            self.stores.close(),
        ]


def stowpair_process(
    config: Config,
    reactor: Any,
    config_path: Path | None = None,
    json_log: Path | None = None,
    listen: ListenOverrides | None = None,
) -> ProcessService:
    """The service tree of ``twistd -n stowpair``: the process (JSON log, start and stop
    events), the service, and SIGHUP reloading it. Built before the reactor runs; a
    folder that cannot be prepared ends the process with one line and exit status 1."""
    escape_console()
    top = ProcessService("stowpair", config_summary(config), json_log)
    try:
        app = StowpairService(config, reactor, config_path, listen)
    except StartupError as e:
        raise SystemExit(f"stowpair: {e}") from None
    app.setServiceParent(top)
    OnHangup(app.reload, reactor).setServiceParent(top)
    return top


def config_summary(config: Config) -> dict[str, Any]:
    """The configuration in the ``startup`` event."""
    emulator, dimse = config.emulator, config.dimse
    return {
        "source": str(config.source),
        "device": config.device.name,
        "database": config.database.shown_url or str(config.archive.database),
        "rest": _shown(config.rest),
        "emulator": f"{_shown(emulator.listener)}{emulator.path}"
        if emulator.enabled
        else "disabled",
        "dimse": (
            f"{dimse.ae_title}@{dimse.listener.host}:{dimse.listener.port}"
            if dimse.enabled
            else "disabled"
        ),
        "webapps": {name: w.studies_url for name, w in config.webapps.items()},
        "remote_aes": {t: f"{a.host}:{a.port}" for t, a in config.remote_aes.items()},
        "exporters": {i: e.uri for i, e in config.exporters.items()},
        "queues": sorted(config.queues),
        "rules": [r.name for r in config.rules],
    }


def _shown(listener: Listener) -> str:
    address = f"{listener.host}:{listener.port}"
    return address if listener.scheme == "http" else f"{listener.scheme}://{address}"


def prepare_folders(config: Config, node: str = "") -> Path:
    """Create the archive's folders (blocking: before the reactor runs). Returns the
    folder of the decompressed copies made while exporting. :class:`StartupError` says
    which folder failed and why."""
    storage = config.archive.storage
    work_dir = _work_dir(config, node)
    try:
        incoming_folder(storage, node).mkdir(parents=True, exist_ok=True)
        work_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StartupError(
            f"cannot create the archive folder {e.filename}: {e.strerror}"
            " (check archive.storage and its permissions)"
        ) from None
    return work_dir


def remove_stale_files(config: Config, node: str = "") -> list[str]:
    """Delete the temp files a crash left: parts being received, copies being exported
    (blocking, for a thread). This process's own parts are kept: the DICOM listener may
    be storing already. Returns the files that could not be removed, one line each."""
    incoming = incoming_folder(config.archive.storage, node)
    _, problems = remove_stale(incoming, "*.part", keep=f"{os.getpid()}-")
    _, more = remove_stale(_work_dir(config, node), "stowpair-*.dcm")
    return problems + more


def _work_dir(config: Config, node: str) -> Path:
    work_dir = config.archive.storage / ".export"
    return work_dir / node if node else work_dir


def _endpoint(reactor: Any, listener: Listener, where: str) -> IStreamServerEndpoint:
    try:
        return server_endpoint(reactor, listener.description)
    except ValueError as e:
        raise StartupError(f"{where} {listener.description!r}: {e}") from None


def process_name() -> str:
    """This process in heartbeats and logs: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def ingest_validator(config: Config, reactor: Any) -> TokenValidator | None:
    """The ``[ingest]`` Bearer-token validator, or None when the endpoint is open."""
    auth = config.ingest_auth
    if auth is None:
        return None
    return TokenValidator(
        make_key_set(reactor, auth.jwks, auth.issuer),
        reactor,
        issuer=auth.issuer,
        audience=auth.audience,
        required_scopes=auth.required_scopes,
        leeway=auth.leeway,
        realm=f"stowpair-{config.device.name}",
    )


class _ArchiveWhenOpen:
    """The archive as the DICOM listener sees it: that listener opens before the archive
    exists (see ``_bind_listeners``); stores go through the reactor, which runs only once
    the service has started, so by then it does."""

    def __init__(self, service: StowpairService) -> None:
        self._service = service
        self.incoming = service.config.archive.storage / INCOMING

    def store(self, part_temp: Path, header: Any, ctx: Any) -> Deferred[Any]:
        return self._service.archive.store(part_temp, header, ctx)


class _RestRoot(Resource):
    """``/`` of the REST listener: its children (``/`` itself redirects to the console),
    else a JSON 404 (docs/rest-api.md). Children are put in once the service built them;
    no request is read before."""

    def getChild(self, path: bytes, request: Any) -> IResource:
        return ErrorResource(404, f"No such resource: {_shown_path(request)}")

    def render(self, request: Any) -> bytes:
        return ErrorResource(
            404, "No such resource: /; the REST API is under /dcm4chee-arc"
        ).render(request)


def _shown_path(request: Any) -> str:
    return (request.path or b"").decode("utf-8", "replace")[:200]


async def _wait(d: Any) -> None:
    if d is not None:
        await d
