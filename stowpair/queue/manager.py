"""Task management for the REST API: create, cancel, reschedule, delete.

Every operation keeps the store and the running exports consistent: cancelling,
deleting or rescheduling an IN PROCESS task signals its :class:`Cancellation` (no new
requests; in-flight ones finish), as dcm4chee's TaskManager fires ``TaskCanceled``.
Rescheduling resets the task as dcm4chee does (status SCHEDULED, failures 0, messages
and processing times cleared) and, because it means "export this again", forgets the
per-instance results so everything is sent again. Operations by filter answer dcm4chee's
counts: how many tasks changed, and how many could not be changed (:class:`Bulk`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime

from stowpair.config.model import Exporter
from stowpair.exporter.outcome import TaskStatus
from stowpair.queue.model import DONE, PENDING, NewTask, Task, TaskFilter
from stowpair.queue.store import TaskStore

#: Why a running export is stopped: a user cancelled/deleted it, or rescheduled it.
StopReason = Literal["user", "rescheduled"]


class Scheduling(Protocol):
    """What the manager needs from the scheduler."""

    def kick(self) -> None: ...

    def cancel(self, task_id: int, reason: StopReason = "user") -> bool: ...


class Result(enum.Enum):
    OK = "ok"
    NOT_FOUND = "not found"
    DONE = "already done"
    IN_PROCESS = "in process"


@dataclass(frozen=True)
class Bulk:
    """The result of an operation by filter: tasks changed, and tasks that could not be
    (they changed or disappeared meanwhile). dcm4chee answers 200 ``{"count"}`` when
    nothing failed, 202 ``{"count","failed"}`` when some did, 409 ``{"failed"}`` when
    only failures remain."""

    count: int
    failed: int = 0


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

    def cancel_matching(self, flt: TaskFilter) -> Deferred[Bulk]:
        """Cancel tasks with a not-done status (``flt.statuses`` should be set).

        SCHEDULED and SCHEDULED FOR RETRY tasks change in one update; IN PROCESS tasks
        one by one, each signalled, so one that finished meanwhile counts as failed.
        """
        return Deferred.fromCoroutine(self._cancel_matching(flt))

    async def _cancel_matching(self, flt: TaskFilter) -> Bulk:
        statuses = flt.statuses or (*PENDING, TaskStatus.IN_PROCESS)
        pending = tuple(s for s in statuses if s in PENDING)
        count = 0
        if pending:
            count = await self.store.update_matching(
                replace(flt, statuses=pending), {"status": TaskStatus.CANCELED}
            )
        if TaskStatus.IN_PROCESS not in statuses:
            return Bulk(count)
        failed = 0
        for task_id in await self._in_process(flt):
            changed = await self.store.update(
                task_id, {"status": TaskStatus.CANCELED}, only_if=(TaskStatus.IN_PROCESS,)
            )
            if changed is None:
                failed += 1
                continue
            self._scheduler.cancel(task_id)
            count += 1
        return Bulk(count, failed)

    def reschedule(
        self,
        task_id: int,
        exporter: Exporter | None,
        scheduled_time: float | None,
        device_name: str | None = None,
    ) -> Deferred[Result]:
        """Reset one task to SCHEDULED, whatever its status; a running export is
        cancelled first (dcm4chee answers 204 here too)."""
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
        for _ in range(3):  # the status may change under us; re-read and try again
            task = await self.store.get(task_id)
            if task is None:
                return Result.NOT_FOUND
            updated = await self.store.update(
                task_id, changes, only_if=(task.status,), clear_results=True
            )
            if updated is None:
                continue
            if task.status == TaskStatus.IN_PROCESS:
                self._scheduler.cancel(task_id, "rescheduled")
            if scheduled_time is None:
                self._scheduler.kick()
            return Result.OK
        return Result.IN_PROCESS

    def reschedule_matching(
        self,
        flt: TaskFilter,
        exporter: Exporter | None,
        scheduled_time: float | None,
        device_name: str | None = None,
    ) -> Deferred[Bulk]:
        """Reschedule matching tasks, running ones included (their exports are cancelled);
        only tasks updated before now, so that no task is rescheduled twice by one call
        (as dcm4chee)."""
        return Deferred.fromCoroutine(
            self._reschedule_matching(flt, exporter, scheduled_time, device_name)
        )

    async def _reschedule_matching(
        self,
        flt: TaskFilter,
        exporter: Exporter | None,
        scheduled_time: float | None,
        device_name: str | None,
    ) -> Bulk:
        flt = replace(flt, updated_before=self.now())
        running = await self._in_process(flt)
        changes = self._reset(exporter, scheduled_time, device_name)
        count = await self.store.update_matching(flt, changes, clear_results=True)
        for task_id in running:
            self._scheduler.cancel(task_id, "rescheduled")
        if scheduled_time is None:
            self._scheduler.kick()
        return Bulk(count)

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
        return Deferred.fromCoroutine(self._delete(task_id))

    async def _delete(self, task_id: int) -> bool:
        task = await self.store.get(task_id)
        if task is None:
            return False
        if task.status == TaskStatus.IN_PROCESS:
            self._scheduler.cancel(task_id)
        return await self.store.delete(task_id)

    def delete_matching(self, flt: TaskFilter) -> Deferred[Bulk]:
        """Delete matching tasks; running ones are signalled to stop first."""
        return Deferred.fromCoroutine(self._delete_matching(flt))

    async def _delete_matching(self, flt: TaskFilter) -> Bulk:
        for task_id in await self._in_process(flt):
            self._scheduler.cancel(task_id)
        return Bulk(await self.store.delete_matching(flt))

    async def _in_process(self, flt: TaskFilter) -> list[int]:
        """IDs of the IN PROCESS tasks among those ``flt`` selects (page included)."""
        if flt.statuses and TaskStatus.IN_PROCESS not in flt.statuses:
            return []
        if flt.offset or flt.limit is not None:
            return [
                t.task_id for t in await self.store.find(flt) if t.status == TaskStatus.IN_PROCESS
            ]
        running = replace(flt, statuses=(TaskStatus.IN_PROCESS,))
        return [t.task_id for t in await self.store.find(running)]
