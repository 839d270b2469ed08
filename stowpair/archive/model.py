"""What the archive knows about a stored instance, and the index contract."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from twisted.internet.defer import Deferred


@dataclass(frozen=True)
class InstanceRecord:
    """One indexed SOP Instance and the file that holds it."""

    study_uid: str
    series_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    path: Path
    size: int
    modality: str = ""
    patient_id: str = ""
    study_date: str = ""
    #: Sending AE title or import source.
    source: str = ""
    received_time: float = 0.0


@dataclass(frozen=True)
class QueryResult:
    """Instances found for an export, and those indexed but gone from disk."""

    instances: tuple[InstanceRecord, ...] = ()
    missing: tuple[InstanceRecord, ...] = field(default=())


class InstanceIndex(Protocol):
    """The archive index; SQLite is the embedded default. Never blocks the reactor."""

    def add(self, records: list[InstanceRecord]) -> Deferred[int]:
        """Insert or replace records; fires with the number of new instances."""

    def query(
        self, study_uid: str, series_uid: str = "*", sop_uid: str = "*"
    ) -> Deferred[QueryResult]:
        """Instances of a study, series (or ``*``) and instance (or ``*``)."""

    def close(self) -> Deferred[None]: ...
