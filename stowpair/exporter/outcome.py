"""The contract between exporters and the queue: requests in, Outcomes out."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
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


def is_transient_refusal(code: int) -> bool:
    """A Failure Reason (PS3.18 Table I.2-2) after which the same instance may be stored
    later: out of resources (0xA7xx) or a processing failure of the server (0x0110)."""
    return 0xA700 <= code <= 0xA7FF or code == 0x0110


def is_permanent_refusal(code: int) -> bool:
    """A Failure Reason that judges the instance itself, so sending it again cannot help:
    data set does not match SOP Class or has a bad UID (0xA9xx), cannot understand
    (0xCxxx, including 0xC122 transfer syntax not accepted), SOP Class not supported
    (0x0122), and 0x0111 (stowpair's ingest already holds that SOP Instance UID with other
    content). A retry of the task does not send such an instance again; a REST reschedule
    does."""
    return 0xA900 <= code <= 0xA9FF or 0xC000 <= code <= 0xCFFF or code in (0x0122, 0x0111)


def not_sent_again(reason: str) -> str:
    """The reason of an instance skipped because an earlier attempt saw it refused for
    good (:attr:`ExportRequest.refused`)."""
    return f"not sent again: an earlier attempt was refused for good: {reason}"


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
    #: SOP Instance UID -> (reason, Failure Reason) of instances an earlier attempt saw
    #: refused for good (:func:`is_permanent_refusal`): they fail again without being sent.
    refused: Mapping[str, tuple[str, int]] = field(default_factory=dict)
    #: Called with each request's per-instance outcomes once its answer is read; the
    #: exporter sends nothing more on that request's slot until the returned Deferred
    #: fires, so what was acknowledged is recorded before more is sent (durable progress).
    on_results: Callable[[Sequence[InstanceOutcome]], Deferred[None]] | None = None


@dataclass(frozen=True)
class Outcome:
    """The result of one export attempt (docs/dcm4chee.md, "Outcome rule and message").

    The counts cover the whole entity, as dcm4chee's outcome message does: ``completed``
    includes the instances earlier attempts delivered (``ExportRequest.already_done``),
    ``failed`` includes the ``missing`` ones. ``instances`` holds only this attempt's.
    """

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
