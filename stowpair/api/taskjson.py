"""Task, batch and CSV representations exactly as dcm4chee writes them (reference §5.2).

Dates are ``yyyy-MM-dd'T'HH:mm:ss.SSSZ`` in local time; fields that are null or at
their default (failures 0, series/SOP ``*``) are left out, as ``Task.writeAsJSON`` does.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from stowpair.exporter.outcome import TaskStatus
from stowpair.queue.model import BatchSummary, Task

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
    """The ``/monitor/export`` CSV: dcm4chee's header row, then one row per task."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for task in tasks:
        row = task_json(task)
        row["SeriesInstanceUID"] = task.series_uid
        row["SOPInstanceUID"] = task.sop_uid
        row["Modality"] = "\\".join(task.modalities)
        row["failures"] = task.failures
        writer.writerow(["" if row.get(c) is None else row[c] for c in CSV_COLUMNS])
    return out.getvalue()


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
