"""The task gauges from every task store (SQLite in memory and on its thread, PostgreSQL):
they use only the store's interface, so each gives the same figures."""

from __future__ import annotations

from typing import Any

import pytest_twisted
from prometheus_client import CollectorRegistry
from twisted.internet import reactor as _reactor
from twisted.internet.task import Clock

from stowpair.exporter.outcome import TaskStatus
from stowpair.metrics.tasks import TaskGauges
from tests.queue.conftest import store  # noqa: F401  (the fixture of every store)
from tests.queue.helpers import new_task

reactor: Any = _reactor


@pytest_twisted.ensureDeferred
async def test_gauges_from_every_store(store: Any) -> None:  # noqa: F811
    """When a store holds two due tasks (one due 100 s ago), one not yet due and one
    FAILED, every store gives 3 SCHEDULED, 1 FAILED and an oldest due age of 100 s."""
    now = reactor.seconds()
    await store.create(new_task(now - 100))
    await store.create(new_task(now - 10))
    await store.create(new_task(now + 3600))
    failed = await store.create(new_task(now - 50))
    await store.update(failed.task_id, {"status": TaskStatus.FAILED})
    clock = Clock()
    clock.advance(now)
    gauges = TaskGauges(store, clock, lambda: "stowpair", lambda: ("Export1",))
    await gauges.refresh()
    registry = CollectorRegistry()
    registry.register(gauges)
    value = registry.get_sample_value
    assert value("stowpair_tasks", {"queue": "Export1", "status": "SCHEDULED"}) == 3
    assert value("stowpair_tasks", {"queue": "Export1", "status": "FAILED"}) == 1
    age = value("stowpair_queue_oldest_due_task_age_seconds", {"queue": "Export1"})
    assert age is not None and abs(age - 100) < 1
