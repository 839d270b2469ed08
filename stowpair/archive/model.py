"""What the archive knows about a stored instance, and the index contract."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from twisted.internet.defer import Deferred

from stowpair.archive.studies import ArchiveCounts, StudyQuery, StudySummary


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
    """The archive index: SQLite (:mod:`stowpair.archive.index`, the embedded default) or
    PostgreSQL (:mod:`stowpair.archive.pg_index`, shared by a cluster). Never blocks the
    reactor; fails with :class:`~stowpair.db.errors.DatabaseUnavailable` while its
    database cannot be reached. ``opened`` fires with the number of instances once the
    index is usable."""

    opened: Deferred[int]

    def add(self, records: list[InstanceRecord]) -> Deferred[int]:
        """Insert or replace records in one transaction; fires with the number of SOP
        Instance UIDs that were not indexed before. A record identical to the indexed
        one (same UIDs, path, size, syntax) leaves its row untouched."""

    def query(
        self, study_uid: str, series_uid: str = "*", sop_uid: str = "*"
    ) -> Deferred[QueryResult]:
        """Instances of a study, series (or ``*``) and instance (or ``*``), ordered by
        series then arrival; those whose file is gone are in ``missing``."""

    def get(self, sop_uid: str) -> Deferred[InstanceRecord | None]:
        """The indexed record of one SOP Instance UID (file present or not), or None."""

    def studies(self, query: StudyQuery) -> Deferred[list[StudySummary]]:
        """Matching studies, newest received first (QIDO-RS ``/rs/studies``)."""

    def counts(self, query: StudyQuery) -> Deferred[ArchiveCounts]:
        """Studies, series and instances of the matching studies."""

    def count(self) -> Deferred[int]: ...

    def count_studies(self) -> Deferred[int]:
        """Indexed studies that hold at least one instance."""

    def has_instances(self) -> Deferred[bool]: ...

    def close(self) -> Deferred[None]: ...
