"""``/monitor/export/batch``: tasks grouped by batchID (dcm4chee's ExportBatchRS)."""

from __future__ import annotations

from stowpair.db.adapter import Db
from stowpair.exporter.outcome import TaskStatus
from stowpair.queue import sql
from stowpair.queue.model import BatchSummary, TaskFilter

_AGGREGATES = (
    "MIN(created_time), MAX(created_time), MIN(updated_time), MAX(updated_time),"
    " MIN(scheduled_time), MAX(scheduled_time), MIN(proc_start_time), MAX(proc_start_time),"
    " MIN(proc_end_time), MAX(proc_end_time)"
)


def batches_query(db: Db, flt: TaskFilter) -> list[BatchSummary]:
    """One summary per batchID among the tasks matching ``flt`` (tasks without a
    batchID are not listed); ordered by the newest time of ``flt.order_by``."""
    clause, params = sql.where(flt)
    clause = (clause + " AND" if clause else " WHERE") + " batch_id IS NOT NULL"
    column = sql.ORDER_COLUMNS[flt.order_by]
    direction = "DESC" if flt.descending else "ASC"
    limit = db.dialect.no_limit if flt.limit is None else str(int(flt.limit))
    rows = db.execute(
        f"SELECT batch_id, {_AGGREGATES} FROM task{clause} GROUP BY batch_id"
        f" ORDER BY MAX({column}) {direction}, batch_id"
        f" LIMIT {limit} OFFSET {int(flt.offset)}",
        params,
    ).fetchall()
    return [_summary(db, clause, params, row) for row in rows]


def _summary(db: Db, clause: str, params: list[object], row: tuple[object, ...]) -> BatchSummary:
    batch_id = str(row[0])
    scoped = clause + " AND batch_id = ?"
    values = [*params, batch_id]
    counts = {
        TaskStatus(status): int(n)
        for status, n in db.execute(
            f"SELECT task_status, COUNT(*) FROM task{scoped} GROUP BY task_status", values
        )
    }
    devices = tuple(r[0] for r in db.execute(f"SELECT DISTINCT device_name FROM task{scoped}"
                                             " ORDER BY 1", values))  # fmt: skip
    exporters = tuple(r[0] for r in db.execute(f"SELECT DISTINCT exporter_id FROM task{scoped}"
                                               " ORDER BY 1", values))  # fmt: skip
    t = row[1:]
    return BatchSummary(
        batch_id=batch_id,
        counts=counts,
        device_names=devices,
        exporter_ids=exporters,
        created_range=(float(t[0]), float(t[1])),  # type: ignore[arg-type]
        updated_range=(float(t[2]), float(t[3])),  # type: ignore[arg-type]
        scheduled_range=(float(t[4]), float(t[5])),  # type: ignore[arg-type]
        processing_start_range=(t[6], t[7]),  # type: ignore[arg-type]
        processing_end_range=(t[8], t[9]),  # type: ignore[arg-type]
    )
