"""The export scheduler: due tasks -> exporter providers -> outcomes -> task states.

Behaviour follows dcm4chee's TaskScheduler / TaskManagerEJB (docs/dcm4chee.md):
polling at the device's task polling interval plus immediate kicks; per-queue
``max_tasks_parallel``; queue schedules gate processing (checked before each task);
an uninstalled queue pauses; retries with ``delay × (multiplier/100)^(n−1)``; IN
PROCESS tasks go back to SCHEDULED at startup; finished tasks are purged after the
per-status delays. Unlike dcm4chee, a retry re-sends only the instances that were not
delivered by earlier attempts (``ExportRequest.already_done``). Due tasks are claimed
from the store (in a cluster: each by one node); how an attempt records its results and
ends is :mod:`stowpair.queue.ending`, the node's heartbeats and leases
:mod:`stowpair.queue.leases`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from stowpair.config.model import Config, Queue
from stowpair.config.schedule import contains_any
from stowpair.db.errors import DatabaseUnavailable
from stowpair.exporter.outcome import (
    ExporterProvider,
    ExportError,
    ExportRequest,
    Outcome,
    TaskStatus,
    is_permanent_refusal,
)
from stowpair.queue import events as _events  # noqa: F401  (registers event names)
from stowpair.queue.ending import AttemptEnds, Running
from stowpair.queue.info import TaskInfoSource, info_changes
from stowpair.queue.leases import LeaseKeeper
from stowpair.queue.manager import StopReason as AskedStop
from stowpair.queue.model import Task
from stowpair.queue.purge import purge_finished
from stowpair.queue.recovery import recover_interrupted, take_over_stalled
from stowpair.queue.store import TaskStore


class ExportScheduler(AttemptEnds, Service):
    """Runs export tasks from a :class:`TaskStore` with the providers by URI scheme.

    ``providers`` maps a URI scheme (``stow``, ``stowrs``) to its ExporterProvider.
    ``task_info`` gives NumberOfInstances and Modality of a task's entity from the
    archive index; they are stored when processing starts, for every task, as dcm4chee's
    ExportTaskProcessor does. The node is the configured device name; ``process`` names
    this process in its heartbeats (e.g. ``host:pid``). ``stopService`` drains: it fires
    when running exports finish; after ``drain_timeout`` seconds they are cancelled (no new
    requests), and after a further ``cancel_grace`` seconds their Deferreds are
    cancelled; either way their tasks go back to SCHEDULED so the next start resumes
    them.
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
        process: str = "",
    ) -> None:
        self.config = config
        self.node = config.device.name
        self._store = store
        self._providers = dict(providers)
        self._clock = clock
        self._drain_timeout = drain_timeout
        self._cancel_grace = cancel_grace
        self._purge_interval = purge_interval
        self._fetch_size = fetch_size
        self._task_info = task_info
        self._running: dict[int, Running] = {}
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
        self._aborting = False
        self._paused_since: float | None = None
        self._current_poll: Deferred[None] | None = None
        db = config.database
        self.keeper = LeaseKeeper(
            store, self, self.node, process, clock, db.heartbeat_interval, db.lease
        )
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

    def cancel(self, task_id: int, reason: AskedStop = "user") -> bool:
        """Ask a running export to stop (no new requests); False if not running here."""
        running = self._running.get(task_id)
        if running is None:
            return False
        self._stop(running, reason)
        return True

    def is_running(self, task_id: int) -> bool:
        return task_id in self._running

    def running_count(self, queue: str) -> int:
        return self._busy(queue)

    # -- service ---------------------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        self._stopping = False
        self._aborting = False
        d = Deferred.fromCoroutine(
            recover_interrupted(self._store, self, self.node, self._clock.seconds())
        )
        d.addErrback(self._log_error, "queue.poll.error")
        d.addCallback(lambda _: self._start_loop())
        self.started = d

    def retry_changes(self, task: Task, queue: Queue, retry_after: float | None) -> dict[str, Any]:
        return self._retry(task, queue, retry_after)

    def log_state(self, task: Task, previous: TaskStatus) -> None:
        self._log_state(task, previous)

    def _start_loop(self) -> None:
        if not self.running or self._stopping:
            return
        self.keeper.start()
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
        # a poll in flight may be claiming tasks: they are handed back before draining
        d: Deferred[Any] = self._current_poll or succeed(None)
        d.addBoth(lambda _: self._drain())
        d.addBoth(self._stop_keeper)
        return d

    def _stop_keeper(self, result: object) -> object:
        self.keeper.stop()  # heartbeats go on while exports drain: their leases hold
        return result

    def _drain(self) -> Deferred[None]:
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
            self._stop(running, "shutdown")

    def _abort_all(self) -> None:
        self.log.warn(
            "{in_flight} export(s) ignored cancellation: aborting them",
            in_flight=len(self._running),
            action="abort",
            event="queue.drain",
        )
        self._aborting = True
        for running in list(self._running.values()):
            if running.export is not None:
                running.export.cancel()
            if running.sleep is not None:
                running.sleep.cancel()  # an end that could not be written: given up

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
        d.addCallbacks(self._polled, self._poll_failed)
        d.addBoth(self._poll_done)
        if self._polling:  # still running: stopService waits for it
            self._current_poll = Deferred()
        return d

    def _poll_done(self, _: object) -> None:
        self._polling = False
        current, self._current_poll = self._current_poll, None
        if current is not None:
            current.callback(None)
        if self._poll_again:
            self.kick()

    def _polled(self, _: object) -> None:
        if self._paused_since is not None:
            self.log.info(
                "Database reachable again: the scheduler resumes after {paused:.1f}s",
                paused=self._clock.seconds() - self._paused_since,
                event="queue.resumed",
            )
            self._paused_since = None

    def _poll_failed(self, failure: Failure) -> None:
        if not failure.check(DatabaseUnavailable):
            self._log_error(failure, "queue.poll.error")
        elif self._paused_since is None:
            self._paused_since = self._clock.seconds()
            self.log.warn(
                "The scheduler pauses: {error}; running exports go on and their results are"
                " written when the database is back",
                error=failure.getErrorMessage(),
                event="queue.paused",
            )

    async def _poll_once(self) -> None:
        now = self._clock.seconds()
        if now - self._last_purge >= self._purge_interval:
            self._last_purge = now
            await self._purge(now)
        if self.keeper.may_take_over():
            lease = self.keeper.lease
            if await take_over_stalled(self._store, self, self.node, now, lease):
                self._poll_again = True
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
        wanted = min(queue.max_tasks_parallel - self._busy(queue.name), self._fetch_size)
        self._reserved[queue.name] = self._busy(queue.name) + wanted
        try:
            claimed = await self._store.claim(self.node, queue.name, self._clock.seconds(), wanted)
        finally:
            self._reserved[queue.name] = self._busy(queue.name) - wanted
        for task, previous in claimed:
            if self._stopping:
                await self._hand_back(task)
                continue
            self._reserved[queue.name] = self._busy(queue.name) + 1
            running = Running(task, mark=self.keeper.mark())
            self._running[task.task_id] = running
            self._log_state(task, previous)
            self._launch(running)

    async def _hand_back(self, task: Task) -> None:
        """A task claimed while the service stops: SCHEDULED again, as it was."""
        changes = {"status": TaskStatus.SCHEDULED, "processing_start_time": None}
        await self._store.finish(task.task_id, [], changes, (TaskStatus.IN_PROCESS,), task.lease)

    def _release(self, running: Running) -> None:
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

    def _launch(self, running: Running) -> None:
        export = Deferred.fromCoroutine(self._attempt(running))
        running.export = export
        d = Deferred.fromCoroutine(self._run(running, export))
        d.addErrback(self._log_error, "queue.task.error")
        d.addBoth(lambda _: self._release(running))

    async def _run(self, running: Running, export: Deferred[Outcome]) -> None:
        """Await the export (which shutdown may cancel) and store what came of it."""
        try:
            outcome = await export
        except Exception:
            await self._failed(Failure(), running)
        else:
            await self._succeeded(outcome, running)

    async def _attempt(self, running: Running) -> Outcome:
        """One attempt, knowing what earlier attempts settled: delivered instances, and
        instances refused for good (a permanent Failure Reason, docs/exporter.md), which
        are not sent again."""
        task_id = running.task.task_id
        info = await info_changes(self._task_info, running.task)
        if info:
            only = (TaskStatus.IN_PROCESS,)
            updated = await self._store.update(task_id, info, only, lease=running.lease)
            running.task = updated or running.task
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
        running: Running,
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

    async def _purge(self, now: float) -> None:
        for queue in list(self.config.queues.values()):
            await purge_finished(self._store, queue, now)
