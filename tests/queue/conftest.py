"""The task store fixture: every implementation, for the contract suites."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor

from stowpair.db.postgres import PostgresDatabase
from stowpair.queue.pgstore import PostgresTaskStore
from stowpair.queue.store import SQLiteTaskStore, TaskStore
from tests.postgres import scratch_database
from tests.queue.helpers import clock_at

STORES = ["sqlite-memory", "sqlite-file-thread", "postgresql"]


def make_store(kind: str, tmp_path: Path, stack: ExitStack) -> TaskStore:
    if kind == "sqlite-memory":
        return SQLiteTaskStore(":memory:", clock_at())
    if kind == "sqlite-file-thread":
        return SQLiteTaskStore.on_thread(tmp_path / "tasks.sqlite", reactor)
    database = PostgresDatabase(stack.enter_context(scratch_database()), reactor)
    stack.callback(lambda: pytest_twisted.blockon(database.close()))
    pytest_twisted.blockon(database.open())
    return PostgresTaskStore(database, reactor)


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TaskStore]:
    with ExitStack() as stack:
        made = make_store(request.param, tmp_path, stack)
        yield made
        pytest_twisted.blockon(made.close())
