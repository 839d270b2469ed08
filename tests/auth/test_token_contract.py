"""The token request over real sockets, against the fake endpoint and the real
authorization server (oidc-provider, interop): both must keep the same contract."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from treq.client import HTTPClient
from twisted.internet import reactor as _reactor
from twisted.web.client import Agent

from stowpair.auth.oauth import TokenEndpoint, TokenRequest
from stowpair.auth.tokens import AccessToken, TokenError
from tests.auth.fakes import FakeTokenEndpoint, Listening
from tests.interop.conftest import peers_installed
from tests.support import peers

reactor: Any = _reactor
SECRET = "s3cret-Value"


@dataclass
class TokenServer:
    token_url: str
    stop: Any


@pytest.fixture(params=["fake", pytest.param("oidc-provider", marks=pytest.mark.interop)])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TokenServer]:
    if request.param == "fake":
        listening = Listening(FakeTokenEndpoint({"stowpair": SECRET, "posty": SECRET}, {}, ttl=5))
        yield TokenServer(listening.url, listening.stop)
        pytest_twisted.blockon(listening.stop())
        return
    clients = [
        {"client_id": "stowpair", "client_secret": SECRET},
        {"client_id": "posty", "client_secret": SECRET,
         "token_endpoint_auth_method": "client_secret_post"},
    ]  # fmt: skip
    with peers_installed():
        peer = peers.start_oidc(tmp_path / "oidc", clients, audience="http://stowrsd", ttl=5)
    yield TokenServer(peer.token_url, peer.stop)
    peer.stop()


async def fetch(url: str, client_id: str, secret: str, **kwargs: Any) -> AccessToken:
    request = TokenRequest(url, client_id, client_secret=lambda: secret, **kwargs)
    return await TokenEndpoint(request, HTTPClient(Agent(reactor)), reactor).fetch()


@pytest_twisted.ensureDeferred
async def test_right_secret_gives_a_bearer_token(server: TokenServer) -> None:
    """When the client secret is right, the server issues a Bearer token with expires_in."""
    token = await fetch(server.token_url, "stowpair", SECRET)
    assert token.value and token.token_type == "Bearer"
    assert token.expires_in == 5


@pytest_twisted.ensureDeferred
async def test_client_secret_post(server: TokenServer) -> None:
    """When client-auth is client_secret_post, the credentials in the body are accepted."""
    token = await fetch(server.token_url, "posty", SECRET, client_auth="client_secret_post")
    assert token.value


@pytest_twisted.ensureDeferred
async def test_wrong_secret_is_invalid_client(server: TokenServer) -> None:
    """When the client secret is wrong, the error names invalid_client and the URL only."""
    with pytest.raises(TokenError) as caught:
        await fetch(server.token_url, "stowpair", "wrong-" + SECRET)
    assert caught.value.error == "invalid_client"
    message = str(caught.value)
    assert message.startswith(f"token request to {server.token_url} failed: invalid_client")
    assert SECRET not in message
