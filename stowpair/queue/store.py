"""The task store: a small interface and its embedded SQLite implementation.

Every SQLite call runs on ONE dedicated worker thread (a size-1 ``ThreadPool`` used
through ``deferToThreadPool``), so the reactor thread never waits on a commit and
operations are applied in the order they were asked for. Each public method is one
transaction, which is what makes "find the SCHEDULED task or create one" (export-rule
debounce) and "store the results and the new status" atomic.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.interfaces import IReactorThreads, IReactorTime
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from stowpair.exporter.outcome import InstanceStatus, TaskStatus
from stowpair.queue import sql
from stowpair.queue.batch import batches_query
from stowpair.queue.model import (
    DELIVERED,
    PENDING,
    UPDATABLE,
    BatchSummary,
    InstanceResult,
    NewTask,
    Progress,
    Task,
    TaskFilter,
)

T = TypeVar("T")
#: Runs a blocking function somewhere and fires with its result.
Runner = Callable[[Callable[[], Any]], Deferred[Any]]
#: How an export rule's entity folds into an existing SCHEDULED task (reference §3.2).
Entity = Literal["Study", "Series", "Instance"]


class TaskStore(Protocol):
    """Persistent export tasks. Every method fires on the reactor thread."""

    def create(self, new: NewTask) -> Deferred[Task]: ...

    def create_or_postpone(self, new: NewTask, entity: Entity) -> Deferred[tuple[Task, bool]]:
        """Debounce: push a matching SCHEDULED task later (never earlier), widening its
        series/SOP to ``*`` as dcm4chee does, or create one. Fires ``(task, created)``."""

    def get(self, task_id: int) -> Deferred[Task | None]: ...

    def find(self, flt: TaskFilter) -> Deferred[list[Task]]: ...

    def count(self, flt: TaskFilter) -> Deferred[int]: ...

    def update(
        self,
        task_id: int,
        changes: Mapping[str, Any],
        only_if: Collection[TaskStatus] | None = None,
        clear_results: bool = False,
    ) -> Deferred[Task | None]:
        """Apply ``changes`` when the task exists (and has a status in ``only_if``);
        fire with the updated task or None."""

    def update_matching(
        self, flt: TaskFilter, changes: Mapping[str, Any], clear_results: bool = False
    ) -> Deferred[int]: ...

    def delete(self, task_id: int) -> Deferred[bool]: ...

    def delete_matching(self, flt: TaskFilter) -> Deferred[int]: ...

    def due(self, device: str, queue: str, now: float, limit: int) -> Deferred[list[Task]]:
        """SCHEDULED / SCHEDULED FOR RETRY tasks with ``scheduled_time <= now``, oldest first."""

    def purge(self, queue: str, status: TaskStatus, before: float) -> Deferred[int]: ...

    def record_results(
        self,
        task_id: int,
        results: Sequence[InstanceResult],
        only_if: Collection[TaskStatus],
    ) -> Deferred[bool]:
        """Commit per-instance results of the running attempt as they arrive (durable
        progress: after a crash, what was acknowledged is not sent again). Written only
        while the task has a status in ``only_if``; fires True when written."""

    def finish(
        self,
        task_id: int,
        results: Sequence[InstanceResult],
        changes: Mapping[str, Any],
        only_if: Collection[TaskStatus],
    ) -> Deferred[Task | None]:
        """Store the attempt's remaining per-instance results and the new task state
        together (one transaction)."""

    def delivered(self, task_id: int) -> Deferred[frozenset[str]]:
        """SOP Instance UIDs delivered (COMPLETED or WARNING) by any attempt so far,
        including results recorded by an attempt that was interrupted."""

    def refusals(self, task_id: int) -> Deferred[list[InstanceResult]]:
        """Instances whose latest result is FAILED with a Failure Reason code (the
        destination judged the instance itself), one per SOP Instance UID."""

    def results(self, task_id: int) -> Deferred[list[InstanceResult]]: ...

    def progress(self, task_id: int) -> Deferred[Progress]:
        """What the stored per-instance results say about the task's export so far."""

    def batches(self, flt: TaskFilter) -> Deferred[list[BatchSummary]]: ...

    def close(self) -> Deferred[None]: ...


class SQLiteTaskStore:
    """:class:`TaskStore` on SQLite in WAL mode.

    ``runner`` decides where SQLite runs: :meth:`on_thread` gives the production one
    (one worker thread); tests may pass ``run_inline`` to drive it with a ``Clock``.
    ``clock`` supplies ``created_time``/``updated_time``.
    """

    def __init__(
        self,
        path: Path | str,
        clock: IReactorTime,
        runner: Runner | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.path = str(path)
        self._clock = clock
        self._run: Runner = runner or run_inline
        self._on_close = on_close
        self._db: sqlite3.Connection | None = None
        self.ready: Deferred[None] = self._call(lambda db: None)

    @classmethod
    def on_thread(cls, path: Path | str, reactor: Any) -> SQLiteTaskStore:
        """The production store: SQLite on its own single worker thread."""
        pool = ThreadPool(minthreads=1, maxthreads=1, name="stowpair-tasks")
        pool.start()
        threads: IReactorThreads = reactor

        def runner(f: Callable[[], Any]) -> Deferred[Any]:
            return deferToThreadPool(threads, pool, f)

        return cls(path, reactor, runner, on_close=pool.stop)

    # -- plumbing ----------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(sql.SCHEMA)
            self._db = db
        return self._db

    def _call(self, work: Callable[[sqlite3.Connection], T]) -> Deferred[T]:
        """Run ``work`` in one transaction on the store's thread."""

        def job() -> T:
            db = self._connect()
            db.execute("BEGIN IMMEDIATE")
            try:
                result = work(db)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return result

        return self._run(job)

    # -- creating ----------------------------------------------------------------------

    def create(self, new: NewTask) -> Deferred[Task]:
        now = self._clock.seconds()
        return self._call(lambda db: _insert(db, new, now))

    def create_or_postpone(self, new: NewTask, entity: Entity) -> Deferred[tuple[Task, bool]]:
        now = self._clock.seconds()

        def work(db: sqlite3.Connection) -> tuple[Task, bool]:
            existing = _find_scheduled(db, new, entity)
            if existing is None:
                return _insert(db, new, now), True
            changes = _postpone(existing, new)
            if changes:
                _update(db, existing.task_id, changes, now, None)
            return _get(db, existing.task_id) or existing, False

        return self._call(work)

    # -- reading -----------------------------------------------------------------------

    def get(self, task_id: int) -> Deferred[Task | None]:
        return self._call(lambda db: _get(db, task_id))

    def find(self, flt: TaskFilter) -> Deferred[list[Task]]:
        clause, params = sql.where(flt)
        query = sql.SELECT_TASK + clause + sql.order_limit(flt)
        return self._call(
            lambda db: [sql.task_from_row(r) for r in db.execute(query, params).fetchall()]
        )

    def count(self, flt: TaskFilter) -> Deferred[int]:
        clause, params = sql.where(flt)
        inner = "SELECT pk FROM task" + clause + sql.order_limit(flt)
        query = f"SELECT COUNT(*) FROM ({inner})"
        return self._call(lambda db: int(db.execute(query, params).fetchone()[0]))

    def due(self, device: str, queue: str, now: float, limit: int) -> Deferred[list[Task]]:
        query = (
            sql.SELECT_TASK + " WHERE device_name = ? AND queue_name = ? AND task_status IN (?, ?)"
            " AND scheduled_time <= ? ORDER BY scheduled_time, pk LIMIT ?"
        )
        params = [device, queue, *PENDING, now, limit]
        return self._call(
            lambda db: [sql.task_from_row(r) for r in db.execute(query, params).fetchall()]
        )

    def delivered(self, task_id: int) -> Deferred[frozenset[str]]:
        query = (
            "SELECT DISTINCT sop_iuid FROM task_instance WHERE task_pk = ?"
            f" AND status IN ({','.join('?' * len(DELIVERED))})"
        )
        return self._call(
            lambda db: frozenset(r[0] for r in db.execute(query, [task_id, *DELIVERED]))
        )

    def refusals(self, task_id: int) -> Deferred[list[InstanceResult]]:
        query = (
            "SELECT * FROM task_instance AS r WHERE task_pk = ? AND status = ?"
            " AND reason_code IS NOT NULL AND rowid = (SELECT MAX(rowid) FROM task_instance"
            " WHERE task_pk = r.task_pk AND sop_iuid = r.sop_iuid) ORDER BY rowid"
        )
        params = [task_id, InstanceStatus.FAILED]
        return self._call(lambda db: [sql.result_from_row(r) for r in db.execute(query, params)])

    def results(self, task_id: int) -> Deferred[list[InstanceResult]]:
        query = "SELECT * FROM task_instance WHERE task_pk = ? ORDER BY rowid"
        return self._call(lambda db: [sql.result_from_row(r) for r in db.execute(query, [task_id])])

    def progress(self, task_id: int) -> Deferred[Progress]:
        return self._call(lambda db: _progress(db, task_id))

    def batches(self, flt: TaskFilter) -> Deferred[list[BatchSummary]]:
        return self._call(lambda db: batches_query(db, flt))

    # -- changing ----------------------------------------------------------------------

    def update(
        self,
        task_id: int,
        changes: Mapping[str, Any],
        only_if: Collection[TaskStatus] | None = None,
        clear_results: bool = False,
    ) -> Deferred[Task | None]:
        _check_fields(changes)
        now = self._clock.seconds()

        def work(db: sqlite3.Connection) -> Task | None:
            if not _update(db, task_id, changes, now, only_if):
                return None
            if clear_results:
                db.execute("DELETE FROM task_instance WHERE task_pk = ?", [task_id])
            return _get(db, task_id)

        return self._call(work)

    def update_matching(
        self, flt: TaskFilter, changes: Mapping[str, Any], clear_results: bool = False
    ) -> Deferred[int]:
        _check_fields(changes)
        now = self._clock.seconds()
        clause, params = sql.where(flt)
        inner = "SELECT pk FROM task" + clause + sql.order_limit(flt)
        setter, values = sql.set_clause(changes, now)

        def work(db: sqlite3.Connection) -> int:
            pks = [r[0] for r in db.execute(inner, params)]
            for pk in pks:
                db.execute(f"UPDATE task {setter} WHERE pk = ?", [*values, pk])
                if clear_results:
                    db.execute("DELETE FROM task_instance WHERE task_pk = ?", [pk])
            return len(pks)

        return self._call(work)

    def delete(self, task_id: int) -> Deferred[bool]:
        return self._call(lambda db: _delete(db, "pk = ?", [task_id]) > 0)

    def delete_matching(self, flt: TaskFilter) -> Deferred[int]:
        clause, params = sql.where(flt)
        inner = "SELECT pk FROM task" + clause + sql.order_limit(flt)
        return self._call(lambda db: _delete(db, f"pk IN ({inner})", params))

    def purge(self, queue: str, status: TaskStatus, before: float) -> Deferred[int]:
        return self._call(
            lambda db: _delete(
                db,
                "queue_name = ? AND task_status = ? AND updated_time < ?",
                [queue, status, before],
            )
        )

    def record_results(
        self,
        task_id: int,
        results: Sequence[InstanceResult],
        only_if: Collection[TaskStatus],
    ) -> Deferred[bool]:
        query = (
            f"SELECT 1 FROM task WHERE pk = ? AND task_status IN ({','.join('?' * len(only_if))})"
        )

        def work(db: sqlite3.Connection) -> bool:
            if db.execute(query, [task_id, *only_if]).fetchone() is None:
                return False
            _insert_results(db, task_id, results)
            return True

        return self._call(work)

    def finish(
        self,
        task_id: int,
        results: Sequence[InstanceResult],
        changes: Mapping[str, Any],
        only_if: Collection[TaskStatus],
    ) -> Deferred[Task | None]:
        _check_fields(changes)
        now = self._clock.seconds()

        def work(db: sqlite3.Connection) -> Task | None:
            if not _update(db, task_id, changes, now, only_if):
                return None
            _insert_results(db, task_id, results)
            return _get(db, task_id)

        return self._call(work)

    def close(self) -> Deferred[None]:
        def job() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        d = self._run(job)
        if self._on_close is not None:
            on_close = self._on_close
            d.addBoth(lambda result: (on_close(), result)[1])
        return d


def run_inline(f: Callable[[], Any]) -> Deferred[Any]:
    """A runner for tests: SQLite on the calling thread (never in production)."""
    return maybeDeferred(f)


def _check_fields(changes: Mapping[str, Any]) -> None:
    unknown = set(changes) - UPDATABLE
    if unknown:
        raise ValueError(f"task fields that cannot be updated: {sorted(unknown)}")


def _get(db: sqlite3.Connection, task_id: int) -> Task | None:
    row = db.execute(sql.SELECT_TASK + " WHERE pk = ?", [task_id]).fetchone()
    return None if row is None else sql.task_from_row(row)


def _insert(db: sqlite3.Connection, new: NewTask, now: float) -> Task:
    values: dict[str, Any] = {
        name: sql.to_db(name, getattr(new, name)) for name in NewTask.__dataclass_fields__
    }
    values.update(status=TaskStatus.SCHEDULED.value, created_time=now, updated_time=now)
    columns = ", ".join(sql.COLUMNS[n] for n in values)
    cursor = db.execute(
        f"INSERT INTO task ({columns}) VALUES ({','.join('?' * len(values))})",
        list(values.values()),
    )
    task = _get(db, int(cursor.lastrowid or 0))
    assert task is not None
    return task


def _update(
    db: sqlite3.Connection,
    task_id: int,
    changes: Mapping[str, Any],
    now: float,
    only_if: Collection[TaskStatus] | None,
) -> bool:
    setter, values = sql.set_clause(changes, now)
    query = f"UPDATE task {setter} WHERE pk = ?"
    params = [*values, task_id]
    if only_if is not None:
        query += f" AND task_status IN ({','.join('?' * len(only_if))})"
        params.extend(only_if)
    return db.execute(query, params).rowcount > 0


def _delete(db: sqlite3.Connection, clause: str, params: Sequence[Any]) -> int:
    pks = [r[0] for r in db.execute(f"SELECT pk FROM task WHERE {clause}", params)]
    for pk in pks:
        db.execute("DELETE FROM task_instance WHERE task_pk = ?", [pk])
        db.execute("DELETE FROM task WHERE pk = ?", [pk])
    return len(pks)


def _progress(db: sqlite3.Connection, task_id: int) -> Progress:
    """Delivered by any attempt; failed (not delivered) in the current attempt."""
    row = db.execute("SELECT task_status, num_failures FROM task WHERE pk = ?", [task_id])
    found = row.fetchone()
    if found is None:
        return Progress()
    status, failures = found
    if status == TaskStatus.IN_PROCESS:
        attempt = failures + 1
    else:
        latest = db.execute("SELECT MAX(attempt) FROM task_instance WHERE task_pk = ?", [task_id])
        attempt = latest.fetchone()[0] or 0
    delivered_in = f"status IN ({','.join('?' * len(DELIVERED))})"
    delivered = db.execute(
        f"SELECT COUNT(DISTINCT sop_iuid) FROM task_instance WHERE task_pk = ? AND {delivered_in}",
        [task_id, *DELIVERED],
    ).fetchone()[0]
    failed = db.execute(
        "SELECT COUNT(DISTINCT sop_iuid) FROM task_instance WHERE task_pk = ? AND attempt = ?"
        f" AND status IN (?, ?) AND sop_iuid NOT IN (SELECT sop_iuid FROM task_instance"
        f" WHERE task_pk = ? AND {delivered_in})",
        [task_id, attempt, InstanceStatus.FAILED, InstanceStatus.MISSING, task_id, *DELIVERED],
    ).fetchone()[0]
    return Progress(int(delivered), int(failed))


def _find_scheduled(db: sqlite3.Connection, new: NewTask, entity: Entity) -> Task | None:
    """dcm4chee's FIND_SCHEDULED_BY_DEVICE_AND_EXPORTER_ID_AND_STUDY_IUID[_AND_SERIES_IUID]."""
    query = (
        sql.SELECT_TASK + " WHERE device_name = ? AND exporter_id = ? AND study_iuid = ?"
        " AND task_status = ?"
    )
    params: list[Any] = [new.device_name, new.exporter_id, new.study_uid, TaskStatus.SCHEDULED]
    if entity == "Series":
        query += " AND series_iuid IN (?, '*')"
        params.append(new.series_uid)
    row = db.execute(query + " ORDER BY pk LIMIT 1", params).fetchone()
    return None if row is None else sql.task_from_row(row)


def _postpone(task: Task, new: NewTask) -> dict[str, Any]:
    """The changes dcm4chee's ExportManagerEJB.updateExportTask makes (reference §3.2)."""
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


def _insert_results(
    db: sqlite3.Connection, task_id: int, results: Sequence[InstanceResult]
) -> None:
    db.executemany(
        "INSERT INTO task_instance VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        [_result_row(task_id, r) for r in results],
    )


def _result_row(task_id: int, r: InstanceResult) -> tuple[Any, ...]:
    return (
        task_id, r.attempt, r.sop_instance_uid, r.series_uid, r.sop_class_uid, r.status.value,
        r.reason, r.reason_code, r.http_status, r.bytes_sent, r.elapsed,
    )  # fmt: skip
