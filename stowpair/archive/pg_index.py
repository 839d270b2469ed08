"""The archive index on PostgreSQL: the :class:`~stowpair.archive.model.InstanceIndex`
every node of a cluster shares (docs/cluster.md).

Same tables and rules as the SQLite index (an identical record leaves its row untouched,
so importing the same files again changes nothing). File paths under the shared
``archive.storage`` folder are stored relative to it, so nodes may mount that folder at
different places.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger

from stowpair.archive.model import InstanceRecord, QueryResult
from stowpair.archive.studies import (
    INSTANCE_SELECT,
    ArchiveCounts,
    StudyQuery,
    StudySummary,
    counts_sql,
    modalities_sql,
    studies_sql,
    summaries,
)
from stowpair.db.adapter import PostgresDb
from stowpair.db.postgres import PostgresDatabase

_UPSERT_STUDY = """
INSERT INTO study VALUES (?, ?, ?, ?) ON CONFLICT (study_uid) DO UPDATE SET
    patient_id = excluded.patient_id, study_date = excluded.study_date
WHERE (study.patient_id, study.study_date)
    IS DISTINCT FROM (excluded.patient_id, excluded.study_date)
"""
_UPSERT_SERIES = """
INSERT INTO series VALUES (?, ?, ?, ?) ON CONFLICT (series_uid) DO UPDATE SET
    modality = excluded.modality WHERE series.modality IS DISTINCT FROM excluded.modality
"""
# RETURNING tells a new row (xmax = 0) from an updated one; an unchanged row returns none.
_UPSERT_INSTANCE = """
INSERT INTO instance VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (sop_instance_uid) DO UPDATE SET
    series_uid = excluded.series_uid, study_uid = excluded.study_uid,
    sop_class_uid = excluded.sop_class_uid,
    transfer_syntax_uid = excluded.transfer_syntax_uid, path = excluded.path,
    size = excluded.size, source = excluded.source,
    received_time = excluded.received_time
WHERE (instance.series_uid, instance.study_uid, instance.sop_class_uid,
       instance.transfer_syntax_uid, instance.path, instance.size)
   IS DISTINCT FROM (excluded.series_uid, excluded.study_uid, excluded.sop_class_uid,
                     excluded.transfer_syntax_uid, excluded.path, excluded.size)
RETURNING (xmax = 0)
"""


class PostgresIndex:
    """:class:`~stowpair.archive.model.InstanceIndex` in a shared PostgreSQL database.

    ``storage`` is this node's path of the shared archive folder. The database belongs
    to the caller (opened before, closed after).
    """

    log = Logger()

    def __init__(self, database: PostgresDatabase, storage: Path) -> None:
        self.database = database
        self.storage = storage.absolute()
        self.opened: Deferred[int] = self.count()
        self.opened.addCallback(self._log_opened)

    def _log_opened(self, count: int) -> int:
        self.log.info(
            "Archive index {database} open with {instances} instances",
            event="archive.index.opened",
            database=self.database.where,
            instances=count,
        )
        return count

    # -- paths -------------------------------------------------------------------------

    def _stored(self, path: Path) -> str:
        try:
            return str(path.absolute().relative_to(self.storage))
        except ValueError:  # imported from elsewhere? kept absolute
            return str(path)

    def _record(self, row: tuple[Any, ...]) -> InstanceRecord:
        return InstanceRecord(
            study_uid=row[0],
            series_uid=row[1],
            sop_instance_uid=row[2],
            sop_class_uid=row[3],
            transfer_syntax_uid=row[4],
            path=self.storage / row[5],  # an absolute stored path stays as it is
            size=int(row[6]),
            modality=row[7],
            patient_id=row[8],
            study_date=row[9],
            source=row[10],
            received_time=float(row[11]),
        )

    # -- transactions ------------------------------------------------------------------

    def _add(self, db: PostgresDb, records: list[InstanceRecord]) -> int:
        new = 0
        # one order for every writer: two nodes indexing the same study cannot deadlock
        for r in sorted(records, key=lambda r: (r.study_uid, r.series_uid, r.sop_instance_uid)):
            db.execute(_UPSERT_STUDY, (r.study_uid, r.patient_id, r.study_date, r.received_time))
            db.execute(_UPSERT_SERIES, (r.series_uid, r.study_uid, r.modality, r.received_time))
            row = db.execute(
                _UPSERT_INSTANCE,
                (
                    r.sop_instance_uid, r.series_uid, r.study_uid, r.sop_class_uid,
                    r.transfer_syntax_uid, self._stored(r.path), r.size, r.source,
                    r.received_time,
                ),
            ).fetchone()  # fmt: skip
            new += bool(row is not None and row[0])
        return new

    def _query(self, db: PostgresDb, study: str, series: str, sop: str) -> list[InstanceRecord]:
        query = INSTANCE_SELECT + " WHERE i.study_uid = ?"
        params = [study]
        if series != "*":
            query += " AND i.series_uid = ?"
            params.append(series)
        if sop != "*":
            query += " AND i.sop_instance_uid = ?"
            params.append(sop)
        query += " ORDER BY i.series_uid, i.received_time, i.sop_instance_uid"
        return [self._record(row) for row in db.execute(query, params)]

    # -- InstanceIndex -----------------------------------------------------------------

    def add(self, records: list[InstanceRecord]) -> Deferred[int]:
        """Insert or replace records in one transaction; fires with the number of SOP
        Instance UIDs that were not indexed before."""
        batch = list(records)
        return self.database.run(lambda db: self._add(db, batch))

    def query(
        self, study_uid: str, series_uid: str = "*", sop_uid: str = "*"
    ) -> Deferred[QueryResult]:
        d = self.database.run(lambda db: self._query(db, study_uid, series_uid, sop_uid))
        # stat() may block on a slow (network) file system: off the reactor thread
        return d.addCallback(lambda records: self.database.blocking(lambda: _split(records)))

    def get(self, sop_uid: str) -> Deferred[InstanceRecord | None]:
        def work(db: PostgresDb) -> InstanceRecord | None:
            row = db.execute(
                INSTANCE_SELECT + " WHERE i.sop_instance_uid = ?", [sop_uid]
            ).fetchone()
            return None if row is None else self._record(row)

        return self.database.run(work)

    def studies(self, query: StudyQuery) -> Deferred[list[StudySummary]]:
        """Matching studies, newest received first (QIDO-RS ``/rs/studies``)."""

        def work(db: PostgresDb) -> list[StudySummary]:
            sql, params = studies_sql(query)
            rows = db.execute(sql, params).fetchall()
            uids = [row[0] for row in rows]
            pairs = db.execute(modalities_sql(len(uids)), uids).fetchall() if uids else []
            return summaries(rows, pairs)

        return self.database.run(work)

    def counts(self, query: StudyQuery) -> Deferred[ArchiveCounts]:
        """Studies, series and instances of the matching studies."""

        def work(db: PostgresDb) -> ArchiveCounts:
            sql, params = counts_sql(query)
            studies, series, instances = db.execute(sql, params).fetchone()
            return ArchiveCounts(int(studies), int(series), int(instances))

        return self.database.run(work)

    def count(self) -> Deferred[int]:
        return self._scalar("SELECT COUNT(*) FROM instance")

    def count_studies(self) -> Deferred[int]:
        return self._scalar("SELECT COUNT(DISTINCT study_uid) FROM instance")

    def has_instances(self) -> Deferred[bool]:
        d = self._scalar("SELECT CASE WHEN EXISTS (SELECT 1 FROM instance) THEN 1 ELSE 0 END")
        return d.addCallback(bool)

    def _scalar(self, query: str) -> Deferred[int]:
        return self.database.run(lambda db: int(db.execute(query).fetchone()[0]))

    def close(self) -> Deferred[None]:
        """Nothing of its own: the database is shared with the task store."""
        return succeed(None)


def _split(records: list[InstanceRecord]) -> QueryResult:
    present = tuple(r for r in records if r.path.is_file())
    missing = tuple(r for r in records if not r.path.is_file())
    return QueryResult(instances=present, missing=missing)
