"""Task management for the REST API: create, cancel, reschedule, delete (reference §5.2).

Every operation keeps the store and the running exports consistent: cancelling or
deleting an IN PROCESS task signals its :class:`Cancellation` (no new requests;
in-flight ones finish); rescheduling resets the task as dcm4chee does (status
SCHEDULED, failures 0, messages and processing times cleared) and, because it means
"export this again", forgets the per-instance results so everything is sent again.
"""

from __future__ import annotations

import enum
from dataclasses import replace
from typing import Any, Protocol

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime

from stowpair.config.model import Exporter
from stowpair.exporter.outcome import TaskStatus
from stowpair.queue.model import DONE, PENDING, NewTask, Task, TaskFilter
from stowpair.queue.store import TaskStore


class Scheduling(Protocol):
    """What the manager needs from the scheduler."""

    def kick(self) -> None: ...

    def cancel(self, task_id: int) -> bool: ...


class Result(enum.Enum):
    OK = "ok"
    NOT_FOUND = "not found"
    DONE = "already done"
    IN_PROCESS = "in process"


NOT_IN_PROCESS = (*PENDING, *DONE)


class TaskManager:
    """The operations behind ``/monitor/export`` and the export trigger."""

    def __init__(self, store: TaskStore, scheduler: Scheduling, clock: IReactorTime) -> None:
        self.store = store
        self._scheduler = scheduler
        self._clock = clock

    def now(self) -> float:
        return self._clock.seconds()

    def create(self, new: NewTask, run_now: bool) -> Deferred[Task]:
        """Store a new SCHEDULED task; ``run_now`` kicks the scheduler."""
        d = self.store.create(new)
        if run_now:
            d.addCallback(self._kick_through)
        return d

    def _kick_through(self, value: Any) -> Any:
        self._scheduler.kick()
        return value

    def cancel(self, task_id: int) -> Deferred[Result]:
        return Deferred.fromCoroutine(self._cancel(task_id))

    async def _cancel(self, task_id: int) -> Result:
        for _ in range(3):  # the status may change under us; re-read and try again
            task = await self.store.get(task_id)
            if task is None:
                return Result.NOT_FOUND
            if task.status.done:
                return Result.DONE
            changes = {"status": TaskStatus.CANCELED}
            if await self.store.update(task_id, changes, only_if=(task.status,)) is None:
                continue
            if task.status == TaskStatus.IN_PROCESS:
                self._scheduler.cancel(task_id)
            return Result.OK
        return Result.IN_PROCESS

    def cancel_matching(self, flt: TaskFilter) -> Deferred[int]:
        """Cancel tasks with a not-done status (``flt.statuses`` must be set)."""
        return Deferred.fromCoroutine(self._cancel_matching(flt))

    async def _cancel_matching(self, flt: TaskFilter) -> int:
        statuses = flt.statuses or (*PENDING, TaskStatus.IN_PROCESS)
        flt = replace(flt, statuses=tuple(s for s in statuses if not s.done))
        if not flt.statuses:
            return 0
        running = await self._in_process(flt)
        count = await self.store.update_matching(flt, {"status": TaskStatus.CANCELED})
        for task_id in running:
            self._scheduler.cancel(task_id)
        return count

    def reschedule(
        self,
        task_id: int,
        exporter: Exporter | None,
        scheduled_time: float | None,
        device_name: str | None = None,
    ) -> Deferred[Result]:
        return Deferred.fromCoroutine(
            self._reschedule(task_id, exporter, scheduled_time, device_name)
        )

    async def _reschedule(
        self,
        task_id: int,
        exporter: Exporter | None,
        scheduled_time: float | None,
        device_name: str | None,
    ) -> Result:
        changes = self._reset(exporter, scheduled_time, device_name)
        updated = await self.store.update(
            task_id, changes, only_if=NOT_IN_PROCESS, clear_results=True
        )
        if updated is None:
            task = await self.store.get(task_id)
            return Result.NOT_FOUND if task is None else Result.IN_PROCESS
        if scheduled_time is None:
            self._scheduler.kick()
        return Result.OK

    def reschedule_matching(
        self,
        flt: TaskFilter,
        exporter: Exporter | None,
        scheduled_time: float | None,
        device_name: str | None = None,
    ) -> Deferred[int]:
        """Reschedule matching tasks except IN PROCESS ones; only tasks updated before
        now, so that no task is rescheduled twice by one call (as dcm4chee)."""
        statuses = flt.statuses or NOT_IN_PROCESS
        flt = replace(
            flt,
            statuses=tuple(s for s in statuses if s != TaskStatus.IN_PROCESS),
            updated_before=self.now(),
        )
        changes = self._reset(exporter, scheduled_time, device_name)
        d = self.store.update_matching(flt, changes, clear_results=True)
        if scheduled_time is None:
            d.addCallback(self._kick_through)
        return d

    def _reset(
        self, exporter: Exporter | None, scheduled_time: float | None, device_name: str | None
    ) -> dict[str, Any]:
        changes: dict[str, Any] = {
            "status": TaskStatus.SCHEDULED,
            "scheduled_time": self.now() if scheduled_time is None else scheduled_time,
            "processing_start_time": None,
            "processing_end_time": None,
            "failures": 0,
            "outcome_message": None,
            "error_message": None,
        }
        if exporter is not None:
            changes.update(
                exporter_id=exporter.exporter_id,
                queue_name=exporter.queue_name,
                local_aet=exporter.ae_title,
            )
        if device_name is not None:
            changes["device_name"] = device_name
        return changes

    def delete(self, task_id: int) -> Deferred[bool]:
        """Delete one task, cancelling it first when it is running."""
        self._scheduler.cancel(task_id)
        return self.store.delete(task_id)

    def delete_matching(self, flt: TaskFilter) -> Deferred[int]:
        return Deferred.fromCoroutine(self._delete_matching(flt))

    async def _delete_matching(self, flt: TaskFilter) -> int:
        for task_id in await self._in_process(flt):
            self._scheduler.cancel(task_id)
        return await self.store.delete_matching(flt)

    async def _in_process(self, flt: TaskFilter) -> list[int]:
        if flt.statuses and TaskStatus.IN_PROCESS not in flt.statuses:
            return []
        running = replace(flt, statuses=(TaskStatus.IN_PROCESS,), offset=0, limit=None)
        return [t.task_id for t in await self.store.find(running)]
