"""JWT access-token validation: signature, exp, nbf, iss, aud, scope; key sets."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import pytest_twisted
from treq.client import HTTPClient
from twisted.internet import reactor as _reactor
from twisted.internet.defer import maybeDeferred
from twisted.internet.task import Clock
from twisted.web.client import Agent
from twisted.web.resource import Resource

from stowpair.auth.jwks import FileKeySet, JWKSError, RemoteKeySet
from stowpair.auth.jwt_validator import (
    InsufficientScope,
    KeysUnavailable,
    TokenRefused,
    TokenValidator,
)
from tests.auth.fakes import Listening
from tests.auth.keys import AUDIENCE, ISSUER, NOW, Signer, write_jwks

reactor: Any = _reactor
SIGNER = Signer()
EC_SIGNER = Signer("e1", "ES256")


@pytest.fixture
def validator(tmp_path: Path) -> TokenValidator:
    clock = Clock()
    clock.advance(NOW)
    keys = FileKeySet(write_jwks(tmp_path / "jwks.json", SIGNER, EC_SIGNER))
    return TokenValidator(keys, clock, ISSUER, AUDIENCE, ("stow",), realm="stowrsd")


def test_valid_token(validator: TokenValidator) -> None:
    """When signature, times, issuer, audience and scope are right, the claims come back."""
    assert validator.validate(SIGNER.token())["client_id"] == "stowpair"


def test_ec_key(validator: TokenValidator) -> None:
    """When the token is signed with an EC key of the set (ES256), it is accepted."""
    assert validator.validate(EC_SIGNER.token())["sub"] == "stowpair"


def _unsigned() -> str:
    head = base64.urlsafe_b64encode(b'{"alg":"none","kid":"k1"}').rstrip(b"=").decode()
    body = base64.urlsafe_b64encode(json.dumps({"exp": NOW + 5}).encode()).rstrip(b"=")
    return f"{head}.{body.decode()}."


def _hmac_with_public_key() -> str:
    return jwt.encode({"exp": NOW + 5}, "s" * 32, algorithm="HS256", headers={"kid": "k1"})


REFUSED = [
    ("expired", lambda: SIGNER.token(now=NOW - 10), "expired at 2027-01-15T07:59:55Z"),
    ("expires-now", lambda: SIGNER.token(ttl=0), "expired"),
    ("not-yet-valid", lambda: SIGNER.token(nbf=int(NOW + 60)), "not valid before"),
    ("wrong-issuer", lambda: SIGNER.token(iss="http://evil"), f"not issued by {ISSUER}"),
    ("wrong-audience", lambda: SIGNER.token(aud="http://other"), "not meant for this server"),
    ("no-exp", lambda: SIGNER.token(exp=None), "has no exp claim"),
    ("other-key", lambda: Signer().token(), "signature does not verify"),
    ("unknown-kid", lambda: Signer("k9").token(), "unknown key (kid k9)"),
    ("alg-none", _unsigned, "algorithm none is not accepted"),
    ("hs256", _hmac_with_public_key, "algorithm HS256 is not accepted"),
    ("not-a-jwt", lambda: "opaque-token", "not a JWT"),
    ("garbage", lambda: "a.b.c", "not a JWT"),
]


@pytest.mark.parametrize(("make", "reason"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_refused(validator: TokenValidator, make: Any, reason: str) -> None:
    """When the token is not acceptable, invalid_token (401) says why, without the token."""
    token = make()
    with pytest.raises(TokenRefused) as caught:
        validator.validate(token)
    assert caught.value.status == 401 and caught.value.error == "invalid_token"
    assert reason in caught.value.description
    assert token not in caught.value.description


@pytest.mark.parametrize(
    ("claims", "ok"),
    [({"scope": "read stow"}, True), ({"scope": None, "scp": ["stow"]}, True),
     ({"scope": "read"}, False), ({"scope": None}, False)],
    ids=["scope-string", "scp-list", "other-scope", "no-scope"],
)  # fmt: skip
def test_scope(validator: TokenValidator, claims: dict[str, Any], ok: bool) -> None:
    """When a required scope is missing, the answer is 403 insufficient_scope."""
    token = SIGNER.token(**claims)
    if ok:
        validator.validate(token)
        return
    with pytest.raises(InsufficientScope) as caught:
        validator.validate(token)
    assert caught.value.status == 403
    assert validator.challenge(caught.value) == (
        'Bearer realm="stowrsd", error="insufficient_scope", '
        'error_description="the token lacks the scope stow", scope="stow"'
    )


def test_leeway(tmp_path: Path) -> None:
    """When leeway is set, a token expired less than leeway seconds ago still passes."""
    clock = Clock()
    clock.advance(NOW + 7)
    keys = FileKeySet(write_jwks(tmp_path / "jwks.json", SIGNER))
    token = SIGNER.token(ttl=5)
    TokenValidator(keys, clock, leeway=3).validate(token)
    with pytest.raises(TokenRefused, match="expired"):
        TokenValidator(keys, clock, leeway=1).validate(token)


def test_expiry_follows_the_clock(validator: TokenValidator) -> None:
    """When the injected clock passes exp, the same token is refused (RFC 6750 answer)."""
    token = SIGNER.token(ttl=5)
    validator.validate(token)
    validator._clock.advance(5)  # type: ignore[attr-defined]
    with pytest.raises(TokenRefused) as caught:
        validator.validate(token)
    assert validator.challenge(caught.value) == (
        'Bearer realm="stowrsd", error="invalid_token", '
        'error_description="the access token expired at 2027-01-15T08:00:05Z"'
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [("not json", "not JSON"), ('{"a": 1}', "not a JWK Set"), ('{"keys": []}', "no usable")],
)
def test_bad_jwks_file(tmp_path: Path, text: str, message: str) -> None:
    """When the JWKS file is unusable, the error names the file and the problem."""
    path = tmp_path / "jwks.json"
    path.write_text(text)
    with pytest.raises(JWKSError, match=message) as caught:
        FileKeySet(path)
    assert str(path) in str(caught.value)


class Data(Resource):
    """A JSON document (replaceable)."""

    isLeaf = True

    def __init__(self, data: bytes, content_type: str) -> None:
        super().__init__()
        self.data, self.content_type = data, content_type

    def render_GET(self, request: Any) -> bytes:
        request.setHeader("Content-Type", self.content_type)
        return self.data


class _Issuer:
    """A discovery document and a JWKS on a loopback port; keys can be rotated."""

    def __init__(self, *signers: Signer) -> None:
        self.root = Resource()
        self.jwks = Data(b"", "application/json")
        self.rotate(*signers)
        self.root.putChild(b"certs", self.jwks)
        self.listening = Listening(self.root, "")
        self.base = self.listening.url
        discovery = json.dumps({"issuer": self.base, "jwks_uri": f"{self.base}/certs"})
        well_known = Resource()
        well_known.putChild(b"openid-configuration", Data(discovery.encode(), "application/json"))
        self.root.putChild(b".well-known", well_known)

    def rotate(self, *signers: Signer) -> None:
        self.jwks.data = json.dumps({"keys": [s.jwk() for s in signers]}).encode()


@pytest.fixture
def issuer() -> Iterator[_Issuer]:
    found = _Issuer(SIGNER)
    yield found
    pytest_twisted.blockon(maybeDeferred(found.listening.stop))


def remote(issuer: _Issuer, clock: Clock, **kwargs: Any) -> RemoteKeySet:
    return RemoteKeySet(HTTPClient(Agent(reactor)), clock, issuer=issuer.base, **kwargs)


@pytest_twisted.ensureDeferred
async def test_remote_keys_from_discovery(issuer: _Issuer) -> None:
    """When only the issuer is given, the JWKS URL comes from its discovery document."""
    clock = Clock()
    clock.advance(NOW)
    keys = remote(issuer, clock)
    validator = TokenValidator(keys, clock)
    with pytest.raises(KeysUnavailable):
        validator.validate(SIGNER.token())
    await keys.refresh()
    assert keys.jwks_url == f"{issuer.base}/certs"
    assert validator.validate(SIGNER.token(iss=issuer.base))["sub"] == "stowpair"


@pytest_twisted.ensureDeferred
async def test_rotated_key_is_fetched(issuer: _Issuer) -> None:
    """When a token names a new key ID, the key set is fetched again and the token passes."""
    clock = Clock()
    clock.advance(NOW)
    keys = remote(issuer, clock, min_interval=10)
    await keys.refresh()
    new = Signer("k2")
    issuer.rotate(SIGNER, new)
    validator = TokenValidator(keys, clock)
    with pytest.raises(TokenRefused, match="unknown key"):
        validator.validate(new.token())  # too soon after the first fetch: not fetched
    assert keys.fetches == 1
    clock.advance(10)
    assert (await validator.validate_async(new.token(now=NOW + 10)))["sub"] == "stowpair"
    assert keys.fetches == 2


@pytest_twisted.ensureDeferred
async def test_unreachable_keys_keep_the_loaded_ones(issuer: _Issuer) -> None:
    """When the JWKS URL stops answering, keys loaded before stay in use."""
    clock = Clock()
    clock.advance(NOW)
    keys = remote(issuer, clock, min_interval=0)
    await keys.refresh()
    await maybeDeferred(issuer.listening.stop)
    await keys.refresh()
    assert keys.problem is None and keys.fetches == 2
    TokenValidator(keys, clock).validate(SIGNER.token())
