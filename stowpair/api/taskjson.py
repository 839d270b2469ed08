"""Task, batch and CSV representations exactly as dcm4chee writes them (docs/rest-api.md).

Dates are ``yyyy-MM-dd'T'HH:mm:ss.SSSZ`` in local time; fields that are null or at
their default (failures 0, series/SOP ``*``) are left out, as ``Task.writeAsJSON`` does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from stowpair.exporter.outcome import TaskStatus
from stowpair.queue.model import BatchSummary, InstanceResult, Progress, Task

CSV_COLUMNS = (
    "taskID", "createdTime", "updatedTime", "ExporterID", "LocalAET", "StudyInstanceUID",
    "SeriesInstanceUID", "SOPInstanceUID", "NumberOfInstances", "Modality", "batchID",
    "dicomDeviceName", "scheduledTime", "status", "queue", "failures", "processingStartTime",
    "processingEndTime", "errorMessage", "outcomeMessage",
)  # fmt: skip

_BATCH_KEYS = {
    TaskStatus.SCHEDULED: "scheduled",
    TaskStatus.SCHEDULED_FOR_RETRY: "scheduled-for-retry",
    TaskStatus.IN_PROCESS: "in-process",
    TaskStatus.WARNING: "warning",
    TaskStatus.FAILED: "failed",
    TaskStatus.CANCELED: "canceled",
    TaskStatus.COMPLETED: "completed",
}


def format_time(seconds: float | None) -> str | None:
    """``2015-10-08T18:00:00.000+0200`` (Java ``yyyy-MM-dd'T'HH:mm:ss.SSSZ``)."""
    if seconds is None:
        return None
    when = datetime.fromtimestamp(seconds).astimezone()
    millis = when.microsecond // 1000
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{millis:03d}" + when.strftime("%z")


def task_json(task: Task) -> dict[str, Any]:
    """The task as dcm4chee's Task JSON, in its field order."""
    fields: list[tuple[str, Any]] = [
        ("taskID", task.task_id),
        ("dicomDeviceName", task.device_name),
        ("queue", task.queue_name),
        ("type", "EXPORT"),
        ("status", task.status.value),
        ("batchID", task.batch_id),
        ("failures", task.failures or None),
        ("createdTime", format_time(task.created_time)),
        ("updatedTime", format_time(task.updated_time)),
        ("scheduledTime", format_time(task.scheduled_time)),
        ("processingStartTime", format_time(task.processing_start_time)),
        ("processingEndTime", format_time(task.processing_end_time)),
        ("errorMessage", task.error_message),
        ("outcomeMessage", task.outcome_message),
        ("RequesterUserID", task.requester_user_id),
        ("RequesterHostName", task.requester_host),
        ("RequestURI", task.request_uri),
        ("LocalAET", task.local_aet),
        ("ExporterID", task.exporter_id),
        ("StudyInstanceUID", task.study_uid),
        ("SeriesInstanceUID", None if task.series_uid == "*" else task.series_uid),
        ("SOPInstanceUID", None if task.sop_uid == "*" else task.sop_uid),
        ("NumberOfInstances", task.number_of_instances),
        ("Modality", list(task.modalities) or None),
    ]
    return {key: value for key, value in fields if value is not None and value != ""}


def tasks_csv(tasks: Iterable[Task], delimiter: str = ",") -> str:
    """The ``/monitor/export`` CSV as dcm4chee writes it (commons-csv RFC 4180 with
    QuoteMode.ALL): a header row, then one row per task, CRLF line ends; every value is
    quoted (inner quotes doubled) and an absent value is left empty without quotes. As
    in dcm4chee, SeriesInstanceUID/SOPInstanceUID are empty for ``*``, failures is empty
    for 0, and Modality is the backslash list. scheduledTime uses the same format as the
    other times (dcm4chee writes Java's ``Date.toString()`` there; see docs/rest-api.md).
    """
    lines = [_csv_row(CSV_COLUMNS, delimiter)]
    for task in tasks:
        row = task_json(task)
        row["Modality"] = "\\".join(task.modalities) or None
        lines.append(_csv_row([_csv_text(row.get(c)) for c in CSV_COLUMNS], delimiter))
    return "".join(lines)


def _csv_text(value: Any) -> str | None:
    return None if value is None else str(value)


def _csv_row(values: Sequence[str | None], delimiter: str) -> str:
    cells = ("" if v is None else '"' + v.replace('"', '""') + '"' for v in values)
    return delimiter.join(cells) + "\r\n"


def task_detail_json(
    task: Task, progress: Progress, results: Sequence[InstanceResult]
) -> dict[str, Any]:
    """``GET /monitor/export/{taskID}`` (our addition): the Task JSON, then ``progress``
    (instances with an answer so far of ``total``, from the stored per-instance results)
    and ``instances`` (every stored per-instance result, oldest first)."""
    body = task_json(task)
    body["progress"] = {
        "sent": progress.sent,
        "total": task.number_of_instances,
        "delivered": progress.delivered,
        "failed": progress.failed,
    }
    body["instances"] = [_result_json(r) for r in results]
    return body


def _result_json(r: InstanceResult) -> dict[str, Any]:
    fields: list[tuple[str, Any]] = [
        ("attempt", r.attempt),
        ("SOPInstanceUID", r.sop_instance_uid),
        ("SeriesInstanceUID", r.series_uid),
        ("SOPClassUID", r.sop_class_uid),
        ("status", r.status.value),
        ("reason", r.reason or None),
        ("FailureReason", r.reason_code),
        ("httpStatus", r.http_status),
        ("bytes", r.bytes_sent),
        ("elapsed", round(r.elapsed, 3)),
    ]
    return {key: value for key, value in fields if value is not None}


def _range(bounds: tuple[float | None, float | None]) -> list[str | None] | None:
    low, high = bounds
    if low is None and high is None:
        return None
    return [format_time(low), format_time(high)]


def batch_json(batch: BatchSummary) -> dict[str, Any]:
    """One ``/monitor/export/batch`` entry (ExportBatchRS)."""
    fields: list[tuple[str, Any]] = [
        ("batchID", batch.batch_id),
        ("tasks", {_BATCH_KEYS[s]: n for s, n in batch.counts.items() if n}),
        ("dicomDeviceName", list(batch.device_names)),
        ("ExporterID", list(batch.exporter_ids)),
        ("createdTimeRange", _range(batch.created_range)),
        ("updatedTimeRange", _range(batch.updated_range)),
        ("scheduledTimeRange", _range(batch.scheduled_range)),
        ("processingStartTimeRange", _range(batch.processing_start_range)),
        ("processingEndTimeRange", _range(batch.processing_end_range)),
    ]
    return {key: value for key, value in fields if value is not None}
