"""NumberOfInstances and Modality of an export task, read when processing starts.

dcm4chee's ExportTaskProcessor sets both from the archive's index for every task before
it exports: the study's instances and modalities, the series' for a series export, and
1 instance for an instance export. Nothing is set when the index holds no such entity.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from stowpair.archive.model import InstanceIndex
from stowpair.queue.model import Task

log = Logger()


@dataclass(frozen=True)
class TaskInfo:
    number_of_instances: int
    modalities: tuple[str, ...]


#: (study, series or ``*``, SOP or ``*``) -> what the index knows, or None.
TaskInfoSource = Callable[[str, str, str], Deferred[TaskInfo | None]]


def index_task_info(index: InstanceIndex) -> TaskInfoSource:
    """A :data:`TaskInfoSource` reading ``index`` (indexed instances, files or not)."""

    async def info(study: str, series: str, sop: str) -> TaskInfo | None:
        found = await index.query(study, series, sop)
        records = found.instances + found.missing
        if not records:
            return None
        modalities = tuple(dict.fromkeys(r.modality for r in records if r.modality))
        return TaskInfo(len(records), modalities)

    return lambda study, series, sop: Deferred.fromCoroutine(info(study, series, sop))


async def info_changes(source: TaskInfoSource | None, task: Task) -> dict[str, Any]:
    """The task fields to set at processing start; an index error is logged, not fatal."""
    if source is None:
        return {}
    try:
        info = await source(task.study_uid, task.series_uid, task.sop_uid)
    except Exception as e:
        log.failure(
            "Cannot read NumberOfInstances and Modality of task {task_id}: {error}",
            task_id=task.task_id,
            error=str(e),
            event="queue.task.info.error",
        )
        return {}
    if info is None:
        return {}
    return {"number_of_instances": info.number_of_instances, "modalities": info.modalities}
