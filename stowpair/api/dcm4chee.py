"""The ``/dcm4chee-arc`` REST tree (docs/rest-api.md): export triggers, monitor, reload.

Mount :class:`Dcm4cheeArcResource` as the child ``dcm4chee-arc`` of the REST root::

    /aets/{AET}/rs/studies/{uid}[/series/{uid}[/instances/{uid}]]/export/{ExporterID}
    /aets/{AET}/rs/...                  anything else: the archive's STOW-RS ingest
    /monitor/export[...]                task list, count, cancel, reschedule, delete, batch
    /queue, /queue/{queueName}[...]     queues; one queue's tasks (QueueManagerRS)
    /ctrl/reload, /ctrl/status          configuration reload; {"status":"STARTED"}
    /ctrl/config                        the running configuration, secrets masked (ours)
    /monitor/emulator                   the emulator's last requests (ours)
    GET /aets/{AET}/rs/studies          QIDO-RS study search; /rs/{level}/count

``ingest_resource_for(aet)`` returns the resource mounted at ``/aets/{AET}/rs``; it
sees ``studies`` and ``studies/{uid}`` as its remaining path, like stowrsd's root at
its service path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.web.resource import IResource, Resource
from twisted.web.server import Request

from stowpair.api.config_view import ConfigResource, ReloadRecord
from stowpair.api.emulator_view import EmulatorResource
from stowpair.api.monitor import MonitorExportResource
from stowpair.api.params import ApiError, parse_scheduled_time, single
from stowpair.api.qido import Level, QidoResource, SearchMethodRefusal, StudyIndex
from stowpair.api.queues import StatusResource, queue_resource
from stowpair.api.respond import (
    Answer,
    ErrorResource,
    error_answer,
    json_answer,
    render_async,
)
from stowpair.api.taskjson import task_json
from stowpair.config.model import Config
from stowpair.dicom.uids import InvalidUID, validate_uid
from stowpair.queue import events as _events  # noqa: F401  (registers event names)
from stowpair.queue.manager import TaskManager
from stowpair.queue.model import NewTask

if TYPE_CHECKING:
    from stowpair.receiver.service import ReceiverService

#: (aet, study, series or "*", sop or "*", webapp name) -> (HTTP status, JSON body).
SyncExport = Callable[[str, str, str, str, str], Deferred[tuple[int, dict[str, Any]]]]
IngestFor = Callable[[str], IResource | None]
Reload = Callable[[], Deferred[list[str]]]


class Dcm4cheeApi:
    """What the ``/dcm4chee-arc`` resources share; ``set_config`` after a reload.

    ``index`` answers the study search, ``emulator`` (set once it is built) the emulator's
    recent requests; without them those routes answer 404 / "disabled".
    """

    def __init__(
        self,
        config: Config,
        manager: TaskManager,
        sync_export: SyncExport | None = None,
        ingest_resource_for: IngestFor | None = None,
        reload: Reload | None = None,
        index: StudyIndex | None = None,
        loaded_time: float | None = None,
    ) -> None:
        self.config = config
        self.manager = manager
        self.sync_export = sync_export
        self.ingest_resource_for = ingest_resource_for
        self.reload = reload
        self.reloading = False
        self.index = index
        self.emulator: ReceiverService | None = None
        #: When the running configuration was loaded (None: not known), and the last
        #: reload's outcome.
        self.loaded_time = loaded_time
        self.last_reload: ReloadRecord | None = None

    def set_config(self, config: Config) -> None:
        self.config = config
        self.loaded_time = self.manager.now()

    def record_reload(self, errors: list[str], summary: str = "") -> None:
        """Remember a reload's outcome: refused with ``errors``, or applied."""
        self.last_reload = ReloadRecord(self.manager.now(), tuple(errors), summary)


class Dcm4cheeArcResource(Resource):
    """``/dcm4chee-arc``."""

    def __init__(self, api: Dcm4cheeApi) -> None:
        super().__init__()
        self.api = api

    def getChild(self, path: bytes, request: Request) -> IResource:
        if path == b"aets":
            return _AetsResource(self.api)
        if path == b"queue":
            return queue_resource(self.api, request)
        if path == b"ctrl" and _postpath(request) == [b"status"]:
            return StatusResource()
        if path == b"monitor" and _postpath(request)[:1] == [b"export"]:
            _shift(request)
            return MonitorExportResource(self.api)
        if path == b"ctrl" and _postpath(request) == [b"reload"]:
            return ReloadResource(self.api)
        if path == b"ctrl" and _postpath(request) == [b"config"]:
            return ConfigResource(self.api)
        if path == b"monitor" and _postpath(request) == [b"emulator"]:
            return EmulatorResource(self.api)
        return ErrorResource(404, f"No such resource: {_shown_path(request)}")


class _AetsResource(Resource):
    def __init__(self, api: Dcm4cheeApi) -> None:
        super().__init__()
        self.api = api

    def getChild(self, path: bytes, request: Request) -> IResource:
        aet = path.decode("utf-8", "replace")
        if aet not in self.api.config.device.ae_titles:
            return ErrorResource(404, f"No such Application Entity: {aet}")
        if _postpath(request)[:1] != [b"rs"]:
            return ErrorResource(404, f"No such resource: {_shown_path(request)}")
        _shift(request)
        rest = [p.decode("utf-8", "replace") for p in _postpath(request)]
        parsed = _export_path(rest)
        if parsed is not None:
            return ExportResource(self.api, aet, *parsed)
        search = _search_path(rest)
        if search is not None and request.method in (b"GET", b"HEAD"):
            return QidoResource(self.api.index, *search)
        if search is not None and search[1]:  # a count: the search's alone
            return SearchMethodRefusal("GET, HEAD", "json")
        if search is not None and request.method not in (b"POST", b"OPTIONS"):
            return SearchMethodRefusal("GET, HEAD, OPTIONS, POST", "text")  # and STOW-RS
        ingest = self.api.ingest_resource_for(aet) if self.api.ingest_resource_for else None
        if ingest is None:
            return ErrorResource(404, f"No STOW-RS ingest service for Application Entity {aet}")
        return ingest


def _shown_path(request: Request) -> str:
    return (request.path or b"").decode("utf-8", "replace")[:200]


def _postpath(request: Request) -> list[bytes]:
    return request.postpath or []


def _shift(request: Request) -> None:
    """Consume one more path segment, as resource traversal would."""
    assert request.postpath and request.prepath is not None
    request.prepath.append(request.postpath.pop(0))


def _search_path(path: list[str]) -> tuple[Level, bool] | None:
    """(level, count) for ``studies`` and ``{studies|series|instances}/count``."""
    while path and path[-1] == "":
        path = path[:-1]
    match path:
        case ["studies"]:
            return "studies", False
        case ["studies", "count"]:
            return "studies", True
        case ["series", "count"]:
            return "series", True
        case ["instances", "count"]:
            return "instances", True
    return None


def _export_path(path: list[str]) -> tuple[str, str, str, str] | None:
    """(study, series, sop, ExporterID) from ``studies/.../export/{ExporterID}``."""
    while path and path[-1] == "":
        path = path[:-1]
    match path:
        case ["studies", study, "export", exporter]:
            return study, "*", "*", exporter
        case ["studies", study, "series", series, "export", exporter]:
            return study, series, "*", exporter
        case ["studies", study, "series", series, "instances", sop, "export", exporter]:
            return study, series, sop, exporter
    return None


class ExportResource(Resource):
    """``POST .../export/{ExporterID}``: queue a task (202) or, for ``stowrs:{WebApp}``,
    export synchronously (200/206/502, docs/dcm4chee.md, "REST API")."""

    isLeaf = True
    log = Logger()

    def __init__(
        self, api: Dcm4cheeApi, aet: str, study: str, series: str, sop: str, exporter_id: str
    ) -> None:
        super().__init__()
        self.api = api
        self.aet = aet
        self.entity = (study, series, sop)
        self.exporter_id = exporter_id

    def render_POST(self, request: Request) -> int:
        if self.exporter_id.startswith("stowrs:"):
            return render_async(request, self._sync)
        return render_async(request, self._queue, log_request=False)  # api.export.requested

    def _check_uids(self) -> None:
        """UIDs in the path follow PS3.5 §9.1 exactly, or the request is refused (400)."""
        names = ("Study Instance UID", "Series Instance UID", "SOP Instance UID")
        for value, name in zip(self.entity, names, strict=True):
            if value == "*" and name != names[0]:
                continue  # not in the path: the whole study or series
            try:
                validate_uid(value, f"the {name} in the path")
            except InvalidUID as e:
                raise ApiError(400, f"{e}; use the UID as stored, digits and dots") from None

    async def _sync(self, request: Request) -> Answer:
        self._check_uids()
        webapp = self.exporter_id.partition(":")[2]
        if self.api.sync_export is None:
            raise ApiError(404, "Synchronous STOW-RS export (stowrs:) is not available")
        code, body = await self.api.sync_export(self.aet, *self.entity, webapp)
        return json_answer(code, body)

    async def _queue(self, request: Request) -> Answer:
        self._check_uids()
        config = self.api.config
        exporter = config.exporters.get(self.exporter_id)
        if exporter is None:
            raise ApiError(404, f"No such Exporter: {self.exporter_id}")
        if exporter.queue_name not in config.queues:
            raise ApiError(
                404, f"No queue configured for Exporter {exporter.exporter_id}:"
                     f" {exporter.queue_name}",
            )  # fmt: skip
        when = parse_scheduled_time(request.args)
        study, series, sop = self.entity
        new = NewTask(
            device_name=config.device.name,
            queue_name=exporter.queue_name,
            exporter_id=exporter.exporter_id,
            local_aet=exporter.ae_title,
            study_uid=study,
            series_uid=series,
            sop_uid=sop,
            scheduled_time=self.api.manager.now() if when is None else when,
            batch_id=single(request.args, "batchID") or None,
            requester_host=getattr(request.getClientAddress(), "host", None),
            request_uri=request.uri.decode("utf-8", "replace"),
        )
        task = await self.api.manager.create(new, run_now=when is None)
        self.log.info(
            "Export of Study {study_uid} to {exporter_id} requested by REST: task {task_id}",
            aet=self.aet,
            exporter_id=exporter.exporter_id,
            study_uid=study,
            series_uid=series,
            sop_uid=sop,
            task_id=task.task_id,
            event="api.export.requested",
        )
        return json_answer(202, task_json(task))


class ReloadResource(Resource):
    """``POST /ctrl/reload``: 204 when reloaded; 409 ``{"errorMessage"}`` when the new
    configuration is invalid (it lists the errors in ``errors`` too) or while another
    reload runs, as dcm4chee's ArchiveCtrl answers a configuration failure."""

    isLeaf = True

    def __init__(self, api: Dcm4cheeApi) -> None:
        super().__init__()
        self.api = api

    def render_POST(self, request: Request) -> int:
        return render_async(request, self._reload)

    async def _reload(self, request: Request) -> Answer:
        if self.api.reload is None:
            raise ApiError(404, "Configuration reload is not available in this service")
        if self.api.reloading:
            raise ApiError(409, "A configuration reload is already running; try again")
        self.api.reloading = True
        try:
            errors = await self.api.reload()
        finally:
            self.api.reloading = False
        if errors:
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            return error_answer(
                409,
                f"The new configuration is invalid; the running one stays: {errors[0]}{more}",
                errors=list(errors),
            )
        return Answer(204)
