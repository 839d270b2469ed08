"""The cluster half of the task-store contract, for every store (tests/queue/conftest.py):
claims, leases and fencing, heartbeats, silent nodes, the debounce across nodes."""

from __future__ import annotations

import pytest_twisted
from twisted.internet.defer import DeferredList, gatherResults
from twisted.internet.task import Clock

from stowpair.exporter.outcome import InstanceStatus, TaskStatus
from stowpair.queue.model import InstanceResult, Lease, Task
from stowpair.queue.store import TaskStore
from tests.queue.helpers import new_task

RUNNING = (TaskStatus.IN_PROCESS, TaskStatus.CANCELED)


def tick(store: TaskStore) -> None:
    """Let time pass for a store on a test Clock (real clocks move by themselves)."""
    clock = getattr(store, "_clock", None)
    if isinstance(clock, Clock):
        clock.advance(1)


def result(task_id: int, sop: str) -> InstanceResult:
    return InstanceResult(task_id, 1, sop, "1.2", "1.2.840.10008.5.1.4.1.1.2",
                          InstanceStatus.COMPLETED)  # fmt: skip


@pytest_twisted.ensureDeferred
async def test_claim_takes_due_tasks_of_any_node(store: TaskStore) -> None:
    """When a node claims, it gets due tasks whoever created them, oldest first, each now
    IN PROCESS under its name with a new epoch, with the status they had."""
    a = await store.create(new_task(20.0, device_name="node-a"))
    b = await store.create(new_task(10.0, device_name="node-b"))
    await store.update(b.task_id, {"status": TaskStatus.SCHEDULED_FOR_RETRY})
    await store.create(new_task(99.0))  # not due yet
    await store.create(new_task(0.0, queue_name="Other"))  # another queue
    claimed = await store.claim("node-c", "Export1", 50.0, 10)
    assert [(t.task_id, previous) for t, previous in claimed] == [
        (b.task_id, TaskStatus.SCHEDULED_FOR_RETRY),
        (a.task_id, TaskStatus.SCHEDULED),
    ]
    for task, _ in claimed:
        assert (task.status, task.device_name, task.epoch) == (TaskStatus.IN_PROCESS, "node-c", 1)
        assert task.processing_start_time == 50.0
    assert await store.claim("node-d", "Export1", 50.0, 10) == []


@pytest_twisted.ensureDeferred
async def test_concurrent_claims_never_share_a_task(store: TaskStore) -> None:
    """When several nodes claim at the same moment, every due task goes to exactly one."""
    for n in range(12):
        await store.create(new_task(float(n), study=f"1.{n}"))
    results = await gatherResults([store.claim(f"node-{n}", "Export1", 100.0, 3) for n in range(6)])
    ids = [task.task_id for claimed in results for task, _ in claimed]
    assert len(ids) == 12 and len(set(ids)) == 12


@pytest_twisted.ensureDeferred
async def test_claim_respects_the_limit(store: TaskStore) -> None:
    """When more tasks are due than the node has room for, it claims only that many."""
    for n in range(5):
        await store.create(new_task(float(n), study=f"1.{n}"))
    assert len(await store.claim("node-a", "Export1", 100.0, 2)) == 2


@pytest_twisted.ensureDeferred
async def test_writes_under_a_lost_lease_are_refused(store: TaskStore) -> None:
    """When a task was claimed again (its epoch moved on), the first holder's results,
    updates and final state are not written; the current holder's are."""
    await store.create(new_task(0.0))
    [(first, _)] = await store.claim("node-a", "Export1", 10.0, 1)
    back = {"status": TaskStatus.SCHEDULED_FOR_RETRY}
    assert await store.finish(first.task_id, [], back, RUNNING, first.lease) is not None
    [(second, _)] = await store.claim("node-b", "Export1", 20.0, 1)
    assert second.epoch == first.epoch + 1
    task_id = first.task_id
    assert (
        await store.record_results(task_id, [result(task_id, "1")], RUNNING, first.lease) is False
    )
    assert await store.update(task_id, {"failures": 5}, RUNNING, lease=first.lease) is None
    done = {"status": TaskStatus.COMPLETED}
    assert await store.finish(task_id, [result(task_id, "2")], done, RUNNING, first.lease) is None
    assert await store.results(task_id) == []
    assert await store.record_results(task_id, [result(task_id, "3")], RUNNING, second.lease)
    finished = await store.finish(task_id, [], done, RUNNING, second.lease)
    assert finished is not None and finished.status == TaskStatus.COMPLETED
    assert [r.sop_instance_uid for r in await store.results(task_id)] == ["3"]


@pytest_twisted.ensureDeferred
async def test_same_node_old_epoch_is_fenced_too(store: TaskStore) -> None:
    """When a node claims a task again after losing it, its earlier attempt's lease (same
    node, older epoch) no longer writes."""
    await store.create(new_task(0.0))
    [(first, _)] = await store.claim("node-a", "Export1", 10.0, 1)
    await store.update(first.task_id, {"status": TaskStatus.SCHEDULED})
    await store.claim("node-a", "Export1", 20.0, 1)
    stale = Lease("node-a", first.epoch)
    assert (
        await store.record_results(first.task_id, [result(first.task_id, "1")], RUNNING, stale)
        is False
    )


@pytest_twisted.ensureDeferred
async def test_heartbeat_reports_how_running_tasks_stand(store: TaskStore) -> None:
    """When a node heartbeats, it learns the status and lease of the tasks it runs: one
    cancelled through another node shows CANCELED, one deleted is absent."""
    for n in range(3):
        await store.create(new_task(0.0, study=f"1.{n}"))
    claimed = [t for t, _ in await store.claim("node-a", "Export1", 10.0, 3)]
    await store.update(claimed[1].task_id, {"status": TaskStatus.CANCELED})
    await store.delete(claimed[2].task_id)
    beat = await store.heartbeat("node-a", "host:1", [t.task_id for t in claimed])
    assert set(beat.tasks) == {claimed[0].task_id, claimed[1].task_id}
    assert beat.tasks[claimed[0].task_id].status == TaskStatus.IN_PROCESS
    assert beat.tasks[claimed[0].task_id].lease == claimed[0].lease
    assert beat.tasks[claimed[1].task_id].status == TaskStatus.CANCELED


@pytest_twisted.ensureDeferred
async def test_heartbeat_names_the_previous_process(store: TaskStore) -> None:
    """When another process heartbeated under the same name, the next heartbeat says which."""
    first = await store.heartbeat("node-a", "host:1", [])
    second = await store.heartbeat("node-a", "host:2", [])
    assert first.previous_process is None
    assert second.previous_process == "host:1" and second.previous_heartbeat is not None


async def held_by(store: TaskStore, device: str, study: str) -> Task:
    """A task IN PROCESS under ``device`` that never heartbeated (nor claimed)."""
    task = await store.create(new_task(0.0, study=study))
    changes = {"status": TaskStatus.IN_PROCESS, "device_name": device}
    updated = await store.update(task.task_id, changes)
    assert updated is not None
    return updated


@pytest_twisted.ensureDeferred
async def test_stalled_lists_tasks_of_silent_nodes_only(store: TaskStore) -> None:
    """When nodes stop heartbeating, their IN PROCESS tasks are stalled; a node that
    heartbeated (or claimed) since, the asking node itself and tasks not IN PROCESS are
    not."""
    for n in range(3):
        await store.create(new_task(0.0, study=f"1.{n}"))
    [(silent, _)] = await store.claim("node-silent", "Export1", 1.0, 1)  # a claim: a beat
    [(alive, _)] = await store.claim("node-alive", "Export1", 1.0, 1)
    [(mine, _)] = await store.claim("node-me", "Export1", 1.0, 1)
    never = await held_by(store, "node-never", "1.9")
    await store.create(new_task(0.0, study="1.10", device_name="node-never"))  # SCHEDULED
    tick(store)
    first = await store.heartbeat("node-alive", "host:2", [])
    beat = await store.heartbeat("node-alive", "host:2", [])
    assert first.previous_process == "" and beat.previous_heartbeat is not None
    stalled = await store.stalled("node-me", beat.previous_heartbeat)
    assert {t.task_id for t in stalled} == {silent.task_id, never.task_id}
    tick(store)
    stalled = await store.stalled("node-me", beat.previous_heartbeat + 3600)
    assert {t.task_id for t in stalled} == {silent.task_id, never.task_id, alive.task_id}
    assert all(t.status == TaskStatus.IN_PROCESS for t in stalled)
    assert mine.task_id not in {t.task_id for t in stalled}


@pytest_twisted.ensureDeferred
async def test_take_over_only_while_the_node_stays_silent(store: TaskStore) -> None:
    """When a stalled task is taken over, the change is made only while it is still held
    under the same lease by a node that has not heartbeated since: a node that came back,
    or a task claimed again meanwhile, keeps it."""
    silent = await held_by(store, "node-a", "1.1")
    back = await held_by(store, "node-b", "1.2")
    tick(store)
    await store.heartbeat("node-b", "host:2", [])  # node-b is back
    since = (await store.heartbeat("node-b", "host:2", [])).previous_heartbeat
    assert since is not None
    retry = {"status": TaskStatus.SCHEDULED_FOR_RETRY, "failures": 1}
    taken = await store.take_over(silent.task_id, silent.lease, since, retry)
    kept = await store.take_over(back.task_id, back.lease, since, retry)
    assert taken is not None and taken.status == TaskStatus.SCHEDULED_FOR_RETRY
    assert kept is None
    stale = Lease("node-b", back.epoch + 1)
    assert await store.take_over(back.task_id, stale, since + 3600, retry) is None


@pytest_twisted.ensureDeferred
async def test_debounce_holds_across_nodes(store: TaskStore) -> None:
    """When several nodes receive instances of one study at the same moment, export rules
    make one task for it, not one per node."""
    calls = [
        store.create_or_postpone(new_task(100.0 + n, device_name=f"node-{n % 3}"), "Study")
        for n in range(9)
    ]
    done = await DeferredList(calls, consumeErrors=True)
    assert all(ok for ok, _ in done)
    tasks = {task.task_id for ok, (task, _) in done}
    created = [created for ok, (_, created) in done if created]
    assert len(tasks) == 1 and created == [True]
    [task_id] = tasks
    task = await store.get(task_id)
    assert task is not None and task.scheduled_time == 108.0
