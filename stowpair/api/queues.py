"""``/queue``, ``/queue/{queueName}`` and ``/ctrl/status`` (dcm4chee's QueryQueues,
QueueManagerRS and ArchiveCtrl).

``GET /queue`` lists the configured queues by name, ``[{"name", "description"}]``, or
with ``?includeExporters=true`` only the queues that exporters use, each with its
``exporterIDs``. ``/queue/{queueName}`` offers the ``/monitor/export`` operations on one
queue's tasks. ``GET /ctrl/status`` answers ``{"status":"STARTED"}``: the REST API only
listens while the service runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.web.resource import IResource, Resource
from twisted.web.server import Request

from stowpair.api.monitor import MonitorExportResource
from stowpair.api.params import BadParameter, single
from stowpair.api.respond import Answer, ErrorResource, json_answer, render_async
from stowpair.config.model import Config

if TYPE_CHECKING:
    from stowpair.api.dcm4chee import Dcm4cheeApi


def queue_resource(api: Dcm4cheeApi, request: Request) -> IResource:
    """``/queue`` itself, or the ``/queue/{queueName}`` subtree (404 for an unknown
    queue: dcm4chee answers an empty list, which hides a mistyped name)."""
    postpath = request.postpath or []
    if not postpath or postpath == [b""]:
        return QueuesResource(api)
    name = postpath[0].decode("utf-8", "replace")
    if name not in api.config.queues:
        known = ", ".join(sorted(api.config.queues)) or "none"
        return ErrorResource(404, f"No such Queue: {name} (configured: {known})")
    assert request.prepath is not None
    request.prepath.append(postpath.pop(0))
    return MonitorExportResource(api, queue=name)


class QueuesResource(Resource):
    """``GET /queue``."""

    isLeaf = True

    def __init__(self, api: Dcm4cheeApi) -> None:
        super().__init__()
        self.api = api

    def render_GET(self, request: Request) -> int:
        return render_async(request, self._list)

    async def _list(self, request: Request) -> Answer:
        flag = single(request.args, "includeExporters")
        if flag not in (None, "true", "false"):
            raise BadParameter("includeExporters", flag, "expected true or false")
        return json_answer(200, queues_json(self.api.config, flag == "true"))


def queues_json(config: Config, include_exporters: bool = False) -> list[dict[str, Any]]:
    """The queues sorted by name; descriptions only when set (as dcm4chee writes them)."""
    users: dict[str, list[str]] = {}
    for exporter in config.exporters.values():
        users.setdefault(exporter.queue_name, []).append(exporter.exporter_id)
    entries = []
    for name in sorted(config.queues):
        if include_exporters and name not in users:
            continue
        entry: dict[str, Any] = {"name": name}
        description = config.queues[name].description
        if description:
            entry["description"] = description
        if include_exporters:
            entry["exporterIDs"] = users[name]
        entries.append(entry)
    return entries


class StatusResource(Resource):
    """``GET /ctrl/status``."""

    isLeaf = True

    def render_GET(self, request: Request) -> int:
        return render_async(request, self._status)

    async def _status(self, request: Request) -> Answer:
        return json_answer(200, {"status": "STARTED"})
