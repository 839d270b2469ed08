"""Slowloris: 400 connections that trickle their headers or their body, one byte a
second, against stowrsd and the stowpair REST listener (archive ingest), with the
slow-client bounds set to 2 s (60 s by default) so the test stays short.

Every trickling connection must be closed by the server (with a 408) within the bound
plus a generous margin, while ordinary requests keep being answered. The measured
figures (connections opened, closed by the server, time to close, latency of ordinary
requests during the attack) are printed at the end of the run and written with the
bad-input record (``STOWPAIR_BADINPUT_RECORD``); they are reported, not asserted tightly.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.internet.task import deferLater
from twisted.python.failure import Failure

from stowpair.config.model import ClientTimeouts
from tests.badinput.rawhttp import FIGURES, STATUSES, _Parser
from tests.badinput.servers import Target, start_stowpair, start_stowrsd, valid_request

BOUND = 2.0
BOUNDS = ClientTimeouts(header=BOUND, body=BOUND, body_min_rate=100.0, idle=30.0)
REST_BOUNDS = 'header_timeout = "PT2S"\nbody_timeout = "PT2S"\nbody_min_rate = 100\n'
CONNECTIONS = 400
EVERY = 1.0  # one byte a second
MARGIN = 10.0  # generous: a loaded 2-core machine must not fail the test
OPEN_SPACING = 0.005  # 400 connections opened over 2 s, not in one burst


@pytest.fixture(scope="module", params=["stowrsd", "stowpair"])
def target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    root = tmp_path_factory.mktemp(f"trickle-{request.param}")
    if request.param == "stowrsd":
        yield from start_stowrsd(root, idle=BOUNDS.idle, timeouts=BOUNDS)
    else:
        yield from start_stowpair(root, idle=BOUNDS.idle, rest=REST_BOUNDS)


class Trickler(Protocol):
    """Sends ``head`` at once, then one byte of ``drip`` every EVERY seconds, for ever."""

    def __init__(self, head: bytes, drip: bytes) -> None:
        self.head = head
        self.drip = drip
        self.sent = 0
        self.parser = _Parser()
        self.opened = 0.0
        self.closed: float | None = None
        self.aborted_by_us = False
        self.done: Deferred[None] = Deferred()
        self._timer: Any = None

    def connectionMade(self) -> None:
        self.opened = reactor.seconds()
        if self.head:
            self.transport.write(self.head)  # type: ignore[union-attr]
        self._next()

    def _next(self) -> None:
        self._timer = None
        if self.transport is None or self.closed is not None:
            return
        self.transport.write(self.drip[self.sent % len(self.drip) : self.sent % len(self.drip) + 1])
        self.sent += 1
        self._timer = reactor.callLater(EVERY, self._next)

    def dataReceived(self, data: bytes) -> None:
        try:
            self.parser.feed(data)
        except ValueError:
            pass

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.closed = reactor.seconds()
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self.done.callback(None)

    @property
    def status(self) -> int:
        response = self.parser.closed()
        return response.status


def _trickles(target: Target) -> list[tuple[str, bytes, bytes]]:
    """(kind, head, drip): half trickle their headers, half their body."""
    headers = (b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n", b"X-Slow: " + b"s" * 1000)
    full = valid_request(target)
    head, _, _ = full.partition(b"\r\n\r\n")
    head = head.replace(b"Content-Length: ", b"Content-Length: 1000000\r\nX-Was: ")
    body = (head + b"\r\n\r\n", b"--OK\r\n" + b"b" * 1000)
    kinds = [("headers", *headers), ("body", *body)]
    return [kinds[i % 2] for i in range(CONNECTIONS)]


async def _ordinary(target: Target, until: Deferred[Any], latencies: list[float]) -> list[int]:
    """GET /health and a one-instance STOW-RS request, in turn, until ``until`` fires."""
    statuses = []
    n = 0
    while not until.called:
        n += 1
        started = reactor.seconds()
        if n % 2:
            data = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        else:
            data = valid_request(target, f"1.2.826.0.1.3680043.8.498.9.{n}")
        r = await target.send(data, timeout=30)
        latencies.append(reactor.seconds() - started)
        statuses.append(r.status)
        await deferLater(reactor, 0.1, lambda: None)
    return statuses


@pytest_twisted.ensureDeferred
async def test_trickling_clients_are_closed(target: Target) -> None:
    """When 400 connections trickle headers or bodies one byte a second, the server closes
    each with a 408 within the bound (plus margin) and keeps answering ordinary requests."""
    started = reactor.seconds()
    finished: Deferred[None] = Deferred()
    latencies: list[float] = []
    ordinary = Deferred.fromCoroutine(_ordinary(target, finished, latencies))
    clients: list[Trickler] = []
    endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", target.port)
    for kind, head, drip in _trickles(target):
        client = Trickler(head, drip)
        client.kind = kind  # type: ignore[attr-defined]
        clients.append(await connectProtocol(endpoint, client))
        await deferLater(reactor, OPEN_SPACING, lambda: None)
    give_up = reactor.callLater(BOUND + MARGIN, _abort, clients)
    await DeferredList([c.done for c in clients])
    finished.callback(None)
    if give_up.active():
        give_up.cancel()
    statuses = await ordinary
    figures = _figures(clients, latencies, statuses, reactor.seconds() - started)
    name = "stowrsd" if target.name == "stowrsd" else "stowpair REST listener (ingest)"
    FIGURES[f"trickle {name}"] = figures
    for c in clients:
        STATUSES[f"trickle-{target.name}", c.status] += 1
    assert figures["closed by the server"] == CONNECTIONS, figures
    assert figures["answered 408"] == CONNECTIONS, figures
    assert figures["time to close, s"]["max"] < BOUND + MARGIN, figures
    # not closed early; the client stamps "opened" when its own (busy) reactor runs
    # connectionMade, which can be a few hundred ms after the server armed its timer
    assert figures["time to close, s"]["min"] >= BOUND * 0.75, figures
    assert statuses and all(s == 200 for s in statuses), statuses
    assert max(latencies) < 5.0, figures


def _abort(clients: list[Trickler]) -> None:
    for c in clients:
        if c.closed is None and c.transport is not None:
            c.aborted_by_us = True
            c.transport.abortConnection()  # type: ignore[attr-defined]


def _figures(
    clients: list[Trickler], latencies: list[float], statuses: list[int], elapsed: float
) -> dict[str, Any]:
    def spread(values: list[float]) -> dict[str, float]:
        return {
            "min": round(min(values), 3),
            "median": round(statistics.median(values), 3),
            "max": round(max(values), 3),
        }

    closed = [c for c in clients if not c.aborted_by_us]
    return {
        "bound, s": BOUND,
        "connections opened": len(clients),
        "closed by the server": len(closed),
        "answered 408": sum(1 for c in closed if c.status == 408),
        "time to close, s": spread([(c.closed or 0.0) - c.opened for c in closed] or [0.0]),
        "headers trickled": sum(1 for c in clients if c.kind == "headers"),  # type: ignore[attr-defined]
        "bytes trickled per connection, max": max(c.sent for c in clients),
        "ordinary requests": len(statuses),
        "ordinary answered 200": statuses.count(200),
        "ordinary latency, s": spread(latencies or [0.0]),
        "attack duration, s": round(elapsed, 3),
    }
