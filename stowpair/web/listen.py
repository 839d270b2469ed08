"""Opening a listener so that a busy port stops the process with one clear line."""

from __future__ import annotations

import errno
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IListeningPort, IStreamServerEndpoint
from twisted.internet.protocol import Factory
from twisted.python.failure import Failure


class ListenError(Exception):
    """A listener could not start; ``str()`` is one sentence for people."""


def describe(error: BaseException | None, what: str) -> str:
    """``error`` opening ``what`` as one sentence."""
    if isinstance(error, CannotListenError):
        socket_error: Any = error.socketError
        reason = getattr(socket_error, "strerror", None) or str(socket_error)
        hint = ""
        if getattr(socket_error, "errno", None) == errno.EADDRINUSE:
            hint = "; stop the process using it or choose another port"
        where = f"{error.interface or '*'}:{error.port}"
        return f"cannot listen on {where} for {what}: {reason}{hint}"
    return f"cannot open the listener for {what}: {error}"


def listen(
    endpoint: IStreamServerEndpoint, factory: Factory[Any], what: str
) -> Deferred[IListeningPort]:
    """``endpoint.listen(factory)``; raises :class:`ListenError` at once when it fails at
    once, as TCP and TLS endpoints do (they bind synchronously), so a service can refuse
    to start instead of running without its listener."""
    d = endpoint.listen(factory)
    outcome: list[Any] = []

    def seen(result: Any) -> Any:
        outcome.append(result)
        return result

    d.addBoth(seen)
    if outcome and isinstance(outcome[0], Failure):
        d.addErrback(lambda _: None)  # reported by the exception instead
        raise ListenError(describe(outcome[0].value, what))
    return d


def hold_until(port: IListeningPort, ready: Deferred[Any]) -> None:
    """Accept no connection on ``port`` until ``ready`` fires (clients wait in the
    listen backlog): the port is open, so a busy one was found at once, but no request is
    read before what it needs (token signing keys) is loaded. TCP and TLS ports are file
    descriptors whose reading can be stopped; other ports accept at once."""
    stop, start = getattr(port, "stopReading", None), getattr(port, "startReading", None)
    if ready.called or stop is None or start is None:
        return
    stop()
    ready.addBoth(lambda result: (start(), result)[1])
