"""The token request: form and client authentication, and every way an answer can fail."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
import pytest_twisted
from treq.client import HTTPClient
from twisted.internet import reactor as _reactor
from twisted.internet.task import Clock
from twisted.web.client import Agent

from stowpair.auth.oauth import TokenEndpoint, TokenRequest, parse_answer, request_parts
from stowpair.auth.tokens import TokenError
from stowpair.config.secret import Secret
from stowpair.exporter.errors import describe
from tests.auth.fakes import FakeTokenEndpoint, Listening
from tests.support.peers import free_port

reactor: Any = _reactor


@pytest.fixture
def fake() -> Iterator[tuple[FakeTokenEndpoint, str]]:
    resource = FakeTokenEndpoint({"app": "pw"}, {"alice": "wonder land"}, ttl=60)
    listening = Listening(resource)
    yield resource, listening.url
    pytest_twisted.blockon(listening.stop())


def endpoint(url: str, clock: Any = reactor, **kwargs: Any) -> TokenEndpoint:
    request = TokenRequest(url, "app", client_secret=lambda: "pw", **kwargs)
    explain = lambda e, u: describe(e, u)[0]  # noqa: E731
    return TokenEndpoint(request, HTTPClient(Agent(reactor)), clock, explain=explain)


def test_basic_client_authentication_is_form_encoded() -> None:
    """When client_secret_basic is used, id and secret are form-encoded, then base64 (§2.3.1)."""
    request = TokenRequest("http://t", "my app", client_secret=lambda: "p:w d")
    form, headers = request_parts(request)
    value = headers.getRawHeaders(b"authorization")[0]  # type: ignore[index]
    assert base64.b64decode(value.split()[1]) == b"my+app:p%3Aw+d"
    assert form == {"grant_type": "client_credentials"}


def test_password_grant_form() -> None:
    """When the grant is password, username and password go in the body with scope."""
    request = TokenRequest(
        "http://t",
        "app",
        grant_type="password",
        username="alice",
        password=lambda: "pw",
        scope="stow",
        client_auth="client_secret_post",
    )
    form, headers = request_parts(request)
    assert form == {
        "grant_type": "password",
        "client_id": "app",
        "username": "alice",
        "password": "pw",
        "scope": "stow",
    }
    assert headers.getRawHeaders(b"authorization") is None


@pytest_twisted.ensureDeferred
async def test_password_grant_with_a_real_socket(fake: tuple[FakeTokenEndpoint, str]) -> None:
    """When the user's password is right, a token comes back; when wrong, invalid_grant."""
    resource, url = fake
    token = await endpoint(
        url, grant_type="password", username="alice", password=lambda: "wonder land"
    ).fetch()
    assert token.value == resource.current and token.expires_in == 60
    with pytest.raises(TokenError, match="failed: invalid_grant"):
        await endpoint(url, grant_type="password", username="alice", password=lambda: "x").fetch()


@pytest_twisted.ensureDeferred
async def test_html_error_page(fake: tuple[FakeTokenEndpoint, str]) -> None:
    """When the server answers an HTML page, the error says so (status and type)."""
    resource, url = fake
    resource.behave(status=502)
    with pytest.raises(TokenError) as caught:
        await endpoint(url).fetch()
    assert str(caught.value) == (
        f"token request to {url} failed: HTTP 502, the answer is not a JSON object (text/html)"
    )


@pytest_twisted.ensureDeferred
async def test_timeout(fake: tuple[FakeTokenEndpoint, str]) -> None:
    """When the server never answers, the request ends after the timeout with a clear error."""
    resource, url = fake
    resource.behave(hang=True)
    clock = Clock()
    d = endpoint(url, clock).fetch()
    clock.advance(30)
    with pytest.raises(TokenError, match=r"failed: no answer within 30 s") as caught:
        await d
    assert caught.value.error == "timeout"


@pytest_twisted.ensureDeferred
async def test_connection_refused() -> None:
    """When nothing listens, the error says connection refused, with the URL."""
    url = f"http://127.0.0.1:{free_port()}/token"
    with pytest.raises(TokenError, match=f"token request to {url} failed: connection refused"):
        await endpoint(url).fetch()


@pytest_twisted.ensureDeferred
async def test_unset_secret_variable() -> None:
    """When client-secret is env:NAME and NAME is unset, nothing is sent and the error says so."""
    request = TokenRequest(
        "http://127.0.0.1:1/t", "app", client_secret=Secret("env:STOWPAIR_UNSET_X").reveal
    )
    with pytest.raises(TokenError, match="not sent: environment variable STOWPAIR_UNSET_X"):
        await TokenEndpoint(request, HTTPClient(Agent(reactor)), reactor).fetch()


ANSWERS = [
    ("no-token", 200, b'{"token_type": "Bearer"}', "the answer has no access_token"),
    ("mac-token", 200, b'{"access_token": "a", "token_type": "mac"}', "'mac' is not Bearer"),
    ("error-no-description", 400, b'{"error": "invalid_scope"}', "failed: invalid_scope"),
    ("error-status-only", 500, b"{}", "failed: HTTP 500"),
    ("json-list", 200, b"[1]", "not a JSON object"),
    ("not-utf8", 200, b"\xff\xfe", "not a JSON object"),
]


@pytest.mark.parametrize(
    ("status", "body", "expected"), [a[1:] for a in ANSWERS], ids=[a[0] for a in ANSWERS]
)
def test_bad_answers(status: int, body: bytes, expected: str) -> None:
    """When the answer is not an RFC 6749 §5.1 success, the TokenError says what came back."""
    with pytest.raises(TokenError, match=expected.replace("(", r"\(")):
        parse_answer("http://t", status, "application/json", body)


@pytest.mark.parametrize(("raw", "expected"), [(300, 300.0), ("300", 300.0), (None, None)])
def test_expires_in(raw: Any, expected: float | None) -> None:
    """When expires_in is a number or a digit string it is used; absent, it is None."""
    doc = b'{"access_token": "a", "token_type": "bearer"%s}' % (
        b', "expires_in": %s' % (b'"300"' if raw == "300" else str(raw).encode())
        if raw is not None
        else b""
    )
    assert parse_answer("http://t", 200, "application/json", doc).expires_in == expected
