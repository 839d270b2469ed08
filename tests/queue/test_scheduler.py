"""Clock-driven tests of the export scheduler (docs/queue.md, docs/dcm4chee.md)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from twisted.internet.defer import Deferred, fail
from twisted.internet.task import Clock

from stowpair.config.model import Queue
from stowpair.exporter.outcome import ExportError, InstanceStatus, Outcome, TaskStatus
from stowpair.queue.info import index_task_info
from stowpair.queue.manager import Result, TaskManager
from stowpair.queue.retry import retry_delay
from stowpair.queue.scheduler import ExportScheduler
from stowpair.queue.store import SQLiteTaskStore
from tests.queue.helpers import (
    STUDY,
    FakeProvider,
    clock_at,
    get_task,
    instance,
    make_config,
    memory_store,
    new_task,
    outcome,
    result_of,
    schedules,
)


def start(
    queue: Queue | None = None,
    clock: Clock | None = None,
    store: SQLiteTaskStore | None = None,
    **config: Any,
) -> tuple[ExportScheduler, SQLiteTaskStore, FakeProvider, Clock]:
    clock = clock or clock_at()
    store = store or memory_store(clock)
    provider = FakeProvider()
    scheduler = ExportScheduler(make_config(queue, **config), store, {"stow": provider}, clock)
    scheduler.startService()
    return scheduler, store, provider, clock


def add_task(
    scheduler: ExportScheduler | None, store: SQLiteTaskStore, clock: Clock, **kw: Any
) -> int:
    task_id = int(result_of(store.create(new_task(clock.seconds(), **kw))).task_id)
    if scheduler is not None:
        scheduler.kick()
    return task_id


def test_default_backoff_sequence() -> None:
    """When an export keeps failing, retries wait 30, 60, 120, 240, 480, then 600 s."""
    scheduler, store, provider, clock = start()
    task_id = add_task(scheduler, store, clock)
    clock.advance(0)
    delays = []
    for attempt in range(11):
        assert len(provider.calls) == attempt + 1
        provider.calls[-1].deferred.errback(ExportError("Unknown WebApplication: stowrsd"))
        task = get_task(store, task_id)
        if task.status == TaskStatus.SCHEDULED_FOR_RETRY:
            delays.append(task.scheduled_time - clock.seconds())
            clock.advance(delays[-1])
    assert delays == [30, 60, 120, 240, 480, 600, 600, 600, 600, 600]
    task = get_task(store, task_id)
    assert (task.status, task.failures) == (TaskStatus.FAILED, 11)
    assert task.error_message == "Unknown WebApplication: stowrsd"


@pytest.mark.parametrize(
    ("queue", "expected"),
    [
        (Queue("Q", retry_delay=60, retry_delay_multiplier=100, max_retry_delay=None),
         [60, 60, 60]),
        (Queue("Q", retry_delay=10, retry_delay_multiplier=300, max_retry_delay=100),
         [10, 30, 90, 100]),
        (Queue("Q", retry_delay=5, retry_delay_multiplier=200, max_retry_delay=None,
               max_retries=2), [5, 10, None]),
        (Queue("Q", max_retries=0), [None]),
        (Queue("Q", retry_delay=45, retry_delay_multiplier=150, max_retry_delay=None),
         [45, 67, 100, 150, 225, 337]),
        (Queue("Q", retry_delay=30.9, retry_delay_multiplier=100, max_retry_delay=None),
         [30]),
    ],
    ids=["constant", "capped", "no-cap-max-retries", "no-retries", "whole-seconds-150",
         "fraction-dropped"],
)  # fmt: skip
def test_retry_delay_formula(queue: Queue, expected: list[float | None]) -> None:
    """When the n-th failure happens, the delay is retryDelay × (mult/100)^(n−1) in whole
    seconds (integer division at each step, as dcm4chee), capped."""
    assert [retry_delay(queue, n) for n in range(1, len(expected) + 1)] == expected


@pytest.mark.parametrize(
    ("retry_on_warning", "status"),
    [(False, TaskStatus.WARNING), (True, TaskStatus.SCHEDULED_FOR_RETRY)],
    ids=["final", "retried"],
)
def test_warning_retried_only_with_retry_on_warning(
    retry_on_warning: bool, status: TaskStatus
) -> None:
    """When an export ends WARNING with a permanent failure, it is retried only if the
    queue retries on warning (dcm4chee)."""
    scheduler, store, provider, clock = start(Queue("Export1", retry_on_warning=retry_on_warning))
    task_id = add_task(scheduler, store, clock)
    clock.advance(0)
    provider.calls[0].deferred.callback(
        outcome(TaskStatus.WARNING, instance("1", InstanceStatus.FAILED))
    )
    assert get_task(store, task_id).status == status


@pytest.mark.parametrize(
    ("retryable", "status"),
    [(True, TaskStatus.SCHEDULED_FOR_RETRY), (False, TaskStatus.WARNING)],
    ids=["transient-failures-retried", "permanent-failure-kept"],
)
def test_warning_of_transient_failures_is_retried(retryable: bool, status: TaskStatus) -> None:
    """When every failed instance may pass later (destination down, 503, timeout), the
    WARNING export is retried even without retry-on-warning; a permanent failure is not."""
    scheduler, store, provider, clock = start(Queue("Export1", retry_on_warning=False))
    task_id = add_task(scheduler, store, clock)
    clock.advance(0)
    failed = replace(instance("2", InstanceStatus.FAILED), retryable=retryable)
    provider.calls[0].deferred.callback(
        outcome(TaskStatus.WARNING, instance("1", InstanceStatus.COMPLETED), failed)
    )
    assert get_task(store, task_id).status == status


def test_retry_resends_only_undelivered_instances() -> None:
    """When a retry runs, instances delivered by earlier attempts are passed as already_done."""
    scheduler, store, provider, clock = start(Queue("Export1", retry_on_warning=True))
    task_id = add_task(scheduler, store, clock)
    clock.advance(0)
    provider.calls[0].deferred.callback(
        outcome(
            TaskStatus.WARNING,
            instance("1", InstanceStatus.COMPLETED),
            instance("2", InstanceStatus.FAILED),
            instance("3", InstanceStatus.WARNING),
        )
    )
    clock.advance(30)
    assert provider.calls[1].request.already_done == frozenset({"1", "3"})
    provider.calls[1].deferred.callback(
        outcome(
            TaskStatus.COMPLETED,
            instance("2", InstanceStatus.COMPLETED),
            request=provider.calls[1].request,
        )
    )
    assert get_task(store, task_id).status == TaskStatus.COMPLETED
    results = result_of(store.results(task_id))
    assert [(r.attempt, r.sop_instance_uid) for r in results] == [
        (1, "1"), (1, "2"), (1, "3"), (2, "2"),
    ]  # fmt: skip


def test_retry_after_is_a_lower_bound() -> None:
    """When the server asked for Retry-After longer than the delay, the retry waits that long."""
    scheduler, store, provider, clock = start()
    task_id = add_task(scheduler, store, clock)
    clock.advance(0)
    busy = replace(instance("1", InstanceStatus.FAILED), reason="HTTP 503", retryable=True)
    provider.calls[0].deferred.callback(outcome(TaskStatus.WARNING, busy, retry_after=90.0))
    task = get_task(store, task_id)
    assert task.status == TaskStatus.SCHEDULED_FOR_RETRY
    assert task.scheduled_time - clock.seconds() == 90


def test_retry_runs_when_due_without_waiting_for_a_poll() -> None:
    """When a retry becomes due, the scheduler wakes up for it."""
    scheduler, store, provider, clock = start(task_polling_interval=3600)
    add_task(scheduler, store, clock)
    clock.advance(0)
    provider.calls[0].deferred.errback(ExportError("down"))
    clock.advance(29)
    assert len(provider.calls) == 1
    clock.advance(1)
    assert len(provider.calls) == 2


def test_queue_schedule_gates_processing() -> None:
    """When the queue's schedule is hour=18-6, a task due at 10:00 starts at 18:00."""
    scheduler, store, provider, clock = start(Queue("Export1", schedules=schedules("hour=18-6")))
    add_task(scheduler, store, clock)
    clock.advance(7 * 3600)  # 17:00
    assert provider.calls == []
    clock.advance(3600)  # 18:00, picked up by the next poll
    assert len(provider.calls) == 1


def test_uninstalled_queue_pauses() -> None:
    """When a queue is not installed, its tasks wait; installing it resumes them."""
    scheduler, store, provider, clock = start(Queue("Export1", installed=False))
    add_task(scheduler, store, clock)
    clock.advance(60)
    assert provider.calls == []
    scheduler.set_config(make_config(Queue("Export1")))
    clock.advance(0)
    assert len(provider.calls) == 1


def test_max_tasks_parallel() -> None:
    """When a queue allows 2 tasks in parallel, the third waits until one finishes."""
    scheduler, store, provider, clock = start(Queue("Export1", max_tasks_parallel=2))
    for study in ("1.1", "1.2", "1.3"):
        add_task(scheduler, store, clock, study=study)
    clock.advance(0)
    assert [c.request.study_uid for c in provider.calls] == ["1.1", "1.2"]
    provider.calls[0].deferred.callback(outcome(TaskStatus.COMPLETED))
    clock.advance(0)
    assert [c.request.study_uid for c in provider.calls] == ["1.1", "1.2", "1.3"]


def test_kick_starts_new_task_before_next_poll() -> None:
    """When a new task is kicked, it starts without waiting for the polling interval."""
    scheduler, store, provider, clock = start()
    clock.advance(1)
    add_task(scheduler, store, clock)
    scheduler.kick()
    clock.advance(0)
    assert len(provider.calls) == 1


def test_purge_after_delay() -> None:
    """When a COMPLETED task is older than the purge delay, it is deleted; others stay."""
    queue = Queue("Export1", purge_completed_delay=3600, purge_failed_delay=None)
    scheduler, store, provider, clock = start(queue)
    task_id = add_task(scheduler, store, clock)
    clock.advance(0)
    provider.calls[0].deferred.callback(outcome(TaskStatus.COMPLETED))
    clock.advance(3599)
    assert result_of(store.get(task_id)) is not None
    clock.advance(61)
    assert result_of(store.get(task_id)) is None


def test_interrupted_attempt_counts_as_a_failure() -> None:
    """When a task is IN PROCESS at start-up (the process was killed mid-export), its
    attempt counts as failed: SCHEDULED FOR RETRY after the retry delay, failures 1, an
    outcome message saying it was interrupted; then it runs again."""
    clock = clock_at()
    store = memory_store(clock)
    task_id = add_task(None, store, clock)
    result_of(store.update(task_id, {"status": TaskStatus.IN_PROCESS}))
    _, _, provider, _ = start(clock=clock, store=store)
    task = get_task(store, task_id)
    assert (task.status, task.failures) == (TaskStatus.SCHEDULED_FOR_RETRY, 1)
    assert task.outcome_message is not None and "Attempt 1 interrupted" in task.outcome_message
    assert task.scheduled_time == clock.seconds() + 30 and provider.calls == []
    clock.advance(30)
    assert len(provider.calls) == 1
    assert get_task(store, task_id).status == TaskStatus.IN_PROCESS


def test_crash_loop_ends_at_max_retries() -> None:
    """When the process dies during every attempt of a task, each restart counts one more
    failure and the task ends FAILED after max-retries, instead of looping for ever."""
    clock = clock_at()
    store = memory_store(clock)
    queue = Queue("Export1", max_retries=3, retry_delay=10, retry_delay_multiplier=100)
    task_id = add_task(None, store, clock)
    for _ in range(10):
        clock = clock_at(clock.seconds())  # a new process: the killed one is gone
        start(queue, clock=clock, store=store)
        task = get_task(store, task_id)
        if task.status == TaskStatus.FAILED:
            break
        clock.advance(task.scheduled_time - clock.seconds())
        assert get_task(store, task_id).status == TaskStatus.IN_PROCESS  # then: kill -9
    task = get_task(store, task_id)
    assert (task.status, task.failures) == (TaskStatus.FAILED, 4)
    assert task.error_message == "export interrupted: the process stopped while it ran"


def test_results_are_recorded_per_request_and_survive_a_crash() -> None:
    """When a request's results are reported during an attempt, they are in the store at
    once; after a crash the next attempt gets them as already done (only the rest is
    sent), and no result is stored twice."""
    clock = clock_at()
    store = memory_store(clock)
    scheduler, _, provider, _ = start(clock=clock, store=store)
    task_id = add_task(scheduler, store, clock)
    clock.advance(0)
    on_results = provider.calls[0].request.on_results
    assert on_results is not None
    recorded = on_results([instance("1", InstanceStatus.COMPLETED)])
    assert result_of(recorded) is None
    assert result_of(store.delivered(task_id)) == frozenset({"1"})
    clock = clock_at(clock.seconds())  # a new process: the killed one is gone
    _, _, provider, _ = start(clock=clock, store=store)
    clock.advance(30)
    assert provider.calls[0].request.already_done == frozenset({"1"})
    provider.calls[0].request.on_results([instance("2", InstanceStatus.COMPLETED)])  # type: ignore[misc]
    provider.calls[0].deferred.callback(
        outcome(
            TaskStatus.COMPLETED,
            instance("2", InstanceStatus.COMPLETED),
            instance("3", InstanceStatus.COMPLETED),
        )
    )
    rows = [(r.sop_instance_uid, r.attempt) for r in result_of(store.results(task_id))]
    assert rows == [("1", 1), ("2", 2), ("3", 2)]
    assert get_task(store, task_id).status == TaskStatus.COMPLETED


def test_results_that_could_not_be_recorded_are_written_at_the_end() -> None:
    """When recording a request's results fails (a store error), the export goes on and
    those results are stored when the attempt ends."""
    clock = clock_at()
    store = memory_store(clock)
    scheduler, _, provider, _ = start(clock=clock, store=store)
    task_id = add_task(scheduler, store, clock)
    clock.advance(0)
    store.record_results = lambda *a, **k: fail(OSError("disk I/O error"))  # type: ignore[method-assign]
    on_results = provider.calls[0].request.on_results
    assert on_results is not None
    assert result_of(on_results([instance("1", InstanceStatus.COMPLETED)])) is None
    provider.calls[0].deferred.callback(
        outcome(TaskStatus.COMPLETED, instance("1", InstanceStatus.COMPLETED))
    )
    assert [r.sop_instance_uid for r in result_of(store.results(task_id))] == ["1"]
    assert get_task(store, task_id).status == TaskStatus.COMPLETED


@pytest.mark.parametrize(
    ("code", "refused"),
    [(0xC000, True), (0xA900, True), (0xC122, True), (0x0110, False), (0xA700, False)],
    ids=["C000", "A900", "C122", "0110", "A700"],
)
def test_permanent_refusal_is_not_sent_again(code: int, refused: bool) -> None:
    """When an instance was refused with 0xC000, 0xA900 or 0xC122, the retry (due to
    another, transient failure) does not send it again; 0x0110 and 0xA700 are sent again."""
    scheduler, store, provider, clock = start(Queue("Export1", retry_on_warning=False))
    task_id = add_task(scheduler, store, clock)
    clock.advance(0)
    judged = replace(instance("1", InstanceStatus.FAILED), reason="refused", reason_code=code)
    busy = replace(instance("2", InstanceStatus.FAILED), reason="HTTP 503", retryable=True)
    provider.calls[0].deferred.callback(outcome(TaskStatus.WARNING, judged, busy))
    assert get_task(store, task_id).status == TaskStatus.SCHEDULED_FOR_RETRY
    clock.advance(30)
    request = provider.calls[1].request
    assert ("1" in request.refused) == refused
    if refused:
        assert request.refused["1"] == ("refused", code)


def test_only_permanent_refusals_are_not_retried() -> None:
    """When every failed instance was refused for good, the task is not retried, even
    with retry-on-warning: sending them again cannot help."""
    scheduler, store, provider, clock = start(Queue("Export1", retry_on_warning=True))
    task_id = add_task(scheduler, store, clock)
    clock.advance(0)
    judged = replace(instance("1", InstanceStatus.FAILED), reason_code=0xC000)
    provider.calls[0].deferred.callback(
        outcome(TaskStatus.WARNING, judged, instance("2", InstanceStatus.COMPLETED))
    )
    assert get_task(store, task_id).status == TaskStatus.WARNING


def test_export_error_is_failed_and_retried() -> None:
    """When the provider raises ExportError, the task is FAILED-for-retry with the message."""
    scheduler, store, provider, clock = start()
    task_id = add_task(scheduler, store, clock)
    clock.advance(0)
    provider.calls[0].deferred.errback(ExportError("Unknown WebApplication: nowhere"))
    task = get_task(store, task_id)
    assert (task.status, task.failures) == (TaskStatus.SCHEDULED_FOR_RETRY, 1)
    assert task.error_message == "Unknown WebApplication: nowhere"


def test_unknown_exporter_fails_with_message() -> None:
    """When a task names an exporter that is no longer configured, it fails saying so."""
    scheduler, store, _provider, clock = start()
    task_id = add_task(scheduler, store, clock, exporter_id="Gone")
    clock.advance(0)
    task = get_task(store, task_id)
    assert task.status == TaskStatus.SCHEDULED_FOR_RETRY
    assert "No such Exporter: Gone" in (task.error_message or "")


def test_cancel_in_process_signals_cancellation() -> None:
    """When a running task is cancelled, its Cancellation is set and it ends CANCELED."""
    scheduler, store, provider, clock = start()
    task_id = add_task(scheduler, store, clock)
    clock.advance(0)
    assert scheduler.cancel(task_id)
    assert provider.calls[0].cancellation.cancelled
    provider.calls[0].deferred.callback(outcome(TaskStatus.COMPLETED))
    assert get_task(store, task_id).status == TaskStatus.CANCELED


class BrokenStore:
    """A store whose polls fail (e.g. disk trouble) the first time only."""

    def __init__(self, store: SQLiteTaskStore) -> None:
        self._store = store
        self.failures = 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def claim(self, *args: Any) -> Deferred[Any]:
        if self.failures:
            self.failures -= 1
            return fail(OSError("disk I/O error"))
        return self._store.claim(*args)


def test_poll_error_does_not_stop_the_loop() -> None:
    """When a poll fails, the error is logged and the next poll still runs."""
    clock = clock_at()
    store = memory_store(clock)
    provider = FakeProvider()
    broken: Any = BrokenStore(store)
    scheduler = ExportScheduler(make_config(), broken, {"stow": provider}, clock)
    add_task(None, store, clock)
    scheduler.startService()
    assert provider.calls == []
    clock.advance(5)
    assert len(provider.calls) == 1


def test_stop_waits_for_running_exports() -> None:
    """When stopping with an export in flight, stopService fires once it has finished."""
    scheduler, store, provider, clock = start()
    task_id = add_task(scheduler, store, clock)
    clock.advance(0)
    stopped = scheduler.stopService()
    fired: list[object] = []
    stopped.addBoth(fired.append)
    assert fired == []
    provider.calls[0].deferred.callback(outcome(TaskStatus.COMPLETED))
    assert fired == [None]
    assert get_task(store, task_id).status == TaskStatus.COMPLETED


def test_stop_cancels_after_bound_and_reschedules() -> None:
    """When an export outlives the drain bound, it is cancelled and its task is SCHEDULED."""
    scheduler, store, provider, clock = start()
    task_id = add_task(scheduler, store, clock)
    clock.advance(0)
    fired: list[object] = []
    scheduler.stopService().addBoth(fired.append)
    clock.advance(10)
    assert provider.calls[0].cancellation.cancelled
    provider.calls[0].deferred.callback(
        outcome(TaskStatus.CANCELED, instance("1", InstanceStatus.COMPLETED), matches=3)
    )
    assert fired == [None]
    task = get_task(store, task_id)
    assert (task.status, task.failures) == (TaskStatus.SCHEDULED, 0)
    assert result_of(store.delivered(task_id)) == frozenset({"1"})


def test_stop_aborts_exports_that_ignore_cancellation() -> None:
    """When an export ignores cancellation, its Deferred is cancelled and the task SCHEDULED."""
    scheduler, store, _provider, clock = start()
    task_id = add_task(scheduler, store, clock)
    clock.advance(0)
    fired: list[object] = []
    scheduler.stopService().addBoth(fired.append)
    clock.advance(10)
    assert fired == []
    clock.advance(5)
    assert fired == [None]
    assert get_task(store, task_id).status == TaskStatus.SCHEDULED


def test_queue_service_closes_store_after_drain() -> None:
    """When the queue service stops, the store closes only after running exports finish."""
    from stowpair.queue.service import QueueService

    clock = clock_at()
    store = memory_store(clock)
    provider = FakeProvider()
    scheduler = ExportScheduler(make_config(), store, {"stow": provider}, clock)
    add_task(None, store, clock)
    service = QueueService(store, scheduler)
    service.startService()
    stopped: list[object] = []
    service.stopService().addBoth(stopped.append)
    assert store._db is not None and stopped == []
    provider.calls[0].deferred.callback(outcome(TaskStatus.COMPLETED))
    assert store._db is None and stopped == [None]


def test_failed_instances_reasons_reach_error_message() -> None:
    """When instances fail inside an export, the task's errorMessage says why (a 401
    otherwise shows only "failed:N"), and a later clean attempt clears it."""
    scheduler, store, provider, clock = start(Queue("Export1", retry_on_warning=True))
    task_id = add_task(scheduler, store, clock)
    clock.advance(0)
    rejected = replace(
        instance("1", InstanceStatus.FAILED), reason="authentication rejected (HTTP 401)"
    )
    provider.calls[0].deferred.callback(outcome(TaskStatus.WARNING, rejected))
    task = get_task(store, task_id)
    assert task.error_message == "1 instance failed: authentication rejected (HTTP 401)"
    clock.advance(30)
    provider.calls[1].deferred.callback(
        outcome(TaskStatus.COMPLETED, instance("1", InstanceStatus.COMPLETED))
    )
    assert get_task(store, task_id).error_message is None


def test_wake_at_starts_a_delayed_task_before_the_next_poll() -> None:
    """When told a task is due in 3 s, the scheduler starts it then, not at the next poll."""
    scheduler, store, provider, clock = start(task_polling_interval=60.0)
    clock.advance(0)
    task_id = add_task(None, store, clock, scheduled_time=clock.seconds() + 3)
    scheduler.wake_at(clock.seconds() + 3)
    clock.advance(2.9)
    assert provider.calls == []
    clock.advance(0.6)
    assert [c.request.study_uid for c in provider.calls] == [get_task(store, task_id).study_uid]


# -- NumberOfInstances and Modality, set when processing starts ------------------------------


def _index_of(count: int, modality: str = "CT") -> Any:
    """An index holding ``count`` instances of the test study (files not needed)."""
    from pathlib import Path

    from stowpair.archive.model import InstanceRecord
    from tests.exporter.support import FakeIndex

    records = [
        InstanceRecord(STUDY, "1.2.3.4.5", str(n), "1.2.840.10008.5.1.4.1.1.2",
                       "1.2.840.10008.1.2.1", Path(f"/nonexistent/{n}.dcm"), 10, modality)
        for n in range(1, count + 1)
    ]  # fmt: skip
    return FakeIndex(records)


def start_with_index(index: Any, queue: Queue | None = None) -> tuple[Any, ...]:
    clock = clock_at()
    store = memory_store(clock)
    provider = FakeProvider()
    scheduler = ExportScheduler(
        make_config(queue), store, {"stow": provider}, clock, task_info=index_task_info(index)
    )
    scheduler.startService()
    return scheduler, store, provider, clock


def test_number_of_instances_and_modality_are_set_when_processing_starts() -> None:
    """When a REST-triggered task (no Modality) starts, NumberOfInstances and Modality
    come from the index, before the export runs (dcm4chee's ExportTaskProcessor)."""
    scheduler, store, provider, clock = start_with_index(_index_of(3, "MR"))
    task_id = add_task(scheduler, store, clock)
    assert get_task(store, task_id).modalities == ()
    clock.advance(0)
    task = get_task(store, task_id)
    assert (task.status, task.number_of_instances, task.modalities) == (
        TaskStatus.IN_PROCESS, 3, ("MR",),
    )  # fmt: skip
    assert len(provider.calls) == 1


def test_number_of_instances_is_not_over_counted_after_a_retry() -> None:
    """When a 3-instance study needs a retry, NumberOfInstances stays 3 after it."""
    scheduler, store, provider, clock = start_with_index(_index_of(3))
    task_id = add_task(scheduler, store, clock)
    clock.advance(0)
    busy = replace(instance("3", InstanceStatus.FAILED), retryable=True)
    done = [instance(n, InstanceStatus.COMPLETED) for n in ("1", "2")]
    provider.calls[0].deferred.callback(outcome(TaskStatus.WARNING, *done, busy))
    clock.advance(30)
    request = provider.calls[1].request
    provider.calls[1].deferred.callback(
        outcome(TaskStatus.COMPLETED, instance("3", InstanceStatus.COMPLETED), request=request)
    )
    task = get_task(store, task_id)
    assert (task.status, task.number_of_instances) == (TaskStatus.COMPLETED, 3)
    assert task.outcome_message == f"Export Study[uid={STUDY}] to stowrsd - completed:3"


def test_entity_unknown_to_the_index_leaves_the_fields_alone() -> None:
    """When the index has no such study, NumberOfInstances and Modality stay as they were."""
    scheduler, store, _provider, clock = start_with_index(_index_of(0))
    task_id = add_task(scheduler, store, clock, modalities=("CT",))
    clock.advance(0)
    task = get_task(store, task_id)
    assert (task.number_of_instances, task.modalities) == (None, ("CT",))


def test_web_app_without_stow_rs_ends_warning_without_retry() -> None:
    """When the exporter answers dcm4chee's "not configured for STOW_RS" WARNING (nothing
    sent), the task ends WARNING and is not retried."""
    scheduler, store, provider, clock = start()
    task_id = add_task(scheduler, store, clock)
    clock.advance(0)
    message = "Destination webapp stowrsd is not configured for STOW_RS web service"
    provider.calls[0].deferred.callback(Outcome(TaskStatus.WARNING, message))
    task = get_task(store, task_id)
    assert (task.status, task.failures, task.outcome_message) == (
        TaskStatus.WARNING, 0, message,
    )  # fmt: skip
    clock.advance(3600)
    assert len(provider.calls) == 1


def test_rescheduled_while_running_starts_again_after_the_attempt_stops() -> None:
    """When an IN PROCESS task is rescheduled, its export is told to stop, the task stays
    SCHEDULED (not CANCELED) and a new attempt starts once the old one ended."""
    scheduler, store, provider, clock = start()
    manager = TaskManager(store, scheduler, clock)
    task_id = add_task(scheduler, store, clock)
    clock.advance(0)
    assert result_of(manager.reschedule(task_id, None, None)) == Result.OK
    assert provider.calls[0].cancellation.cancelled
    assert get_task(store, task_id).status == TaskStatus.SCHEDULED
    clock.advance(1)
    assert len(provider.calls) == 1  # not while the old attempt runs
    provider.calls[0].deferred.callback(
        outcome(TaskStatus.CANCELED, instance("1", InstanceStatus.COMPLETED), matches=3)
    )
    assert get_task(store, task_id).status == TaskStatus.SCHEDULED
    clock.advance(0)
    assert len(provider.calls) == 2
    assert provider.calls[1].request.already_done == frozenset()
    assert get_task(store, task_id).status == TaskStatus.IN_PROCESS
