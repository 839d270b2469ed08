"""Schema versions: PostgreSQL migrations (one file per version) and the SQLite task
store's steps; a database newer than this stowpair is refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest
import pytest_twisted
from twisted.internet import reactor

from stowpair.db.adapter import PostgresDb
from stowpair.db.errors import DatabaseUnavailable, SchemaError
from stowpair.db.migrate import Migration, bundled, checked, migrate
from stowpair.db.postgres import PostgresDatabase
from stowpair.exporter.outcome import TaskStatus
from stowpair.queue import sql
from stowpair.queue.model import TaskFilter
from stowpair.queue.store import SQLiteTaskStore
from tests.queue.helpers import clock_at, result_of
from tests.support.peers import free_port


def run_migrate(url: str, migrations: list[Migration]) -> int:
    with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
        return migrate(PostgresDb(conn), migrations)


def test_bundled_migrations_are_numbered_without_gaps() -> None:
    """When the package is installed, its migration files run 0001, 0002 ... in order."""
    versions = [m.version for m in bundled()]
    assert versions == list(range(1, len(versions) + 1)) and versions


def test_a_gap_in_the_migrations_is_refused() -> None:
    """When a version is missing, the migrations are not used."""
    with pytest.raises(SchemaError, match="expected version 0002"):
        checked([Migration(1, "0001_a.sql", ""), Migration(3, "0003_c.sql", "")])


def test_missing_migrations_are_applied_in_order(postgres_url: str) -> None:
    """When the database is at version 1 and versions 2 and 3 exist, both run, in order,
    and a second start changes nothing."""
    steps = [
        Migration(1, "0001_a.sql", "CREATE TABLE a (x INTEGER)"),
        Migration(2, "0002_b.sql", "INSERT INTO a VALUES (2)"),
        Migration(3, "0003_c.sql", "INSERT INTO a VALUES (3); ALTER TABLE a ADD y TEXT"),
    ]
    assert run_migrate(postgres_url, steps[:1]) == 1
    assert run_migrate(postgres_url, steps) == 3
    assert run_migrate(postgres_url, steps) == 3
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT x FROM a ORDER BY x").fetchall() == [(2,), (3,)]
        versions = conn.execute("SELECT version FROM stowpair_schema ORDER BY 1").fetchall()
    assert versions == [(1,), (2,), (3,)]


def test_a_newer_schema_is_refused(postgres_url: str) -> None:
    """When another (newer) stowpair migrated the database past what this one knows, it
    refuses to use it, saying so."""
    steps = [Migration(1, "0001_a.sql", "CREATE TABLE a (x INTEGER)")]
    run_migrate(postgres_url, [*steps, Migration(2, "0002_b.sql", "SELECT 1")])
    with pytest.raises(SchemaError, match="version 2, newer than this stowpair knows"):
        run_migrate(postgres_url, steps)


@pytest_twisted.ensureDeferred
async def test_the_service_database_opens_at_the_newest_version(postgres_url: str) -> None:
    """When the service opens an empty database, it creates the whole schema."""
    database = PostgresDatabase(postgres_url, reactor)
    try:
        assert await database.open() == bundled()[-1].version
    finally:
        await database.close()


@pytest_twisted.ensureDeferred
async def test_an_unreachable_database_says_where() -> None:
    """When PostgreSQL is not listening, opening fails with one sentence naming the
    server (no password) and what to check."""
    unused_port = free_port()
    url = f"postgresql://stowpair:secret@127.0.0.1:{unused_port}/nothing"
    database = PostgresDatabase(url, reactor)
    try:
        with pytest.raises(DatabaseUnavailable) as caught:
            await database.open()
    finally:
        await database.close()
    message = str(caught.value)
    assert f"127.0.0.1:{unused_port}/nothing" in message and "secret" not in message


def test_a_version_1_sqlite_task_store_is_upgraded(tmp_path: Path) -> None:
    """When a task store written by an older stowpair (no schema version) is opened, its
    tasks and results stay and the new columns and tables are added."""
    path = tmp_path / "tasks.sqlite"
    db = sqlite3.connect(path)
    db.executescript(sql.SQLITE_SCHEMA)
    db.execute(
        "INSERT INTO task (device_name, queue_name, task_status, exporter_id, local_aet,"
        " study_iuid, created_time, updated_time, scheduled_time) VALUES"
        " ('stowpair', 'Export1', 'IN PROCESS', 'E', 'AE', '1.2', 1, 1, 1)"
    )
    db.execute("INSERT INTO task_instance VALUES (1, 1, '9', '8', '7', 'COMPLETED', '', NULL,"
               " 200, 10, 0.1)")  # fmt: skip
    db.commit()
    db.close()
    store = SQLiteTaskStore(path, clock_at())
    [task] = result_of(store.find(TaskFilter()))
    delivered = result_of(store.delivered(task.task_id))
    result_of(store.close())
    assert (task.status, task.epoch, delivered) == (TaskStatus.IN_PROCESS, 0, frozenset({"9"}))
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == sql.SQLITE_VERSION


def test_a_newer_sqlite_task_store_is_refused(tmp_path: Path) -> None:
    """When the task store file has a newer schema version, it is not used."""
    path = tmp_path / "tasks.sqlite"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {sql.SQLITE_VERSION + 1}")
    store = SQLiteTaskStore(path, clock_at())
    with pytest.raises(SchemaError, match="newer than this stowpair knows"):
        result_of(store.ready)
