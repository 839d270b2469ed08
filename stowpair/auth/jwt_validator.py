"""Validation of JWT access tokens (RFC 9068) for every resource that accepts Bearer tokens.

:class:`TokenValidator` takes a token and returns its claims, or raises a typed
:class:`TokenRefused` whose ``status`` and ``challenge()`` are the HTTP answer of RFC 6750
§3: 401 ``error="invalid_token"`` (malformed, bad signature, expired, not yet valid,
wrong issuer or audience, unknown key), 403 ``error="insufficient_scope"`` (a required
scope is missing), or 503 when the signing keys cannot be had at all.

Signatures are checked by PyJWT (with ``cryptography``), with asymmetric algorithms only,
so a token cannot pick ``none`` or an HMAC algorithm keyed with a public key. ``exp`` and
``nbf`` are compared with the injected clock (plus ``leeway`` seconds), not the
wall clock, so tests drive expiry with ``Clock.advance``. Scopes are read from ``scope``
(a space-separated string, RFC 8693 §4.2 / RFC 9068 §2.2.3) or ``scp`` (string or list,
as Entra ID and Okta send them).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import jwt
from jwt import PyJWK
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime

from stowpair.auth.jwks import KeySet

#: RFC 7518 asymmetric algorithms (and EdDSA, RFC 8037).
ALGORITHMS = (
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
)  # fmt: skip


class TokenRefused(Exception):
    """A token was not accepted; ``description`` is for people (no token value in it)."""

    status = 401
    error: str | None = "invalid_token"

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


class InsufficientScope(TokenRefused):
    status = 403
    error = "insufficient_scope"


class KeysUnavailable(TokenRefused):
    """No signing keys could be loaded: a server-side problem, not the client's token."""

    status = 503
    error = None


class MissingToken(TokenRefused):
    """No Bearer token at all: RFC 6750 §3.1 sends no error code then."""

    error = None


def _quoted(text: str) -> str:
    """RFC 6750 §3: error_description is %x20-21 / %x23-5B / %x5D-7E."""
    return "".join(c if " " <= c <= "~" and c not in '"\\' else "'" for c in text)[:300]


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class TokenValidator:
    """Checks JWT access tokens against ``keys``, ``issuer``, ``audience``, scopes.

    ``issuer``/``audience`` None: that claim is not checked. ``required_scopes``: every
    one must be granted. ``validate`` never blocks and never waits: with an unknown key
    ID it asks ``keys`` to refresh and refuses this token; ``validate_async`` waits for
    that refresh and tries once more.
    """

    def __init__(
        self,
        keys: KeySet,
        clock: IReactorTime,
        issuer: str | None = None,
        audience: str | None = None,
        required_scopes: Iterable[str] = (),
        leeway: float = 0.0,
        realm: str = "stowpair",
    ) -> None:
        self.keys, self._clock = keys, clock
        self.issuer, self.audience = issuer, audience
        self.required_scopes = tuple(required_scopes)
        self.leeway = leeway
        self.realm = realm

    # -- validation -------------------------------------------------------------------

    def validate(self, token: str) -> dict[str, Any]:
        """The token's claims; TokenRefused (or a subclass) when it is not acceptable."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenRefused("the access token is not a JWT") from None
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in ALGORITHMS:
            raise TokenRefused(f"algorithm {_quoted(str(alg))} is not accepted")
        if kid is not None and not isinstance(kid, str):
            raise TokenRefused("the key ID (kid) is not a string")
        candidates = self.keys.candidates(kid)
        if not candidates:
            if self.keys.problem is not None:
                self.keys.refresh()
                raise KeysUnavailable(self.keys.problem)
            self.keys.refresh()  # perhaps the server rotated its keys
            raise TokenRefused(f"the token is signed with an unknown key (kid {kid})")
        claims = self._verified(token, alg, candidates)
        self._check_times(claims)
        self._check_scope(claims)
        return claims

    def validate_async(self, token: str) -> Deferred[dict[str, Any]]:
        """Like ``validate``, but an unknown key first waits for the key set's refresh."""
        return Deferred.fromCoroutine(self._validate_async(token))

    async def _validate_async(self, token: str) -> dict[str, Any]:
        try:
            return self.validate(token)
        except KeysUnavailable:
            pass
        except TokenRefused as e:
            if "unknown key" not in e.description:
                raise
        await self.keys.refresh()
        return self.validate(token)

    def _verified(self, token: str, alg: str, candidates: list[PyJWK]) -> dict[str, Any]:
        options = {
            "verify_exp": False,  # checked against the injected clock below
            "verify_nbf": False,
            "verify_iat": False,
            "verify_aud": self.audience is not None,
            "verify_iss": self.issuer is not None,
            "require": ["exp"],
        }
        bad_signature: jwt.PyJWTError | None = None
        for candidate in candidates:
            key = candidate.key
            if hasattr(key, "public_key"):  # a JWKS that (wrongly) holds a private key
                key = key.public_key()
            try:
                claims: dict[str, Any] = jwt.decode(
                    token,
                    key=key,
                    algorithms=[alg],
                    audience=self.audience,
                    issuer=self.issuer,
                    options=options,  # type: ignore[arg-type]
                )
                return claims
            except (jwt.InvalidSignatureError, jwt.InvalidKeyError) as e:
                bad_signature = e
            except jwt.PyJWTError as e:
                raise TokenRefused(self._describe(e)) from None
        assert bad_signature is not None
        raise TokenRefused("the token signature does not verify")

    def _describe(self, error: jwt.PyJWTError) -> str:
        if isinstance(error, jwt.InvalidAudienceError):
            return f"the token is not meant for this server (audience {self.audience})"
        if isinstance(error, jwt.InvalidIssuerError):
            return f"the token was not issued by {self.issuer}"
        if isinstance(error, jwt.MissingRequiredClaimError):
            return f"the token has no {error.claim} claim"
        return f"the token is not acceptable: {_quoted(str(error))}"

    def _check_times(self, claims: dict[str, Any]) -> None:
        now = self._clock.seconds()
        exp, nbf = claims.get("exp"), claims.get("nbf")
        if isinstance(exp, bool) or not isinstance(exp, int | float):
            raise TokenRefused("the exp claim is not a number")
        if now >= exp + self.leeway:
            raise TokenRefused(f"the access token expired at {_when(exp)}")
        if nbf is not None:
            if isinstance(nbf, bool) or not isinstance(nbf, int | float):
                raise TokenRefused("the nbf claim is not a number")
            if now + self.leeway < nbf:
                raise TokenRefused(f"the access token is not valid before {_when(nbf)}")

    def _check_scope(self, claims: dict[str, Any]) -> None:
        granted = granted_scopes(claims)
        missing = [s for s in self.required_scopes if s not in granted]
        if missing:
            raise InsufficientScope(f"the token lacks the scope {' '.join(missing)}")

    # -- HTTP answers -----------------------------------------------------------------

    def challenge(self, refused: TokenRefused | None = None) -> str:
        """The ``WWW-Authenticate`` value for a 401/403 (RFC 6750 §3)."""
        parts = [f'Bearer realm="{_quoted(self.realm)}"']
        if refused is not None and refused.error is not None:
            parts.append(f'error="{refused.error}"')
            parts.append(f'error_description="{_quoted(refused.description)}"')
        if self.required_scopes and (refused is None or refused.error != "invalid_token"):
            parts.append(f'scope="{" ".join(self.required_scopes)}"')
        return ", ".join(parts)


def granted_scopes(claims: dict[str, Any]) -> set[str]:
    """Scopes from ``scope`` (space-separated) and ``scp`` (string or list)."""
    granted: set[str] = set()
    for name in ("scope", "scp"):
        value = claims.get(name)
        if isinstance(value, str):
            granted.update(value.split())
        elif isinstance(value, list):
            granted.update(v for v in value if isinstance(v, str))
    return granted
