"""Exports to a web app with a keycloak-client: tokens per request, 401 → one refresh."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor as _reactor
from twisted.internet.defer import DeferredList
from twisted.logger import globalLogPublisher

from stowpair.config.model import KeycloakClient
from stowpair.config.secret import Secret
from stowpair.exporter.outcome import Cancellation, ExportError, ExportRequest, TaskStatus
from stowpair.exporter.stow import StowExporter
from tests.auth.fakes import FakeTokenEndpoint, Listening
from tests.exporter.conftest import Sink
from tests.exporter.support import FakeIndex, exporter_for, make_study, webapp

reactor: Any = _reactor
SECRET = "kc-s3cret"


@pytest.fixture
def idp() -> Iterator[tuple[FakeTokenEndpoint, KeycloakClient]]:
    resource = FakeTokenEndpoint({"stowpair": SECRET}, ttl=300)
    listening = Listening(resource)
    client = KeycloakClient(
        name="kc", token_url=listening.url, client_id="stowpair", client_secret=Secret(SECRET)
    )
    yield resource, client
    pytest_twisted.blockon(listening.stop())


def make_exporter(tmp_path: Path, sink: Sink, client: KeycloakClient, n: int = 4,
                  **props: Any) -> tuple[StowExporter, list[ExportRequest]]:  # fmt: skip
    studies = [make_study(tmp_path / f"s{i}", 3) for i in range(n)]
    app = replace(webapp(sink.url, **{"concurrency": 4, **props}), keycloak_client="kc")
    exporter = StowExporter(
        reactor,
        FakeIndex([r for s in studies for r in s]),
        {"sink": app},
        work_dir=tmp_path,
        keycloak_clients={"kc": client},
    )
    return exporter, [ExportRequest(exporter_for(), s[0].study_uid) for s in studies]


async def run_all(exporter: StowExporter, requests: list[ExportRequest]) -> list[Any]:
    results = await DeferredList([exporter.export(r, Cancellation()) for r in requests])
    await exporter.close()
    return [outcome for _, outcome in results]


@pytest_twisted.ensureDeferred
async def test_one_token_for_concurrent_exports(
    tmp_path: Path, sink: Sink, idp: tuple[FakeTokenEndpoint, KeycloakClient]
) -> None:
    """When 4 exports run at once with a keycloak client, one token request serves all."""
    resource, client = idp
    sink.behave(auth=lambda: f"Bearer {resource.current}")
    exporter, requests = make_exporter(tmp_path, sink, client)
    outcomes = await run_all(exporter, requests)
    assert [o.status for o in outcomes] == [TaskStatus.COMPLETED] * 4
    assert len(resource.requests) == 1
    assert {h["authorization"][0] for h in sink.resource.log.headers} == {"Bearer tok-1"}


@pytest_twisted.ensureDeferred
async def test_keycloak_client_wins_over_bearer_token(
    tmp_path: Path, sink: Sink, idp: tuple[FakeTokenEndpoint, KeycloakClient]
) -> None:
    """When a web app has keycloak-client and bearer-token, the access token is sent."""
    resource, client = idp
    sink.behave(auth=lambda: f"Bearer {resource.current}")
    exporter, requests = make_exporter(tmp_path, sink, client, 1, bearer_token=Secret("static"))
    (outcome,) = await run_all(exporter, requests)
    assert outcome.status is TaskStatus.COMPLETED


@pytest_twisted.ensureDeferred
async def test_refused_token_is_refreshed_once(
    tmp_path: Path, sink: Sink, idp: tuple[FakeTokenEndpoint, KeycloakClient]
) -> None:
    """When the destination answers 401 to a cached token, one new token is fetched for
    all requests in flight and each refused request is sent again once."""
    resource, client = idp
    sink.behave(auth=lambda: f"Bearer {resource.current}")
    exporter, requests = make_exporter(tmp_path, sink, client, 1)
    await exporter.tokens.get("kc").token()  # tok-1 cached
    resource.issued.append("tok-2")  # the server now accepts only its newest token
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    try:
        (outcome,) = await run_all(exporter, requests)
    finally:
        globalLogPublisher.removeObserver(events.append)
    assert outcome.status is TaskStatus.COMPLETED and outcome.completed == 3
    assert resource.issued == ["tok-1", "tok-2", "tok-3"]
    codes = [h["authorization"][0] for h in sink.resource.log.headers]
    assert codes.count("Bearer tok-1") == 3 and codes.count("Bearer tok-3") == 3
    names = [e.get("event") for e in events]
    assert names.count("exporter.request.unauthorized") == 3
    assert names.count("auth.token.invalidated") == 1
    assert "tok-" not in repr([e for e in events if e.get("event", "").startswith("auth.")])


@pytest_twisted.ensureDeferred
async def test_second_401_is_not_retried(
    tmp_path: Path, sink: Sink, idp: tuple[FakeTokenEndpoint, KeycloakClient]
) -> None:
    """When the fresh token is refused too, the request is not sent a third time."""
    _, client = idp
    sink.behave(auth="Bearer never")
    exporter, requests = make_exporter(tmp_path, sink, client, 1, concurrency=1)
    (outcome,) = await run_all(exporter, requests)
    assert outcome.status is TaskStatus.WARNING and outcome.failed == 3
    assert "HTTP 401" in outcome.instances[0].reason
    assert len(sink.resource.log.headers) == 6  # 3 instances x (first try + one retry)


@pytest_twisted.ensureDeferred
async def test_wrong_client_secret(
    tmp_path: Path, sink: Sink, idp: tuple[FakeTokenEndpoint, KeycloakClient]
) -> None:
    """When the token endpoint refuses the client, the export fails before sending, with the
    token error and without the secret."""
    _, client = idp
    wrong = replace(client, client_secret=Secret("not-the-" + SECRET))
    exporter, requests = make_exporter(tmp_path, sink, wrong, 1)
    with pytest.raises(ExportError) as caught:
        await exporter.export(requests[0], Cancellation())
    await exporter.close()
    assert str(caught.value) == (
        f"token request to {client.token_url} failed: invalid_client (client authentication failed)"
    )
    assert not sink.resource.log.headers and SECRET not in str(caught.value)
