"""The SQLite instance index: the embedded default :class:`~stowpair.archive.model.InstanceIndex`.

Every SQLite call runs on one dedicated worker thread (a Twisted ``ThreadPool`` of size
one): an sqlite3 connection belongs to the thread that made it, and the reactor thread
must never wait for a commit. The database is in WAL mode with a busy timeout, so
``stowpair import`` and the running service can write the same index at once.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorFromThreads
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool

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
from stowpair.logs import register_events

T = TypeVar("T")

register_events({"archive.index.opened": ("database", "instances")})

#: Seconds a writer waits for another process's transaction (the CLI vs the service).
BUSY_TIMEOUT = 30.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS study (
    study_uid   TEXT PRIMARY KEY,
    patient_id  TEXT NOT NULL DEFAULT '',
    study_date  TEXT NOT NULL DEFAULT '',
    created     REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS series (
    series_uid  TEXT PRIMARY KEY,
    study_uid   TEXT NOT NULL REFERENCES study(study_uid),
    modality    TEXT NOT NULL DEFAULT '',
    created     REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS instance (
    sop_instance_uid    TEXT PRIMARY KEY,
    series_uid          TEXT NOT NULL REFERENCES series(series_uid),
    study_uid           TEXT NOT NULL REFERENCES study(study_uid),
    sop_class_uid       TEXT NOT NULL,
    transfer_syntax_uid TEXT NOT NULL,
    path                TEXT NOT NULL,
    size                INTEGER NOT NULL,
    source              TEXT NOT NULL DEFAULT '',
    received_time       REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS instance_by_series ON instance(study_uid, series_uid);
CREATE INDEX IF NOT EXISTS series_by_study ON series(study_uid);
"""


# Only a real change replaces a row, so re-importing the same files changes nothing
# (not even received_time).
_UPSERT_INSTANCE = """
INSERT INTO instance VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(sop_instance_uid) DO UPDATE SET
    series_uid = excluded.series_uid, study_uid = excluded.study_uid,
    sop_class_uid = excluded.sop_class_uid,
    transfer_syntax_uid = excluded.transfer_syntax_uid, path = excluded.path,
    size = excluded.size, source = excluded.source,
    received_time = excluded.received_time
WHERE (instance.series_uid, instance.study_uid, instance.sop_class_uid,
       instance.transfer_syntax_uid, instance.path, instance.size)
   IS NOT (excluded.series_uid, excluded.study_uid, excluded.sop_class_uid,
           excluded.transfer_syntax_uid, excluded.path, excluded.size)
"""


def _record(row: tuple[Any, ...]) -> InstanceRecord:
    return InstanceRecord(
        study_uid=row[0],
        series_uid=row[1],
        sop_instance_uid=row[2],
        sop_class_uid=row[3],
        transfer_syntax_uid=row[4],
        path=Path(row[5]),
        size=row[6],
        modality=row[7],
        patient_id=row[8],
        study_date=row[9],
        source=row[10],
        received_time=row[11],
    )


class SQLiteIndex:
    """:class:`~stowpair.archive.model.InstanceIndex` on SQLite (WAL), off the reactor thread.

    Construct it, use it, and always ``close()`` it: the worker thread is not a daemon.
    Methods may be called from the reactor thread only; each returns a Deferred that
    fires on the reactor thread.
    """

    log = Logger()

    def __init__(self, database: Path, reactor: IReactorFromThreads) -> None:
        self.database = database
        self._reactor = reactor
        self._pool = ThreadPool(minthreads=1, maxthreads=1, name="stowpair-archive-index")
        self._pool.start()
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        # The pool runs jobs in order on its one thread: opening is the first job.
        self.opened: Deferred[int] = self._run(self._open)
        self.opened.addCallback(self._log_opened)

    def _log_opened(self, count: int) -> int:
        self.log.info(
            "Archive index {database} open with {instances} instances",
            event="archive.index.opened",
            database=str(self.database),
            instances=count,
        )
        return count

    def _run(self, fn: Callable[..., T], *args: Any) -> Deferred[T]:
        if self._closed:
            raise RuntimeError(f"the archive index {self.database} is closed")
        return deferToThreadPool(self._reactor, self._pool, fn, *args)

    # -- worker thread only ------------------------------------------------------------

    def _open(self) -> int:
        self.database.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.database, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=True
        )
        conn.execute("PRAGMA journal_mode=WAL")
        # FULL: an acknowledged STOW-RS instance stays indexed after a power cut.
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.executescript("BEGIN IMMEDIATE;" + _SCHEMA + "COMMIT;")
        self._conn = conn
        return int(conn.execute("SELECT COUNT(*) FROM instance").fetchone()[0])

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError(f"the archive index {self.database} could not be opened")
        return self._conn

    def _add(self, records: list[InstanceRecord]) -> int:
        conn = self._db()
        new = 0
        conn.execute("BEGIN IMMEDIATE")  # take the write lock now: no upgrade deadlock
        try:
            for r in records:
                exists = conn.execute(
                    "SELECT 1 FROM instance WHERE sop_instance_uid = ?", (r.sop_instance_uid,)
                ).fetchone()
                new += exists is None
                self._add_one(conn, r)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return new

    @staticmethod
    def _add_one(conn: sqlite3.Connection, r: InstanceRecord) -> None:
        conn.execute(
            "INSERT INTO study VALUES (?, ?, ?, ?) ON CONFLICT(study_uid) DO UPDATE SET "
            "patient_id = excluded.patient_id, study_date = excluded.study_date "
            "WHERE (study.patient_id, study.study_date) "
            "IS NOT (excluded.patient_id, excluded.study_date)",
            (r.study_uid, r.patient_id, r.study_date, r.received_time),
        )
        conn.execute(
            "INSERT INTO series VALUES (?, ?, ?, ?) ON CONFLICT(series_uid) DO UPDATE SET "
            "modality = excluded.modality WHERE series.modality IS NOT excluded.modality",
            (r.series_uid, r.study_uid, r.modality, r.received_time),
        )
        conn.execute(
            _UPSERT_INSTANCE,
            (
                r.sop_instance_uid,
                r.series_uid,
                r.study_uid,
                r.sop_class_uid,
                r.transfer_syntax_uid,
                str(r.path),
                r.size,
                r.source,
                r.received_time,
            ),
        )

    def _query(self, study_uid: str, series_uid: str, sop_uid: str) -> QueryResult:
        sql = INSTANCE_SELECT + " WHERE i.study_uid = ?"
        params: list[str] = [study_uid]
        if series_uid != "*":
            sql += " AND i.series_uid = ?"
            params.append(series_uid)
        if sop_uid != "*":
            sql += " AND i.sop_instance_uid = ?"
            params.append(sop_uid)
        sql += " ORDER BY i.series_uid, i.received_time, i.sop_instance_uid"
        records = [_record(row) for row in self._db().execute(sql, params)]
        # Existence is checked here, in the worker: stat() may block on a slow disk.
        present = tuple(r for r in records if r.path.is_file())
        missing = tuple(r for r in records if not r.path.is_file())
        return QueryResult(instances=present, missing=missing)

    def _get(self, sop_uid: str) -> InstanceRecord | None:
        row = (
            self._db()
            .execute(INSTANCE_SELECT + " WHERE i.sop_instance_uid = ?", (sop_uid,))
            .fetchone()
        )
        return None if row is None else _record(row)

    def _studies(self, query: StudyQuery) -> list[StudySummary]:
        conn = self._db()
        sql, params = studies_sql(query)
        rows = conn.execute(sql, params).fetchall()
        uids = [row[0] for row in rows]
        pairs = conn.execute(modalities_sql(len(uids)), uids).fetchall() if uids else []
        return summaries(rows, pairs)

    def _counts(self, query: StudyQuery) -> ArchiveCounts:
        sql, params = counts_sql(query)
        studies, series, instances = self._db().execute(sql, params).fetchone()
        return ArchiveCounts(int(studies), int(series), int(instances))

    def _scalar(self, sql: str) -> int:
        return int(self._db().execute(sql).fetchone()[0])

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- InstanceIndex -----------------------------------------------------------------

    def add(self, records: list[InstanceRecord]) -> Deferred[int]:
        """Insert or replace records in one transaction; fires with the number of SOP
        Instance UIDs that were not indexed before. A record identical to the indexed
        one (same UIDs, path, size, syntax) leaves its row untouched."""
        return self._run(self._add, list(records))

    def query(
        self, study_uid: str, series_uid: str = "*", sop_uid: str = "*"
    ) -> Deferred[QueryResult]:
        """Instances of a study, series (or ``*``) and instance (or ``*``), ordered by
        series then arrival; those whose file is gone are in ``missing``."""
        return self._run(self._query, study_uid, series_uid, sop_uid)

    def get(self, sop_uid: str) -> Deferred[InstanceRecord | None]:
        """The indexed record of one SOP Instance UID (file present or not), or None."""
        return self._run(self._get, sop_uid)

    def count(self) -> Deferred[int]:
        """The number of indexed instances."""
        return self._run(self._scalar, "SELECT COUNT(*) FROM instance")

    def count_studies(self) -> Deferred[int]:
        """The number of indexed studies that hold at least one instance."""
        return self._run(self._scalar, "SELECT COUNT(DISTINCT study_uid) FROM instance")

    def studies(self, query: StudyQuery) -> Deferred[list[StudySummary]]:
        """Matching studies, newest received first (QIDO-RS ``/rs/studies``)."""
        return self._run(self._studies, query)

    def counts(self, query: StudyQuery) -> Deferred[ArchiveCounts]:
        """Studies, series and instances of the matching studies."""
        return self._run(self._counts, query)

    def has_instances(self) -> Deferred[bool]:
        """True when at least one instance is indexed (the service's demo-on-empty check)."""
        d = self._run(self._scalar, "SELECT EXISTS (SELECT 1 FROM instance)")
        return d.addCallback(bool)

    def close(self) -> Deferred[None]:
        """Close the connection on its thread, then stop the thread. Idempotent."""
        if self._closed:
            return succeed(None)
        d = self._run(self._close)
        self._closed = True

        def stop(result: object) -> object:
            self._pool.stop()  # the worker is idle now: joining it does not wait
            return result

        d.addBoth(stop)
        return d.addCallback(lambda _: None)
