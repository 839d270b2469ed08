"""stowrsd as a protected endpoint: RFC 6750 answers to JWT access tokens."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

import pytest
from jwt import PyJWK
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock

from stowpair.auth.jwks import FileKeySet
from stowpair.auth.jwt_validator import TokenValidator
from stowpair.config.secret import Secret
from tests.auth.keys import AUDIENCE, ISSUER, NOW, Signer, write_jwks
from tests.receiver.conftest import Answer, Stub, answer
from tests.support.receiver import content_type, encode, make_dataset, multipart

SIGNER = Signer()


def validator(tmp_path: Path, **kwargs: object) -> TokenValidator:
    clock = Clock()
    clock.advance(NOW)
    keys = FileKeySet(write_jwks(tmp_path / "jwks.json", SIGNER))
    return TokenValidator(keys, clock, ISSUER, AUDIENCE, ("stow",), realm="stowrsd")


def post(stub: Stub, authorization: str | None) -> Answer:
    part = encode(make_dataset())
    boundary = "b0undary"
    headers = {"Authorization": authorization} if authorization else {}
    d = stub.post(multipart([part], boundary), content_type(boundary), **headers)
    return answer(stub, d)


BASIC = "Basic " + base64.b64encode(b"alice:s3cret").decode()
CASES = [
    ("fresh", lambda: f"Bearer {SIGNER.token()}", 200, None),
    ("missing", lambda: None, 401, 'Bearer realm="stowrsd", scope="stow"'),
    ("expired", lambda: f"Bearer {SIGNER.token(now=NOW - 60)}", 401,
     'Bearer realm="stowrsd", error="invalid_token", '
     'error_description="the access token expired at 2027-01-15T07:59:05Z"'),
    ("other-audience", lambda: f"Bearer {SIGNER.token(aud='x')}", 401,
     'Bearer realm="stowrsd", error="invalid_token", '
     f'error_description="the token is not meant for this server (audience {AUDIENCE})"'),
    ("no-scope", lambda: f"Bearer {SIGNER.token(scope='read')}", 403,
     'Bearer realm="stowrsd", error="insufficient_scope", '
     'error_description="the token lacks the scope stow", scope="stow"'),
    ("basic-when-allowed", lambda: BASIC, 200, None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("authorization", "code", "challenge"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bearer_answers(
    make_stub: Callable[..., Stub],
    tmp_path: Path,
    authorization: Callable[[], str | None],
    code: int,
    challenge: str | None,
) -> None:
    """When JWT validation is on, fresh tokens pass; others get RFC 6750's 401 or 403."""
    stub = make_stub(bearer_validator=validator(tmp_path), basic_auth=Secret("alice:s3cret"))
    header = authorization()
    r = post(stub, header)
    assert r.code == code
    if challenge is not None:
        assert r.header("WWW-Authenticate")[0] == challenge
        assert r.header("WWW-Authenticate")[1].startswith("Basic ")
        assert header is None or header.split()[1] not in r.body.decode()


class NoKeys:
    """A key set whose URL could not be fetched."""

    problem = "signing keys unavailable: connection refused"

    def candidates(self, kid: str | None) -> list[PyJWK]:
        return []

    def refresh(self) -> Deferred[None]:
        return succeed(None)


def test_keys_unavailable_is_503(make_stub: Callable[..., Stub], tmp_path: Path) -> None:
    """When no signing keys could be loaded, the answer is 503 with Retry-After, not 401."""
    v = validator(tmp_path)
    v.keys = NoKeys()
    r = post(make_stub(bearer_validator=v), f"Bearer {SIGNER.token()}")
    assert r.code == 503 and r.header("Retry-After") == ["5"]
    assert "connection refused" in r.body.decode()
