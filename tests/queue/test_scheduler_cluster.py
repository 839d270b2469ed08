"""Clock-driven tests of the scheduler in a cluster: leases lost and kept, nodes cut off
from the database, silent nodes' tasks taken over, results written once the database is
back. Several schedulers (nodes) share one in-memory store; a switch makes one node's
view of the database fail as an unreachable PostgreSQL does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, fail
from twisted.internet.task import Clock
from twisted.logger import LogEvent, globalLogPublisher

from stowpair.config.model import DatabaseConfig, Device, Queue
from stowpair.db.errors import DatabaseUnavailable
from stowpair.exporter.outcome import InstanceStatus, TaskStatus
from stowpair.queue.scheduler import ExportScheduler
from stowpair.queue.store import SQLiteTaskStore
from tests.queue.helpers import (
    FakeProvider,
    clock_at,
    get_task,
    instance,
    make_config,
    memory_store,
    new_task,
    outcome,
    result_of,
)

LEASE, BEAT = 30.0, 5.0


class Cut:
    """A node's view of the shared store; ``down = True`` fails every call like an
    unreachable database."""

    def __init__(self, store: SQLiteTaskStore) -> None:
        self._store = store
        self.down = False

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._store, name)
        if not callable(method):
            return method

        def call(*args: Any, **kw: Any) -> Deferred[Any]:
            if self.down:
                return fail(DatabaseUnavailable("postgresql://db/stowpair: connection refused"))
            result: Deferred[Any] = method(*args, **kw)
            return result

        return call


def node(
    name: str, store: SQLiteTaskStore, clock: Clock, **queue: Any
) -> tuple[ExportScheduler, FakeProvider, Cut]:
    config = make_config(
        Queue("Export1", retry_delay=10, max_retries=5, **queue),
        database=DatabaseConfig(lease=LEASE, heartbeat_interval=BEAT),
        device=Device(name, ("STOWPAIR",)),
        task_polling_interval=1.0,
    )
    provider = FakeProvider()
    view = Cut(store)
    providers = {"stow": provider}
    scheduler = ExportScheduler(config, view, providers, clock, process=f"{name}:1")  # type: ignore[arg-type]
    scheduler.startService()
    return scheduler, provider, view


def events(name: str) -> tuple[list[LogEvent], Callable[[], None]]:
    seen: list[LogEvent] = []

    def observe(event: LogEvent) -> None:
        if event.get("event") == name:
            seen.append(event)

    globalLogPublisher.addObserver(observe)
    return seen, lambda: globalLogPublisher.removeObserver(observe)


def test_one_node_runs_a_task_the_others_skip_it() -> None:
    """When three nodes poll one queue, a due task runs on exactly one of them, under
    its device name."""
    clock = clock_at()
    store = memory_store(clock)
    nodes = [node(f"node-{n}", store, clock) for n in range(3)]
    task_id = result_of(store.create(new_task(clock.seconds()))).task_id
    clock.advance(1)
    running = [s.node for s, p, _ in nodes if p.calls]
    assert len(running) == 1 and sum(len(p.calls) for _, p, _ in nodes) == 1
    assert get_task(store, task_id).device_name == running[0]


def test_a_silent_nodes_task_moves_on_after_the_lease() -> None:
    """When the node running a task stops heartbeating (killed), another node takes the
    task within a lease and a poll: the interrupted attempt counts as a failure, and only
    what was not acknowledged is sent again."""
    clock = clock_at()
    store = memory_store(clock)
    a, pa, view_a = node("node-a", store, clock)
    _, pb, _ = node("node-b", store, clock)
    clock.advance(LEASE)  # both nodes have heartbeated for a whole lease
    task_id = result_of(store.create(new_task(clock.seconds()))).task_id
    a.kick()
    clock.advance(0)
    assert len(pa.calls) == 1 and pb.calls == []
    pa.calls[0].request.on_results([instance("1", InstanceStatus.COMPLETED)])  # type: ignore[misc]
    view_a.down = True  # node-a is gone (kill -9): no heartbeat, no writes
    a.keeper.stop()
    taken, stop = events("queue.task.taken_over")
    killed_at = clock.seconds()
    while not pb.calls and clock.seconds() - killed_at < LEASE + 10:
        clock.advance(1)
    stop()
    # the last heartbeat was up to one interval before the kill; then a poll
    assert pb.calls and clock.seconds() - killed_at <= LEASE + 1
    task = get_task(store, task_id)
    assert (task.status, task.device_name, task.failures) == (TaskStatus.IN_PROCESS, "node-b", 1)
    assert pb.calls[0].request.already_done == frozenset({"1"})
    assert [e["previous_device"] for e in taken] == ["node-a"]


def test_no_take_over_before_a_lease_of_own_heartbeats() -> None:
    """When a node has just started (or just got the database back), it does not take
    over others' tasks before it has heartbeated for a whole lease: they may be alive."""
    clock = clock_at()
    store = memory_store(clock)
    task = result_of(store.create(new_task(clock.seconds())))
    result_of(store.claim("node-gone", "Export1", clock.seconds(), 1))  # never heartbeats
    _, pb, _ = node("node-b", store, clock)
    clock.advance(LEASE - 1)
    assert pb.calls == []
    clock.advance(2)
    assert len(pb.calls) == 1 and get_task(store, task.task_id).failures == 1


def test_a_paused_node_that_lost_its_task_writes_nothing() -> None:
    """When a node's task was taken over while it was paused, its next heartbeat stops
    the attempt: the results it reports afterwards and its end are not written."""
    clock = clock_at()
    store = memory_store(clock)
    a, pa, _ = node("node-a", store, clock)
    task_id = result_of(store.create(new_task(clock.seconds()))).task_id
    clock.advance(1)  # the next poll
    [call] = pa.calls
    # meanwhile another node takes the task over and claims it (the pause)
    held = get_task(store, task_id)
    changes = {"status": TaskStatus.SCHEDULED_FOR_RETRY, "failures": 1}
    result_of(store.finish(task_id, [], changes, (TaskStatus.IN_PROCESS,), held.lease))
    [(taken, _)] = result_of(store.claim("node-b", "Export1", clock.seconds(), 1))
    lost, stop = events("queue.task.lease_lost")
    clock.advance(BEAT)  # node-a resumes: its heartbeat sees the new lease
    stop()
    assert call.cancellation.cancelled and len(lost) == 1
    call.request.on_results([instance("9", InstanceStatus.COMPLETED)])  # type: ignore[misc]
    call.deferred.callback(outcome(TaskStatus.COMPLETED, instance("9", InstanceStatus.COMPLETED)))
    task = get_task(store, task_id)
    assert (task.status, task.device_name, task.epoch) == (
        TaskStatus.IN_PROCESS,
        "node-b",
        taken.epoch,
    )
    assert result_of(store.results(task_id)) == []
    assert not a.is_running(task_id)


def test_a_cancel_through_another_node_stops_the_export() -> None:
    """When a task is cancelled through another node's REST API, the node running it
    stops at its next heartbeat and the task ends CANCELED."""
    clock = clock_at()
    store = memory_store(clock)
    _, pa, _ = node("node-a", store, clock)
    task_id = result_of(store.create(new_task(clock.seconds()))).task_id
    clock.advance(1)  # the next poll
    result_of(store.update(task_id, {"status": TaskStatus.CANCELED}))  # node-b's manager
    clock.advance(BEAT)
    assert pa.calls[0].cancellation.cancelled
    pa.calls[0].deferred.callback(outcome(TaskStatus.COMPLETED))
    assert get_task(store, task_id).status == TaskStatus.CANCELED


def test_cut_off_node_stops_sending_and_writes_when_the_database_is_back() -> None:
    """When a node cannot heartbeat for lease - heartbeat interval, its exports stop
    sending (another node may take the tasks soon); the attempt's results are written
    when the database is back and the task is SCHEDULED again, no failure counted, so
    the next attempt sends only the rest."""
    clock = clock_at()
    store = memory_store(clock)
    _, pa, view = node("node-a", store, clock)
    task_id = result_of(store.create(new_task(clock.seconds()))).task_id
    clock.advance(1)  # the next poll
    [call] = pa.calls
    view.down = True
    cut, stop = events("cluster.node.cut_off")
    clock.advance(LEASE - BEAT)
    stop()
    assert call.cancellation.cancelled and len(cut) == 1
    call.request.on_results([instance("1", InstanceStatus.COMPLETED)])  # type: ignore[misc]
    # the export stops after its in-flight request: one of the study's instances sent
    call.deferred.callback(
        outcome(TaskStatus.CANCELED, instance("1", InstanceStatus.COMPLETED), matches=2)
    )
    assert get_task(store, task_id).status == TaskStatus.IN_PROCESS  # not written yet
    view.down = False
    clock.advance(10)
    task = get_task(store, task_id)  # SCHEDULED again, then claimed for a new attempt
    assert (task.status, task.failures, len(pa.calls)) == (TaskStatus.IN_PROCESS, 0, 2)
    assert pa.calls[1].request.already_done == frozenset({"1"})


def test_results_of_an_outage_shorter_than_the_lease_are_written_afterwards() -> None:
    """When the database is away for less than a lease while an export runs, the scheduler
    pauses, the export finishes, and its results and end are written once it is back."""
    clock = clock_at()
    store = memory_store(clock)
    _, pa, view = node("node-a", store, clock, max_tasks_parallel=2)
    task_id = result_of(store.create(new_task(clock.seconds()))).task_id
    clock.advance(1)  # the next poll
    [call] = pa.calls
    paused, stop_paused = events("queue.paused")
    resumed, stop_resumed = events("queue.resumed")
    view.down = True
    clock.advance(3)
    call.request.on_results([instance("1", InstanceStatus.COMPLETED)])  # type: ignore[misc]
    call.deferred.callback(outcome(TaskStatus.COMPLETED, instance("1", InstanceStatus.COMPLETED),
                                   instance("2", InstanceStatus.COMPLETED)))  # fmt: skip
    clock.advance(10)
    assert not call.cancellation.cancelled
    assert get_task(store, task_id).status == TaskStatus.IN_PROCESS
    view.down = False
    clock.advance(10)
    stop_paused()
    stop_resumed()
    task = get_task(store, task_id)
    assert task.status == TaskStatus.COMPLETED
    assert sorted(r.sop_instance_uid for r in result_of(store.results(task_id))) == ["1", "2"]
    assert len(paused) == 1 and len(resumed) == 1
