"""The task-store contract every implementation passes: SQLite in memory driven inline,
SQLite in a file on its worker thread, PostgreSQL (a scratch database of the machine's
server, tests/postgres.py) on its connection pool.

Durable progress: per-instance results are recorded while an attempt runs, are seen as
delivered at once, survive a reopen, and never land on a task that is not running.
Cluster: due tasks are claimed by one node each, writes are fenced by the lease, silent
nodes' tasks are found, and the export-rule debounce holds across nodes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor

from stowpair.exporter.outcome import InstanceStatus, TaskStatus
from stowpair.queue.model import InstanceResult
from stowpair.queue.store import SQLiteTaskStore, TaskStore
from tests.queue.helpers import new_task

RUNNING = (TaskStatus.IN_PROCESS, TaskStatus.CANCELED)


def result(
    task_id: int, sop: str, status: InstanceStatus, code: int | None = None
) -> InstanceResult:
    return InstanceResult(task_id, 1, sop, "1.2.3.4", "1.2.840.10008.5.1.4.1.1.2", status,
                          reason="why" if code else "", reason_code=code)  # fmt: skip


async def running_task(store: TaskStore) -> int:
    task = await store.create(new_task(0.0))
    await store.update(task.task_id, {"status": TaskStatus.IN_PROCESS})
    return task.task_id


@pytest_twisted.ensureDeferred
async def test_recorded_results_are_delivered_at_once(store: TaskStore) -> None:
    """When an attempt records a request's results, delivered() sees the COMPLETED and
    WARNING ones at once, before the attempt ends."""
    task_id = await running_task(store)
    written = await store.record_results(task_id, [
        result(task_id, "1", InstanceStatus.COMPLETED),
        result(task_id, "2", InstanceStatus.WARNING),
        result(task_id, "3", InstanceStatus.FAILED),
    ], RUNNING)  # fmt: skip
    assert written is True
    assert await store.delivered(task_id) == frozenset({"1", "2"})


@pytest.mark.parametrize("state", ["scheduled", "completed", "deleted"])
@pytest_twisted.ensureDeferred
async def test_results_land_only_on_a_running_task(store: TaskStore, state: str) -> None:
    """When the task is no longer running (or gone), recording writes nothing and says so."""
    task_id = await running_task(store)
    if state == "deleted":
        await store.delete(task_id)
    else:
        status = TaskStatus.SCHEDULED if state == "scheduled" else TaskStatus.COMPLETED
        await store.update(task_id, {"status": status})
    written = await store.record_results(
        task_id, [result(task_id, "1", InstanceStatus.COMPLETED)], RUNNING
    )
    assert written is False
    assert await store.results(task_id) == []


@pytest_twisted.ensureDeferred
async def test_finish_adds_the_rest_after_recorded_results(store: TaskStore) -> None:
    """When an attempt ends after recording some results, finish stores the rest and the
    new state; every result is there once, in order."""
    task_id = await running_task(store)
    await store.record_results(task_id, [result(task_id, "1", InstanceStatus.COMPLETED)], RUNNING)
    task = await store.finish(
        task_id,
        [result(task_id, "2", InstanceStatus.MISSING)],
        {"status": TaskStatus.FAILED},
        RUNNING,
    )
    assert task is not None and task.status == TaskStatus.FAILED
    assert [r.sop_instance_uid for r in await store.results(task_id)] == ["1", "2"]


@pytest_twisted.ensureDeferred
async def test_refusals_are_the_latest_coded_failures(store: TaskStore) -> None:
    """When instances failed, refusals() lists those whose latest result is FAILED with a
    Failure Reason code, once each; one delivered later or failed without a code is not."""
    task_id = await running_task(store)
    await store.record_results(task_id, [
        result(task_id, "1", InstanceStatus.FAILED, 0xC000),
        result(task_id, "2", InstanceStatus.FAILED, 0xA700),
        result(task_id, "3", InstanceStatus.FAILED),
        result(task_id, "2", InstanceStatus.COMPLETED),
        result(task_id, "4", InstanceStatus.FAILED, 0xA900),
        result(task_id, "4", InstanceStatus.FAILED, 0xC122),
    ], RUNNING)  # fmt: skip
    refused = [(r.sop_instance_uid, r.reason_code) for r in await store.refusals(task_id)]
    assert refused == [("1", 0xC000), ("4", 0xC122)]


@pytest_twisted.ensureDeferred
async def test_reschedule_clears_recorded_results(store: TaskStore) -> None:
    """When a task is rescheduled (clear_results), recorded results are gone too."""
    task_id = await running_task(store)
    await store.record_results(task_id, [result(task_id, "1", InstanceStatus.COMPLETED)], RUNNING)
    await store.update(task_id, {"status": TaskStatus.SCHEDULED}, clear_results=True)
    assert await store.delivered(task_id) == frozenset()


@pytest_twisted.ensureDeferred
async def test_recorded_results_survive_reopening(tmp_path: Path) -> None:
    """When the store is closed without the attempt ending (as after kill -9) and opened
    again, the recorded results are there and the task is still IN PROCESS."""
    path = tmp_path / "tasks.sqlite"
    store = SQLiteTaskStore.on_thread(path, reactor)
    task_id = await running_task(store)
    await store.record_results(task_id, [result(task_id, "1", InstanceStatus.COMPLETED)], RUNNING)
    await store.close()
    reopened = SQLiteTaskStore.on_thread(path, reactor)
    try:
        assert await reopened.delivered(task_id) == frozenset({"1"})
        task = await reopened.get(task_id)
        assert task is not None and task.status == TaskStatus.IN_PROCESS
    finally:
        await reopened.close()
