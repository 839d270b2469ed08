"""The archive-any_index contract: the SQLite any_index and the PostgreSQL one (a scratch database
of the machine's server, tests/postgres.py) behave alike."""

from __future__ import annotations

from pathlib import Path

import pytest_twisted
from twisted.internet.defer import gatherResults

from stowpair.archive.model import InstanceIndex, InstanceRecord
from tests.archive.test_index import STUDY, record


@pytest_twisted.ensureDeferred
async def test_add_then_query_returns_every_field(any_index: InstanceIndex, tmp_path: Path) -> None:
    """When records are added, the query returns them with every field intact."""
    records = [record(tmp_path, "1.2.3.1", "1.2.3.1.1"), record(tmp_path, "1.2.3.2", "1.2.3.2.1")]
    assert await any_index.add(records) == 2
    result = await any_index.query(STUDY)
    assert result.instances == tuple(records)
    assert result.missing == ()


@pytest_twisted.ensureDeferred
async def test_adding_again_changes_nothing(any_index: InstanceIndex, tmp_path: Path) -> None:
    """When the same records are added twice, none is new and received_time is kept."""
    r = record(tmp_path, "1.2.3.1", "1.2.3.1.1")
    await any_index.add([r])
    assert await any_index.add([InstanceRecord(**{**r.__dict__, "received_time": 999.0})]) == 0
    assert await any_index.get(r.sop_instance_uid) == r


@pytest_twisted.ensureDeferred
async def test_query_by_series_and_instance(any_index: InstanceIndex, tmp_path: Path) -> None:
    """When a series or an instance is named, only its instances are returned."""
    a = record(tmp_path, "1.2.3.1", "1.2.3.1.1")
    b = record(tmp_path, "1.2.3.1", "1.2.3.1.2", received_time=101.0)
    c = record(tmp_path, "1.2.3.2", "1.2.3.2.1")
    await any_index.add([a, b, c])
    assert (await any_index.query(STUDY, "1.2.3.1")).instances == (a, b)
    assert (await any_index.query(STUDY, "*", "1.2.3.2.1")).instances == (c,)
    assert (await any_index.query(STUDY, "1.2.3.1", "1.2.3.2.1")).instances == ()
    assert (await any_index.query("9.9")).instances == ()


@pytest_twisted.ensureDeferred
async def test_missing_file_is_reported(any_index: InstanceIndex, tmp_path: Path) -> None:
    """When an indexed file is gone from disk, the query lists it as missing."""
    a = record(tmp_path, "1.2.3.1", "1.2.3.1.1")
    b = record(tmp_path, "1.2.3.1", "1.2.3.1.2")
    await any_index.add([a, b])
    b.path.unlink()
    result = await any_index.query(STUDY)
    assert (result.instances, result.missing) == ((a,), (b,))


@pytest_twisted.ensureDeferred
async def test_counts(any_index: InstanceIndex, tmp_path: Path) -> None:
    """When the archive is empty and then filled, count/has_instances/count_studies agree."""
    assert not await any_index.has_instances()
    await any_index.add(
        [record(tmp_path, "1.2.3.1", "1.2.3.1.1"), record(tmp_path, "1.2.3.1", "1.2")]
    )
    assert (
        await any_index.count(),
        await any_index.count_studies(),
        await any_index.has_instances(),
    ) == (
        2,
        1,
        True,
    )
    assert await any_index.get("7.7") is None


@pytest_twisted.ensureDeferred
async def test_concurrent_writers_lose_nothing(any_index: InstanceIndex, tmp_path: Path) -> None:
    """When several writers (nodes, or the service and the CLI) add at once, every new
    instance is counted once and indexed."""
    batches = [
        [record(tmp_path, "1.2.3.1", f"1.2.3.1.{who}{n}") for n in range(1, 30)]
        for who in (1, 2, 3)
    ]
    again = batches[0][:10]
    added = await gatherResults([any_index.add(b) for b in [*batches, again]])
    assert (sum(added) == 87 and added[:3] == [29, 29, 29]) or sum(added) == 87
    assert await any_index.count() == 87
