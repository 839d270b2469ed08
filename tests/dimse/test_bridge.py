"""The pynetdicom thread → reactor hand-off (:class:`ReactorBridge`), on the running reactor."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor as _reactor
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread

from stowpair.dimse.bridge import BridgeClosed, BridgeTimeout, ReactorBridge

reactor: Any = _reactor


@pytest_twisted.ensureDeferred
async def test_call_runs_on_the_reactor_thread() -> None:
    """When a thread calls the bridge, the function runs on the reactor thread and its
    result comes back to the thread."""
    bridge = ReactorBridge(reactor)
    main = threading.get_ident()
    seen: list[int] = []

    def work(x: int) -> int:
        seen.append(threading.get_ident())
        return x * 2

    assert await deferToThread(bridge.call, work, 21) == 42
    assert seen == [main]


@pytest_twisted.ensureDeferred
async def test_call_waits_for_a_deferred() -> None:
    """When the function returns a Deferred, the thread gets its result once it fires."""
    bridge = ReactorBridge(reactor)
    assert await deferToThread(bridge.call, lambda: deferLater(reactor, 0.05, lambda: "late"))


@pytest_twisted.ensureDeferred
async def test_reactor_keeps_running_while_a_thread_waits() -> None:
    """When a thread waits on an unfired Deferred, the reactor thread still runs other work."""
    bridge = ReactorBridge(reactor)
    pending: Deferred[str] = Deferred()
    waiting = deferToThread(bridge.call, lambda: pending)
    ticks = 0
    for _ in range(3):  # the reactor turns while the thread waits
        await deferLater(reactor, 0.01, lambda: None)
        ticks += 1
    assert ticks == 3 and not waiting.called
    pending.callback("done")
    assert await waiting == "done"


@pytest_twisted.ensureDeferred
async def test_failure_is_raised_in_the_thread() -> None:
    """When the Deferred fails, the same exception is raised in the calling thread."""
    bridge = ReactorBridge(reactor)

    def boom() -> Deferred[None]:
        return deferLater(reactor, 0, lambda: (_ for _ in ()).throw(ValueError("bad part")))

    with pytest.raises(ValueError, match="bad part"):
        await deferToThread(bridge.call, boom)


@pytest_twisted.ensureDeferred
async def test_closed_bridge_refuses_new_calls() -> None:
    """When the bridge is closed, a new call raises BridgeClosed without running anything."""
    bridge = ReactorBridge(reactor)
    await bridge.close()
    ran: list[bool] = []
    with pytest.raises(BridgeClosed):
        await deferToThread(bridge.call, lambda: ran.append(True))
    assert ran == []


@pytest_twisted.ensureDeferred
async def test_close_waits_for_running_work() -> None:
    """When work is running on the reactor, close() fires only after it finished, and the
    waiting thread still gets the result."""
    bridge = ReactorBridge(reactor)
    pending: Deferred[str] = Deferred()
    started = threading.Event()

    def work() -> Deferred[str]:
        started.set()
        return pending

    waiting = deferToThread(bridge.call, work)
    await deferToThread(started.wait, 10)
    closed = bridge.close()
    assert not closed.called
    pending.callback("stored")
    await closed
    assert await waiting == "stored"


@pytest_twisted.ensureDeferred
async def test_timeout() -> None:
    """When the work does not finish within the timeout, the thread gets BridgeTimeout."""
    bridge = ReactorBridge(reactor)
    never: Deferred[None] = Deferred()
    with pytest.raises(BridgeTimeout):
        await deferToThread(lambda: bridge.call(lambda: never, timeout=0.05))


def test_call_on_the_reactor_thread_is_refused() -> None:
    """When the reactor thread itself calls the bridge, it raises instead of deadlocking."""
    bridge = ReactorBridge(reactor)
    bridge.close()  # records the reactor thread (this one, under pytest-twisted)
    with pytest.raises(RuntimeError, match="deadlock"):
        bridge.call(lambda: succeed(None))
