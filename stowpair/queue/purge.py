"""Purging finished tasks, and turning an Outcome into stored per-instance results."""

from __future__ import annotations

from collections.abc import Iterable

from twisted.logger import Logger

from stowpair.config.model import Queue
from stowpair.exporter.outcome import InstanceOutcome, TaskStatus
from stowpair.queue.model import InstanceResult, Task
from stowpair.queue.store import TaskStore

log = Logger()

_PURGE_DELAYS = (
    (TaskStatus.COMPLETED, "purge_completed_delay"),
    (TaskStatus.FAILED, "purge_failed_delay"),
    (TaskStatus.WARNING, "purge_warning_delay"),
    (TaskStatus.CANCELED, "purge_canceled_delay"),
)


async def purge_finished(store: TaskStore, queue: Queue, now: float) -> None:
    """Delete the queue's finished tasks whose updatedTime is older than the per-status
    purge delay (dcm4chee's PurgeTaskScheduler); None keeps them forever."""
    for status, attribute in _PURGE_DELAYS:
        delay: float | None = getattr(queue, attribute)
        if delay is None:
            continue
        count = await store.purge(queue.name, status, now - delay)
        if count:
            log.info(
                "Purged {count} {status} task(s) of queue {queue}",
                count=count,
                status=status.value,
                queue=queue.name,
                event="queue.purged",
            )


def results_of(task: Task, instances: Iterable[InstanceOutcome]) -> list[InstanceResult]:
    """The per-instance rows of the task's running attempt (attempt = failures so far + 1)."""
    attempt = task.failures + 1
    return [_result(task.task_id, attempt, i) for i in instances]


def _result(task_id: int, attempt: int, i: InstanceOutcome) -> InstanceResult:
    return InstanceResult(
        task_id, attempt, i.sop_instance_uid, i.series_uid, i.sop_class_uid,
        i.status, i.reason, i.reason_code, i.http_status, i.bytes_sent, i.elapsed,
    )  # fmt: skip
