"""One connection interface for the stores' SQL, whichever engine runs it.

The task store's transactions are written once against :class:`Db`: ``?`` placeholders,
SQL that SQLite and PostgreSQL both accept, and a :class:`Dialect` for the few places
where they differ (row locks, "no limit", the insertion order of result rows, locks on a
key). :class:`PostgresDb` turns ``?`` into psycopg's ``%s``.
"""

from __future__ import annotations

import enum
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Dialect:
    name: str
    #: What ``LIMIT`` takes for "no limit".
    no_limit: str
    #: A column giving the insertion order of ``task_instance`` rows.
    row_order: str
    #: Appended to a SELECT that claims rows other nodes may claim at the same time.
    skip_locked: str
    #: Appended to a SELECT whose rows the transaction goes on to change.
    for_update: str


SQLITE = Dialect("sqlite", no_limit="-1", row_order="rowid", skip_locked="", for_update="")
POSTGRES = Dialect(
    "postgresql",
    no_limit="ALL",
    row_order="id",
    skip_locked=" FOR UPDATE SKIP LOCKED",
    for_update=" FOR UPDATE",
)


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Db(Protocol):
    """A connection inside one transaction."""

    dialect: Dialect

    def execute(self, query: str, params: Sequence[Any] = ()) -> Cursor: ...

    def executemany(self, query: str, rows: Sequence[Sequence[Any]]) -> None: ...

    def lock(self, key: str) -> None:
        """Hold a lock on ``key`` until the transaction ends (a key other nodes lock too)."""


class SQLiteDb:
    """:class:`Db` on an sqlite3 connection; ``BEGIN IMMEDIATE`` serialises writers, so
    :meth:`lock` has nothing to add."""

    dialect = SQLITE

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, query: str, params: Sequence[Any] = ()) -> Cursor:
        return self.conn.execute(query, params)

    def executemany(self, query: str, rows: Sequence[Sequence[Any]]) -> None:
        self.conn.executemany(query, rows)

    def lock(self, key: str) -> None:
        pass


class PostgresDb:
    """:class:`Db` on a psycopg connection inside a transaction."""

    dialect = POSTGRES

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def execute(self, query: str, params: Sequence[Any] = ()) -> Cursor:
        cursor: Cursor = self.conn.execute(_pg(query), _values(params))
        return cursor

    def executemany(self, query: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            with self.conn.cursor() as cursor:
                cursor.executemany(_pg(query), [_values(r) for r in rows])

    def lock(self, key: str) -> None:
        self.conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [key])


def _pg(query: str) -> str:
    """``?`` placeholders as psycopg's ``%s`` (our SQL has no ``?`` or ``%`` literals)."""
    return query.replace("%", "%%").replace("?", "%s")


def _values(params: Sequence[Any]) -> list[Any]:
    # psycopg would send an Enum's name; the stores keep the value (e.g. "IN PROCESS")
    return [p.value if isinstance(p, enum.Enum) else p for p in params]
