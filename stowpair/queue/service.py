"""The export queue as one service: the scheduler, then its store.

``MultiService`` stops its children without waiting for one before the next, so the
store could close under a draining scheduler; this service orders the two.
"""

from __future__ import annotations

from twisted.application.service import Service
from twisted.internet.defer import Deferred

from stowpair.queue.scheduler import ExportScheduler
from stowpair.queue.store import TaskStore


class QueueService(Service):
    """Starts the scheduler; on stop, drains it and then closes the store."""

    def __init__(self, store: TaskStore, scheduler: ExportScheduler) -> None:
        self.store = store
        self.scheduler = scheduler

    def startService(self) -> None:
        super().startService()
        self.scheduler.startService()

    def stopService(self) -> Deferred[None]:
        super().stopService()
        d = self.scheduler.stopService()
        d.addBoth(lambda _: self.store.close())
        return d
