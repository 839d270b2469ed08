"""SQL text and row mapping of the task store, for SQLite and PostgreSQL alike.

Column names follow dcm4chee's ``task`` table (docs/dcm4chee.md, "Tasks, statuses and retries") so
that people who know the archive's database recognise them. Queries use ``?`` placeholders
(:mod:`stowpair.db.adapter`); the PostgreSQL schema is in ``stowpair/db/migrations``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from stowpair.db.adapter import Dialect
from stowpair.exporter.outcome import InstanceStatus, TaskStatus
from stowpair.queue.model import InstanceResult, Task, TaskFilter

#: The SQLite schema, version 1 (as first released); later versions are steps below.
SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS task (
    pk INTEGER PRIMARY KEY AUTOINCREMENT,
    device_name TEXT NOT NULL,
    queue_name TEXT NOT NULL,
    task_type TEXT NOT NULL DEFAULT 'EXPORT',
    task_status TEXT NOT NULL,
    exporter_id TEXT NOT NULL,
    local_aet TEXT NOT NULL,
    study_iuid TEXT NOT NULL,
    series_iuid TEXT NOT NULL DEFAULT '*',
    sop_iuid TEXT NOT NULL DEFAULT '*',
    created_time REAL NOT NULL,
    updated_time REAL NOT NULL,
    scheduled_time REAL NOT NULL,
    proc_start_time REAL,
    proc_end_time REAL,
    num_failures INTEGER NOT NULL DEFAULT 0,
    batch_id TEXT,
    error_msg TEXT,
    outcome_msg TEXT,
    num_instances INTEGER,
    modalities TEXT NOT NULL DEFAULT '',
    rq_user_id TEXT,
    rq_host TEXT,
    rq_uri TEXT
);
CREATE INDEX IF NOT EXISTS task_due ON task (task_status, queue_name, scheduled_time);
CREATE INDEX IF NOT EXISTS task_entity ON task (exporter_id, study_iuid);
CREATE INDEX IF NOT EXISTS task_batch ON task (batch_id);
CREATE INDEX IF NOT EXISTS task_updated ON task (updated_time);
CREATE TABLE IF NOT EXISTS task_instance (
    task_pk INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    sop_iuid TEXT NOT NULL,
    series_iuid TEXT NOT NULL,
    sop_cuid TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    reason_code INTEGER,
    http_status INTEGER,
    bytes INTEGER NOT NULL DEFAULT 0,
    elapsed REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS task_instance_task ON task_instance (task_pk, status);
"""

#: SQLite schema steps after version 1 (``PRAGMA user_version`` records the version).
SQLITE_STEPS: dict[int, str] = {
    2: """
ALTER TABLE task ADD COLUMN lease_epoch INTEGER NOT NULL DEFAULT 0;
ALTER TABLE task_instance ADD COLUMN device_name TEXT;
ALTER TABLE task_instance ADD COLUMN lease_epoch INTEGER;
CREATE INDEX IF NOT EXISTS task_device ON task (device_name, task_status);
CREATE TABLE IF NOT EXISTS node (
    device_name TEXT PRIMARY KEY,
    started_time REAL NOT NULL,
    heartbeat_time REAL NOT NULL,
    process TEXT NOT NULL DEFAULT ''
);
""",
    # The monitor's filters (/monitor/export, its /count, the console): status, exporter,
    # queue, study, newest first by update or creation (100,000 tasks: under 50 ms).
    3: """
CREATE INDEX IF NOT EXISTS task_status_updated ON task (task_status, updated_time);
CREATE INDEX IF NOT EXISTS task_exporter_status ON task (exporter_id, task_status, updated_time);
CREATE INDEX IF NOT EXISTS task_queue_status ON task (queue_name, task_status, updated_time);
CREATE INDEX IF NOT EXISTS task_study ON task (study_iuid);
CREATE INDEX IF NOT EXISTS task_created ON task (created_time);
""",
}
SQLITE_VERSION = max(SQLITE_STEPS)

#: Task field -> column.
COLUMNS: dict[str, str] = {
    "task_id": "pk",
    "device_name": "device_name",
    "queue_name": "queue_name",
    "status": "task_status",
    "exporter_id": "exporter_id",
    "local_aet": "local_aet",
    "study_uid": "study_iuid",
    "series_uid": "series_iuid",
    "sop_uid": "sop_iuid",
    "created_time": "created_time",
    "updated_time": "updated_time",
    "scheduled_time": "scheduled_time",
    "processing_start_time": "proc_start_time",
    "processing_end_time": "proc_end_time",
    "failures": "num_failures",
    "batch_id": "batch_id",
    "error_message": "error_msg",
    "outcome_message": "outcome_msg",
    "number_of_instances": "num_instances",
    "modalities": "modalities",
    "requester_user_id": "rq_user_id",
    "requester_host": "rq_host",
    "request_uri": "rq_uri",
    "epoch": "lease_epoch",
}
ORDER_COLUMNS = {
    "createdTime": "created_time",
    "updatedTime": "updated_time",
    "scheduledTime": "scheduled_time",
}
TASK_COLUMNS = ", ".join(COLUMNS.values())
SELECT_TASK = f"SELECT {TASK_COLUMNS} FROM task"
#: The stored columns of an InstanceResult, in its field order.
RESULT_COLUMNS = (
    "task_pk, attempt, sop_iuid, series_iuid, sop_cuid, status, reason, reason_code,"
    " http_status, bytes, elapsed"
)


def to_db(name: str, value: Any) -> Any:
    """A Task field value as stored (modalities as a backslash list, statuses as text)."""
    if name == "modalities":
        return "\\".join(value)
    if isinstance(value, TaskStatus):
        return value.value
    return value


def task_from_row(row: Sequence[Any]) -> Task:
    values = dict(zip(COLUMNS, row, strict=True))
    values["status"] = TaskStatus(values["status"])
    values["modalities"] = tuple(m for m in (values["modalities"] or "").split("\\") if m)
    return Task(**values)


def result_from_row(row: Sequence[Any]) -> InstanceResult:
    task_id, attempt, sop, series, cuid, status, reason, code, http, size, elapsed = row
    return InstanceResult(
        task_id, attempt, sop, series, cuid, InstanceStatus(status), reason, code, http, size,
        elapsed,
    )  # fmt: skip


def where(flt: TaskFilter) -> tuple[str, list[Any]]:
    """The WHERE clause (possibly empty) and its parameters for a filter."""
    clauses: list[str] = []
    params: list[Any] = []

    def add(clause: str, *values: Any) -> None:
        clauses.append(clause)
        params.extend(values)

    if flt.device_name is not None:
        add("device_name = ?", flt.device_name)
    if flt.exporter_ids:
        add(f"exporter_id IN ({','.join('?' * len(flt.exporter_ids))})", *flt.exporter_ids)
    if flt.queue_names:
        add(f"queue_name IN ({','.join('?' * len(flt.queue_names))})", *flt.queue_names)
    if flt.study_uid is not None:
        add("study_iuid = ?", flt.study_uid)
    if flt.batch_id is not None:
        add("batch_id = ?", flt.batch_id)
    if flt.task_id is not None:
        add("pk = ?", flt.task_id)
    if flt.statuses:
        add(f"task_status IN ({','.join('?' * len(flt.statuses))})", *flt.statuses)
    for column, bounds in (("created_time", flt.created), ("updated_time", flt.updated)):
        if bounds is not None:
            low, high = bounds
            if low is not None:
                add(f"{column} >= ?", low)
            if high is not None:
                add(f"{column} <= ?", high)
    if flt.updated_before is not None:
        add("updated_time < ?", flt.updated_before)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def order_limit(flt: TaskFilter, dialect: Dialect, prefix: str = "") -> str:
    """ORDER BY / LIMIT / OFFSET; the task id breaks ties so pages are stable."""
    direction = "DESC" if flt.descending else "ASC"
    column = ORDER_COLUMNS[flt.order_by]
    limit = dialect.no_limit if flt.limit is None else str(int(flt.limit))
    return (
        f" ORDER BY {prefix}{column} {direction}, pk {direction}"
        f" LIMIT {limit} OFFSET {int(flt.offset)}"
    )


def set_clause(changes: Mapping[str, Any], now: float) -> tuple[str, list[Any]]:
    """``SET a = ?, ...`` for Task field changes, always touching ``updated_time``."""
    names = [n for n in changes if n != "updated_time"]
    parts = [f"{COLUMNS[n]} = ?" for n in names] + ["updated_time = ?"]
    return "SET " + ", ".join(parts), [to_db(n, changes[n]) for n in names] + [now]
