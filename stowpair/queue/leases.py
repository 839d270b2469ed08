"""This node's heartbeats, and what they say about the tasks it runs (docs/cluster.md).

Every ``heartbeat_interval`` the node records that it is alive and reads back the status
and lease of each task it runs. A task whose lease changed (another node took it over),
that was cancelled, rescheduled or deleted through another node is stopped here: no new
requests, nothing more written for it.

Two rules keep a task from running on two nodes at once when the database or the network
fails:

* a node that has not heartbeated for ``lease - heartbeat_interval`` seconds stops sending
  (its in-flight requests end; their results wait for the database), since from
  ``lease`` seconds on another node may take its tasks over;
* a node takes over other nodes' tasks only after it has itself heartbeated without a
  break for a whole ``lease``: when the database comes back after an outage, every node
  that is alive has heartbeated again by then, so only the silent ones lose their tasks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from stowpair.exporter.outcome import TaskStatus
from stowpair.queue.model import Lease
from stowpair.queue.store import TaskStore
from stowpair.queue.tasksql import Beat

#: Statuses of a task that is still running somewhere (a cancelled one until it stops).
RUNNING = (TaskStatus.IN_PROCESS, TaskStatus.CANCELED)
#: Why a running task is stopped: another node holds it now; it was cancelled (or
#: deleted) through another node.
Loss = Literal["taken", "canceled", "deleted"]


@dataclass(frozen=True)
class Held:
    """A task this node runs, as the heartbeat compares it."""

    lease: Lease
    #: :meth:`LeaseKeeper.mark` when the claim was seen: a heartbeat that started
    #: earlier may not have seen the claim yet.
    mark: int
    stopping: bool


class Holder(Protocol):
    """What the keeper needs from the scheduler."""

    def held(self) -> Mapping[int, Held]: ...

    def lose(self, task_id: int, loss: Loss, holder: Lease | None) -> None: ...

    def cut_off(self, silent: float) -> None: ...

    def reconnected(self) -> None: ...


class LeaseKeeper:
    log = Logger()

    def __init__(
        self,
        store: TaskStore,
        holder: Holder,
        node: str,
        process: str,
        clock: IReactorTime,
        interval: float,
        lease: float,
    ) -> None:
        self._store = store
        self._holder = holder
        self.node = node
        self.process = process
        self._clock = clock
        self.interval = interval
        self.lease = lease
        self._marks = 0
        self._loop: LoopingCall | None = None
        self._deadline: IDelayedCall | None = None
        self._last_beat: float | None = None
        self._connected_since: float | None = None
        self._failing_since: float | None = None
        self._cut = False
        self._rivals: set[str] = set()

    def mark(self) -> int:
        self._marks += 1
        return self._marks

    def start(self) -> None:
        self._loop = LoopingCall(self._beat)
        self._loop.clock = self._clock
        self._loop.start(self.interval, now=True)

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()

    @property
    def available(self) -> bool:
        """False from a failed heartbeat to the next one that succeeds."""
        return self._failing_since is None

    def may_take_over(self) -> bool:
        """Has this node heartbeated without a break for a whole lease?"""
        since = self._connected_since
        return since is not None and self._clock.seconds() - since >= self.lease

    def _beat(self) -> Deferred[None]:
        """One heartbeat; never errbacks (that would stop the loop)."""
        mark = self.mark()
        running = list(self._holder.held())
        d = self._store.heartbeat(self.node, self.process, running)
        return d.addCallbacks(lambda beat: self._beaten(beat, mark), self._failed)

    def _beaten(self, beat: Beat, mark: int) -> None:
        now = self._clock.seconds()
        if self._failing_since is not None or self._cut:
            self.log.info(
                "Database reachable again after {outage:.1f}s; heartbeats go on",
                outage=now - (self._failing_since or now),
                device=self.node,
                event="cluster.database.available",
            )
            self._holder.reconnected()
        self._failing_since = None
        self._cut = False
        self._last_beat = now
        if self._connected_since is None:
            self._connected_since = now
        self._arm_deadline()
        self._check_rival(beat.previous_process, beat.previous_heartbeat, now)
        for task_id, held in self._holder.held().items():
            if held.mark > mark or held.stopping:
                continue
            holding = beat.tasks.get(task_id)
            if holding is None:
                self._holder.lose(task_id, "deleted", None)
            elif holding.lease != held.lease or holding.status not in RUNNING:
                self._holder.lose(task_id, "taken", holding.lease)
            elif holding.status == TaskStatus.CANCELED:
                self._holder.lose(task_id, "canceled", holding.lease)

    def _failed(self, failure: Failure) -> None:
        self._connected_since = None
        if self._failing_since is None:
            self._failing_since = self._clock.seconds()
            self.log.warn(
                "Heartbeat of {device} failed: {error}; running exports go on, their"
                " results are written when the database is back",
                device=self.node,
                error=failure.getErrorMessage(),
                event="cluster.heartbeat.failed",
            )

    def _arm_deadline(self) -> None:
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = self._clock.callLater(self.lease - self.interval, self._silent)

    def _silent(self) -> None:
        """No heartbeat for lease - interval seconds: other nodes may soon take over."""
        self._deadline = None
        self._cut = True
        silent = self._clock.seconds() - (self._last_beat or 0.0)
        self._holder.cut_off(silent)

    def _check_rival(self, process: str | None, beat: float | None, now: float) -> None:
        if process is None or beat is None or process == self.process:
            return
        if now - beat < self.lease and process not in self._rivals:
            self._rivals.add(process)
            self.log.error(
                "Another process ({process}) heartbeated as device {device} {ago:.1f}s ago:"
                " every node of a cluster needs its own [device] name",
                process=process,
                device=self.node,
                ago=now - beat,
                event="cluster.node.duplicate",
            )
