"""What only the PostgreSQL index does: paths relative to the shared storage folder."""

from __future__ import annotations

from pathlib import Path

import pytest_twisted
from twisted.internet import reactor

from stowpair.archive.pg_index import PostgresIndex
from stowpair.db.postgres import PostgresDatabase
from tests.archive.test_index import STUDY, record


@pytest_twisted.ensureDeferred
async def test_nodes_may_mount_the_storage_elsewhere(postgres_url: str, tmp_path: Path) -> None:
    """When a node indexes a file of the shared storage folder, another node that mounts
    the folder at another path finds the file under its own path."""
    database = PostgresDatabase(postgres_url, reactor)
    await database.open()
    try:
        here, there = tmp_path / "node-a", tmp_path / "node-b"
        (here / "s").mkdir(parents=True)
        (there / "s").mkdir(parents=True)
        a, b = PostgresIndex(database, here), PostgresIndex(database, there)
        r = record(here / "s", "1.2.3.1", "1.2.3.1.1")
        (there / "s" / r.path.name).write_bytes(r.path.read_bytes())
        await a.add([r])
        [seen] = (await b.query(STUDY)).instances
        assert seen.path == there / "s" / "1.2.3.1.1.dcm"
        rows = await database.run(lambda db: db.execute("SELECT path FROM instance").fetchall())
        assert [row[0] for row in rows] == ["s/1.2.3.1.1.dcm"]
    finally:
        await database.close()
