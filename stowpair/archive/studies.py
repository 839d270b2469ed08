"""What the archive holds, study by study: the query behind QIDO-RS ``/rs/studies``.

The SQL is plain enough for any index database: the caller picks the placeholder
style. Studies are ordered by the last instance received, newest first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class StudyQuery:
    """Matching keys of a study search; None = any. ``study_date`` bounds are DICOM DA
    strings (``YYYYMMDD``), inclusive, either end None = open."""

    study_uid: str | None = None
    patient_id: str | None = None
    study_date: tuple[str | None, str | None] | None = None
    modality: str | None = None
    offset: int = 0
    limit: int = 100


@dataclass(frozen=True)
class StudySummary:
    """One study as the index knows it."""

    study_uid: str
    patient_id: str
    study_date: str
    modalities: tuple[str, ...]
    series: int
    instances: int
    #: Bytes of its stored files.
    size: int
    #: When its newest instance was received (POSIX seconds).
    last_received: float


@dataclass(frozen=True)
class ArchiveCounts:
    """Studies, series and instances matching a query."""

    studies: int = 0
    series: int = 0
    instances: int = 0


def _where(query: StudyQuery, mark: str) -> tuple[str, list[Any]]:
    """The WHERE clause over ``instance i`` joined with ``study st``."""
    clauses: list[str] = []
    params: list[Any] = []
    if query.study_uid is not None:
        clauses.append(f"i.study_uid = {mark}")
        params.append(query.study_uid)
    if query.patient_id is not None:
        clauses.append(f"COALESCE(st.patient_id, '') = {mark}")
        params.append(query.patient_id)
    if query.study_date is not None:
        low, high = query.study_date
        clauses.append("COALESCE(st.study_date, '') <> ''")
        if low is not None:
            clauses.append(f"st.study_date >= {mark}")
            params.append(low)
        if high is not None:
            clauses.append(f"st.study_date <= {mark}")
            params.append(high)
    if query.modality is not None:
        clauses.append(f"i.study_uid IN (SELECT study_uid FROM series WHERE modality = {mark})")
        params.append(query.modality)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


_FROM = " FROM instance i LEFT JOIN study st ON st.study_uid = i.study_uid"


def studies_sql(query: StudyQuery, mark: str = "?") -> tuple[str, list[Any]]:
    """One row per matching study: uid, patient ID, study date, series, instances,
    bytes, last received; newest first, then by UID."""
    where, params = _where(query, mark)
    sql = (
        "SELECT i.study_uid, COALESCE(MAX(st.patient_id), ''), COALESCE(MAX(st.study_date), ''),"
        " COUNT(DISTINCT i.series_uid), COUNT(*), COALESCE(SUM(i.size), 0),"
        " MAX(i.received_time)"
        + _FROM
        + where
        + " GROUP BY i.study_uid ORDER BY MAX(i.received_time) DESC, i.study_uid"
        + f" LIMIT {mark} OFFSET {mark}"
    )
    return sql, [*params, query.limit, query.offset]


def modalities_sql(count: int, mark: str = "?") -> str:
    """(study uid, modality) pairs of ``count`` studies, for ModalitiesInStudy."""
    marks = ", ".join([mark] * count)
    return (
        "SELECT DISTINCT study_uid, modality FROM series"
        f" WHERE study_uid IN ({marks}) AND modality <> '' ORDER BY study_uid, modality"
    )


def counts_sql(query: StudyQuery, mark: str = "?") -> tuple[str, list[Any]]:
    """Studies, series and instances matching ``query`` (offset and limit ignored)."""
    where, params = _where(query, mark)
    sql = (
        "SELECT COUNT(DISTINCT i.study_uid), COUNT(DISTINCT i.series_uid), COUNT(*)" + _FROM + where
    )
    return sql, params


def summaries(
    rows: list[tuple[Any, ...]], modality_rows: list[tuple[Any, ...]]
) -> list[StudySummary]:
    """StudySummary objects from the rows of :func:`studies_sql` and
    :func:`modalities_sql`."""
    modalities: dict[str, list[str]] = {}
    for study_uid, modality in modality_rows:
        modalities.setdefault(study_uid, []).append(modality)
    return [
        StudySummary(
            study_uid=row[0],
            patient_id=row[1],
            study_date=row[2],
            modalities=tuple(modalities.get(row[0], ())),
            series=int(row[3]),
            instances=int(row[4]),
            size=int(row[5]),
            last_received=float(row[6]),
        )
        for row in rows
    ]


#: An instance record with its series' modality and its study's patient and date (both
#: indexes, SQLite and PostgreSQL); callers add the WHERE clause.
INSTANCE_SELECT = """
SELECT i.study_uid, i.series_uid, i.sop_instance_uid, i.sop_class_uid,
       i.transfer_syntax_uid, i.path, i.size, COALESCE(se.modality, ''),
       COALESCE(st.patient_id, ''), COALESCE(st.study_date, ''), i.source, i.received_time
FROM instance i
LEFT JOIN series se ON se.series_uid = i.series_uid
LEFT JOIN study st ON st.study_uid = i.study_uid
"""
