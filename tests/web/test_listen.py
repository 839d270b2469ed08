"""Opening listeners: a busy port is an exception at once; a port can wait for keys."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.protocol import Factory, Protocol

from stowpair.web.listen import ListenError, hold_until, listen


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def test_busy_port_raises_at_once(busy_port: int) -> None:
    """When the port is in use, listen() raises one sentence naming address and remedy."""
    endpoint = TCP4ServerEndpoint(reactor, busy_port, interface="127.0.0.1")
    with pytest.raises(ListenError) as raised:
        listen(endpoint, Factory.forProtocol(Protocol), "the REST API")
    message = str(raised.value)
    assert message.startswith(f"cannot listen on 127.0.0.1:{busy_port} for the REST API: ")
    assert "choose another port" in message and "\n" not in message


class _Port:
    def __init__(self) -> None:
        self.reading = True

    def stopReading(self) -> None:
        self.reading = False

    def startReading(self) -> None:
        self.reading = True


def test_port_waits_for_keys() -> None:
    """When keys are still loading, the port accepts nothing until they are in."""
    port, keys = _Port(), Deferred[None]()
    hold_until(port, keys)  # type: ignore[arg-type]
    assert not port.reading
    keys.callback(None)
    assert port.reading


def test_loaded_keys_do_not_hold() -> None:
    """When the keys are loaded already (a file), the port accepts at once."""
    port, keys = _Port(), Deferred[None]()
    keys.callback(None)
    hold_until(port, keys)  # type: ignore[arg-type]
    assert port.reading
