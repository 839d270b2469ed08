"""The export scheduler: due tasks -> exporter providers -> outcomes -> task states.

Behaviour follows dcm4chee's TaskScheduler / TaskManagerEJB (reference §3, §4):
polling at the device's task polling interval plus immediate kicks; per-queue
``max_tasks_parallel``; queue schedules gate processing (checked before each task);
an uninstalled queue pauses; retries with ``delay × (multiplier/100)^(n−1)``; IN
PROCESS tasks go back to SCHEDULED at startup; finished tasks are purged after the
per-status delays. Unlike dcm4chee, a retry re-sends only the instances that were not
delivered by earlier attempts (``ExportRequest.already_done``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from twisted.application.service import Service
from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from stowpair.config.model import Config, Queue
from stowpair.config.schedule import contains_any
from stowpair.exporter.outcome import (
    Cancellation,
    ExporterProvider,
    ExportError,
    ExportRequest,
    InstanceOutcome,
    Outcome,
    TaskStatus,
    is_permanent_refusal,
)
from stowpair.exporter.outcome_rule import failure_summary
from stowpair.queue import events as _events  # noqa: F401  (registers event names)
from stowpair.queue.info import TaskInfoSource, info_changes
from stowpair.queue.manager import StopReason
from stowpair.queue.model import PENDING, Task, TaskFilter
from stowpair.queue.purge import purge_finished, results_of
from stowpair.queue.retry import retry_delay, should_retry
from stowpair.queue.store import TaskStore


@dataclass
class _Running:
    task: Task
    cancellation: Cancellation = field(default_factory=Cancellation)
    export: Deferred[Any] | None = None
    #: Why it was cancelled: by a user (-> CANCELED), by a reschedule (the task is
    #: SCHEDULED already) or by shutdown (-> SCHEDULED).
    stop_reason: Literal["", "user", "rescheduled", "shutdown"] = ""
    already_done: frozenset[str] = frozenset()
    #: SOP Instance UIDs whose results this attempt has already recorded.
    recorded: set[str] = field(default_factory=set)


class ExportScheduler(Service):
    """Runs export tasks from a :class:`TaskStore` with the providers by URI scheme.

    ``providers`` maps a URI scheme (``stow``, ``stowrs``) to its ExporterProvider.
    ``task_info`` gives NumberOfInstances and Modality of a task's entity from the
    archive index; they are stored when processing starts, for every task, as dcm4chee's
    ExportTaskProcessor does. ``stopService`` drains: it fires when running exports finish; after
    ``drain_timeout`` seconds they are cancelled (no new requests), and after a further
    ``cancel_grace`` seconds their Deferreds are cancelled; either way their tasks go
    back to SCHEDULED so the next start resumes them.
    """

    log = Logger()

    def __init__(
        self,
        config: Config,
        store: TaskStore,
        providers: Mapping[str, ExporterProvider],
        clock: IReactorTime,
        drain_timeout: float = 10.0,
        cancel_grace: float = 5.0,
        purge_interval: float = 60.0,
        fetch_size: int = 100,
        task_info: TaskInfoSource | None = None,
    ) -> None:
        self.config = config
        self._store = store
        self._providers = dict(providers)
        self._clock = clock
        self._drain_timeout = drain_timeout
        self._cancel_grace = cancel_grace
        self._purge_interval = purge_interval
        self._fetch_size = fetch_size
        self._task_info = task_info
        self._running: dict[int, _Running] = {}
        self._reserved: dict[str, int] = {}
        self._loop: LoopingCall | None = None
        self._kick_call: IDelayedCall | None = None
        self._wakeups: list[IDelayedCall] = []
        self._wake_times: set[float] = set()
        self._polling = False
        self._poll_again = False
        self._stopping = False
        self._last_purge = float("-inf")
        self._drained: Deferred[None] | None = None
        self._timers: list[IDelayedCall] = []
        self.started: Deferred[None] = succeed(None)

    # -- public API ----------------------------------------------------------------

    def set_config(self, config: Config) -> None:
        """Use a reloaded configuration from the next poll on (running exports go on)."""
        interval_changed = config.task_polling_interval != self.config.task_polling_interval
        self.config = config
        if interval_changed and self._loop is not None and self._loop.running:
            self._loop.stop()
            self._start_loop()
        self.kick()

    def kick(self) -> None:
        """Poll at once (coalesced): a task was created or rescheduled."""
        if self.running and not self._stopping and self._kick_call is None:
            self._kick_call = self._clock.callLater(0, self._kicked)

    def wake_at(self, when: float) -> None:
        """Poll at ``when`` too: a task is due then, sooner than the next regular poll.

        Times are rounded up to half a second, so a study whose instances keep pushing its
        task later (debounce) costs at most two extra polls a second.
        """
        when = math.ceil(when * 2) / 2
        if not self.running or self._stopping or when in self._wake_times:
            return
        self._wake_times.add(when)
        delay = max(0.0, when - self._clock.seconds())
        self._wakeups = [c for c in self._wakeups if c.active()]
        self._wakeups.append(self._clock.callLater(delay, self._woken, when))

    def _woken(self, when: float) -> None:
        self._wake_times.discard(when)
        self.kick()

    def cancel(self, task_id: int, reason: StopReason = "user") -> bool:
        """Ask a running export to stop (no new requests); False if not running here."""
        running = self._running.get(task_id)
        if running is None:
            return False
        running.stop_reason = reason
        running.cancellation.cancel()
        return True

    def is_running(self, task_id: int) -> bool:
        return task_id in self._running

    def running_count(self, queue: str) -> int:
        return self._busy(queue)

    # -- service ---------------------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        self._stopping = False
        d: Deferred[None] = Deferred.fromCoroutine(self._recover_interrupted())
        d.addErrback(self._log_error, "queue.poll.error")
        d.addCallback(lambda _: self._start_loop())
        self.started = d

    async def _recover_interrupted(self) -> None:
        """Tasks of this device found IN PROCESS at start-up had their attempt cut short
        (the process was killed or crashed). Each such attempt counts as a failure, as
        any failed attempt does: the retry schedule applies and ``max-retries`` ends a
        crash loop. What the attempt had recorded stays, so only the rest is sent again.
        """
        device = self.config.device.name
        flt = TaskFilter(device_name=device, statuses=(TaskStatus.IN_PROCESS,))
        interrupted = await self._store.find(flt)
        if interrupted:
            self.log.warn(
                "{count} task(s) of device {device} were IN PROCESS at startup: their"
                " attempts were interrupted and count as failed attempts",
                count=len(interrupted),
                device=device,
                event="queue.startup.reset",
            )
        for task in interrupted:
            delivered = await self._store.delivered(task.task_id)
            changes = self._interrupted_changes(task, len(delivered))
            updated = await self._store.finish(task.task_id, [], changes, (TaskStatus.IN_PROCESS,))
            if updated is not None:
                self._log_state(updated, task.status)

    def _interrupted_changes(self, task: Task, delivered: int) -> dict[str, Any]:
        queue = self.config.queues.get(task.queue_name, Queue(task.queue_name))
        attempt = task.failures + 1
        message = (
            f"Attempt {attempt} interrupted: the process stopped while it ran (crash or kill);"
            f" {delivered} instance(s) acknowledged so far are not sent again"
        )
        changes: dict[str, Any] = {
            "processing_end_time": None,
            "error_message": "export interrupted: the process stopped while it ran",
            "outcome_message": message,
        }
        changes.update(self._retry(task, queue, None))
        if changes.get("status") != TaskStatus.SCHEDULED_FOR_RETRY:
            changes.update(status=TaskStatus.FAILED, processing_end_time=self._clock.seconds())
        return changes

    def _start_loop(self) -> None:
        if not self.running or self._stopping:
            return
        self._loop = LoopingCall(self._poll)
        self._loop.clock = self._clock
        self._loop.start(self.config.task_polling_interval, now=True).addErrback(
            self._log_error, "queue.poll.error"
        )

    def stopService(self) -> Deferred[None]:
        super().stopService()
        self._stopping = True
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        for call in [self._kick_call, *self._wakeups]:
            if call is not None and call.active():
                call.cancel()
        self._kick_call = None
        self._wakeups = []
        self._wake_times = set()
        if not self._running:
            return succeed(None)
        self.log.info(
            "Waiting for {in_flight} running export(s) to finish",
            in_flight=len(self._running),
            action="wait",
            event="queue.drain",
        )
        self._drained = Deferred()
        self._timers = [
            self._clock.callLater(self._drain_timeout, self._cancel_all),
            self._clock.callLater(self._drain_timeout + self._cancel_grace, self._abort_all),
        ]
        return self._drained

    def _cancel_all(self) -> None:
        self.log.warn(
            "{in_flight} export(s) still running at shutdown: cancelling (tasks go back to"
            " SCHEDULED)",
            in_flight=len(self._running),
            action="cancel",
            event="queue.drain",
        )
        for running in self._running.values():
            running.stop_reason = running.stop_reason or "shutdown"
            running.cancellation.cancel()

    def _abort_all(self) -> None:
        self.log.warn(
            "{in_flight} export(s) ignored cancellation: aborting them",
            in_flight=len(self._running),
            action="abort",
            event="queue.drain",
        )
        for running in list(self._running.values()):
            if running.export is not None:
                running.export.cancel()

    # -- polling ---------------------------------------------------------------------

    def _kicked(self) -> None:
        self._kick_call = None
        self._poll()

    def _poll(self) -> Deferred[None]:
        """One poll; never errbacks (an errback would kill the LoopingCall for good)."""
        if self._polling:
            self._poll_again = True
            return succeed(None)
        self._polling = True
        self._poll_again = False
        d = Deferred.fromCoroutine(self._poll_once())
        d.addErrback(self._log_error, "queue.poll.error")
        d.addBoth(self._poll_done)
        return d

    def _poll_done(self, _: object) -> None:
        self._polling = False
        if self._poll_again:
            self.kick()

    async def _poll_once(self) -> None:
        now = self._clock.seconds()
        if now - self._last_purge >= self._purge_interval:
            self._last_purge = now
            await self._purge(now)
        for queue in list(self.config.queues.values()):
            await self._fill(queue)

    def _busy(self, queue: str) -> int:
        return self._reserved.get(queue, 0)

    def _open(self, queue: Queue) -> bool:
        """May this queue start a task now? (installed, a free slot, inside its schedule)"""
        local = datetime.fromtimestamp(self._clock.seconds())
        return (
            bool(self.running)
            and not self._stopping
            and queue.installed
            and self._busy(queue.name) < queue.max_tasks_parallel
            and contains_any(queue.schedules, local)
        )

    async def _fill(self, queue: Queue) -> None:
        if not self._open(queue):
            return
        free = queue.max_tasks_parallel - self._busy(queue.name)
        now = self._clock.seconds()
        due = await self._store.due(
            self.config.device.name, queue.name, now, min(free, self._fetch_size)
        )
        for task in due:
            if not self._open(queue):  # the schedule is checked before each task
                return
            if task.task_id not in self._running:
                await self._start(task, queue)

    async def _start(self, task: Task, queue: Queue) -> None:
        self._reserved[queue.name] = self._busy(queue.name) + 1
        running = _Running(task)
        self._running[task.task_id] = running
        try:
            changes = {
                "status": TaskStatus.IN_PROCESS,
                "processing_start_time": self._clock.seconds(),
                "processing_end_time": None,
                **await info_changes(self._task_info, task),
            }
            claimed = await self._store.update(task.task_id, changes, only_if=PENDING)
        except BaseException:
            self._release(running)
            raise
        if claimed is None:  # cancelled, deleted or rescheduled meanwhile
            self._release(running)
            return
        running.task = claimed
        self._log_state(claimed, task.status)
        self._launch(running)

    def _release(self, running: _Running) -> None:
        task = running.task
        if self._running.pop(task.task_id, None) is not None:
            self._reserved[task.queue_name] = max(0, self._busy(task.queue_name) - 1)
        if self._drained is not None and not self._running:
            drained, self._drained = self._drained, None
            for timer in self._timers:
                if timer.active():
                    timer.cancel()
            drained.callback(None)
        else:
            self.kick()

    # -- running one export ------------------------------------------------------------

    def _launch(self, running: _Running) -> None:
        export = Deferred.fromCoroutine(self._attempt(running))
        running.export = export
        d = Deferred.fromCoroutine(self._run(running, export))
        d.addErrback(self._log_error, "queue.task.error")
        d.addBoth(lambda _: self._release(running))

    async def _run(self, running: _Running, export: Deferred[Outcome]) -> None:
        """Await the export (which shutdown may cancel) and store what came of it."""
        try:
            outcome = await export
        except Exception:
            await self._failed(Failure(), running)
        else:
            await self._succeeded(outcome, running)

    async def _attempt(self, running: _Running) -> Outcome:
        """One attempt, knowing what earlier attempts settled: delivered instances, and
        instances refused for good (a permanent Failure Reason, docs/exporter.md), which
        are not sent again."""
        task_id = running.task.task_id
        delivered = await self._store.delivered(task_id)
        refused = {
            r.sop_instance_uid: (r.reason, r.reason_code)
            for r in await self._store.refusals(task_id)
            if r.reason_code is not None and is_permanent_refusal(r.reason_code)
        }
        return await self._export(delivered, refused, running)

    def _export(
        self,
        already_done: frozenset[str],
        refused: dict[str, tuple[str, int]],
        running: _Running,
    ) -> Deferred[Outcome]:
        task = running.task
        running.already_done = already_done
        exporter = self.config.exporters.get(task.exporter_id)
        if exporter is None:
            raise ExportError(
                f"No such Exporter: {task.exporter_id} (not in {self.config.source});"
                " reschedule the task to another exporter or add it back"
            )
        provider = self._providers.get(exporter.scheme)
        if provider is None:
            raise ExportError(
                f"Exporter {exporter.exporter_id}: no exporter for URI scheme"
                f" {exporter.scheme!r} of {exporter.uri!r} (known: {sorted(self._providers)})"
            )
        request = ExportRequest(
            exporter,
            task.study_uid,
            task.series_uid,
            task.sop_uid,
            already_done,
            refused,
            on_results=lambda outcomes: self._record(running, outcomes),
        )
        return provider.export(request, running.cancellation)

    def _record(self, running: _Running, outcomes: Sequence[InstanceOutcome]) -> Deferred[None]:
        """Commit one request's results now (durable progress). A failed commit is logged
        and the results are written again when the attempt ends."""
        fresh = [o for o in outcomes if o.sop_instance_uid not in running.recorded]
        uids = {o.sop_instance_uid for o in fresh}
        running.recorded |= uids
        rows = results_of(running.task, fresh)
        d = self._store.record_results(
            running.task.task_id, rows, (TaskStatus.IN_PROCESS, TaskStatus.CANCELED)
        )

        def failed(failure: Failure) -> None:
            running.recorded -= uids
            self.log.failure(
                "Could not record the results of task {task_id} yet ({error}); they are"
                " written when the attempt ends",
                failure,
                task_id=running.task.task_id,
                exporter_id=running.task.exporter_id,
                error=str(failure.value),
                event="queue.task.error",
            )

        return d.addCallbacks(lambda _: None, failed)

    def _succeeded(self, outcome: Outcome, running: _Running) -> Deferred[None]:
        changes: dict[str, Any] = {
            "processing_end_time": self._clock.seconds(),
            "outcome_message": outcome.message,
            "error_message": failure_summary(outcome),
        }
        status = outcome.status
        if status not in (TaskStatus.COMPLETED, TaskStatus.WARNING, TaskStatus.CANCELED):
            status = TaskStatus.FAILED
        return self._settle(running, status, changes, outcome.retry_after, outcome)

    def _failed(self, failure: Failure, running: _Running) -> Deferred[None]:
        if failure.check(ExportError):
            message = str(failure.value)
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
        running: _Running,
        status: TaskStatus,
        changes: dict[str, Any],
        retry_after: float | None,
        outcome: Outcome | None,
    ) -> Deferred[None]:
        """Decide the final or retry state (dcm4chee's onProcessingSuccessful/Failed)."""
        task = running.task
        queue = self.config.queues.get(task.queue_name, Queue(task.queue_name))
        if running.stop_reason in ("user", "rescheduled"):
            status = TaskStatus.CANCELED
        elif running.stop_reason == "shutdown" and status != TaskStatus.COMPLETED:
            status = TaskStatus.SCHEDULED
            changes.update(processing_start_time=None, processing_end_time=None)
        elif should_retry(status, queue, outcome):
            changes.update(self._retry(task, queue, retry_after))
        changes.setdefault("status", status)
        instances = outcome.instances if outcome is not None else ()
        results = results_of(
            task, [i for i in instances if i.sop_instance_uid not in running.recorded]
        )
        d = self._store.finish(
            task.task_id, results, changes, (TaskStatus.IN_PROCESS, TaskStatus.CANCELED)
        )
        return d.addCallback(self._settled, task, running.stop_reason)

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

    def _settled(self, updated: Task | None, before: Task, stop_reason: str = "") -> None:
        if updated is None and stop_reason == "rescheduled":
            self.log.info(
                "Task {task_id} was rescheduled while it ran: its running attempt stopped",
                task_id=before.task_id,
                exporter_id=before.exporter_id,
                event="queue.task.rescheduled",
            )
            return
        if updated is None:
            self.log.warn(
                "Task {task_id} was deleted while it ran; its result was dropped",
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
            event="queue.task.state",
        )

    async def _purge(self, now: float) -> None:
        for queue in list(self.config.queues.values()):
            await purge_finished(self._store, queue, now)

    def _log_error(self, failure: Failure, event: str) -> None:
        self.log.failure(
            "Export queue error (the scheduler keeps running): {error}",
            failure,
            error=str(failure.value),
            event=event,
        )
