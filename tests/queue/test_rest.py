"""REST tests of the /dcm4chee-arc tree (docs/rest-api.md) over StubTreq."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime

import pytest

from stowpair.api.taskjson import CSV_COLUMNS
from stowpair.exporter.outcome import TaskStatus
from tests.queue.helpers import result_of
from tests.queue.rest_helpers import Api

DATE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}[+-]\d{4}$")


@pytest.fixture
def api() -> Api:
    return Api()


def set_status(api: Api, task_id: int, status: TaskStatus) -> None:
    result_of(api.store.update(task_id, {"status": status}))


# -- export trigger -----------------------------------------------------------------------


def test_export_study_answers_202_with_task_json(api: Api) -> None:
    """When a study export is requested, the answer is 202 with dcm4chee's Task JSON."""
    r = api.export()
    assert r.code == 202
    task = r.json()
    assert {k: task[k] for k in ("taskID", "type", "status", "ExporterID", "LocalAET",
                                 "StudyInstanceUID", "queue", "dicomDeviceName")} == {
        "taskID": 1, "type": "EXPORT", "status": "SCHEDULED", "ExporterID": "StowExporter",
        "LocalAET": "STOWPAIR", "StudyInstanceUID": "1.2.3", "queue": "Export1",
        "dicomDeviceName": "stowpair",
    }  # fmt: skip
    assert "SeriesInstanceUID" not in task and "failures" not in task
    assert DATE.match(task["createdTime"]) and DATE.match(task["scheduledTime"])
    assert task["RequestURI"].endswith("/export/StowExporter")
    assert api.scheduler.kicks == 1


@pytest.mark.parametrize(
    ("entity", "series", "sop"),
    [
        ("studies/1.2.3/series/1.2.3.4", "1.2.3.4", None),
        ("studies/1.2.3/series/1.2.3.4/instances/1.2.3.4.5", "1.2.3.4", "1.2.3.4.5"),
    ],
    ids=["series", "instance"],
)
def test_export_series_and_instance(api: Api, entity: str, series: str, sop: str | None) -> None:
    """When a series or instance export is requested, the task carries its UIDs."""
    task = api.export(entity).json()
    assert task["SeriesInstanceUID"] == series
    assert task.get("SOPInstanceUID") == sop


def test_scheduled_time_is_24_hour_and_not_kicked(api: Api) -> None:
    """When scheduledTime is 20151008123000, the task is scheduled at 12:30, not 00:30."""
    r = api.export(query="?scheduledTime=20151008123000&batchID=b1")
    task = r.json()
    assert task["scheduledTime"].startswith("2015-10-08T12:30:00.000")
    assert task["batchID"] == "b1"
    assert api.scheduler.kicks == 0


@pytest.mark.parametrize("value", ["2015100812300", "20151308123000", "tomorrow"])
def test_bad_scheduled_time_is_400(api: Api, value: str) -> None:
    """When scheduledTime is not yyyyMMddHHmmss, the answer is 400 naming it."""
    r = api.export(query=f"?scheduledTime={value}")
    assert r.code == 400
    assert "scheduledTime" in r.json()["errorMessage"]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/aets/NOPE/rs/studies/1.2.3/export/StowExporter", "No such Application Entity: NOPE"),
        ("/aets/STOWPAIR/rs/studies/1.2.3/export/Nope", "No such Exporter: Nope"),
    ],
    ids=["ae", "exporter"],
)
def test_unknown_ae_or_exporter_is_404(api: Api, path: str, message: str) -> None:
    """When the AE title or the exporter is unknown, the answer is 404 with errorMessage."""
    r = api.call("POST", path)
    assert (r.code, r.json()) == (404, {"errorMessage": message})


def test_stowrs_exporter_id_exports_synchronously(api: Api) -> None:
    """When the ExporterID is stowrs:{WebApp}, the injected sync export answers."""
    r = api.export("studies/1.2.3/series/1.2.3.4", "stowrs:stowrsd")
    assert (r.code, r.json()) == (206, {"completed": 1, "failed": 1})
    assert api.sync_calls == [("STOWPAIR", "1.2.3", "1.2.3.4", "*", "stowrsd")]


def test_stowrs_without_sync_export_is_404(api: Api) -> None:
    """When no synchronous exporter is wired, stowrs: is a 404 saying so."""
    api.api.sync_export = None
    assert api.export(exporter="stowrs:stowrsd").code == 404


@pytest.mark.parametrize("path", ["studies", "studies/1.2.3"])
def test_other_rs_paths_go_to_ingest(api: Api, path: str) -> None:
    """When a POST under /aets/{AET}/rs is not an export, the AE's ingest resource gets it."""
    r = api.call("POST", f"/aets/STOWPAIR/rs/{path}")
    assert r.json() == {"ingest": "STOWPAIR", "path": path}


def test_ingest_for_unknown_ae_is_404(api: Api) -> None:
    """When STOW-RS ingest names an unknown AE, the answer is 404 JSON."""
    r = api.call("POST", "/aets/NOPE/rs/studies")
    assert r.code == 404 and "NOPE" in r.json()["errorMessage"]


# -- monitor: list, filters, CSV ------------------------------------------------------------


def three_tasks(api: Api) -> list[int]:
    ids = [api.export(f"studies/1.{n}", query="?batchID=b").json()["taskID"] for n in (1, 2)]
    api.clock.advance(10)
    ids.append(api.export("studies/1.3", "Other").json()["taskID"])
    return ids


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", [3, 2, 1]),
        ("?orderby=createdTime", [1, 2, 3]),
        ("?orderby=%2BcreatedTime", [1, 2, 3]),
        ("?orderby=-scheduledTime&limit=1", [3]),
        ("?offset=1&limit=1", [2]),
        ("?ExporterID=Other", [3]),
        ("?ExporterID=Other,StowExporter&orderby=createdTime", [1, 2, 3]),
        ("?ExporterID=Other&ExporterID=StowExporter&limit=2", [3, 2]),
        ("?StudyInstanceUID=1.2", [2]),
        ("?batchID=b", [2, 1]),
        ("?taskID=2", [2]),
        ("?status=SCHEDULED&dicomDeviceName=stowpair", [3, 2, 1]),
        ("?status=COMPLETED", []),
        ("?createdTime=20151008100005-", [3]),
        ("?createdTime=-20151008100005", [2, 1]),
        ("?updatedTime=20151008", [3, 2, 1]),
    ],
)
def test_list_filters(api: Api, query: str, expected: list[int]) -> None:
    """When /monitor/export is filtered, ordered and paged, the right tasks come back."""
    three_tasks(api)
    r = api.call("GET", "/monitor/export" + query)
    assert r.code == 200
    assert [t["taskID"] for t in r.json()] == expected


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("?status=DONE", "status"),
        ("?orderby=size", "orderby"),
        ("?limit=0", "limit"),
        ("?limit=100000", "limit"),
        ("?offset=-1", "offset"),
        ("?taskID=x", "taskID"),
        ("?createdTime=2015-10", "createdTime"),
        ("?updatedTime=yesterday", "updatedTime"),
    ],
)
def test_bad_filter_is_400_naming_it(api: Api, query: str, name: str) -> None:
    """When a filter value is invalid, the answer is 400 naming the parameter."""
    r = api.call("GET", "/monitor/export" + query)
    assert r.code == 400
    assert f"{name}=" in r.json()["errorMessage"]


def test_status_with_spaces_and_underscores(api: Api) -> None:
    """When status is 'SCHEDULED FOR RETRY' or SCHEDULED_FOR_RETRY, both filter the same."""
    ids = three_tasks(api)
    set_status(api, ids[0], TaskStatus.SCHEDULED_FOR_RETRY)
    for value in ("SCHEDULED%20FOR%20RETRY", "SCHEDULED_FOR_RETRY"):
        assert [t["taskID"] for t in api.call("GET", f"/monitor/export?status={value}").json()] == [
            ids[0]
        ]


@pytest.mark.parametrize(
    ("how", "delimiter"),
    [
        ({"headers": {"Accept": ["text/csv"]}}, ","),
        ({"params": {"accept": "text/csv;delimiter=semicolon"}}, ";"),
    ],
    ids=["header", "query-semicolon"],
)
def test_list_as_csv(api: Api, how: dict[str, object], delimiter: str) -> None:
    """When CSV is asked for, the columns are dcm4chee's and each task is a row."""
    three_tasks(api)
    r = api.call("GET", "/monitor/export", **how)
    assert r.code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.body.decode()), delimiter=delimiter))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [row[0] for row in rows[1:]] == ["3", "2", "1"]
    assert rows[1][CSV_COLUMNS.index("ExporterID")] == "Other"


def test_unacceptable_accept_is_406(api: Api) -> None:
    """When neither JSON nor CSV is acceptable, the answer is 406."""
    r = api.call("GET", "/monitor/export", headers={"Accept": ["image/png"]})
    assert r.code == 406


def test_count(api: Api) -> None:
    """When counting with a filter, /count answers {"count": N} ignoring paging."""
    three_tasks(api)
    r = api.call("GET", "/monitor/export/count?ExporterID=StowExporter&limit=1")
    assert r.json() == {"count": 2}


# -- cancel ---------------------------------------------------------------------------------


def test_cancel_scheduled_task(api: Api) -> None:
    """When a SCHEDULED task is cancelled, the answer is 204 and it is CANCELED."""
    task_id = api.export().json()["taskID"]
    assert api.call("POST", f"/monitor/export/{task_id}/cancel").code == 204
    assert result_of(api.store.get(task_id)).status == TaskStatus.CANCELED


def test_cancel_in_process_task_signals_the_scheduler(api: Api) -> None:
    """When an IN PROCESS task is cancelled, the scheduler is told to stop it."""
    task_id = api.export().json()["taskID"]
    set_status(api, task_id, TaskStatus.IN_PROCESS)
    assert api.call("POST", f"/monitor/export/{task_id}/cancel").code == 204
    assert api.scheduler.cancelled == [task_id]


def test_cancel_by_filter(api: Api) -> None:
    """When cancelling SCHEDULED tasks of one exporter, only those are CANCELED."""
    three_tasks(api)
    r = api.call("POST", "/monitor/export/cancel?status=SCHEDULED&ExporterID=StowExporter")
    assert r.json() == {"count": 2}
    statuses = [t["status"] for t in api.call("GET", "/monitor/export").json()]
    assert statuses == ["SCHEDULED", "CANCELED", "CANCELED"]


# -- reschedule -----------------------------------------------------------------------------


def test_reschedule_resets_the_task(api: Api) -> None:
    """When a FAILED task is rescheduled, it is SCHEDULED with failures and messages cleared."""
    task_id = api.export().json()["taskID"]
    result_of(api.store.update(task_id, {"status": TaskStatus.FAILED, "failures": 11,
                                          "error_message": "down"}))  # fmt: skip
    kicks = api.scheduler.kicks
    assert api.call("POST", f"/monitor/export/{task_id}/reschedule").code == 204
    task = result_of(api.store.get(task_id))
    assert (task.status, task.failures, task.error_message) == (TaskStatus.SCHEDULED, 0, None)
    assert api.scheduler.kicks == kicks + 1


def test_reschedule_to_new_exporter_at_time(api: Api) -> None:
    """When rescheduled to another exporter with scheduledTime, both change."""
    task_id = api.export().json()["taskID"]
    r = api.call("POST", f"/monitor/export/{task_id}/reschedule/Other?scheduledTime=20151009183000")
    assert r.code == 204
    task = result_of(api.store.get(task_id))
    assert (task.exporter_id, task.local_aet) == ("Other", "OTHER")
    assert task.scheduled_time == datetime(2015, 10, 9, 18, 30).timestamp()


@pytest.mark.parametrize(
    ("path", "code"),
    [("/monitor/export/9/reschedule", 404), ("/monitor/export/1/reschedule/Nope", 400),
     ("/monitor/export/1/reschedule?scheduledTime=x", 400)],
    ids=["task", "exporter", "time"],
)  # fmt: skip
def test_reschedule_errors(api: Api, path: str, code: int) -> None:
    """When the task or new exporter is unknown, or the time bad, reschedule says so."""
    api.export()
    assert api.call("POST", path).code == code


def test_reschedule_by_filter(api: Api) -> None:
    """When rescheduling by filter, matching tasks are counted and reset, running ones
    included (their exports are told to stop), as dcm4chee does."""
    ids = three_tasks(api)
    set_status(api, ids[0], TaskStatus.FAILED)
    set_status(api, ids[1], TaskStatus.IN_PROCESS)
    api.clock.advance(1)
    r = api.call("POST", "/monitor/export/reschedule?ExporterID=StowExporter")
    assert r.json() == {"count": 2}
    assert result_of(api.store.get(ids[0])).status == TaskStatus.SCHEDULED
    assert result_of(api.store.get(ids[1])).status == TaskStatus.SCHEDULED
    assert api.scheduler.cancelled == [ids[1]]


# -- delete, batch, reload, methods -----------------------------------------------------------


def test_delete_one_and_unknown(api: Api) -> None:
    """When a task is deleted it is gone (204); deleting it again is 404."""
    task_id = api.export().json()["taskID"]
    assert api.call("DELETE", f"/monitor/export/{task_id}").code == 204
    assert api.call("DELETE", f"/monitor/export/{task_id}").code == 404


def test_delete_by_filter(api: Api) -> None:
    """When deleting by filter, the count of deleted tasks comes back."""
    three_tasks(api)
    assert api.call("DELETE", "/monitor/export?batchID=b").json() == {"count": 2}
    assert api.call("GET", "/monitor/export/count").json() == {"count": 1}


def test_batch_summary(api: Api) -> None:
    """When tasks share a batchID, /batch summarises them with dcm4chee's keys."""
    ids = three_tasks(api)
    set_status(api, ids[0], TaskStatus.COMPLETED)
    (batch,) = api.call("GET", "/monitor/export/batch").json()
    assert batch["batchID"] == "b"
    assert batch["tasks"] == {"completed": 1, "scheduled": 1}
    assert batch["ExporterID"] == ["StowExporter"] and batch["dicomDeviceName"] == ["stowpair"]
    assert all(DATE.match(t) for t in batch["createdTimeRange"])
    assert "processingStartTimeRange" not in batch


def test_wrong_method_is_405_with_allow(api: Api) -> None:
    """When a monitor route gets the wrong method, the answer is 405 with Allow."""
    r = api.call("GET", "/monitor/export/cancel")
    assert (r.code, r.headers["allow"]) == (405, "POST")


def test_unknown_path_is_404_json(api: Api) -> None:
    """When the path is unknown, the answer is 404 with errorMessage."""
    r = api.call("GET", "/monitor/nothing")
    assert r.code == 404 and "errorMessage" in r.json()
