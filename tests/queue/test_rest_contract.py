"""dcm4chee's REST answers, case by case: status code, body and CSV bytes.

Each row is what dcm4chee-arc-light answers for that call (ExportTaskRS, TaskManagerImpl,
ArchiveCtrl, QueryQueues, QueueManagerRS, Task.writeAsCSV); the differences we keep
on purpose are listed in docs/rest-api.md and tested elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from stowpair.api.taskjson import format_time
from stowpair.exporter.outcome import InstanceStatus, TaskStatus
from stowpair.queue.model import InstanceResult
from stowpair.queue.store import SQLiteTaskStore
from tests.queue.helpers import result_of
from tests.queue.rest_helpers import Api

S, P, F, C, R = (
    TaskStatus.SCHEDULED, TaskStatus.IN_PROCESS, TaskStatus.FAILED, TaskStatus.COMPLETED,
    TaskStatus.SCHEDULED_FOR_RETRY,
)  # fmt: skip
ANY = object()


@dataclass(frozen=True)
class Case:
    """Tasks 1..n with these statuses; the call; dcm4chee's status code and body."""

    statuses: tuple[TaskStatus, ...]
    method: str
    path: str
    code: int
    body: Any = None
    #: Statuses of tasks 1..n after the call, when it changes them.
    after: tuple[TaskStatus, ...] | None = None
    #: Tasks whose running export must have been told to stop, and why.
    stopped: dict[int, str] = field(default_factory=dict)


CASES = {
    # -- one task
    "cancel-scheduled": Case((S,), "POST", "/monitor/export/1/cancel", 204,
                             after=(TaskStatus.CANCELED,)),
    "cancel-in-process": Case((P,), "POST", "/monitor/export/1/cancel", 204,
                              after=(TaskStatus.CANCELED,), stopped={1: "user"}),
    "cancel-done": Case((C,), "POST", "/monitor/export/1/cancel", 409,
                        {"errorMessage": "Cannot cancel Task with status: COMPLETED"}),
    "cancel-unknown": Case((), "POST", "/monitor/export/9/cancel", 404,
                           {"errorMessage": "No such Task : 9"}),
    "reschedule-in-process": Case((P,), "POST", "/monitor/export/1/reschedule", 204,
                                  after=(S,), stopped={1: "rescheduled"}),
    "reschedule-done": Case((F,), "POST", "/monitor/export/1/reschedule", 204, after=(S,)),
    "reschedule-unknown-exporter": Case(
        (F,), "POST", "/monitor/export/1/reschedule/Nope", 400,
        {"errorMessage": "No Exporter configured with ID:Nope"}, after=(F,)),
    "reschedule-unknown-exporter-first": Case(
        (), "POST", "/monitor/export/9/reschedule/Nope", 400,
        {"errorMessage": "No Exporter configured with ID:Nope"}),
    "reschedule-unknown-task": Case((), "POST", "/monitor/export/9/reschedule", 404,
                                    {"errorMessage": "No such Task : 9"}),
    "delete-in-process": Case((P,), "DELETE", "/monitor/export/1", 204, stopped={1: "user"}),
    # -- by filter
    "cancel-bulk": Case((S, S, P), "POST", "/monitor/export/cancel?status=SCHEDULED", 200,
                        {"count": 2}, after=(TaskStatus.CANCELED, TaskStatus.CANCELED, P)),
    "cancel-bulk-in-process": Case((S, P), "POST", "/monitor/export/cancel?status=IN%20PROCESS",
                                   200, {"count": 1}, after=(S, TaskStatus.CANCELED),
                                   stopped={2: "user"}),
    "cancel-bulk-none": Case((C,), "POST", "/monitor/export/cancel?status=SCHEDULED", 200,
                             {"count": 0}),
    "cancel-bulk-no-status": Case(
        (S,), "POST", "/monitor/export/cancel", 400,
        {"errorMessage": "Missing query parameter: status (SCHEDULED, SCHEDULED FOR RETRY or"
                         " IN PROCESS)"}),
    "cancel-bulk-done-status": Case((C,), "POST", "/monitor/export/cancel?status=COMPLETED",
                                    400, {"errorMessage": "Cannot cancel tasks with status:"
                                                          " COMPLETED"}),
    "reschedule-bulk-in-process": Case(
        (P, F, C), "POST", "/monitor/export/reschedule?status=IN%20PROCESS", 200, {"count": 1},
        after=(S, F, C), stopped={1: "rescheduled"}),
    "reschedule-bulk-all": Case((P, F, R), "POST", "/monitor/export/reschedule", 200,
                                {"count": 3}, after=(S, S, S), stopped={1: "rescheduled"}),
    "reschedule-bulk-unknown-exporter": Case(
        (F,), "POST", "/monitor/export/reschedule/Nope", 400,
        {"errorMessage": "No Exporter configured with ID:Nope"}, after=(F,)),
    "delete-bulk": Case((C, C, F), "DELETE", "/monitor/export?status=COMPLETED", 200,
                        {"count": 2}),
    # -- control and queues
    "reload": Case((), "POST", "/ctrl/reload", 204),
    "status": Case((), "GET", "/ctrl/status", 200, {"status": "STARTED"}),
    "queues": Case((), "GET", "/queue", 200, [{"name": "Export1"}]),
    "queues-with-exporters": Case((), "GET", "/queue?includeExporters=true", 200,
                                  [{"name": "Export1", "exporterIDs": ["StowExporter", "Other"]}]),
    "queue-tasks": Case((S, C), "GET", "/queue/Export1?status=COMPLETED", 200, ANY),
    "queue-count": Case((S, C), "GET", "/queue/Export1/count", 200, {"count": 2}),
    "queue-cancel": Case((S, C), "POST", "/queue/Export1/cancel?status=SCHEDULED", 200,
                         {"count": 1}, after=(TaskStatus.CANCELED, C)),
    "queue-reschedule-one": Case((F,), "POST", "/queue/Export1/1/reschedule", 204, after=(S,)),
    "queue-delete-one": Case((C,), "DELETE", "/queue/Export1/1", 204),
}  # fmt: skip


def _tasks(api: Api, statuses: tuple[TaskStatus, ...]) -> None:
    for n, status in enumerate(statuses, 1):
        assert api.export(f"studies/1.{n}").json()["taskID"] == n
        result_of(api.store.update(n, {"status": status}))
    api.clock.advance(1)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_answers_as_dcm4chee(case: Case) -> None:
    """When the call is made on these tasks, the answer and the tasks are dcm4chee's."""
    api = Api()
    _tasks(api, case.statuses)
    r = api.call(case.method, case.path)
    assert r.code == case.code, r.body
    if case.body is None:
        assert r.body == b""
    elif case.body is not ANY:
        assert r.json() == case.body
    if case.after is not None:
        statuses = tuple(result_of(api.store.get(n)).status for n in range(1, len(case.after) + 1))
        assert statuses == case.after
    assert dict(zip(api.scheduler.cancelled, api.scheduler.reasons, strict=True)) == case.stopped


def test_queue_view_shows_only_that_queue() -> None:
    """When a queue's tasks are listed, each is the Task JSON and only that queue's."""
    api = Api()
    _tasks(api, (S, C))
    tasks = api.call("GET", "/queue/Export1?status=COMPLETED").json()
    assert [(t["taskID"], t["queue"], t["status"]) for t in tasks] == [(2, "Export1", "COMPLETED")]


@pytest.mark.parametrize(
    ("path", "code"),
    [("/queue/Nope", 404), ("/queue/Export1/batch", 405),
     ("/queue/Export1/1/reschedule/Other", 404)],
    ids=["unknown-queue", "no-batch", "no-new-exporter"],
)  # fmt: skip
def test_queue_view_limits(path: str, code: int) -> None:
    """When a queue is unknown, or a /monitor/export-only route is asked of a queue, there
    is no such route (batch reads as a task ID, which only DELETE takes)."""
    api = Api()
    _tasks(api, (S,))
    method = "GET" if path.endswith(("Nope", "batch")) else "POST"
    assert api.call(method, path).code == code


def test_reload_refused_is_409_with_the_errors() -> None:
    """When the new configuration is invalid, reload answers 409 (dcm4chee's answer to a
    configuration failure) naming the first error and listing all."""
    api = Api()
    api.reload_errors = ['conf/stowpair.toml:3: queue "X": bad', "conf/stowpair.toml:9: worse"]
    r = api.call("POST", "/ctrl/reload")
    assert (r.code, r.json()) == (409, {
        "errorMessage": 'The new configuration is invalid; the running one stays:'
                        ' conf/stowpair.toml:3: queue "X": bad (and 1 more)',
        "errors": api.reload_errors,
    })  # fmt: skip


class _RacingStore(SQLiteTaskStore):
    """Tasks in ``finish`` end COMPLETED just before an update tries to change them."""

    finish: set[int] = set()

    def update(self, task_id: int, changes: Any, only_if: Any = None, **kw: Any) -> Any:
        if task_id in self.finish:
            self.finish.discard(task_id)
            result_of(super().update(task_id, {"status": C}))
        return super().update(task_id, changes, only_if, **kw)


@pytest.mark.parametrize(
    ("racing", "code", "body"),
    [({2}, 202, {"count": 1, "failed": 1}), ({1, 2}, 409, {"failed": 2})],
    ids=["some-failed", "all-failed"],
)
def test_bulk_cancel_counts_failures(racing: set[int], code: int, body: object) -> None:
    """When running tasks finish while a bulk cancel reaches them, dcm4chee's 202
    {"count","failed"} or 409 {"failed"} comes back."""
    api = Api()
    store = _RacingStore(":memory:", api.clock)
    api.store = api.manager.store = store
    _tasks(api, (P, P))
    store.finish = set(racing)
    r = api.call("POST", "/monitor/export/cancel?status=IN%20PROCESS")
    assert (r.code, r.json()) == (code, body)


def test_csv_bytes_are_dcm4chee_s() -> None:
    """When tasks are listed as CSV, every present value is quoted, absent ones are empty,
    Series/SOP are empty for *, failures empty for 0, lines end CRLF (commons-csv
    RFC 4180, QuoteMode.ALL, as Task.writeAsCSV)."""
    api = Api()
    api.export("studies/1.1", query="?batchID=b%22q")
    api.export("studies/1.2/series/1.2.3")
    changes = {"status": F, "failures": 2, "modalities": ("CT", "MR"),
               "number_of_instances": 3, "outcome_message": 'a "b", c'}  # fmt: skip
    result_of(api.store.update(1, changes))
    tasks = [result_of(api.store.get(n)) for n in (2, 1)]
    r = api.call("GET", "/monitor/export", headers={"Accept": ["text/csv"]})
    header = (
        '"taskID","createdTime","updatedTime","ExporterID","LocalAET","StudyInstanceUID",'
        '"SeriesInstanceUID","SOPInstanceUID","NumberOfInstances","Modality","batchID",'
        '"dicomDeviceName","scheduledTime","status","queue","failures","processingStartTime",'
        '"processingEndTime","errorMessage","outcomeMessage"\r\n'
    )
    t2, t1 = ([format_time(t.created_time), format_time(t.updated_time),
               format_time(t.scheduled_time)] for t in tasks)  # fmt: skip
    row2 = (
        f'"2","{t2[0]}","{t2[1]}","StowExporter","STOWPAIR","1.2","1.2.3",,,,,"stowpair",'
        f'"{t2[2]}","SCHEDULED","Export1",,,,,\r\n'
    )
    row1 = (
        f'"1","{t1[0]}","{t1[1]}","StowExporter","STOWPAIR","1.1",,,"3","CT\\MR","b""q",'
        f'"stowpair","{t1[2]}","FAILED","Export1","2",,,,"a ""b"", c"\r\n'
    )
    assert r.body.decode() == header + row2 + row1


def test_one_task_with_progress_and_instances() -> None:
    """When one task is asked for (our addition), it comes with progress sent/total from
    the stored per-instance results, and the results themselves."""
    api = Api()
    _tasks(api, (P,))
    result_of(api.store.update(1, {"number_of_instances": 3, "failures": 1}))
    rows = [
        InstanceResult(1, 1, "9.1", "9", "1.2.840.10008.5.1.4.1.1.2", InstanceStatus.COMPLETED,
                       http_status=200, bytes_sent=10, elapsed=0.01),
        InstanceResult(1, 1, "9.2", "9", "1.2.840.10008.5.1.4.1.1.2", InstanceStatus.FAILED,
                       "HTTP 503", None, 503),
        InstanceResult(1, 2, "9.2", "9", "1.2.840.10008.5.1.4.1.1.2", InstanceStatus.FAILED,
                       "refused", 0xA900, 409),
    ]  # fmt: skip
    result_of(api.store.finish(1, rows, {}, (P,)))
    body = api.call("GET", "/monitor/export/1").json()
    assert body["taskID"] == 1 and body["status"] == "IN PROCESS"
    assert body["progress"] == {"sent": 2, "total": 3, "delivered": 1, "failed": 1}
    assert body["instances"][0] == {
        "attempt": 1, "SOPInstanceUID": "9.1", "SeriesInstanceUID": "9",
        "SOPClassUID": "1.2.840.10008.5.1.4.1.1.2", "status": "COMPLETED", "httpStatus": 200,
        "bytes": 10, "elapsed": 0.01,
    }  # fmt: skip
    assert body["instances"][2]["FailureReason"] == 0xA900
    assert api.call("GET", "/monitor/export/9").code == 404
