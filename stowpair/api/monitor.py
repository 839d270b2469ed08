"""``/dcm4chee-arc/monitor/export``: list, count, cancel, reschedule, delete, batch.

Routes, filters, status strings and answers follow dcm4chee's ExportTaskRS and
ExportBatchRS (reference §5.2).
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
    BadParameter,
    is_number,
    negotiate,
    parse_scheduled_time,
    parse_status,
    single,
    task_filter,
)
from stowpair.api.respond import Answer, error_answer, json_answer, render_async, write
from stowpair.api.taskjson import batch_json, task_json, tasks_csv
from stowpair.config.model import Exporter
from stowpair.exporter.outcome import TaskStatus
from stowpair.queue.manager import Result

if TYPE_CHECKING:
    from stowpair.api.dcm4chee import Dcm4cheeApi

Handler = Callable[[Request], Coroutine[Any, Any, Answer]]
NO_CONTENT = Answer(204)


class MonitorExportResource(Resource):
    """The ``/monitor/export`` subtree as one leaf that routes on the remaining path."""

    isLeaf = True

    def __init__(self, api: Dcm4cheeApi) -> None:
        super().__init__()
        self.api = api

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
        match path:
            case []:
                return {"GET": self.list, "DELETE": self.delete_matching}
            case ["count"]:
                return {"GET": self.count}
            case ["batch"]:
                return {"GET": self.batch}
            case ["cancel"]:
                return {"POST": self.cancel_matching}
            case ["reschedule"] | ["reschedule", _]:
                new = path[1] if len(path) == 2 else None
                return {"POST": lambda r: self.reschedule_matching(r, new)}
            case [task]:
                return {"DELETE": lambda r: self.delete(r, task)}
            case [task, "cancel"]:
                return {"POST": lambda r: self.cancel(r, task)}
            case [task, "reschedule"] | [task, "reschedule", _]:
                new = path[2] if len(path) == 3 else None
                return {"POST": lambda r: self.reschedule(r, task, new)}
        return None

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
        tasks = await self.api.manager.store.find(task_filter(request.args))
        if fmt[0] == "csv":
            body = tasks_csv(tasks, fmt[1]).encode()
            return Answer(200, body, "text/csv; charset=UTF-8")
        return json_answer(200, [task_json(t) for t in tasks])

    async def count(self, request: Request) -> Answer:
        flt = replace(task_filter(request.args), offset=0, limit=None)
        return json_answer(200, {"count": await self.api.manager.store.count(flt)})

    async def batch(self, request: Request) -> Answer:
        batches = await self.api.manager.store.batches(task_filter(request.args))
        return json_answer(200, [batch_json(b) for b in batches])

    # -- one task ----------------------------------------------------------------------

    async def cancel(self, request: Request, task: str) -> Answer:
        task_id = _task_id(task)
        result = await self.api.manager.cancel(task_id)
        if result == Result.OK:
            return NO_CONTENT
        if result == Result.NOT_FOUND:
            raise _no_such_task(task)
        found = await self.api.manager.store.get(task_id)
        status = found.status.value if found else "unknown"
        raise ApiError(409, f"Cannot cancel Task[id={task_id}] with Status: {status}")

    async def reschedule(self, request: Request, task: str, new_exporter: str | None) -> Answer:
        task_id = _task_id(task)
        exporter = self._exporter(new_exporter)
        when = parse_scheduled_time(request.args)
        device = single(request.args, "newDeviceName") or None
        result = await self.api.manager.reschedule(task_id, exporter, when, device)
        if result == Result.NOT_FOUND:
            raise _no_such_task(task)
        if result == Result.IN_PROCESS:
            raise ApiError(
                409,
                f"Cannot reschedule Task[id={task_id}] with Status: IN PROCESS;"
                " cancel it first (POST .../cancel)",
            )
        return NO_CONTENT

    async def delete(self, request: Request, task: str) -> Answer:
        if not await self.api.manager.delete(_task_id(task)):
            raise _no_such_task(task)
        return NO_CONTENT

    # -- by filter ---------------------------------------------------------------------

    async def cancel_matching(self, request: Request) -> Answer:
        status = single(request.args, "status")
        if not status:
            raise BadParameter(
                "status", "", "required: SCHEDULED, SCHEDULED FOR RETRY or IN PROCESS"
            )
        if parse_status(status).done:
            raise BadParameter(
                "status", status, "only SCHEDULED, SCHEDULED FOR RETRY or IN PROCESS tasks can"
                " be cancelled",
            )  # fmt: skip
        count = await self.api.manager.cancel_matching(task_filter(request.args))
        return json_answer(200, {"count": count})

    async def reschedule_matching(self, request: Request, new_exporter: str | None) -> Answer:
        flt = task_filter(request.args)
        if TaskStatus.IN_PROCESS in flt.statuses:
            raise BadParameter("status", "IN PROCESS", "running tasks cannot be rescheduled;"
                                                       " cancel them first")  # fmt: skip
        exporter = self._exporter(new_exporter)
        when = parse_scheduled_time(request.args)
        device = single(request.args, "newDeviceName") or None
        count = await self.api.manager.reschedule_matching(flt, exporter, when, device)
        return json_answer(200, {"count": count})

    async def delete_matching(self, request: Request) -> Answer:
        count = await self.api.manager.delete_matching(task_filter(request.args))
        return json_answer(200, {"count": count})

    def _exporter(self, exporter_id: str | None) -> Exporter | None:
        if exporter_id is None:
            return None
        exporter = self.api.config.exporters.get(exporter_id)
        if exporter is None:
            raise ApiError(404, f"No such Exporter: {exporter_id}")
        return exporter


def _task_id(text: str) -> int:
    if not is_number(text) or int(text) > MAX_TASK_ID:
        raise _no_such_task(text)
    return int(text)


def _no_such_task(text: str) -> ApiError:
    return ApiError(404, f"No such Task : {text}")
