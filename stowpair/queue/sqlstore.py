""":class:`~stowpair.queue.store.TaskStore` on SQL: every method is one transaction.

:class:`SqlTaskStore` holds the logic; a subclass says where a transaction runs (SQLite on
its own thread, PostgreSQL on a connection pool). Each public method is one transaction,
which is what makes "find the SCHEDULED task or create one" (export-rule debounce),
"claim due tasks" and "store the results and the new status" atomic.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, TypeVar

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime

from stowpair.db.adapter import Db
from stowpair.exporter.outcome import InstanceStatus, TaskStatus
from stowpair.queue import sql, tasksql
from stowpair.queue.batch import batches_query
from stowpair.queue.model import (
    DELIVERED,
    UPDATABLE,
    BatchSummary,
    InstanceResult,
    Lease,
    NewTask,
    Progress,
    Task,
    TaskFilter,
)
from stowpair.queue.tasksql import Beat, Entity, marks

T = TypeVar("T")


class SqlTaskStore:
    """The task store's operations; ``_call(work)`` runs ``work(db)`` in a transaction.

    ``clock`` supplies ``created_time``/``updated_time``.
    """

    def __init__(self, clock: IReactorTime) -> None:
        self._clock = clock

    def _call(self, work: Callable[[Db], T]) -> Deferred[T]:
        raise NotImplementedError

    # -- creating ----------------------------------------------------------------------

    def create(self, new: NewTask) -> Deferred[Task]:
        now = self._clock.seconds()
        return self._call(lambda db: tasksql.insert(db, new, now))

    def create_or_postpone(self, new: NewTask, entity: Entity) -> Deferred[tuple[Task, bool]]:
        now = self._clock.seconds()

        def work(db: Db) -> tuple[Task, bool]:
            db.lock(f"debounce {new.exporter_id} {new.study_uid}")
            existing = tasksql.find_scheduled(db, new, entity)
            if existing is None:
                return tasksql.insert(db, new, now), True
            changes = tasksql.postpone(existing, new)
            if changes:
                tasksql.update(db, existing.task_id, changes, now, None)
            return tasksql.get(db, existing.task_id) or existing, False

        return self._call(work)

    # -- reading -----------------------------------------------------------------------

    def get(self, task_id: int) -> Deferred[Task | None]:
        return self._call(lambda db: tasksql.get(db, task_id))

    def find(self, flt: TaskFilter) -> Deferred[list[Task]]:
        clause, params = sql.where(flt)

        def work(db: Db) -> list[Task]:
            query = sql.SELECT_TASK + clause + sql.order_limit(flt, db.dialect)
            return [sql.task_from_row(r) for r in db.execute(query, params).fetchall()]

        return self._call(work)

    def count(self, flt: TaskFilter) -> Deferred[int]:
        clause, params = sql.where(flt)

        def work(db: Db) -> int:
            if flt.limit is None and not flt.offset:  # all matches: the order is moot
                query = "SELECT COUNT(*) FROM task" + clause
                return int(db.execute(query, params).fetchone()[0])
            inner = "SELECT pk FROM task" + clause + sql.order_limit(flt, db.dialect)
            return int(db.execute(f"SELECT COUNT(*) FROM ({inner}) AS t", params).fetchone()[0])

        return self._call(work)

    def delivered(self, task_id: int) -> Deferred[frozenset[str]]:
        query = (
            "SELECT DISTINCT sop_iuid FROM task_instance WHERE task_pk = ?"
            f" AND status IN ({marks(DELIVERED)})"
        )
        return self._call(
            lambda db: frozenset(r[0] for r in db.execute(query, [task_id, *DELIVERED]))
        )

    def refusals(self, task_id: int) -> Deferred[list[InstanceResult]]:
        def work(db: Db) -> list[InstanceResult]:
            order = db.dialect.row_order
            query = (
                f"SELECT {sql.RESULT_COLUMNS} FROM task_instance AS r WHERE task_pk = ?"
                f" AND status = ? AND reason_code IS NOT NULL AND {order} = (SELECT"
                f" MAX({order}) FROM task_instance WHERE task_pk = r.task_pk"
                f" AND sop_iuid = r.sop_iuid) ORDER BY {order}"
            )
            rows = db.execute(query, [task_id, InstanceStatus.FAILED])
            return [sql.result_from_row(r) for r in rows]

        return self._call(work)

    def results(self, task_id: int) -> Deferred[list[InstanceResult]]:
        def work(db: Db) -> list[InstanceResult]:
            query = (
                f"SELECT {sql.RESULT_COLUMNS} FROM task_instance WHERE task_pk = ?"
                f" ORDER BY {db.dialect.row_order}"
            )
            return [sql.result_from_row(r) for r in db.execute(query, [task_id])]

        return self._call(work)

    def progress(self, task_id: int) -> Deferred[Progress]:
        return self._call(lambda db: tasksql.progress(db, task_id))

    def batches(self, flt: TaskFilter) -> Deferred[list[BatchSummary]]:
        return self._call(lambda db: batches_query(db, flt))

    # -- changing ----------------------------------------------------------------------

    def update(
        self,
        task_id: int,
        changes: Mapping[str, Any],
        only_if: Collection[TaskStatus] | None = None,
        clear_results: bool = False,
        lease: Lease | None = None,
    ) -> Deferred[Task | None]:
        _check_fields(changes)
        now = self._clock.seconds()

        def work(db: Db) -> Task | None:
            if not tasksql.update(db, task_id, changes, now, only_if, lease):
                return None
            if clear_results:
                db.execute("DELETE FROM task_instance WHERE task_pk = ?", [task_id])
            return tasksql.get(db, task_id)

        return self._call(work)

    def update_matching(
        self, flt: TaskFilter, changes: Mapping[str, Any], clear_results: bool = False
    ) -> Deferred[int]:
        _check_fields(changes)
        now = self._clock.seconds()
        clause, params = sql.where(flt)
        setter, values = sql.set_clause(changes, now)

        def work(db: Db) -> int:
            inner = "SELECT pk FROM task" + clause + sql.order_limit(flt, db.dialect)
            pks = [r[0] for r in db.execute(inner, params).fetchall()]
            for pk in pks:
                db.execute(f"UPDATE task {setter} WHERE pk = ?", [*values, pk])
                if clear_results:
                    db.execute("DELETE FROM task_instance WHERE task_pk = ?", [pk])
            return len(pks)

        return self._call(work)

    def delete(self, task_id: int) -> Deferred[bool]:
        return self._call(lambda db: tasksql.delete(db, "pk = ?", [task_id]) > 0)

    def delete_matching(self, flt: TaskFilter) -> Deferred[int]:
        clause, params = sql.where(flt)

        def work(db: Db) -> int:
            inner = "SELECT pk FROM task" + clause + sql.order_limit(flt, db.dialect)
            return tasksql.delete(db, f"pk IN ({inner})", params)

        return self._call(work)

    def purge(self, queue: str, status: TaskStatus, before: float) -> Deferred[int]:
        return self._call(
            lambda db: tasksql.delete(
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
        lease: Lease | None = None,
    ) -> Deferred[bool]:
        def work(db: Db) -> bool:
            if not tasksql.held(db, task_id, only_if, lease):
                return False
            tasksql.insert_results(db, task_id, results, lease)
            return True

        return self._call(work)

    def finish(
        self,
        task_id: int,
        results: Sequence[InstanceResult],
        changes: Mapping[str, Any],
        only_if: Collection[TaskStatus],
        lease: Lease | None = None,
    ) -> Deferred[Task | None]:
        _check_fields(changes)
        now = self._clock.seconds()

        def work(db: Db) -> Task | None:
            if not tasksql.update(db, task_id, changes, now, only_if, lease):
                return None
            tasksql.insert_results(db, task_id, results, lease)
            return tasksql.get(db, task_id)

        return self._call(work)

    # -- nodes and leases --------------------------------------------------------------

    def claim(
        self, node: str, queue: str, now: float, limit: int
    ) -> Deferred[list[tuple[Task, TaskStatus]]]:
        return self._call(lambda db: tasksql.claim(db, node, queue, now, limit))

    def heartbeat(self, node: str, process: str, running: Collection[int]) -> Deferred[Beat]:
        now = self._clock.seconds()
        ids = sorted(running)
        return self._call(lambda db: tasksql.heartbeat(db, node, process, now, ids))

    def take_over(
        self, task_id: int, lease: Lease, silent_since: float, changes: Mapping[str, Any]
    ) -> Deferred[Task | None]:
        _check_fields(changes)
        now = self._clock.seconds()

        def work(db: Db) -> Task | None:
            if not tasksql.take_over(db, task_id, lease, silent_since, changes, now):
                return None
            return tasksql.get(db, task_id)

        return self._call(work)

    def stalled(self, node: str, silent_since: float) -> Deferred[list[Task]]:
        return self._call(lambda db: tasksql.stalled(db, node, silent_since))


def _check_fields(changes: Mapping[str, Any]) -> None:
    unknown = set(changes) - UPDATABLE
    if unknown:
        raise ValueError(f"task fields that cannot be updated: {sorted(unknown)}")
