"""The REST listener's access policy: Basic (hashed passwords, checked off the reactor,
remembered a while) and Bearer JWT, open /health and /metrics, 401 with a challenge."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from twisted.web.test.requesthelper import DummyRequest

from stowpair.auth.jwks import FileKeySet
from stowpair.auth.jwt_validator import TokenValidator
from stowpair.auth.passwords import hash_password
from stowpair.auth.policy import AccessPolicy, Refusal
from stowpair.config.model import RestAuth
from tests.auth.keys import AUDIENCE, ISSUER, NOW, Signer, write_jwks

ALICE = hash_password("s3cret", ln=2)
SIGNER = Signer()


class Runner:
    """Runs password checks inline (``now``) or when the test says (``held``)."""

    def __init__(self, held: bool = False) -> None:
        self.held = held
        self.calls: list[tuple[Callable[[], bool], Deferred[bool]]] = []

    def __call__(self, f: Callable[[], bool]) -> Deferred[bool]:
        if not self.held:
            self.calls.append((f, succeed(f())))
            return self.calls[-1][1]
        d: Deferred[bool] = Deferred()
        self.calls.append((f, d))
        return d

    def finish(self) -> None:
        for f, d in self.calls:
            if not d.called:
                d.callback(f())


def basic_policy(
    runner: Runner | None = None, clock: Clock | None = None, **auth: Any
) -> AccessPolicy:
    settings = RestAuth("basic", users={"alice": ALICE}, **auth)
    return AccessPolicy(settings, clock or Clock(), runner or Runner(), internal_token="inside")


def request(
    authorization: str | None = None, path: bytes = b"/dcm4chee-arc/monitor/export"
) -> DummyRequest:
    r = DummyRequest(path.split(b"/")[1:])
    r.path = path
    if authorization is not None:
        r.requestHeaders.setRawHeaders(b"authorization", [authorization.encode()])
    return r


def basic(pair: str) -> str:
    return "Basic " + base64.b64encode(pair.encode()).decode()


class Target:
    """A resource as the guard sees it: only its attributes matter."""

    def __init__(self, **attributes: Any) -> None:
        self.__dict__.update(attributes)


def settled(verdict: Any) -> Refusal | None:
    """The verdict once its Deferred (if any) has fired."""
    if isinstance(verdict, Deferred):
        box: list[Any] = []
        verdict.addBoth(box.append)
        assert box, "the decision is still pending"
        return box[0]  # type: ignore[no-any-return]
    return verdict  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("authorization", "status", "reason"),
    [
        (None, 401, "missing"),
        ("Bearer abc", 401, "scheme"),
        ("Basic !!!", 401, "malformed"),
        (basic("alice"), 401, "malformed"),
        (basic("alice:wrong"), 401, "password"),
        (basic("mallory:s3cret"), 401, "password"),
        (basic("alice:s3cret"), None, None),
    ],
    ids=["none", "bearer", "not base64", "no colon", "wrong password", "unknown user", "right"],
)
def test_basic(authorization: str | None, status: int | None, reason: str | None) -> None:
    """When a request carries these credentials, it is let through or refused with 401,
    a Basic challenge and the reason."""
    verdict = settled(basic_policy().decide(request(authorization), Target()))
    if status is None:
        assert verdict is None
    else:
        assert isinstance(verdict, Refusal)
        assert (verdict.status, verdict.reason) == (status, reason)
        assert verdict.headers == (("WWW-Authenticate", 'Basic realm="stowpair", charset="UTF-8"'),)


def test_password_is_checked_off_the_reactor_then_remembered() -> None:
    """When a right password arrives, the decision waits for the check in the runner;
    the next request with it is let through at once, until cache_seconds passed."""
    runner, clock = Runner(held=True), Clock()
    policy = basic_policy(runner, clock)
    first = policy.decide(request(basic("alice:s3cret")), Target())
    assert isinstance(first, Deferred) and not first.called
    runner.finish()
    assert settled(first) is None
    assert policy.decide(request(basic("alice:s3cret")), Target()) is None
    clock.advance(301)
    assert isinstance(policy.decide(request(basic("alice:s3cret")), Target()), Deferred)


def test_concurrent_requests_share_one_check() -> None:
    """When several requests bring the same unchecked pair, the password is hashed once."""
    runner = Runner(held=True)
    policy = basic_policy(runner)
    verdicts = [policy.decide(request(basic("alice:s3cret")), Target()) for _ in range(5)]
    assert len(runner.calls) == 1
    runner.finish()
    assert [settled(v) for v in verdicts] == [None] * 5


def test_too_many_checks_at_once_are_refused() -> None:
    """When more distinct pairs wait for a check than allowed, the next one gets 503 with
    Retry-After instead of queueing more hashing."""
    runner = Runner(held=True)
    policy = AccessPolicy(RestAuth("basic", users={"alice": ALICE}), Clock(), runner,
                          max_checks=2)  # fmt: skip
    for n in range(2):
        policy.decide(request(basic(f"alice:guess{n}")), Target())
    verdict = policy.decide(request(basic("alice:guess3")), Target())
    assert isinstance(verdict, Refusal)
    assert (verdict.status, verdict.retry_after) == (503, 1)


def test_wrong_password_is_not_remembered() -> None:
    """When a password was wrong, the next try is checked again."""
    runner = Runner()
    policy = basic_policy(runner)
    settled(policy.decide(request(basic("alice:wrong")), Target()))
    settled(policy.decide(request(basic("alice:wrong")), Target()))
    assert len(runner.calls) == 2


@pytest.mark.parametrize(
    ("access", "settings", "open_"),
    [
        ("health", {}, True),
        ("metrics", {}, False),
        ("health", {"health": "protected"}, False),
        ("metrics", {"metrics": "open"}, True),
        ("console", {}, False),
        ("console", {"console": "open"}, True),
    ],
    ids=[
        "health default",
        "metrics default",
        "health protected",
        "metrics open",
        "console default",
        "console open",
    ],
)
def test_health_and_metrics(access: str, settings: dict[str, Any], open_: bool) -> None:
    """When /health, /metrics or the console's files are asked for without credentials,
    they are open or refused as configured (default: /health open, the others
    protected)."""
    verdict = basic_policy(**settings).decide(request(), Target(access=access))
    assert (verdict is None) == open_


def test_resource_with_its_own_authentication_is_let_through() -> None:
    """When the target checks credentials itself ([ingest]), the policy does not."""
    assert basic_policy().decide(request(), Target(authenticates_itself=True)) is None


def test_internal_token() -> None:
    """When the service's own per-process token is sent, the request is let through."""
    assert basic_policy().decide(request("Bearer inside"), Target()) is None
    assert isinstance(basic_policy().decide(request("Bearer outside"), Target()), Refusal)


def test_refusal_is_logged_without_the_password() -> None:
    """When a password is wrong, rest.auth.refused names the user, never the password."""
    from twisted.logger import globalLogPublisher

    seen: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(seen.append)
    try:
        settled(basic_policy().decide(request(basic("alice:hunter2")), Target()))
    finally:
        globalLogPublisher.removeObserver(seen.append)
    [event] = [e for e in seen if e.get("event") == "rest.auth.refused"]
    assert (event["user"], event["reason"], event["status"]) == ("alice", "password", 401)
    assert "hunter2" not in repr(event)


# -- Bearer ------------------------------------------------------------------------------


def bearer_policy(tmp_path: Path) -> AccessPolicy:
    clock = Clock()
    clock.advance(NOW)
    keys = FileKeySet(write_jwks(tmp_path / "jwks.json", SIGNER))
    validator = TokenValidator(keys, clock, ISSUER, AUDIENCE, ("admin",), realm="stowpair")
    return AccessPolicy(RestAuth("bearer"), clock, Runner(), validator)


@pytest.mark.parametrize(
    ("make", "status", "error"),
    [
        (lambda: None, 401, None),
        (lambda: basic("alice:s3cret"), 401, None),
        (lambda: "Bearer " + SIGNER.token(scope="admin"), None, None),
        (lambda: "Bearer " + SIGNER.token(scope="admin", ttl=-10), 401, "invalid_token"),
        (lambda: "Bearer " + SIGNER.token(scope="read"), 403, "insufficient_scope"),
        (lambda: "Bearer " + Signer("k9").token(scope="admin"), 401, "invalid_token"),
    ],
    ids=["none", "basic", "valid", "expired", "scope", "unknown key"],
)
def test_bearer(tmp_path: Path, make: Any, status: int | None, error: str | None) -> None:
    """When a request carries these credentials, a valid JWT is let through; others get
    RFC 6750's 401/403 with a Bearer challenge."""
    verdict = settled(bearer_policy(tmp_path).decide(request(make()), Target()))
    if status is None:
        assert verdict is None
        return
    assert isinstance(verdict, Refusal) and verdict.status == status
    [(name, challenge)] = verdict.headers
    assert name == "WWW-Authenticate" and challenge.startswith('Bearer realm="stowpair"')
    assert (f'error="{error}"' in challenge) if error else ("error=" not in challenge)
