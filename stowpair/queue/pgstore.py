""":class:`~stowpair.queue.store.TaskStore` on PostgreSQL: the shared queue of a cluster.

The same transactions as the SQLite store (:mod:`stowpair.queue.sqlstore`), run on the
connection pool of :class:`~stowpair.db.postgres.PostgresDatabase`; due tasks are
claimed with ``SELECT ... FOR UPDATE SKIP LOCKED`` and the export-rule debounce holds a
transaction-scoped advisory lock on (exporter, study), so several nodes can share one
queue. The database (and its schema) belongs to the caller, which opens and closes it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime

from stowpair.db.adapter import Db
from stowpair.db.postgres import PostgresDatabase
from stowpair.queue.sqlstore import SqlTaskStore

T = TypeVar("T")


class PostgresTaskStore(SqlTaskStore):
    """The task store in the PostgreSQL database ``database`` (opened by the caller)."""

    def __init__(self, database: PostgresDatabase, clock: IReactorTime) -> None:
        super().__init__(clock)
        self.database = database

    def _call(self, work: Callable[[Db], T]) -> Deferred[T]:
        return self.database.run(work)

    def close(self) -> Deferred[None]:
        """Nothing of its own to close: the database is shared with the archive index."""
        return succeed(None)
