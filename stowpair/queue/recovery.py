"""Attempts that were cut short: this node's after a restart, and other nodes' that
stopped heartbeating (docs/cluster.md).

Either way the interrupted attempt counts as a failed attempt (``max_retries`` ends a
crash loop), and what it had recorded stays, so only the rest is sent again. A node's own
tasks found IN PROCESS at its start follow the retry schedule; a silent node's tasks are
due at once, so another node runs them within a lease and a poll.
"""

from __future__ import annotations

from typing import Any, Protocol

from twisted.logger import Logger

from stowpair.config.model import Config, Queue
from stowpair.exporter.outcome import TaskStatus
from stowpair.queue.model import Task, TaskFilter
from stowpair.queue.retry import retry_delay
from stowpair.queue.store import TaskStore

log = Logger()


class Scheduling(Protocol):
    config: Config

    def retry_changes(
        self, task: Task, queue: Queue, retry_after: float | None
    ) -> dict[str, Any]: ...

    def log_state(self, task: Task, previous: TaskStatus) -> None: ...


async def recover_interrupted(
    store: TaskStore, scheduler: Scheduling, node: str, now: float
) -> None:
    """Tasks of this node found IN PROCESS at start-up: the process stopped (killed or
    crashed) while they ran."""
    interrupted = await store.find(TaskFilter(device_name=node, statuses=(TaskStatus.IN_PROCESS,)))
    if interrupted:
        log.warn(
            "{count} task(s) of device {device} were IN PROCESS at startup: their"
            " attempts were interrupted and count as failed attempts",
            count=len(interrupted),
            device=node,
            event="queue.startup.reset",
        )
    for task in interrupted:
        delivered = await store.delivered(task.task_id)
        why = "the process stopped while it ran"
        changes = _interrupted(task, len(delivered), why, " (crash or kill)", scheduler.config, now)
        queue = scheduler.config.queues.get(task.queue_name, Queue(task.queue_name))
        if changes["failures"] <= queue.max_retries:
            changes.update(scheduler.retry_changes(task, queue, None))
        updated = await store.finish(
            task.task_id, [], changes, (TaskStatus.IN_PROCESS,), lease=task.lease
        )
        if updated is not None:
            scheduler.log_state(updated, task.status)


async def take_over_stalled(
    store: TaskStore, scheduler: Scheduling, node: str, now: float, lease: float
) -> int:
    """IN PROCESS tasks of nodes silent for a whole lease become due at once (or FAILED
    past ``max_retries``); fires with how many were taken over."""
    taken = 0
    silent_since = now - lease
    for task in await store.stalled(node, silent_since):
        delivered = await store.delivered(task.task_id)
        why = f"node {task.device_name} stopped heartbeating"
        detail = f" (no heartbeat for {lease:g}s)"
        changes = _interrupted(task, len(delivered), why, detail, scheduler.config, now)
        updated = await store.take_over(task.task_id, task.lease, silent_since, changes)
        if updated is None:  # it finished, its node came back, or another node took it
            continue
        taken += 1
        log.warn(
            "Task {task_id} ({exporter_id}, Study {study_uid}) taken over from {previous_device}"
            " by {device}: no heartbeat for {lease:g}s; {delivered} instance(s) acknowledged"
            " are not sent again",
            task_id=task.task_id,
            exporter_id=task.exporter_id,
            study_uid=task.study_uid,
            previous_device=task.device_name,
            previous_epoch=task.epoch,
            device=node,
            lease=lease,
            delivered=len(delivered),
            status=updated.status.value,
            event="queue.task.taken_over",
        )
        scheduler.log_state(updated, task.status)
    return taken


def _interrupted(
    task: Task, delivered: int, why: str, detail: str, config: Config, now: float
) -> dict[str, Any]:
    """Due at once, one more failure; FAILED past ``max_retries``."""
    queue = config.queues.get(task.queue_name, Queue(task.queue_name))
    failures = attempt = task.failures + 1
    changes: dict[str, Any] = {
        "failures": failures,
        "processing_end_time": None,
        "error_message": f"export interrupted: {why}",
        "outcome_message": (
            f"Attempt {attempt} interrupted: {why}{detail}; {delivered} instance(s) acknowledged"
            " so far are not sent again"
        ),
    }
    if retry_delay(queue, failures) is None:
        changes.update(status=TaskStatus.FAILED, processing_end_time=now)
    else:
        changes.update(status=TaskStatus.SCHEDULED_FOR_RETRY, scheduled_time=now)
    return changes
