"""``/dcm4chee-arc/monitor/export``: list, count, cancel, reschedule, delete, batch.

Routes, filters, status strings and answers follow dcm4chee's ExportTaskRS and
ExportBatchRS; the same resource serves ``/queue/{queueName}`` (QueueManagerRS), limited
to one queue and without batches or a new exporter. ``GET /monitor/export/{taskID}``
(one task with its progress and per-instance results) is our addition.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from twisted.web.resource import Resource
from twisted.web.server import Request

from stowpair.api.params import (
    MAX_TASK_ID,
    ApiError,
    is_number,
    negotiate,
    parse_scheduled_time,
    parse_status,
    single,
    task_filter,
)
from stowpair.api.respond import Answer, error_answer, json_answer, render_async, write
from stowpair.api.taskjson import batch_json, task_detail_json, task_json, tasks_csv
from stowpair.config.model import Exporter
from stowpair.queue.manager import Bulk, Result
from stowpair.queue.model import TaskFilter

if TYPE_CHECKING:
    from stowpair.api.dcm4chee import Dcm4cheeApi

Handler = Callable[[Request], Coroutine[Any, Any, Answer]]
NO_CONTENT = Answer(204)


def bulk_answer(result: Bulk) -> Answer:
    """dcm4chee's answer to an operation by filter: 200 ``{"count"}`` when nothing
    failed, 202 ``{"count","failed"}`` when some tasks failed, 409 ``{"failed"}`` when
    no task changed and some failed."""
    if result.failed == 0:
        return json_answer(200, {"count": result.count})
    if result.count == 0:
        return json_answer(409, {"failed": result.failed})
    return json_answer(202, {"count": result.count, "failed": result.failed})


class MonitorExportResource(Resource):
    """The ``/monitor/export`` subtree as one leaf that routes on the remaining path.

    With ``queue`` it is ``/queue/{queueName}``: the tasks of that queue only.
    """

    isLeaf = True

    def __init__(self, api: Dcm4cheeApi, queue: str | None = None) -> None:
        super().__init__()
        self.api = api
        self.queue = queue

    def render(self, request: Request) -> bytes | int:
        path = [p.decode("utf-8", "replace") for p in request.postpath or [] if p]
        method = request.method.decode("ascii", "replace")
        routes = self._routes(path)
        if routes is None:
            shown = request.path.decode("utf-8", "replace")[:200]
            return write(request, error_answer(404, f"No such resource: {shown}"))
        if "GET" in routes:
            routes["HEAD"] = routes["GET"]  # headers of GET, no body (twisted.web drops it)
        handler = routes.get(method)
        if handler is None:
            allow = ", ".join(sorted(routes))
            answer = error_answer(405, f"Method {method} not allowed here (allowed: {allow})")
            return write(request, replace(answer, headers={"Allow": allow}))
        return render_async(request, handler)

    def _routes(self, path: list[str]) -> dict[str, Handler] | None:
        export = self.queue is None  # /monitor/export, not /queue/{queueName}
        match path:
            case []:
                return {"GET": self.list, "DELETE": self.delete_matching}
            case ["count"]:
                return {"GET": self.count}
            case ["batch"] if export:
                return {"GET": self.batch}
            case ["cancel"]:
                return {"POST": self.cancel_matching}
            case ["reschedule"] | ["reschedule", _] if export or len(path) == 1:
                new = path[1] if len(path) == 2 else None
                return {"POST": lambda r: self.reschedule_matching(r, new)}
            case [task]:
                routes: dict[str, Handler] = {"DELETE": lambda r: self.delete(r, task)}
                if export:
                    routes["GET"] = lambda r: self.detail(r, task)
                return routes
            case [task, "cancel"]:
                return {"POST": lambda r: self.cancel(r, task)}
            case [task, "reschedule"] | [task, "reschedule", _] if export or len(path) == 2:
                new = path[2] if len(path) == 3 else None
                return {"POST": lambda r: self.reschedule(r, task, new)}
        return None

    def _filter(self, request: Request) -> TaskFilter:
        flt = task_filter(request.args)
        return flt if self.queue is None else replace(flt, queue_names=(self.queue,))

    # -- reading -----------------------------------------------------------------------

    async def list(self, request: Request) -> Answer:
        accept = single(request.args, "accept")
        if accept is None:
            header = request.getHeader(b"accept")
            accept = header.decode("latin-1") if header else None
        fmt = negotiate(accept)
        if fmt is None:
            raise ApiError(406, f"Cannot answer with {accept!r}: accept application/json or"
                                " text/csv[;delimiter=semicolon]")  # fmt: skip
        tasks = await self.api.manager.store.find(self._filter(request))
        if fmt[0] == "csv":
            body = tasks_csv(tasks, fmt[1]).encode()
            return Answer(200, body, "text/csv; charset=UTF-8")
        return json_answer(200, [task_json(t) for t in tasks])

    async def count(self, request: Request) -> Answer:
        flt = replace(self._filter(request), offset=0, limit=None)
        return json_answer(200, {"count": await self.api.manager.store.count(flt)})

    async def batch(self, request: Request) -> Answer:
        batches = await self.api.manager.store.batches(task_filter(request.args))
        return json_answer(200, [batch_json(b) for b in batches])

    # -- one task ----------------------------------------------------------------------

    async def detail(self, request: Request, task: str) -> Answer:
        """``GET /monitor/export/{taskID}`` (our addition): the Task JSON with
        ``progress`` and the stored per-instance ``instances``."""
        task_id = _task_id(task)
        store = self.api.manager.store
        found = await store.get(task_id)
        if found is None:
            raise _no_such_task(task)
        progress = await store.progress(task_id)
        results = await store.results(task_id)
        return json_answer(200, task_detail_json(found, progress, results))

    async def cancel(self, request: Request, task: str) -> Answer:
        task_id = _task_id(task)
        if not await self._in_queue(task_id):
            raise _no_such_task(task)
        result = await self.api.manager.cancel(task_id)
        if result == Result.OK:
            return NO_CONTENT
        if result == Result.NOT_FOUND:
            raise _no_such_task(task)
        found = await self.api.manager.store.get(task_id)
        status = found.status.value if found else "unknown"
        raise ApiError(409, f"Cannot cancel Task with status: {status}")

    async def reschedule(self, request: Request, task: str, new_exporter: str | None) -> Answer:
        """204 whatever the status; a running export is cancelled and the task starts
        again (dcm4chee). An unknown new exporter is 400, checked before the task."""
        exporter = self._exporter(new_exporter)
        task_id = _task_id(task)
        when = parse_scheduled_time(request.args)
        device = single(request.args, "newDeviceName") or None
        if not await self._in_queue(task_id):
            raise _no_such_task(task)
        result = await self.api.manager.reschedule(task_id, exporter, when, device)
        if result == Result.NOT_FOUND:
            raise _no_such_task(task)
        if result == Result.IN_PROCESS:  # its status kept changing under us
            raise ApiError(409, f"Task {task_id} is changing; try again")
        return NO_CONTENT

    async def delete(self, request: Request, task: str) -> Answer:
        task_id = _task_id(task)
        if not await self._in_queue(task_id) or not await self.api.manager.delete(task_id):
            raise _no_such_task(task)
        return NO_CONTENT

    async def _in_queue(self, task_id: int) -> bool:
        """Under ``/queue/{queueName}`` a task of another queue is not found (dcm4chee)."""
        if self.queue is None:
            return True
        found = await self.api.manager.store.get(task_id)
        return found is not None and found.queue_name == self.queue

    # -- by filter ---------------------------------------------------------------------

    async def cancel_matching(self, request: Request) -> Answer:
        status = single(request.args, "status")
        if not status:  # dcm4chee's messages
            raise ApiError(
                400,
                "Missing query parameter: status (SCHEDULED, SCHEDULED FOR RETRY or IN PROCESS)",
            )
        parsed = parse_status(status)
        if parsed.done:
            raise ApiError(400, f"Cannot cancel tasks with status: {parsed.value}")
        return bulk_answer(await self.api.manager.cancel_matching(self._filter(request)))

    async def reschedule_matching(self, request: Request, new_exporter: str | None) -> Answer:
        exporter = self._exporter(new_exporter)
        flt = self._filter(request)
        when = parse_scheduled_time(request.args)
        device = single(request.args, "newDeviceName") or None
        return bulk_answer(await self.api.manager.reschedule_matching(flt, exporter, when, device))

    async def delete_matching(self, request: Request) -> Answer:
        return bulk_answer(await self.api.manager.delete_matching(self._filter(request)))

    def _exporter(self, exporter_id: str | None) -> Exporter | None:
        if exporter_id is None:
            return None
        exporter = self.api.config.exporters.get(exporter_id)
        if exporter is None:  # dcm4chee: 400, from getExporterDescriptorNotNull
            raise ApiError(400, f"No Exporter configured with ID:{exporter_id}")
        return exporter


def _task_id(text: str) -> int:
    if not is_number(text) or int(text) > MAX_TASK_ID:
        raise _no_such_task(text)
    return int(text)


def _no_such_task(text: str) -> ApiError:
    return ApiError(404, f"No such Task : {text}")
