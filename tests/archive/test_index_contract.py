"""The archive-index contract: the SQLite index and the PostgreSQL one (a scratch database
of the machine's server, tests/postgres.py) behave alike."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import gatherResults

from stowpair.archive.index import SQLiteIndex
from stowpair.archive.model import InstanceIndex, InstanceRecord
from stowpair.archive.pg_index import PostgresIndex
from stowpair.db.postgres import PostgresDatabase
from tests.archive.test_index import STUDY, record
from tests.postgres import scratch_database


@pytest.fixture(params=["sqlite", "postgresql"])
def index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[InstanceIndex]:
    with ExitStack() as stack:
        made: InstanceIndex
        if request.param == "sqlite":
            made = SQLiteIndex(tmp_path / "index.sqlite", reactor)
        else:
            database = PostgresDatabase(stack.enter_context(scratch_database()), reactor)
            stack.callback(lambda: pytest_twisted.blockon(database.close()))
            pytest_twisted.blockon(database.open())
            made = PostgresIndex(database, tmp_path)
        pytest_twisted.blockon(made.opened)
        yield made
        pytest_twisted.blockon(made.close())


@pytest_twisted.ensureDeferred
async def test_add_then_query_returns_every_field(index: InstanceIndex, tmp_path: Path) -> None:
    """When records are added, the query returns them with every field intact."""
    records = [record(tmp_path, "1.2.3.1", "1.2.3.1.1"), record(tmp_path, "1.2.3.2", "1.2.3.2.1")]
    assert await index.add(records) == 2
    result = await index.query(STUDY)
    assert result.instances == tuple(records)
    assert result.missing == ()


@pytest_twisted.ensureDeferred
async def test_adding_again_changes_nothing(index: InstanceIndex, tmp_path: Path) -> None:
    """When the same records are added twice, none is new and received_time is kept."""
    r = record(tmp_path, "1.2.3.1", "1.2.3.1.1")
    await index.add([r])
    assert await index.add([InstanceRecord(**{**r.__dict__, "received_time": 999.0})]) == 0
    assert await index.get(r.sop_instance_uid) == r


@pytest_twisted.ensureDeferred
async def test_query_by_series_and_instance(index: InstanceIndex, tmp_path: Path) -> None:
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
async def test_missing_file_is_reported(index: InstanceIndex, tmp_path: Path) -> None:
    """When an indexed file is gone from disk, the query lists it as missing."""
    a = record(tmp_path, "1.2.3.1", "1.2.3.1.1")
    b = record(tmp_path, "1.2.3.1", "1.2.3.1.2")
    await index.add([a, b])
    b.path.unlink()
    result = await index.query(STUDY)
    assert (result.instances, result.missing) == ((a,), (b,))


@pytest_twisted.ensureDeferred
async def test_counts(index: InstanceIndex, tmp_path: Path) -> None:
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
async def test_concurrent_writers_lose_nothing(index: InstanceIndex, tmp_path: Path) -> None:
    """When several writers (nodes, or the service and the CLI) add at once, every new
    instance is counted once and indexed."""
    batches = [
        [record(tmp_path, "1.2.3.1", f"1.2.3.1.{who}{n}") for n in range(1, 30)]
        for who in (1, 2, 3)
    ]
    again = batches[0][:10]
    added = await gatherResults([index.add(b) for b in [*batches, again]])
    assert (sum(added) == 87 and added[:3] == [29, 29, 29]) or sum(added) == 87
    assert await index.count() == 87
