"""How a running export attempt records its results and ends (the scheduler's half that
follows an attempt): per-request results committed as they arrive, the outcome turned
into dcm4chee's final or retry state, written under the attempt's lease, and what happens
when the lease keeper says the attempt must stop (docs/queue.md, docs/cluster.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.python.failure import Failure

from stowpair.config.model import Config, Queue
from stowpair.db.errors import DatabaseUnavailable
from stowpair.exporter.outcome import (
    Cancellation,
    ExportError,
    InstanceOutcome,
    Outcome,
    TaskStatus,
)
from stowpair.exporter.outcome_rule import failure_summary
from stowpair.queue.leases import RUNNING, Held, LeaseKeeper, Loss
from stowpair.queue.model import Lease, Task
from stowpair.queue.purge import results_of
from stowpair.queue.retry import retry_delay, should_retry
from stowpair.queue.store import TaskStore

#: Why a running export was stopped: by a user (-> CANCELED), by a reschedule (the task
#: is SCHEDULED already), by shutdown or because the node was cut off from the database
#: (-> SCHEDULED), or because another node holds the task now (nothing is written).
StopReason = Literal["", "user", "rescheduled", "shutdown", "cutoff", "lost"]
#: Longest wait between two tries to write an attempt's end while the database is away.
MAX_WRITE_WAIT = 10.0


@dataclass
class Running:
    task: Task
    #: LeaseKeeper.mark() when the claim came back.
    mark: int = 0
    cancellation: Cancellation = field(default_factory=Cancellation)
    export: Deferred[Any] | None = None
    stop_reason: StopReason = ""
    already_done: frozenset[str] = frozenset()
    #: SOP Instance UIDs whose results this attempt has already recorded.
    recorded: set[str] = field(default_factory=set)
    #: A wait before writing the attempt's end again (the database was away).
    sleep: Deferred[None] | None = None

    @property
    def lease(self) -> Lease:
        return self.task.lease


class AttemptEnds:
    """The scheduler's methods for running attempts; mixed into ExportScheduler."""

    log: Logger
    config: Config
    node: str
    keeper: LeaseKeeper
    running: int
    _store: TaskStore
    _clock: IReactorTime
    _running: dict[int, Running]
    _wakeups: list[IDelayedCall]
    _stopping: bool
    _aborting: bool

    def kick(self) -> None:
        raise NotImplementedError

    def _stop(self, running: Running, reason: StopReason) -> None:
        running.stop_reason = running.stop_reason or reason
        running.cancellation.cancel()

    # -- what the lease keeper asks (stowpair.queue.leases.Holder) ------------------------

    def held(self) -> dict[int, Held]:
        return {
            task_id: Held(r.lease, r.mark, bool(r.stop_reason))
            for task_id, r in self._running.items()
        }

    def lose(self, task_id: int, loss: Loss, holder: Lease | None) -> None:
        running = self._running.get(task_id)
        if running is None or running.stop_reason:
            return
        if loss == "taken":
            self._log_lost(running, holder)
            self._stop(running, "lost")
        else:  # cancelled or deleted through another node
            self._stop(running, "user")

    def cut_off(self, silent: float) -> None:
        active = [r for r in self._running.values() if not r.stop_reason]
        self.log.warn(
            "No heartbeat for {silent:.1f}s (lease {lease:g}s): {in_flight} running export(s)"
            " stop sending before another node may take their tasks over; their results are"
            " written when the database is back",
            silent=silent,
            lease=self.keeper.lease,
            in_flight=len(active),
            device=self.node,
            event="cluster.node.cut_off",
        )
        for running in active:
            self._stop(running, "cutoff")

    def reconnected(self) -> None:
        self.kick()

    def _log_lost(self, running: Running, holder: Lease | None) -> None:
        task = running.task
        self.log.warn(
            "Task {task_id} ({exporter_id}) is no longer held by {device} (epoch {epoch}):"
            " {holder} holds it now; this node stops its attempt and writes nothing more for it",
            task_id=task.task_id,
            exporter_id=task.exporter_id,
            device=self.node,
            epoch=task.epoch,
            holder=f"{holder.device_name} (epoch {holder.epoch})" if holder else "no node",
            event="queue.task.lease_lost",
        )

    def _record(self, running: Running, outcomes: Sequence[InstanceOutcome]) -> Deferred[None]:
        """Commit one request's results now (durable progress). A failed commit is logged
        and the results are written again when the attempt ends; while the database is
        known to be away (the last heartbeat failed) none is tried, so the export goes on
        at full speed and its results are written with the attempt's end."""
        if not self.keeper.available:
            return succeed(None)
        fresh = [o for o in outcomes if o.sop_instance_uid not in running.recorded]
        uids = {o.sop_instance_uid for o in fresh}
        running.recorded |= uids
        rows = results_of(running.task, fresh)
        d = self._store.record_results(running.task.task_id, rows, RUNNING, running.lease)

        def written(ok: bool) -> None:
            if not ok and not running.stop_reason:  # taken over, deleted or rescheduled
                self._log_lost(running, None)
                self._stop(running, "lost")

        def failed(failure: Failure) -> None:
            running.recorded -= uids
            self.log.warn(
                "Could not record the results of task {task_id} yet ({error}); they are"
                " written when the attempt ends",
                task_id=running.task.task_id,
                exporter_id=running.task.exporter_id,
                error=failure.getErrorMessage(),
                event="queue.task.error",
            )

        return d.addCallbacks(written, failed)

    def _succeeded(self, outcome: Outcome, running: Running) -> Deferred[None]:
        changes: dict[str, Any] = {
            "processing_end_time": self._clock.seconds(),
            "outcome_message": outcome.message,
            "error_message": failure_summary(outcome),
        }
        status = outcome.status
        if status not in (TaskStatus.COMPLETED, TaskStatus.WARNING, TaskStatus.CANCELED):
            status = TaskStatus.FAILED
        return self._settle(running, status, changes, outcome.retry_after, outcome)

    def _failed(self, failure: Failure, running: Running) -> Deferred[None]:
        if failure.check(ExportError):
            message = str(failure.value)
        elif failure.check(DatabaseUnavailable):  # not the export's fault: no failure counted
            self._stop(running, "cutoff")
            message = f"export interrupted: the database was unavailable ({failure.value})"
        elif failure.check(CancelledError) and running.stop_reason:
            message = "export aborted at shutdown; it will run again"
        else:
            self.log.failure(
                "Unexpected error exporting task {task_id} ({exporter_id})",
                failure,
                task_id=running.task.task_id,
                exporter_id=running.task.exporter_id,
                error=str(failure.value),
                event="queue.task.error",
            )
            message = f"{type(failure.value).__name__}: {failure.value}"
        changes = {"processing_end_time": self._clock.seconds(), "error_message": message}
        return self._settle(running, TaskStatus.FAILED, changes, None, None)

    def _settle(
        self,
        running: Running,
        status: TaskStatus,
        changes: dict[str, Any],
        retry_after: float | None,
        outcome: Outcome | None,
    ) -> Deferred[None]:
        """Decide the final or retry state (dcm4chee's onProcessingSuccessful/Failed)."""
        task = running.task
        queue = self.config.queues.get(task.queue_name, Queue(task.queue_name))
        if running.stop_reason == "lost":  # another node holds the task: write nothing
            return succeed(None)
        if running.stop_reason in ("user", "rescheduled"):
            status = TaskStatus.CANCELED
        elif running.stop_reason in ("shutdown", "cutoff") and status != TaskStatus.COMPLETED:
            status = TaskStatus.SCHEDULED
            changes.update(processing_start_time=None, processing_end_time=None)
        elif should_retry(status, queue, outcome):
            changes.update(self._retry(task, queue, retry_after))
        changes.setdefault("status", status)
        instances = outcome.instances if outcome is not None else ()
        results = results_of(
            task, [i for i in instances if i.sop_instance_uid not in running.recorded]
        )
        d = Deferred.fromCoroutine(self._write_end(running, results, changes))
        return d.addCallback(self._settled, running)

    async def _write_end(
        self, running: Running, results: list[Any], changes: dict[str, Any]
    ) -> Task | None:
        """Write the attempt's end under its lease; while the database is away, try again
        (1, 2, 4 ... 10 s apart) until it is back, or until shutdown gives up."""
        wait = 1.0
        warned = False
        while True:
            try:
                return await self._store.finish(
                    running.task.task_id, results, changes, RUNNING, running.lease
                )
            except DatabaseUnavailable as e:
                if self._aborting:
                    raise
                if not warned:
                    warned = True
                    self.log.warn(
                        "Task {task_id} ({exporter_id}) ended but its results cannot be"
                        " written yet: {error}; trying again until the database is back",
                        task_id=running.task.task_id,
                        exporter_id=running.task.exporter_id,
                        error=str(e),
                        event="queue.task.unwritten",
                    )
                running.sleep = deferLater(self._clock, wait, lambda: None)
                try:
                    await running.sleep
                finally:
                    running.sleep = None
                wait = min(wait * 2, MAX_WRITE_WAIT)

    def _retry(self, task: Task, queue: Queue, retry_after: float | None) -> dict[str, Any]:
        failures = task.failures + 1
        seconds = retry_delay(queue, failures)
        if seconds is None:
            return {"failures": failures}
        delay = max(float(seconds), retry_after or 0.0)
        when = self._clock.seconds() + delay
        self.log.info(
            "Task {task_id} ({exporter_id}) will be retried in {delay:.0f}s (failure {failures})",
            task_id=task.task_id,
            exporter_id=task.exporter_id,
            failures=failures,
            delay=delay,
            scheduled_time=when,
            event="queue.task.retry",
        )
        if self.running and not self._stopping:
            self._wakeups = [c for c in self._wakeups if c.active()]
            self._wakeups.append(self._clock.callLater(delay, self.kick))
        return {
            "failures": failures,
            "status": TaskStatus.SCHEDULED_FOR_RETRY,
            "scheduled_time": when,
        }

    def _settled(self, updated: Task | None, running: Running) -> None:
        before = running.task
        if updated is None and running.stop_reason == "rescheduled":
            self.log.info(
                "Task {task_id} was rescheduled while it ran: its running attempt stopped",
                task_id=before.task_id,
                exporter_id=before.exporter_id,
                event="queue.task.rescheduled",
            )
            return
        if updated is None:
            self.log.warn(
                "Task {task_id} was deleted, rescheduled or taken over by another node while"
                " it ran here; the result of this attempt was dropped",
                task_id=before.task_id,
                status=None,
                event="queue.task.lost",
            )
            return
        self._log_state(updated, before.status)

    def _log_state(self, task: Task, previous: TaskStatus) -> None:
        message = task.error_message or task.outcome_message or ""
        self.log.info(
            "Task {task_id} ({exporter_id}, Study {study_uid}): {previous} -> {status}"
            " (failures: {failures}) {message}",
            task_id=task.task_id,
            exporter_id=task.exporter_id,
            queue=task.queue_name,
            study_uid=task.study_uid,
            previous=previous.value,
            status=task.status.value,
            failures=task.failures,
            message=message,
            device=task.device_name,
            epoch=task.epoch,
            event="queue.task.state",
        )

    def _log_error(self, failure: Failure, event: str) -> None:
        self.log.failure(
            "Export queue error (the scheduler keeps running): {error}",
            failure,
            error=str(failure.value),
            event=event,
        )
