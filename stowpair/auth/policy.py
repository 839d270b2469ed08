"""Who may use the REST listener (``[rest.auth]``): :class:`AccessPolicy` decides for one
request and the resource it is routed to (docs/rest-api.md#authentication).

A decision is immediate (None: let it through; a :class:`Refusal`) or a Deferred of one,
when the credentials need a slow check: a Basic password is compared with its scrypt
or PBKDF2 hash in a thread (``run_blocking``), never on the reactor. A pair that passed
is remembered for ``cache_seconds`` (keyed by an HMAC with a per-process random key, so
the cache holds no password), and concurrent requests with the same pair share one
check. A Bearer token is validated at once, or after the signing keys were fetched again
for an unknown key ID.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from stowpair.auth.jwt_validator import KeysUnavailable, TokenRefused, TokenValidator
from stowpair.auth.passwords import hash_password, parse_hash, verify_password
from stowpair.config.model import RestAuth
from stowpair.logs import register_events

register_events(
    {
        "rest.auth.refused": ("peer", "method", "path", "user", "reason", "status", "error"),
        "rest.auth.error": (),
    }
)

_DOCS = "docs/rest-api.md#authentication"


@dataclass(frozen=True)
class Refusal:
    """An answer instead of the resource: 401 with a challenge, 403, 503 ..."""

    status: int
    message: str
    reason: str  # missing, scheme, malformed, password, token, scope, busy, error
    challenge: str | None = None
    retry_after: int | None = None

    @property
    def headers(self) -> tuple[tuple[str, str], ...]:
        found = []
        if self.challenge is not None:
            found.append(("WWW-Authenticate", self.challenge))
        if self.retry_after is not None:
            found.append(("Retry-After", str(self.retry_after)))
        return tuple(found)


Verdict = Refusal | None | Deferred[Refusal | None]
Runner = Callable[[Callable[[], bool]], Deferred[bool]]


class AccessPolicy:
    """Decisions for ``auth``; ``internal_token`` is a per-process Bearer secret the
    service uses for its own requests (the demo study's ingest)."""

    log = Logger()

    def __init__(
        self,
        auth: RestAuth,
        clock: IReactorTime,
        run_blocking: Runner,
        validator: TokenValidator | None = None,
        internal_token: str | None = None,
        cache_seconds: float = 300.0,
        max_checks: int = 16,
    ) -> None:
        self.auth = auth
        self._clock = clock
        self._run = run_blocking
        self.validator = validator
        self._internal = internal_token
        self._cache_seconds = cache_seconds
        self._max_checks = max_checks
        self._users = {name: parse_hash(value) for name, value in auth.users.items()}
        # Unknown users are checked against a hash of the same cost, so that the time an
        # answer takes does not tell which user names exist.
        like = next(iter(self._users.values()), parse_hash(hash_password("-", ln=1)))
        self._unknown = replace(like, salt=os.urandom(16), digest=os.urandom(32))
        self._key = os.urandom(32)
        self._passed: dict[bytes, float] = {}
        self._checking: dict[bytes, Deferred[Refusal | None]] = {}

    @property
    def challenge(self) -> str:
        if self.validator is not None:
            return self.validator.challenge()
        return f'Basic realm="{self.auth.realm}", charset="UTF-8"'

    def decide(self, request: Any, target: Any) -> Verdict:
        """None (allowed), a Refusal, or a Deferred of one of them."""
        access = getattr(target, "access", None)
        if access in ("health", "metrics", "console") and getattr(self.auth, access) == "open":
            return None
        if getattr(target, "authenticates_itself", False):
            return None  # the archive's ingest with [ingest]: its own token validation
        header = (request.getHeader(b"authorization") or b"").decode("latin-1").strip()
        scheme, _, credentials = header.partition(" ")
        credentials = credentials.strip()
        if self._internal and hmac.compare_digest(header, f"Bearer {self._internal}"):
            return None
        expected = "bearer" if self.validator is not None else "basic"
        if not header:
            what = "a Bearer access token" if expected == "bearer" else "HTTP Basic credentials"
            return self._refuse(request, 401, f"authentication required: send {what} ({_DOCS})",
                                "missing")  # fmt: skip
        if scheme.lower() != expected:
            return self._refuse(
                request, 401, f"this service expects {expected.title()} credentials", "scheme"
            )
        if self.validator is not None:
            return self._bearer(request, credentials)
        return self._basic(request, credentials)

    # -- HTTP Basic -----------------------------------------------------------------------

    def _basic(self, request: Any, credentials: str) -> Verdict:
        try:
            pair = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            pair = ""
        user, colon, password = pair.partition(":")
        if not colon:
            message = "the Basic credentials are not base64 of user:password (RFC 7617)"
            return self._refuse(request, 401, message, "malformed")
        key = hmac.new(self._key, pair.encode(), hashlib.sha256).digest()
        now = self._clock.seconds()
        if self._passed.get(key, 0.0) > now:
            return None
        shared = self._checking.get(key)
        if shared is None:
            if len(self._checking) >= self._max_checks:
                message = "too many logins are being checked; retry in a second"
                return self._refuse(request, 503, message, "busy", user, retry_after=1)
            shared = self._check(request, key, user, password)
        return _follow(shared)

    def _check(self, request: Any, key: bytes, user: str, password: str) -> Deferred[Any]:
        stored = self._users.get(user)
        target = stored or self._unknown
        d: Deferred[Any] = self._run(
            lambda: verify_password(password, target) and stored is not None
        )
        self._checking[key] = d

        def checked(result: bool | Failure) -> Refusal | None:
            self._checking.pop(key, None)
            if result is True:
                self._remember(key)
                return None
            if isinstance(result, Failure):
                self.log.failure("Checking a password failed", result, event="rest.auth.error")
                return self._refuse(request, 500, "the credentials could not be checked; see"
                                    " the service log", "error", user)  # fmt: skip
            return self._refuse(request, 401, "wrong user name or password", "password", user)

        d.addBoth(checked)
        return d

    def _remember(self, key: bytes) -> None:
        now = self._clock.seconds()
        if len(self._passed) >= 1000:
            self._passed = {k: t for k, t in self._passed.items() if t > now}
            if len(self._passed) >= 1000:
                self._passed.clear()
        self._passed[key] = now + self._cache_seconds

    # -- Bearer -----------------------------------------------------------------------

    def _bearer(self, request: Any, token: str) -> Verdict:
        assert self.validator is not None
        try:
            self.validator.validate(token)
            return None
        except KeysUnavailable:
            pass  # keys are being fetched: wait for them
        except TokenRefused as e:
            if "unknown key" not in e.description:
                return self._token_refused(request, e)
        d = self.validator.validate_async(token)
        return d.addCallbacks(lambda _: None, lambda f: self._token_failure(request, f))

    def _token_failure(self, request: Any, failure: Failure) -> Refusal:
        if failure.check(TokenRefused):
            return self._token_refused(request, failure.value)  # type: ignore[arg-type]
        self.log.failure("Validating a token failed", failure, event="rest.auth.error")
        return self._refuse(request, 500, "the token could not be checked; see the service"
                            " log", "error")  # fmt: skip

    def _token_refused(self, request: Any, e: TokenRefused) -> Refusal:
        assert self.validator is not None
        reason = "scope" if e.status == 403 else "keys" if e.status == 503 else "token"
        challenge = self.validator.challenge(e) if e.status != 503 else None
        retry = 5 if e.status == 503 else None
        return self._refuse(request, e.status, e.description, reason, None, challenge, retry)

    # -- refusing -----------------------------------------------------------------------

    def _refuse(
        self,
        request: Any,
        status: int,
        message: str,
        reason: str,
        user: str | None = None,
        challenge: str | None = None,
        retry_after: int | None = None,
    ) -> Refusal:
        if challenge is None and status == 401:
            challenge = self.challenge
        emit = self.log.debug if reason == "missing" else self.log.warn
        address: Any = request.getClientAddress()
        emit(
            "Refused {method} {path} from {peer}: {status} {error}",
            peer=f"{getattr(address, 'host', '-')}:{getattr(address, 'port', '-')}",
            method=(request.method or b"").decode("latin-1"),
            path=(request.path or b"").decode("utf-8", "replace")[:300],
            user=user,
            reason=reason,
            status=status,
            error=message,
            event="rest.auth.refused",
        )
        return Refusal(status, message, reason, challenge, retry_after)


def _follow(shared: Deferred[Any]) -> Deferred[Any]:
    """A Deferred firing with ``shared``'s result, leaving ``shared``'s chain as it is."""
    follower: Deferred[Any] = Deferred()

    def relay(result: Any) -> Any:
        follower.callback(result)
        return result

    shared.addBoth(relay)
    return follower
