"""The stores a configuration asks for: SQLite files (no ``[database] url``) or one shared
PostgreSQL database for the archive index and the task store (docs/cluster.md).

Wiring only; the service and ``stowpair import`` both use it, so they always agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred, DeferredList

from stowpair.archive.index import SQLiteIndex
from stowpair.archive.model import InstanceIndex
from stowpair.archive.pg_index import PostgresIndex
from stowpair.config.model import Config
from stowpair.db.postgres import PostgresDatabase
from stowpair.queue.pgstore import PostgresTaskStore
from stowpair.queue.store import SQLiteTaskStore, TaskStore


def tasks_database(config: Config) -> Path:
    """The SQLite task store lives next to the archive index, in its own file."""
    db = config.archive.database
    return db.with_name(f"{db.stem}-tasks{db.suffix or '.sqlite'}")


@dataclass
class Stores:
    index: InstanceIndex
    tasks: TaskStore
    #: The shared PostgreSQL database; None with SQLite.
    database: PostgresDatabase | None
    #: Where the stores are, for people (never a password).
    where: str

    def close(self) -> Deferred[None]:
        """Close the index, then the database it shares with the task store (which the
        queue service closes once its scheduler has drained)."""
        d = DeferredList([self.index.close()], consumeErrors=True)
        if self.database is not None:
            database = self.database
            d.addCallback(lambda _: database.close())
        return d.addCallback(lambda _: None)


def open_stores(config: Config, reactor: Any) -> Stores:
    """Build the stores; they are usable at once (operations wait for the database to
    open). ``index.opened`` fails when the database cannot be opened (one sentence:
    :class:`~stowpair.db.errors.DatabaseUnavailable` or
    :class:`~stowpair.db.errors.SchemaError`)."""
    db = config.database
    if db.url is None:
        index = SQLiteIndex(config.archive.database, reactor)
        tasks = SQLiteTaskStore.on_thread(tasks_database(config), reactor)
        return Stores(index, tasks, None, str(config.archive.database))
    database = PostgresDatabase(
        db.url,
        reactor,
        password=db.password.reveal() if db.password is not None else None,
        size=db.pool_size,
        application_name=f"stowpair {config.device.name}",
    )
    database.open().addErrback(lambda _: None)  # index.opened reports it
    return Stores(
        PostgresIndex(database, config.archive.storage),
        PostgresTaskStore(database, reactor),
        database,
        database.where,
    )
