"""A dead destination fails the rest of the attempt at once (refused, no route, unknown
host, connect timeout); other failures do not stop the attempt."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import error as ierror
from twisted.internet import reactor
from twisted.python.failure import Failure
from twisted.web.client import Agent, ResponseFailed, ResponseNeverReceived
from twisted.web.iweb import IAgent
from zope.interface import implementer

from stowpair.config.model import WebApplication
from stowpair.exporter.client import IdleTimeout
from stowpair.exporter.errors import describe, unreachable
from stowpair.exporter.outcome import Cancellation, ExportRequest, InstanceStatus, TaskStatus
from stowpair.exporter.stow import StowExporter
from tests.exporter.conftest import Sink
from tests.exporter.support import FakeIndex, exporter_for, make_study, webapp
from tests.support.peers import free_port


@implementer(IAgent)
class CountingAgent:
    """A real Agent that counts the requests it is asked to make."""

    def __init__(self) -> None:
        self.inner = Agent(reactor)
        self.requests = 0

    def request(self, *args: Any, **kwargs: Any) -> Any:
        self.requests += 1
        return self.inner.request(*args, **kwargs)


async def export_to(tmp_path: Path, url: str, count: int, **props: Any) -> tuple[Any, int]:
    records = make_study(tmp_path / "s", count)
    agent = CountingAgent()

    def agent_factory(_: WebApplication) -> IAgent:
        return agent

    exporter = StowExporter(
        reactor,
        FakeIndex(records),
        {"sink": webapp(url, **props)},
        work_dir=tmp_path,
        agent_factory=agent_factory,
    )
    try:
        request = ExportRequest(exporter_for("sink"), records[0].study_uid)
        outcome = await exporter.export(request, Cancellation())
    finally:
        await exporter.close()
    return outcome, agent.requests


@pytest.mark.parametrize(("concurrency", "batch"), [(1, 1), (3, 1), (2, 5)])
@pytest_twisted.ensureDeferred
async def test_refused_port_fails_the_rest_at_once(
    tmp_path: Path, concurrency: int, batch: int
) -> None:
    """When the destination's port refuses connections, at most `concurrency` requests are
    tried; every other instance fails at once with the same retryable reason."""
    url = f"http://127.0.0.1:{free_port()}/stowrs"
    outcome, requests = await export_to(
        tmp_path, url, 40, concurrency=concurrency, max_instances_per_request=batch
    )
    assert requests <= concurrency
    assert outcome.status is TaskStatus.WARNING and outcome.failed == 40
    reasons = {i.reason for i in outcome.instances}
    assert reasons == {f"connection refused by {url}/studies"}
    assert all(i.retryable and i.status is InstanceStatus.FAILED for i in outcome.instances)


@pytest_twisted.ensureDeferred
async def test_server_errors_do_not_stop_the_attempt(tmp_path: Path, sink: Sink) -> None:
    """When the destination answers (even with 503), every instance is still tried."""
    sink.behave(status=503, body=b"busy")
    outcome, requests = await export_to(tmp_path, sink.url, 5)
    assert requests == 5 and outcome.failed == 5


def _wrapped(cause: BaseException) -> BaseException:
    return ResponseNeverReceived([Failure(cause)])


@pytest.mark.parametrize(
    ("exc", "dead", "words"),
    [
        (_wrapped(ierror.ConnectionRefusedError()), True, "connection refused"),
        (_wrapped(ierror.NoRouteError()), True, "unreachable (no route)"),
        (ierror.DNSLookupError("nowhere.invalid"), True, "cannot resolve"),
        (_wrapped(ierror.TimeoutError()), True, "timed out"),
        (_wrapped(ierror.ConnectionLost()), False, "closed before the answer"),
        (ResponseFailed([Failure(ierror.ConnectionDone())]), False, "closed before"),
        (IdleTimeout(5.0), False, "no progress"),
    ],
    ids=["refused", "no-route", "dns", "connect-timeout", "lost", "done", "idle"],
)
def test_unreachable_causes(exc: BaseException, dead: bool, words: str) -> None:
    """When a request fails, only failures before any connection existed mark the
    destination unreachable; each has a reason in plain words."""
    assert unreachable(exc) is dead
    reason, retryable = describe(exc, "http://x/studies")
    assert words in reason and retryable
