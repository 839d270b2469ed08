"""TokenSource: cache, skew, refresh ahead of expiry, single flight, invalidation (Clock)."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.logger import globalLogPublisher
from twisted.python.failure import Failure

from stowpair.auth.tokens import AccessToken, TokenError, TokenSource


class Endpoint:
    """A token endpoint under test control: each fetch waits until answered."""

    def __init__(self, expires_in: float | None = 300.0) -> None:
        self.expires_in = expires_in
        self.pending: list[Deferred[AccessToken]] = []
        self.issued = 0

    def fetch(self) -> Deferred[AccessToken]:
        d: Deferred[AccessToken] = Deferred()
        self.pending.append(d)
        return d

    def answer(self) -> AccessToken:
        self.issued += 1
        token = AccessToken(f"token-{self.issued}", self.expires_in)
        self.pending.pop(0).callback(token)
        return token

    def refuse(self, message: str = "token request to T failed: invalid_client") -> None:
        self.pending.pop(0).errback(Failure(TokenError(message, "invalid_client")))


def value(d: Deferred[AccessToken]) -> str:
    results: list[Any] = []
    d.addBoth(results.append)
    assert results, "the Deferred has not fired"
    result = results[0]
    if isinstance(result, Failure):
        result.raiseException()
    assert isinstance(result, AccessToken)
    return result.value


def make(
    expires_in: float | None = 300.0, skew: float = 30.0
) -> tuple[Clock, Endpoint, TokenSource]:
    clock, endpoint = Clock(), Endpoint(expires_in)
    return clock, endpoint, TokenSource(endpoint.fetch, clock, skew=skew, name="kc")


def first_token(endpoint: Endpoint, source: TokenSource) -> str:
    d = source.token()
    endpoint.answer()
    return value(d)


def test_cached_until_refresh_time() -> None:
    """When a token is valid, later callers get it without a new token request."""
    clock, endpoint, source = make()
    assert first_token(endpoint, source) == "token-1"
    clock.advance(269)
    assert value(source.token()) == "token-1"
    assert source.requests == 1 and not endpoint.pending


@pytest.mark.parametrize(
    ("expires_in", "skew", "refresh_at"),
    [(300, 30, 270), (60, 30, 48), (5, 30, 4), (3600, 0, 3600)],
    ids=["skew", "20%-of-60s", "20%-of-5s", "no-skew"],
)
def test_refresh_ahead_of_expiry(expires_in: float, skew: float, refresh_at: float) -> None:
    """When ``skew`` (or 20% of the lifetime, if less) is left, a new token is fetched."""
    clock, endpoint, source = make(expires_in, skew)
    first_token(endpoint, source)
    clock.advance(refresh_at - 0.01)
    assert source.valid and value(source.token()) == "token-1"
    clock.advance(0.01)
    assert not source.valid
    assert source.expired is (skew == 0)  # refreshed ahead of expiry, unless no skew
    d = source.token()
    assert source.requests == 2
    endpoint.answer()
    assert value(d) == "token-2"


def test_expired_property() -> None:
    """When the lifetime is over, ``expired`` is true; before it, false."""
    clock, endpoint, source = make(expires_in=10)
    assert source.expired and not source.valid
    first_token(endpoint, source)
    clock.advance(9.9)
    assert not source.expired
    clock.advance(0.1)
    assert source.expired


def test_single_flight() -> None:
    """When 100 callers ask while no token is cached, one token request serves them all."""
    _, endpoint, source = make()
    waiting = [source.token() for _ in range(100)]
    assert len(endpoint.pending) == 1
    endpoint.answer()
    assert {value(d) for d in waiting} == {"token-1"}
    assert source.requests == 1


def test_failure_reaches_every_waiter_and_is_not_cached() -> None:
    """When the token request fails, every waiter gets the TokenError; the next call asks again."""
    _, endpoint, source = make()
    waiting = [source.token() for _ in range(3)]
    endpoint.refuse()
    for d in waiting:
        with pytest.raises(TokenError, match="invalid_client"):
            value(d)
    d = source.token()
    assert source.requests == 2
    endpoint.answer()
    assert value(d) == "token-1"


def test_invalidate_fetches_a_new_token() -> None:
    """When a destination refused the token, the next caller gets a new one."""
    _, endpoint, source = make()
    token = first_token(endpoint, source)
    source.invalidate(token)
    d = source.token()
    endpoint.answer()
    assert value(d) == "token-2"


def test_invalidate_an_old_token_keeps_the_new_one() -> None:
    """When a late 401 names a token already replaced, the newer token stays cached."""
    _, endpoint, source = make()
    old = first_token(endpoint, source)
    source.invalidate(old)
    new = first_token(endpoint, source)
    source.invalidate(old)
    assert value(source.token()) == new and source.requests == 2


def test_no_expires_in_is_kept_until_refused() -> None:
    """When the server gives no expires_in, the token is kept until a destination refuses it."""
    clock, endpoint, source = make(expires_in=None)
    token = first_token(endpoint, source)
    clock.advance(10**6)
    assert value(source.token()) == token
    source.invalidate(token)
    assert not source.valid


def test_fetch_raising_becomes_a_token_error() -> None:
    """When the fetch function itself raises, callers get a TokenError naming the URL."""

    def broken() -> Deferred[AccessToken]:
        raise RuntimeError("boom")

    source = TokenSource(broken, Clock(), name="kc", token_url="http://t/token")
    with pytest.raises(TokenError, match="token request to http://t/token failed: boom"):
        value(source.token())


def test_token_value_never_logged_nor_in_repr() -> None:
    """When tokens are fetched, refused and refreshed, no event or repr holds the value."""
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    try:
        _, endpoint, source = make()
        token = first_token(endpoint, source)
        source.invalidate(token)
        source.token()
        endpoint.answer()
    finally:
        globalLogPublisher.removeObserver(events.append)
    names = [e.get("event") for e in events if "event" in e]
    assert names.count("auth.token.fetched") == 2 and "auth.token.invalidated" in names
    assert "token-1" not in repr(events) and "token-2" not in repr(events)
    assert "token-1" not in repr(AccessToken("token-1", 5))
    reasons = [e["reason"] for e in events if e.get("event") == "auth.token.fetched"]
    assert reasons == ["first", "refused"]
