"""Task gauges read from the task store on a schedule, served from the last reading."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from twisted.internet.defer import Deferred

from stowpair.exporter.outcome import TaskStatus
from stowpair.metrics.tasks import TaskGauges
from tests.queue.helpers import clock_at, memory_store, new_task, result_of

T0 = 1_000_000.0


def gauges(store: Any, clock: Any, queues: tuple[str, ...] = ("Export1",)) -> TaskGauges:
    return TaskGauges(store, clock, lambda: "stowpair", lambda: queues, interval=10)


def registry_of(g: TaskGauges) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(g)
    return registry


def test_counts_by_queue_and_status() -> None:
    """When the store holds tasks in several states, stowpair_tasks counts each."""
    clock = clock_at(T0)
    store = memory_store(clock)
    for _ in range(3):
        result_of(store.create(new_task(T0 + 60)))
    done = result_of(store.create(new_task(T0)))
    result_of(store.update(done.task_id, {"status": TaskStatus.FAILED}))
    result_of(store.create(new_task(T0, queue_name="Other")))
    g = gauges(store, clock, ("Export1", "Other"))
    result_of(g.refresh())
    r = registry_of(g)
    value = r.get_sample_value
    assert value("stowpair_tasks", {"queue": "Export1", "status": "SCHEDULED"}) == 3
    assert value("stowpair_tasks", {"queue": "Export1", "status": "FAILED"}) == 1
    assert value("stowpair_tasks", {"queue": "Export1", "status": "IN PROCESS"}) == 0
    assert value("stowpair_tasks", {"queue": "Other", "status": "SCHEDULED"}) == 1


@pytest.mark.parametrize(
    ("scheduled", "expected"),
    [(T0 - 90, 90.0), (T0, 0.0), (T0 + 30, 0.0)],
    ids=["due 90 s ago", "due now", "not yet due"],
)
def test_oldest_due_age(scheduled: float, expected: float) -> None:
    """When the oldest pending task became due some seconds ago, that is its age; a task
    not yet due counts 0."""
    clock = clock_at(T0)
    store = memory_store(clock)
    result_of(store.create(new_task(scheduled)))
    result_of(store.create(new_task(T0 + 600)))
    g = gauges(store, clock)
    result_of(g.refresh())
    age = registry_of(g).get_sample_value(
        "stowpair_queue_oldest_due_task_age_seconds", {"queue": "Export1"}
    )
    assert age == expected


def test_retry_waiting_counts_as_due() -> None:
    """When a SCHEDULED FOR RETRY task's time has passed, it is the oldest due task."""
    clock = clock_at(T0)
    store = memory_store(clock)
    task = result_of(store.create(new_task(T0 - 20)))
    result_of(store.update(task.task_id, {"status": TaskStatus.SCHEDULED_FOR_RETRY}))
    g = gauges(store, clock)
    result_of(g.refresh())
    age = registry_of(g).get_sample_value(
        "stowpair_queue_oldest_due_task_age_seconds", {"queue": "Export1"}
    )
    assert age == 20


def test_scrape_reads_the_cache_not_the_store() -> None:
    """When scraped between refreshes, the gauges show the last reading and the store is
    not asked."""
    clock = clock_at(T0)
    store = memory_store(clock)
    result_of(store.create(new_task(T0)))
    g = gauges(store, clock)
    result_of(g.refresh())
    result_of(store.create(new_task(T0)))
    asked: list[str] = []
    store.count = lambda flt: asked.append("count") or Deferred()  # type: ignore[method-assign]
    value = registry_of(g).get_sample_value(
        "stowpair_tasks", {"queue": "Export1", "status": "SCHEDULED"}
    )
    assert (value, asked) == (1, [])


def test_loop_refreshes_every_interval() -> None:
    """When the interval passes, the loop reads the store again."""
    clock = clock_at(T0)
    store = memory_store(clock)
    g = gauges(store, clock)
    g.start()
    try:
        first = g.snapshot
        result_of(store.create(new_task(T0)))
        clock.advance(10)
        assert first is not None and g.snapshot is not None
        assert g.snapshot.taken == T0 + 10
        assert g.snapshot.counts[("Export1", "SCHEDULED")] == 1
    finally:
        g.stop()


def test_slow_refresh_is_not_started_twice() -> None:
    """When a refresh is still waiting for the store, the next tick starts none."""
    clock = clock_at(T0)
    store = memory_store(clock)
    pending: list[Deferred[int]] = []

    def slow_count(flt: Any) -> Deferred[int]:
        pending.append(Deferred())
        return pending[-1]

    store.count = slow_count  # type: ignore[method-assign]
    g = gauges(store, clock)
    g.start()
    try:
        clock.advance(10)
        clock.advance(10)
        assert len(pending) == 1
    finally:
        g.stop()


def test_failed_refresh_keeps_values_and_logs() -> None:
    """When the store fails, the previous reading stays and metrics.refresh.failed is
    logged."""
    from twisted.internet.defer import fail
    from twisted.logger import globalLogPublisher

    clock = clock_at(T0)
    store = memory_store(clock)
    result_of(store.create(new_task(T0)))
    g = gauges(store, clock)
    result_of(g.refresh())
    store.count = lambda flt: fail(RuntimeError("database is locked"))  # type: ignore[method-assign]
    seen: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(seen.append)
    try:
        result_of(g.refresh())
    finally:
        globalLogPublisher.removeObserver(seen.append)
    assert g.snapshot is not None and g.snapshot.counts[("Export1", "SCHEDULED")] == 1
    [event] = [e for e in seen if e.get("event") == "metrics.refresh.failed"]
    assert event["error"] == "database is locked"


def test_no_gauges_before_the_first_reading() -> None:
    """When nothing was read yet, the gauges are absent rather than zero."""
    clock = clock_at(T0)
    g = gauges(memory_store(clock), clock)
    assert list(g.collect()) == []
