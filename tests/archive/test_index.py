"""The SQLite instance index (stowpair.archive.index): what only SQLite does; the rest is
the index contract (test_index_contract.py)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest_twisted
from twisted.internet import reactor

from stowpair.archive.index import SQLiteIndex
from stowpair.archive.model import InstanceRecord

STUDY = "1.2.3"


def record(tmp: Path, series: str, sop: str, size: int = 10, **kw: object) -> InstanceRecord:
    path = tmp / f"{sop}.dcm"
    path.write_bytes(b"x" * size)
    fields: dict = dict(
        study_uid=STUDY,
        series_uid=series,
        sop_instance_uid=sop,
        sop_class_uid="1.2.840.10008.5.1.4.1.1.2",
        transfer_syntax_uid="1.2.840.10008.1.2.1",
        path=path,
        size=size,
        modality="CT",
        patient_id="P1",
        study_date="20240101",
        source="TEST_AE",
        received_time=100.0,
    )
    fields.update(kw)
    return InstanceRecord(**fields)


@pytest_twisted.ensureDeferred
async def test_index_survives_restart(tmp_path: Path) -> None:
    """When the index is closed and opened again, every record is still there."""
    database = tmp_path / "db" / "index.sqlite"
    first = SQLiteIndex(database, reactor)
    r = record(tmp_path, "1.2.3.1", "1.2.3.1.1")
    await first.add([r])
    await first.close()
    second = SQLiteIndex(database, reactor)
    try:
        assert await second.opened == 1
        assert (await second.query(STUDY)).instances == (r,)
        assert await second.has_instances()
    finally:
        await second.close()


@pytest_twisted.ensureDeferred
async def test_wal_mode_on_disk(index: SQLiteIndex) -> None:
    """When the index is open, the database file is in WAL journal mode."""
    conn = sqlite3.connect(index.database)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


@pytest_twisted.ensureDeferred
async def test_sqlite_runs_on_one_worker_thread(tmp_path: Path) -> None:
    """When the index is used, SQLite runs on one thread that is not the reactor's."""
    seen: set[threading.Thread] = set()

    class Spy(SQLiteIndex):
        def _scalar(self, sql: str) -> int:
            seen.add(threading.current_thread())
            return super()._scalar(sql)

    spy = Spy(tmp_path / "i.sqlite", reactor)
    try:
        await spy.count()
        await spy.has_instances()
    finally:
        await spy.close()
    assert len(seen) == 1 and threading.main_thread() not in seen


@pytest_twisted.ensureDeferred
async def test_two_writers_share_the_database(tmp_path: Path) -> None:
    """When two index objects (the service and the CLI) write at once, nothing is lost."""
    database = tmp_path / "shared.sqlite"
    service, cli = SQLiteIndex(database, reactor), SQLiteIndex(database, reactor)
    try:
        batches = [
            [record(tmp_path, "1.2.3.1", f"1.2.3.1.{who}{n}") for n in range(1, 50)]
            for who in (1, 2)
        ]
        from twisted.internet.defer import gatherResults

        added = await gatherResults([service.add(batches[0]), cli.add(batches[1])])
        assert added == [49, 49]
        assert await cli.count() == 98
    finally:
        await service.close()
        await cli.close()
