"""Export tasks, per-instance results and task filters (docs/queue.md, docs/rest-api.md).

Times are POSIX seconds (floats) from the injected clock; the REST layer formats
them. ``series_uid`` and ``sop_uid`` are ``*`` for "the whole study/series".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from stowpair.exporter.outcome import InstanceStatus, TaskStatus

#: Statuses a task can be picked up from by the scheduler.
PENDING = (TaskStatus.SCHEDULED, TaskStatus.SCHEDULED_FOR_RETRY)
DONE = (TaskStatus.COMPLETED, TaskStatus.WARNING, TaskStatus.FAILED, TaskStatus.CANCELED)
#: Instance results that count as delivered: a retry does not send them again.
DELIVERED = (InstanceStatus.COMPLETED, InstanceStatus.WARNING)

OrderKey = Literal["createdTime", "updatedTime", "scheduledTime"]
ORDER_KEYS: tuple[OrderKey, ...] = ("createdTime", "updatedTime", "scheduledTime")


@dataclass(frozen=True)
class NewTask:
    """What a trigger (REST, export rule) knows when it asks for an export."""

    device_name: str
    queue_name: str
    exporter_id: str
    local_aet: str
    study_uid: str
    series_uid: str = "*"
    sop_uid: str = "*"
    scheduled_time: float = 0.0
    batch_id: str | None = None
    modalities: tuple[str, ...] = ()
    requester_user_id: str | None = None
    requester_host: str | None = None
    request_uri: str | None = None


@dataclass(frozen=True)
class Task:
    """One export task row; field names follow dcm4chee's task columns."""

    task_id: int
    device_name: str
    queue_name: str
    status: TaskStatus
    exporter_id: str
    local_aet: str
    study_uid: str
    series_uid: str
    sop_uid: str
    created_time: float
    updated_time: float
    scheduled_time: float
    processing_start_time: float | None = None
    processing_end_time: float | None = None
    failures: int = 0
    batch_id: str | None = None
    error_message: str | None = None
    outcome_message: str | None = None
    number_of_instances: int | None = None
    modalities: tuple[str, ...] = ()
    requester_user_id: str | None = None
    requester_host: str | None = None
    request_uri: str | None = None
    #: How many times a node claimed the task; the running attempt's writes name it.
    epoch: int = 0

    @property
    def lease(self) -> Lease:
        """The running attempt's lease: the node that holds the task, and its epoch."""
        return Lease(self.device_name, self.epoch)


@dataclass(frozen=True)
class Lease:
    """A node's hold on an IN PROCESS task (docs/cluster.md).

    Claiming a task sets its device name to the node's and increments its epoch. Every
    write of the attempt (results, final state) is made only while the task still has
    both, so a node that lost the task (it was taken over while the node was paused or
    cut off) writes nothing for it.
    """

    device_name: str
    epoch: int


#: Task fields the store may change with ``update``.
UPDATABLE = frozenset(
    {
        "device_name",
        "queue_name",
        "status",
        "exporter_id",
        "local_aet",
        "series_uid",
        "sop_uid",
        "scheduled_time",
        "processing_start_time",
        "processing_end_time",
        "failures",
        "error_message",
        "outcome_message",
        "number_of_instances",
        "modalities",
    }
)


@dataclass(frozen=True)
class InstanceResult:
    """One instance's result in one attempt, as stored (from InstanceOutcome)."""

    task_id: int
    attempt: int
    sop_instance_uid: str
    series_uid: str
    sop_class_uid: str
    status: InstanceStatus
    reason: str = ""
    reason_code: int | None = None
    http_status: int | None = None
    bytes_sent: int = 0
    elapsed: float = 0.0


@dataclass(frozen=True)
class TaskFilter:
    """The common filters of ``/monitor/export`` (docs/rest-api.md).

    Ranges are ``(low, high)`` POSIX seconds, inclusive, either end None = open.
    ``order_by`` is a key of :data:`ORDER_KEYS`, descending when ``descending``.
    ``updated_before`` restricts bulk reschedules to tasks not touched since "now".
    """

    device_name: str | None = None
    exporter_ids: tuple[str, ...] = ()
    #: ``/queue/{queueName}`` (dcm4chee's QueueManagerRS) lists one queue's tasks.
    queue_names: tuple[str, ...] = ()
    study_uid: str | None = None
    batch_id: str | None = None
    task_id: int | None = None
    statuses: tuple[TaskStatus, ...] = ()
    created: tuple[float | None, float | None] | None = None
    updated: tuple[float | None, float | None] | None = None
    updated_before: float | None = None
    offset: int = 0
    limit: int | None = None
    order_by: OrderKey = "updatedTime"
    descending: bool = True


@dataclass(frozen=True)
class Progress:
    """How far a task's export has come, from its stored per-instance results.

    ``delivered`` counts SOP Instances acknowledged (COMPLETED or WARNING) by any
    attempt; ``failed`` those that failed or were missing in the current attempt (the
    running one of an IN PROCESS task, else the latest) and were not delivered.
    """

    delivered: int = 0
    failed: int = 0

    @property
    def sent(self) -> int:
        """Instances the export has an answer for."""
        return self.delivered + self.failed


@dataclass(frozen=True)
class BatchSummary:
    """One row of ``/monitor/export/batch``."""

    batch_id: str
    counts: dict[TaskStatus, int] = field(default_factory=dict)
    device_names: tuple[str, ...] = ()
    exporter_ids: tuple[str, ...] = ()
    created_range: tuple[float, float] = (0.0, 0.0)
    updated_range: tuple[float, float] = (0.0, 0.0)
    scheduled_range: tuple[float, float] = (0.0, 0.0)
    processing_start_range: tuple[float | None, float | None] = (None, None)
    processing_end_range: tuple[float | None, float | None] = (None, None)
