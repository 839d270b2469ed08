"""The hand-off between pynetdicom's threads and the reactor.

pynetdicom runs each association in its own thread and calls our event handlers there;
the archive (index, export rules, task store) lives on the reactor thread. A handler
calls :meth:`ReactorBridge.call`: the work is scheduled with ``callFromThread``, runs on
the reactor (where it may return a Deferred), and the pynetdicom thread waits for the
result. The reactor thread never waits for a pynetdicom thread.

:meth:`ReactorBridge.close` refuses new calls and fires once the calls already running
on the reactor have finished (a store that started completes and is acknowledged).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar, overload

from twisted.internet.defer import Deferred, DeferredList, maybeDeferred, succeed
from twisted.internet.interfaces import IReactorFromThreads
from twisted.python.failure import Failure

T = TypeVar("T")


class BridgeClosed(RuntimeError):
    """The service is stopping: no new work is handed to the reactor."""


class BridgeTimeout(RuntimeError):
    """The reactor did not finish the work within the caller's timeout."""


class ReactorBridge:
    """Runs callables on the reactor thread for other threads and waits for their result."""

    def __init__(self, reactor: IReactorFromThreads) -> None:
        self._reactor = reactor
        self._closed = False
        self._lock = threading.Lock()
        self._running: set[Deferred[Any]] = set()
        self._waiting: set[Future[Any]] = set()
        self._reactor_thread: int | None = None

    @property
    def closed(self) -> bool:
        return self._closed

    @overload
    def call(
        self, f: Callable[..., Deferred[T]], *args: Any, timeout: float | None = None
    ) -> T: ...

    @overload
    def call(self, f: Callable[..., T], *args: Any, timeout: float | None = None) -> T: ...

    def call(self, f: Callable[..., Any], *args: Any, timeout: float | None = None) -> Any:
        """Run ``f(*args)`` on the reactor and return its (Deferred's) result; blocking.

        Raises what ``f`` raised (or its Deferred failed with), :class:`BridgeClosed`
        when the bridge is closed before the work started, :class:`BridgeTimeout` after
        ``timeout`` seconds. Never call it on the reactor thread (it would deadlock).
        """
        if threading.get_ident() == self._reactor_thread:
            raise RuntimeError("ReactorBridge.call() on the reactor thread would deadlock")
        future: Future[Any] = Future()
        with self._lock:
            if self._closed:
                raise BridgeClosed("the DICOM service is stopping")
            self._waiting.add(future)
        self._reactor.callFromThread(self._start, future, f, args)
        try:
            return future.result(timeout)
        except FutureTimeout:
            raise BridgeTimeout(f"no result from the reactor within {timeout}s") from None
        except CancelledError:
            raise BridgeClosed("the DICOM service is stopping") from None
        finally:
            with self._lock:
                self._waiting.discard(future)

    def _start(self, future: Future[T], f: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self._reactor_thread = threading.get_ident()
        if not future.set_running_or_notify_cancel():
            return  # refused by close() before it could start
        d: Deferred[T] = maybeDeferred(f, *args)
        self._running.add(d)

        def deliver(result: T | Failure) -> None:
            self._running.discard(d)
            if isinstance(result, Failure):
                future.set_exception(result.value)
            else:
                future.set_result(result)

        d.addBoth(deliver)

    def close(self) -> Deferred[None]:
        """Refuse new calls; fires once the work already running has finished. Call it
        on the reactor thread."""
        self._reactor_thread = threading.get_ident()
        with self._lock:
            self._closed = True
            waiting = list(self._waiting)
        for future in waiting:
            future.cancel()  # only work not started yet: its caller gets BridgeClosed
        running = list(self._running)
        if not running:
            return succeed(None)
        d: Deferred[Any] = DeferredList(running, consumeErrors=True)
        return d.addCallback(lambda _: None)
