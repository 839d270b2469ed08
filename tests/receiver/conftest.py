"""Fixtures: an in-memory STOW-RS resource (StubTreq) with a synchronous storage runner."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from treq.client import HTTPClient
from treq.testing import RequestTraversalAgent, _SynchronousProducer
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from stowpair.receiver.request import StreamingRequest
from stowpair.receiver.resource import StowResource
from stowpair.receiver.service import _Root
from stowpair.receiver.settings import ReceiverSettings
from stowpair.receiver.storage import make_storage


def leftover_parts(directory: Path) -> list[Path]:
    """Temp files holding data (the backend keeps a few empty spares ready)."""
    return [p for p in (directory / ".incoming").glob("*.part") if p.stat().st_size > 0]


def run_now(f: Callable[[], Any]) -> Deferred[Any]:
    return maybeDeferred(f)


@dataclass
class Stub:
    treq: HTTPClient
    agent: RequestTraversalAgent
    clock: Clock
    directory: Path
    resource: StowResource | None = None

    def post(
        self, body: bytes, content_type: str, path: str = "/stowrs/studies", **headers: str
    ) -> Any:
        hdrs = {
            "Content-Type": content_type,
            **{k.replace("_", "-"): v for k, v in headers.items()},
        }
        return self.treq.post(f"http://stow.test{path}", data=body, headers=hdrs)


@pytest.fixture
def make_stub(tmp_path: Path) -> Callable[..., Stub]:
    def make(layout: str = "uid", streaming: bool = True, **settings: Any) -> Stub:
        clock = Clock()
        storage = make_storage(layout, tmp_path / "store", run_now)
        storage.prepare()
        resource = StowResource(
            ReceiverSettings(**settings), storage, clock, run_now, random.Random(1)
        )
        agent = RequestTraversalAgent(_Root(resource))
        if streaming:  # else twisted.web's Request: the body is buffered, then rendered
            agent._serverFactory.requestFactory = StreamingRequest
        client = HTTPClient(agent, data_to_body_producer=_SynchronousProducer)
        return Stub(client, agent, clock, tmp_path / "store", resource)

    return make


@dataclass
class Answer:
    code: int
    headers: Any
    body: bytes

    def header(self, name: str) -> list[str]:
        return [v.decode() for v in self.headers.getRawHeaders(name.encode(), [])]


def answer(stub: Stub, d: Deferred[Any]) -> Answer:
    """Drive the in-memory exchange to the end and return the response."""
    response = _result(stub, d)
    body = _result(stub, response.content())
    return Answer(response.code, response.headers, body)


def _result(stub: Stub, d: Deferred[Any]) -> Any:
    out: list[Any] = []
    d.addBoth(out.append)
    stub.agent.flush()
    assert out, "no response (yet)"
    if isinstance(out[0], Failure):
        out[0].raiseException()
    return out[0]
