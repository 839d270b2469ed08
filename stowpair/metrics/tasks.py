"""Gauges read from the task store: tasks by queue and status, age of the oldest due task.

A scrape never waits for the store: :class:`TaskGauges` asks the store every
``interval`` seconds (its queries run on the store's own thread, as every store call
does) and a scrape reads the last answer. Only the store's public interface is used
(``count`` and ``find``), so any task store serves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from stowpair.exporter.outcome import TaskStatus
from stowpair.logs import register_events
from stowpair.queue.model import PENDING, TaskFilter
from stowpair.queue.store import TaskStore

register_events({"metrics.refresh.failed": ("error",)})


@dataclass(frozen=True)
class TaskSnapshot:
    """What the store said at ``taken`` (POSIX seconds)."""

    taken: float
    #: (queue, status) -> number of tasks.
    counts: dict[tuple[str, str], int] = field(default_factory=dict)
    #: queue -> seconds since its oldest SCHEDULED / SCHEDULED FOR RETRY task became due.
    oldest_due: dict[str, float] = field(default_factory=dict)


class TaskGauges(Collector):
    """A prometheus collector of the task gauges, refreshed by :meth:`start`'s loop.

    ``device`` and ``queues`` are read at each refresh, so a configuration reload that
    adds a queue shows at the next one. Until the first refresh the gauges are absent.
    """

    log = Logger()

    def __init__(
        self,
        store: TaskStore,
        clock: IReactorTime,
        device: Callable[[], str],
        queues: Callable[[], Iterable[str]],
        interval: float = 10.0,
    ) -> None:
        self.store = store
        self.clock = clock
        self.device = device
        self.queues = queues
        self.interval = interval
        self.snapshot: TaskSnapshot | None = None
        self._loop: LoopingCall | None = None
        self._running: Deferred[None] | None = None

    # -- refreshing ---------------------------------------------------------------------

    def start(self) -> None:
        loop = LoopingCall(self._tick)
        loop.clock = self.clock
        loop.start(self.interval, now=True)
        self._loop = loop

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None

    def _tick(self) -> None:
        """Start a refresh unless one is still running; never raises (that would stop
        the loop for good)."""
        if self._running is None:
            self._running = self.refresh()
            self._running.addBoth(self._done)

    def _done(self, _: Any) -> None:
        self._running = None

    def refresh(self) -> Deferred[None]:
        """Read the store now; on failure keep the previous values and log why."""
        d = Deferred.fromCoroutine(self._read())
        d.addErrback(
            lambda f: self.log.warn(
                "Task gauges not refreshed: {error}",
                error=f.getErrorMessage(),
                event="metrics.refresh.failed",
            )
        )
        return d

    async def _read(self) -> None:
        device, now = self.device(), self.clock.seconds()
        counts: dict[tuple[str, str], int] = {}
        oldest: dict[str, float] = {}
        for queue in sorted(set(self.queues())):
            for status in TaskStatus:
                flt = TaskFilter(device_name=device, queue_names=(queue,), statuses=(status,))
                counts[(queue, str(status))] = await self.store.count(flt)
            first = await self.store.find(
                TaskFilter(
                    device_name=device,
                    queue_names=(queue,),
                    statuses=PENDING,
                    order_by="scheduledTime",
                    descending=False,
                    limit=1,
                )
            )
            due = first[0].scheduled_time if first else None
            oldest[queue] = max(0.0, now - due) if due is not None else 0.0
        self.snapshot = TaskSnapshot(now, counts, oldest)

    # -- collecting ---------------------------------------------------------------------

    def collect(self) -> Iterator[GaugeMetricFamily]:
        snap = self.snapshot
        if snap is None:
            return
        tasks = GaugeMetricFamily(
            "stowpair_tasks",
            "Export tasks of this device in the task store, by queue and status.",
            labels=["queue", "status"],
        )
        for (queue, status), n in sorted(snap.counts.items()):
            tasks.add_metric([queue, status], n)
        yield tasks
        age = GaugeMetricFamily(
            "stowpair_queue_oldest_due_task_age_seconds",
            "Seconds since the oldest SCHEDULED or SCHEDULED FOR RETRY task of a queue became"
            " due (its scheduled time passed); 0 when none is due.",
            labels=["queue"],
        )
        for queue, seconds in sorted(snap.oldest_due.items()):
            age.add_metric([queue], seconds)
        yield age
        yield GaugeMetricFamily(
            "stowpair_task_gauges_updated_timestamp_seconds",
            "When stowpair_tasks and stowpair_queue_oldest_due_task_age_seconds were read"
            " from the task store (POSIX seconds).",
            value=snap.taken,
        )

    def describe(self) -> list[GaugeMetricFamily]:
        """Names for the registry, known before the first refresh."""
        return [
            GaugeMetricFamily("stowpair_tasks", "", labels=["queue", "status"]),
            GaugeMetricFamily("stowpair_queue_oldest_due_task_age_seconds", "", labels=["queue"]),
            GaugeMetricFamily("stowpair_task_gauges_updated_timestamp_seconds", "", value=0),
        ]
