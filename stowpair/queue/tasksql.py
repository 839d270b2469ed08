"""The task store's transactions, written once for SQLite and PostgreSQL.

Each function runs inside the caller's transaction on a :class:`~stowpair.db.adapter.Db`.
Where the engines differ (claiming rows that other nodes claim at the same time, locking
a study for the export-rule debounce) the dialect supplies the words.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from stowpair.db.adapter import Db
from stowpair.exporter.outcome import InstanceStatus, TaskStatus
from stowpair.queue import sql
from stowpair.queue.model import (
    DELIVERED,
    PENDING,
    InstanceResult,
    Lease,
    NewTask,
    Progress,
    Task,
)

#: How an export rule's entity folds into an existing SCHEDULED task
#: (docs/dcm4chee.md, "Export rules and debounce").
Entity = Literal["Study", "Series", "Instance"]


@dataclass(frozen=True)
class Holding:
    """A task's status and lease as the database has them."""

    status: TaskStatus
    lease: Lease


@dataclass(frozen=True)
class Beat:
    """What a heartbeat learnt: the status and lease of the tasks the node runs (a task
    deleted meanwhile is absent), and who heartbeated under the node's name before."""

    tasks: dict[int, Holding]
    previous_process: str | None = None
    previous_heartbeat: float | None = None


def marks(values: Collection[Any]) -> str:
    return ",".join("?" * len(values))


def get(db: Db, task_id: int) -> Task | None:
    row = db.execute(sql.SELECT_TASK + " WHERE pk = ?", [task_id]).fetchone()
    return None if row is None else sql.task_from_row(row)


def insert(db: Db, new: NewTask, now: float) -> Task:
    values: dict[str, Any] = {
        name: sql.to_db(name, getattr(new, name)) for name in NewTask.__dataclass_fields__
    }
    values.update(status=TaskStatus.SCHEDULED.value, created_time=now, updated_time=now)
    columns = ", ".join(sql.COLUMNS[n] for n in values)
    row = db.execute(
        f"INSERT INTO task ({columns}) VALUES ({marks(values)}) RETURNING pk",
        list(values.values()),
    ).fetchone()
    task = get(db, int(row[0]))
    assert task is not None
    return task


def fence(lease: Lease | None) -> tuple[str, list[Any]]:
    """The condition that the task is still held under ``lease`` (none without one)."""
    if lease is None:
        return "", []
    return " AND device_name = ? AND lease_epoch = ?", [lease.device_name, lease.epoch]


def update(
    db: Db,
    task_id: int,
    changes: Mapping[str, Any],
    now: float,
    only_if: Collection[TaskStatus] | None,
    lease: Lease | None = None,
) -> bool:
    setter, values = sql.set_clause(changes, now)
    query = f"UPDATE task {setter} WHERE pk = ?"
    params = [*values, task_id]
    if only_if is not None:
        query += f" AND task_status IN ({marks(only_if)})"
        params.extend(only_if)
    clause, fenced = fence(lease)
    return db.execute(query + clause, params + fenced).rowcount > 0


def held(db: Db, task_id: int, only_if: Collection[TaskStatus], lease: Lease | None) -> bool:
    """Is the task there with a status in ``only_if`` (and held under ``lease``)? Locks
    its row until the transaction ends, so no other node takes it meanwhile."""
    clause, fenced = fence(lease)
    query = f"SELECT 1 FROM task WHERE pk = ? AND task_status IN ({marks(only_if)}){clause}"
    row = db.execute(query + db.dialect.for_update, [task_id, *only_if, *fenced]).fetchone()
    return row is not None


def delete(db: Db, clause: str, params: Sequence[Any]) -> int:
    pks = [r[0] for r in db.execute(f"SELECT pk FROM task WHERE {clause}", params)]
    for pk in pks:
        db.execute("DELETE FROM task_instance WHERE task_pk = ?", [pk])
        db.execute("DELETE FROM task WHERE pk = ?", [pk])
    return len(pks)


def progress(db: Db, task_id: int) -> Progress:
    """Delivered by any attempt; failed (not delivered) in the current attempt."""
    found = db.execute(
        "SELECT task_status, num_failures FROM task WHERE pk = ?", [task_id]
    ).fetchone()
    if found is None:
        return Progress()
    status, failures = found
    if status == TaskStatus.IN_PROCESS:
        attempt = failures + 1
    else:
        latest = db.execute("SELECT MAX(attempt) FROM task_instance WHERE task_pk = ?", [task_id])
        attempt = latest.fetchone()[0] or 0
    delivered_in = f"status IN ({marks(DELIVERED)})"
    delivered = db.execute(
        f"SELECT COUNT(DISTINCT sop_iuid) FROM task_instance WHERE task_pk = ? AND {delivered_in}",
        [task_id, *DELIVERED],
    ).fetchone()[0]
    failed = db.execute(
        "SELECT COUNT(DISTINCT sop_iuid) FROM task_instance WHERE task_pk = ? AND attempt = ?"
        " AND status IN (?, ?) AND sop_iuid NOT IN (SELECT sop_iuid FROM task_instance"
        f" WHERE task_pk = ? AND {delivered_in})",
        [task_id, attempt, InstanceStatus.FAILED, InstanceStatus.MISSING, task_id, *DELIVERED],
    ).fetchone()[0]
    return Progress(int(delivered), int(failed))


def find_scheduled(db: Db, new: NewTask, entity: Entity) -> Task | None:
    """dcm4chee's FIND_SCHEDULED_BY_DEVICE_AND_EXPORTER_ID_AND_STUDY_IUID[_AND_SERIES_IUID],
    over the whole cluster: a study received by several nodes gets one task, whichever
    node created it. The caller holds the study's lock (:meth:`Db.lock`)."""
    query = sql.SELECT_TASK + " WHERE exporter_id = ? AND study_iuid = ? AND task_status = ?"
    params: list[Any] = [new.exporter_id, new.study_uid, TaskStatus.SCHEDULED]
    if entity == "Series":
        query += " AND series_iuid IN (?, '*')"
        params.append(new.series_uid)
    row = db.execute(query + " ORDER BY pk LIMIT 1", params).fetchone()
    return None if row is None else sql.task_from_row(row)


def postpone(task: Task, new: NewTask) -> dict[str, Any]:
    """The changes dcm4chee's ExportManagerEJB.updateExportTask makes: the time moves
    later only, UIDs widen to ``*``."""
    changes: dict[str, Any] = {}
    if task.series_uid != "*" and task.series_uid != new.series_uid:
        changes.update(series_uid="*", sop_uid="*")
    elif task.sop_uid != "*" and task.sop_uid != new.sop_uid:
        changes["sop_uid"] = "*"
    if new.scheduled_time > task.scheduled_time:
        changes["scheduled_time"] = new.scheduled_time
    modalities = tuple(dict.fromkeys(task.modalities + new.modalities))
    if modalities != task.modalities:
        changes["modalities"] = modalities
    return changes


def insert_results(
    db: Db, task_id: int, results: Sequence[InstanceResult], lease: Lease | None
) -> None:
    node, epoch = (lease.device_name, lease.epoch) if lease is not None else (None, None)
    db.executemany(
        f"INSERT INTO task_instance ({sql.RESULT_COLUMNS}, device_name, lease_epoch)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        [(*_result_row(task_id, r), node, epoch) for r in results],
    )


def _result_row(task_id: int, r: InstanceResult) -> tuple[Any, ...]:
    return (
        task_id, r.attempt, r.sop_instance_uid, r.series_uid, r.sop_class_uid, r.status.value,
        r.reason, r.reason_code, r.http_status, r.bytes_sent, r.elapsed,
    )  # fmt: skip


def claim(db: Db, node: str, queue: str, now: float, limit: int) -> list[tuple[Task, TaskStatus]]:
    """Due tasks of ``queue`` (any node's), oldest first, now IN PROCESS under a new
    lease of ``node``, each with its status before. Rows another node is claiming at the
    same moment are skipped (PostgreSQL ``FOR UPDATE SKIP LOCKED``), so each due task
    runs on one node."""
    due = db.execute(
        f"SELECT pk, task_status FROM task WHERE queue_name = ? AND task_status IN"
        f" ({marks(PENDING)}) AND scheduled_time <= ? ORDER BY scheduled_time, pk"
        f" LIMIT ?{db.dialect.skip_locked}",
        [queue, *PENDING, now, limit],
    ).fetchall()
    _beat(db, node, now)  # a claim says the node is alive: nobody takes these over
    if not due:
        return []
    before = {int(pk): TaskStatus(status) for pk, status in due}
    rows = db.execute(
        "UPDATE task SET task_status = ?, proc_start_time = ?, proc_end_time = NULL,"
        " device_name = ?, lease_epoch = lease_epoch + 1, updated_time = ?"
        f" WHERE pk IN ({marks(before)}) RETURNING {sql.TASK_COLUMNS}",
        [TaskStatus.IN_PROCESS, now, node, now, *before],
    ).fetchall()
    tasks = sorted(
        (sql.task_from_row(r) for r in rows), key=lambda t: (t.scheduled_time, t.task_id)
    )
    return [(t, before[t.task_id]) for t in tasks]


def _beat(db: Db, node: str, now: float) -> None:
    db.execute(
        "INSERT INTO node (device_name, started_time, heartbeat_time) VALUES (?, ?, ?)"
        " ON CONFLICT (device_name) DO UPDATE SET heartbeat_time = excluded.heartbeat_time",
        [node, now, now],
    )


def take_over(
    db: Db, task_id: int, lease: Lease, silent_since: float, changes: Mapping[str, Any], now: float
) -> bool:
    """Apply ``changes`` to a task still IN PROCESS under ``lease`` whose node has not
    heartbeated (nor claimed) since ``silent_since``: checked in the same statement."""
    setter, values = sql.set_clause(changes, now)
    clause, fenced = fence(lease)
    query = (
        f"UPDATE task {setter} WHERE pk = ? AND task_status = ?{clause} AND NOT EXISTS"
        " (SELECT 1 FROM node WHERE node.device_name = task.device_name"
        " AND node.heartbeat_time >= ?)"
    )
    params = [*values, task_id, TaskStatus.IN_PROCESS, *fenced, silent_since]
    return db.execute(query, params).rowcount > 0


def heartbeat(db: Db, node: str, process: str, now: float, running: Collection[int]) -> Beat:
    """Record that ``node`` (this ``process``) is alive; how its ``running`` tasks stand."""
    before = db.execute(
        "SELECT process, heartbeat_time FROM node WHERE device_name = ?", [node]
    ).fetchone()
    db.execute(
        "INSERT INTO node (device_name, started_time, heartbeat_time, process)"
        " VALUES (?, ?, ?, ?) ON CONFLICT (device_name) DO UPDATE SET"
        " heartbeat_time = excluded.heartbeat_time, process = excluded.process,"
        " started_time = CASE WHEN node.process = excluded.process"
        " THEN node.started_time ELSE excluded.started_time END",
        [node, now, now, process],
    )
    tasks: dict[int, Holding] = {}
    if running:
        rows = db.execute(
            "SELECT pk, task_status, device_name, lease_epoch FROM task"
            f" WHERE pk IN ({marks(running)})",
            list(running),
        )
        for pk, status, device, epoch in rows:
            tasks[int(pk)] = Holding(TaskStatus(status), Lease(str(device), int(epoch)))
    if before is None:
        return Beat(tasks)
    return Beat(tasks, str(before[0]), float(before[1]))


def stalled(db: Db, node: str, silent_since: float) -> list[Task]:
    """IN PROCESS tasks of other nodes that have not heartbeated since ``silent_since``
    (or never did)."""
    query = (
        sql.SELECT_TASK + " WHERE task_status = ? AND device_name <> ? AND NOT EXISTS"
        " (SELECT 1 FROM node WHERE node.device_name = task.device_name"
        " AND node.heartbeat_time >= ?) ORDER BY pk"
    )
    rows = db.execute(query, [TaskStatus.IN_PROCESS, node, silent_since]).fetchall()
    return [sql.task_from_row(r) for r in rows]
