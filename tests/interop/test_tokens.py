"""Tokens that expire, against a real authorization server (oidc-provider from npm).

The authorization server issues JWT access tokens of 5 s for the client ``stowpair``
(client credentials). A ``twistd -n stowrsd`` validates them (``--jwks`` URL of the same
server, ``--oauth-issuer``, ``--audience``, ``--required-scope stow``) and answers after
``--delay``; a ``StowpairService`` whose ingest endpoint also requires such tokens
exports through a ``[keycloak-clients.idp]`` written in Keycloak's form (url + realm).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
import treq
from treq.client import HTTPClient
from twisted.internet import reactor as _reactor
from twisted.internet.task import Cooperator, deferLater
from twisted.logger import globalLogPublisher
from twisted.web.client import Agent

from stowpair.archive.demo import generate_demo_study
from stowpair.archive.store import read_header
from stowpair.auth.oauth import TokenEndpoint, TokenRequest
from stowpair.exporter.body import BodyPart, MultipartRelatedProducer
from stowpair.service import StowpairService
from tests.interop.conftest import peers_installed
from tests.interop.test_service_to_peers import FINAL, base, start
from tests.interop.verify import stored_files
from tests.support import peers
from tests.support.peers import OidcPeer, Peer

pytestmark = pytest.mark.interop
reactor: Any = _reactor

AUDIENCE = "http://stowrsd.test"
SECRET = "kc-Secret-4-Tests"
WRONG_SECRET = "Wr0ng-Secret-Value"
TTL = 5
INSTANCES = 200
DELAY = 0.4  # stowrsd --delay: 200 instances / concurrency 4 x 0.4 s = ~20 s


@pytest.fixture(scope="module")
def oidc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcPeer]:
    clients = [{"client_id": "stowpair", "client_secret": SECRET}]
    with peers_installed():
        peer = peers.start_oidc(tmp_path_factory.mktemp("oidc"), clients, AUDIENCE, TTL)
    yield peer
    peer.stop()


@pytest.fixture(scope="module")
def stowrsd(tmp_path_factory: pytest.TempPathFactory, oidc: OidcPeer) -> Iterator[Peer]:
    """stowrsd validating tokens of ``oidc`` (keys fetched from its JWKS URL)."""
    work = tmp_path_factory.mktemp("stowrsd-jwt")
    port = peers.free_port()
    args = ["-b", f"127.0.0.1:{port}", "-d", str(work / "store"), "--no-fsync",
            "--json-log", str(work / "stowrsd.json"), "--delay", str(DELAY),
            "--jwks", oidc.jwks_url, "--oauth-issuer", oidc.issuer, "--audience", AUDIENCE,
            "--required-scope", "stow"]  # fmt: skip
    peer = peers.start_twistd(work, "stowrsd", args, port)
    yield peer
    peer.stop()


CONFIG = """
base_dir = "."
demo_on_empty = false
[device]
name = "A"
ae_titles = ["A"]
task_polling_interval = "PT1S"
[rest]
port = 0
[emulator]
enabled = false
[logging]
json_file = "-"
[queues.Export1]
max_retries = 0
[ingest]
oauth-issuer = "{issuer}"
jwks = "{jwks}"
audience = "{audience}"
required-scope = "stow"
[keycloak-clients.idp]
url = "http://127.0.0.1:{oidc}"
realm = "stowpair"
client-id = "stowpair"
client-secret = "file:kc-secret"
scope = "stow"
[keycloak-clients.bad]
token-url = "{token_url}"
client-id = "stowpair"
client-secret = "{wrong}"
scope = "stow"
[webapps.protected]
url = "http://127.0.0.1:{stowrsd}/stowrs"
keycloak-client = "idp"
properties = {{ concurrency = 4 }}
[webapps.wrong-secret]
url = "http://127.0.0.1:{stowrsd}/stowrs"
keycloak-client = "bad"
[exporters.protected]
uri = "stow:protected"
queue = "Export1"
[exporters.wrong-secret]
uri = "stow:wrong-secret"
queue = "Export1"
"""


@dataclass
class Archive:
    service: StowpairService
    study_uid: str
    files: list[Path]


async def token(oidc: OidcPeer, scope: str | None = "stow") -> str:
    """A fresh access token, fetched with stowpair's own token request code."""
    request = TokenRequest(oidc.token_url, "stowpair", client_secret=lambda: SECRET, scope=scope)
    return (await TokenEndpoint(request, HTTPClient(Agent(reactor)), reactor).fetch()).value


async def post(url: str, files: list[Path], authorization: str | None) -> Any:
    parts = [BodyPart(p, read_header(p).transfer_syntax_uid, p.stat().st_size) for p in files]
    producer = MultipartRelatedProducer(parts, Cooperator())
    headers = {"Content-Type": producer.content_type, "Accept": "application/dicom+json"}
    if authorization:
        headers["Authorization"] = authorization
    return await treq.post(url, data=producer, headers=headers, reactor=reactor)


@pytest_twisted.async_yield_fixture(scope="module")
async def archive(
    tmp_path_factory: pytest.TempPathFactory, oidc: OidcPeer, stowrsd: Peer
) -> AsyncIterator[Archive]:
    folder = tmp_path_factory.mktemp("archive")
    (folder / "kc-secret").write_text(SECRET + "\n")
    text = CONFIG.format(issuer=oidc.issuer, jwks=oidc.jwks_url, audience=AUDIENCE,
                         oidc=oidc.port, token_url=oidc.token_url, wrong=WRONG_SECRET,
                         stowrsd=stowrsd.port)  # fmt: skip
    service = await start(folder, text)
    try:
        files = generate_demo_study(folder / "study", INSTANCES, 8)
        url = f"{base(service)}/aets/A/rs/studies"
        response = await post(url, files, f"Bearer {await token(oidc)}")
        assert response.code == 200, await response.text()
        yield Archive(service, read_header(files[0]).study_uid, files)
    finally:
        await service.stopService()


async def export(archive: Archive, exporter: str, timeout: float = 180) -> dict[str, Any]:
    url = f"{base(archive.service)}/aets/A/rs/studies/{archive.study_uid}/export/{exporter}"
    response = await treq.post(url, reactor=reactor)
    queued = json.loads(await response.content())
    assert response.code == 202, queued
    monitor = f"{base(archive.service)}/monitor/export?taskID={queued['taskID']}"
    for _ in range(int(timeout / 0.2)):
        (task,) = json.loads(await (await treq.get(monitor, reactor=reactor)).content())
        if task["status"] in FINAL:
            return dict(task)
        await deferLater(reactor, 0.2, lambda: None)
    raise AssertionError(f"task still {task['status']} after {timeout} s: {task}")


def stowrsd_requests(peer: Peer) -> list[dict[str, Any]]:
    lines = (peer.workdir / "stowrsd.json").read_text().splitlines()
    events = [json.loads(line) for line in lines]
    return [e for e in events if e.get("event") == "receiver.request"]


@pytest_twisted.ensureDeferred
async def test_ingest_requires_a_token(archive: Archive, oidc: OidcPeer) -> None:
    """When a STOW-RS client posts to the protected ingest endpoint without a token, or
    with one that lacks the scope, it is refused with RFC 6750's answers."""
    url = f"{base(archive.service)}/aets/A/rs/studies"
    missing = await post(url, archive.files[:1], None)
    assert missing.code == 401
    assert missing.headers.getRawHeaders("WWW-Authenticate")[0].startswith('Bearer realm="')
    no_scope = await post(url, archive.files[:1], f"Bearer {await token(oidc, None)}")
    assert no_scope.code == 403
    assert 'error="insufficient_scope"' in no_scope.headers.getRawHeaders("WWW-Authenticate")[0]


@pytest_twisted.ensureDeferred
async def test_export_through_expiring_tokens(
    archive: Archive, oidc: OidcPeer, stowrsd: Peer
) -> None:
    """When 200 instances go out over ~20 s with concurrency 4 and tokens of 5 s, the task
    completes with several token refreshes and no failure; stowrsd holds all 200."""
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    issued_before = len([e for e in oidc.events() if e.get("event") == "token.issued"])
    requests_before = len(stowrsd_requests(stowrsd))
    try:
        task = await export(archive, "protected")
    finally:
        globalLogPublisher.removeObserver(events.append)
    assert task["status"] == "COMPLETED", task
    assert task["outcomeMessage"].endswith(f"completed:{INSTANCES}"), task
    stored = stored_files(stowrsd.workdir / "store")
    assert {read_header(p).sop_instance_uid for p in archive.files} <= set(stored)
    fetched = [e for e in events if e.get("event") == "auth.token.fetched"]
    issued = len([e for e in oidc.events() if e.get("event") == "token.issued"]) - issued_before
    answered = stowrsd_requests(stowrsd)[requests_before:]
    refused = [r for r in answered if r["status"] == 401]
    assert len(fetched) >= 3 and issued == len(fetched)
    assert len(refused) == len([e for e in events if e.get("event") == "auth.token.invalidated"])
    secret_free = json.dumps(task) + repr(events)
    assert SECRET not in secret_free
    print(f"\ntoken lifetime {TTL} s; token requests {issued}; 401 answers {len(refused)}; "
          f"instances delivered {len(stored)}; stowrsd requests {len(answered)}")  # fmt: skip
    for e in fetched:
        print(e["log_format"].format(**e))


@pytest_twisted.ensureDeferred
async def test_wrong_client_secret(archive: Archive, stowrsd: Peer) -> None:
    """When the client secret is wrong, the task fails with the token endpoint's error,
    nothing is sent, and the secret appears in no task field and no log event."""
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    before = len(stowrsd_requests(stowrsd))
    try:
        task = await export(archive, "wrong-secret")
    finally:
        globalLogPublisher.removeObserver(events.append)
    assert task["status"] == "FAILED", task
    assert "failed: invalid_client (client authentication failed)" in task["errorMessage"]
    assert task["errorMessage"].startswith("token request to http://127.0.0.1:")
    assert len(stowrsd_requests(stowrsd)) == before
    response = await treq.get(f"{base(archive.service)}/monitor/export", reactor=reactor)
    listing = (await response.content()).decode()
    assert WRONG_SECRET not in listing + json.dumps(task) + repr(events)


@pytest_twisted.ensureDeferred
async def test_stowrsd_refuses_an_expired_token(
    archive: Archive, oidc: OidcPeer, stowrsd: Peer
) -> None:
    """When a token has expired, stowrsd answers 401 error="invalid_token"; a fresh token
    from the same server is accepted."""
    url = f"http://127.0.0.1:{stowrsd.port}/stowrs/studies"
    old = await token(oidc)
    first = await post(url, archive.files[:1], f"Bearer {old}")
    assert first.code == 200, await first.text()
    await deferLater(reactor, TTL + 1, lambda: None)  # real time: the server's clock
    expired = await post(url, archive.files[:1], f"Bearer {old}")
    assert expired.code == 401
    challenge = expired.headers.getRawHeaders("WWW-Authenticate")[0]
    assert challenge.startswith('Bearer realm="stowrsd", error="invalid_token", ')
    assert 'error_description="the access token expired at ' in challenge
    assert old not in (await expired.text())
    fresh = await post(url, archive.files[:1], f"Bearer {await token(oidc)}")
    assert fresh.code == 200
