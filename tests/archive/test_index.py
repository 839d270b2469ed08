"""The SQLite instance index (stowpair.archive.index)."""

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
async def test_add_then_query_returns_every_field(index: SQLiteIndex, tmp_path: Path) -> None:
    """When records are added, the query returns them with every field intact."""
    records = [record(tmp_path, "1.2.3.1", "1.2.3.1.1"), record(tmp_path, "1.2.3.2", "1.2.3.2.1")]
    assert await index.add(records) == 2
    result = await index.query(STUDY)
    assert result.instances == tuple(records)
    assert result.missing == ()


@pytest_twisted.ensureDeferred
async def test_adding_again_changes_nothing(index: SQLiteIndex, tmp_path: Path) -> None:
    """When the same records are added twice, none is new and received_time is kept."""
    r = record(tmp_path, "1.2.3.1", "1.2.3.1.1")
    await index.add([r])
    assert await index.add([InstanceRecord(**{**r.__dict__, "received_time": 999.0})]) == 0
    assert await index.get(r.sop_instance_uid) == r


@pytest_twisted.ensureDeferred
async def test_query_by_series_and_instance(index: SQLiteIndex, tmp_path: Path) -> None:
    """When a series or an instance is named, only its instances are returned."""
    a = record(tmp_path, "1.2.3.1", "1.2.3.1.1")
    b = record(tmp_path, "1.2.3.1", "1.2.3.1.2", received_time=101.0)
    c = record(tmp_path, "1.2.3.2", "1.2.3.2.1")
    await index.add([a, b, c])
    assert (await index.query(STUDY, "1.2.3.1")).instances == (a, b)
    assert (await index.query(STUDY, "*", "1.2.3.2.1")).instances == (c,)
    assert (await index.query(STUDY, "1.2.3.1", "1.2.3.2.1")).instances == ()
    assert (await index.query("9.9")).instances == ()


@pytest_twisted.ensureDeferred
async def test_missing_file_is_reported(index: SQLiteIndex, tmp_path: Path) -> None:
    """When an indexed file is gone from disk, the query lists it as missing."""
    a = record(tmp_path, "1.2.3.1", "1.2.3.1.1")
    b = record(tmp_path, "1.2.3.1", "1.2.3.1.2")
    await index.add([a, b])
    b.path.unlink()
    result = await index.query(STUDY)
    assert (result.instances, result.missing) == ((a,), (b,))


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
async def test_counts(index: SQLiteIndex, tmp_path: Path) -> None:
    """When the archive is empty and then filled, count/has_instances/count_studies agree."""
    assert not await index.has_instances()
    await index.add([record(tmp_path, "1.2.3.1", "1.2.3.1.1"), record(tmp_path, "1.2.3.1", "1.2")])
    assert (await index.count(), await index.count_studies(), await index.has_instances()) == (
        2,
        1,
        True,
    )
    assert await index.get("7.7") is None


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
