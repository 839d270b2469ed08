"""The contract between exporters and the queue: requests in, Outcomes out."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from twisted.internet.defer import Deferred

from stowpair.config.model import Exporter


class TaskStatus(StrEnum):
    """dcm4chee's task statuses; the value is the display string."""

    SCHEDULED = "SCHEDULED"
    IN_PROCESS = "IN PROCESS"
    SCHEDULED_FOR_RETRY = "SCHEDULED FOR RETRY"
    COMPLETED = "COMPLETED"
    WARNING = "WARNING"
    FAILED = "FAILED"
    CANCELED = "CANCELED"

    @property
    def done(self) -> bool:
        return self in (
            TaskStatus.COMPLETED,
            TaskStatus.WARNING,
            TaskStatus.FAILED,
            TaskStatus.CANCELED,
        )


_DONE = frozenset(
    {TaskStatus.COMPLETED, TaskStatus.WARNING, TaskStatus.FAILED, TaskStatus.CANCELED}
)


class InstanceStatus(StrEnum):
    COMPLETED = "COMPLETED"
    WARNING = "WARNING"
    FAILED = "FAILED"
    MISSING = "MISSING"
    CANCELED = "CANCELED"


@dataclass(frozen=True)
class InstanceOutcome:
    """What happened to one SOP Instance in one export attempt."""

    study_uid: str
    series_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    status: InstanceStatus
    reason: str = ""
    #: DICOM Failure/Warning Reason code (Table I.2-1/I.2-2) when the server gave one.
    reason_code: int | None = None
    http_status: int | None = None
    bytes_sent: int = 0
    elapsed: float = 0.0
    #: A later attempt may succeed (503, connection error, 0xA7xx ...).
    retryable: bool = False


@dataclass(frozen=True)
class ExportRequest:
    """One export task's selection. ``series_uid``/``sop_uid`` are ``*`` for all."""

    exporter: Exporter
    study_uid: str
    series_uid: str = "*"
    sop_uid: str = "*"
    #: SOP Instance UIDs completed by earlier attempts: a retry sends only the rest.
    already_done: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Outcome:
    """The result of one export attempt (dcm4chee's outcome rule, reference §1.9)."""

    status: TaskStatus
    message: str
    completed: int = 0
    warning: int = 0
    failed: int = 0
    missing: int = 0
    instances: tuple[InstanceOutcome, ...] = field(default=())
    #: Seconds the server asked us to wait (Retry-After), if any.
    retry_after: float | None = None


class Cancellation:
    """Set by the queue to stop an export: no new requests, in-flight ones finish."""

    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ExporterProvider(Protocol):
    """One per URI scheme (``stow:``, ``stowrs:``)."""

    def export(self, request: ExportRequest, cancellation: Cancellation) -> Deferred[Outcome]:
        """Run one attempt. Errors that prevent any sending (unknown web app, bad
        property) errback with :class:`ExportError`; everything else is an Outcome."""


class ExportError(Exception):
    """The export could not start; the message is for people (task errorMessage)."""
