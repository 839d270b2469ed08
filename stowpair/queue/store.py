"""The task store: a small interface, its embedded SQLite implementation, and the
PostgreSQL one of a cluster (:mod:`stowpair.queue.pgstore`).

Both run the same transactions (:mod:`stowpair.queue.sqlstore`). Every SQLite call runs
on ONE dedicated worker thread (a size-1 ``ThreadPool`` used through
``deferToThreadPool``), so the reactor thread never waits on a commit and operations
are applied in the order they were asked for.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.interfaces import IReactorThreads, IReactorTime
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from stowpair.db.adapter import Db, SQLiteDb
from stowpair.db.errors import SchemaError
from stowpair.exporter.outcome import TaskStatus
from stowpair.queue import sql
from stowpair.queue.model import (
    BatchSummary,
    InstanceResult,
    Lease,
    NewTask,
    Progress,
    Task,
    TaskFilter,
)
from stowpair.queue.sqlstore import SqlTaskStore
from stowpair.queue.tasksql import Beat, Entity, Holding

__all__ = ["Beat", "Entity", "Holding", "Runner", "SQLiteTaskStore", "TaskStore", "run_inline"]

T = TypeVar("T")
_log = Logger()
#: Seconds between two refreshes of SQLite's query planner statistics (see
#: SQLiteTaskStore._refresh_statistics).
STATISTICS_INTERVAL = 60.0
#: Below this many tasks every query is fast without statistics.
ANALYZE_FROM = 1000
#: Runs a blocking function somewhere and fires with its result.
Runner = Callable[[Callable[[], Any]], Deferred[Any]]


class TaskStore(Protocol):
    """Persistent export tasks. Every method fires on the reactor thread.

    A write that may come from an attempt that lost its task takes the attempt's
    ``lease`` (fencing, docs/cluster.md): it is made only while the task is still held
    under that lease. A store that cannot reach its database fails the operation with
    :class:`~stowpair.db.errors.DatabaseUnavailable`.
    """

    def create(self, new: NewTask) -> Deferred[Task]: ...

    def create_or_postpone(self, new: NewTask, entity: Entity) -> Deferred[tuple[Task, bool]]:
        """Debounce: push a matching SCHEDULED task (of any node) later (never earlier),
        widening its series/SOP to ``*`` as dcm4chee does, or create one. Fires
        ``(task, created)``. Atomic across nodes: one task per study and exporter."""

    def get(self, task_id: int) -> Deferred[Task | None]: ...

    def find(self, flt: TaskFilter) -> Deferred[list[Task]]: ...

    def count(self, flt: TaskFilter) -> Deferred[int]: ...

    def update(
        self,
        task_id: int,
        changes: Mapping[str, Any],
        only_if: Collection[TaskStatus] | None = None,
        clear_results: bool = False,
        lease: Lease | None = None,
    ) -> Deferred[Task | None]:
        """Apply ``changes`` when the task exists (and has a status in ``only_if``, and
        is held under ``lease``); fire with the updated task or None."""

    def update_matching(
        self, flt: TaskFilter, changes: Mapping[str, Any], clear_results: bool = False
    ) -> Deferred[int]: ...

    def delete(self, task_id: int) -> Deferred[bool]: ...

    def delete_matching(self, flt: TaskFilter) -> Deferred[int]: ...

    def claim(
        self, node: str, queue: str, now: float, limit: int
    ) -> Deferred[list[tuple[Task, TaskStatus]]]:
        """Up to ``limit`` SCHEDULED / SCHEDULED FOR RETRY tasks of ``queue`` with
        ``scheduled_time <= now``, oldest first, whichever node created them: each is now
        IN PROCESS, its device name ``node`` and its epoch one more (a new lease); fires
        with each and its status before. Two nodes claiming at once never get the same
        task. A claim counts as a heartbeat of ``node``."""

    def heartbeat(self, node: str, process: str, running: Collection[int]) -> Deferred[Beat]:
        """Record that ``node`` is alive (run by ``process``); fires with the status and
        lease of its ``running`` tasks as stored (a task deleted meanwhile is absent)."""

    def stalled(self, node: str, silent_since: float) -> Deferred[list[Task]]:
        """IN PROCESS tasks held by nodes other than ``node`` that have not heartbeated
        (nor claimed a task) since ``silent_since``."""

    def take_over(
        self, task_id: int, lease: Lease, silent_since: float, changes: Mapping[str, Any]
    ) -> Deferred[Task | None]:
        """Apply ``changes`` to a stalled task: only while it is still IN PROCESS under
        ``lease`` and its node still has not heartbeated since ``silent_since``; fires
        with the task, or None when it moved on or its node came back."""

    def purge(self, queue: str, status: TaskStatus, before: float) -> Deferred[int]: ...

    def record_results(
        self,
        task_id: int,
        results: Sequence[InstanceResult],
        only_if: Collection[TaskStatus],
        lease: Lease | None = None,
    ) -> Deferred[bool]:
        """Commit per-instance results of the running attempt as they arrive (durable
        progress: after a crash, what was acknowledged is not sent again). Written only
        while the task has a status in ``only_if`` (and is held under ``lease``); fires
        True when written."""

    def finish(
        self,
        task_id: int,
        results: Sequence[InstanceResult],
        changes: Mapping[str, Any],
        only_if: Collection[TaskStatus],
        lease: Lease | None = None,
    ) -> Deferred[Task | None]:
        """Store the attempt's remaining per-instance results and the new task state
        together (one transaction); None when the task is gone, has another status or
        is no longer held under ``lease``."""

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


class SQLiteTaskStore(SqlTaskStore):
    """:class:`TaskStore` on SQLite in WAL mode.

    ``runner`` decides where SQLite runs: :meth:`on_thread` gives the production one
    (one worker thread); tests may pass ``run_inline`` to drive it with a ``Clock``.
    """

    def __init__(
        self,
        path: Path | str,
        clock: IReactorTime,
        runner: Runner | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(clock)
        self.path = str(path)
        self._run: Runner = runner or run_inline
        self._on_close = on_close
        self._db: sqlite3.Connection | None = None
        self._checked_at: float | None = None
        self._analyzed_rows: int | None = None  # on the store's thread only
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

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            _migrate(db, self.path)
            self._db = db
        return self._db

    def find(self, flt: TaskFilter) -> Deferred[list[Task]]:
        self._refresh_statistics()
        return super().find(flt)

    def count(self, flt: TaskFilter) -> Deferred[int]:
        self._refresh_statistics()
        return super().count(flt)

    def _refresh_statistics(self) -> None:
        """``ANALYZE task`` when the number of tasks has doubled or halved since the last
        analysis (checked at most every :data:`STATISTICS_INTERVAL` seconds, before a
        monitor query): with statistics of the table the planner reads a filtered page
        newest-first from an index and stops at its limit (100,000 tasks: 0.5 ms) instead
        of sorting every match (400 ms)."""
        now = self._clock.seconds()
        if self._checked_at is not None and now - self._checked_at < STATISTICS_INTERVAL:
            return
        self._checked_at = now

        def job() -> None:
            db = self._connect()
            rows = int(db.execute("SELECT COUNT(*) FROM task").fetchone()[0])
            last = self._analyzed_rows
            if rows >= ANALYZE_FROM and (last is None or rows > 2 * last or 2 * rows < last):
                db.execute("ANALYZE task")  # 100,000 tasks: about half a second
                self._analyzed_rows = rows

        def failed(f: Failure) -> None:
            _log.warn("Refreshing the task store's statistics failed: {e}", e=f.getErrorMessage())

        self._run(job).addErrback(failed)

    def _call(self, work: Callable[[Db], T]) -> Deferred[T]:
        """Run ``work`` in one transaction on the store's thread."""

        def job() -> T:
            db = self._connect()
            db.execute("BEGIN IMMEDIATE")
            try:
                result = work(SQLiteDb(db))
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return result

        return self._run(job)

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


def _migrate(db: sqlite3.Connection, path: str) -> None:
    """Create the schema, or bring an older file up to date (``PRAGMA user_version``)."""
    db.execute("BEGIN IMMEDIATE")  # another process (stowpair import) may open it too
    try:
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        if version > sql.SQLITE_VERSION:
            raise SchemaError(
                f"the task store {path} has schema version {version}, newer than this"
                f" stowpair knows ({sql.SQLITE_VERSION}): a newer stowpair wrote it;"
                " upgrade stowpair"
            )
        if version == 0:
            # version 1 never recorded its number: its tables may exist already
            _script(db, sql.SQLITE_SCHEMA)
            version = 1
        for step in range(version + 1, sql.SQLITE_VERSION + 1):
            _script(db, sql.SQLITE_STEPS[step])
        db.execute(f"PRAGMA user_version = {sql.SQLITE_VERSION}")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _script(db: sqlite3.Connection, script: str) -> None:
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


def run_inline(f: Callable[[], Any]) -> Deferred[Any]:
    """A runner for tests: SQLite on the calling thread (never in production)."""
    return maybeDeferred(f)
