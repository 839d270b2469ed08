"""A cached access token per OAuth 2.0 client, refreshed ahead of expiry.

Modelled on google-auth's credentials: a token is *valid* until ``skew`` seconds before
it expires and *expired* from its expiry on; :meth:`TokenSource.token` hands out the
cached token while it is valid and otherwise asks the token endpoint for a new one. All
callers that ask while a request is in flight share it (single flight: 100 concurrent
exports cause one token request). :meth:`TokenSource.invalidate` drops a token that a
resource server refused (HTTP 401), so the next caller fetches a fresh one.

Token values never appear in ``repr``, log events or exception messages; events carry a
short fingerprint (the first 8 hex digits of the value's SHA-256) to tell tokens apart.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from stowpair.logs import register_events

register_events(
    {
        "auth.token.fetched": (
            "client", "token_url", "grant_type", "expires_in", "fingerprint", "elapsed",
            "reason",
        ),
        "auth.token.failed": ("client", "token_url", "grant_type", "error", "elapsed"),
        "auth.token.invalidated": ("client", "token_url", "fingerprint"),
    }
)  # fmt: skip

#: google-auth refreshes 3 min 45 s ahead; 30 s is plenty for a request to reach a server.
DEFAULT_SKEW = 30.0
#: A short-lived token is refreshed when this share of its lifetime is left, if that comes
#: before ``skew`` (a 5 s token after 4 s, not at once).
MAX_SKEW_SHARE = 0.2


def fingerprint(value: str) -> str:
    """A short, non-reversible name for a token, safe for logs."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:8]


class TokenError(Exception):
    """The token endpoint did not give a token; the message names the URL, never a secret.

    ``error`` is the OAuth 2.0 error code when the server sent one (``invalid_client``,
    RFC 6749 §5.2), else a short word (``timeout``, ``not-json``, ``transport``).
    """

    def __init__(self, message: str, error: str = "") -> None:
        super().__init__(message)
        self.error = error


@dataclass(frozen=True)
class AccessToken:
    """A token as the endpoint issued it; ``expires_in`` None when the server gave none."""

    value: str = field(repr=False)
    expires_in: float | None = None
    token_type: str = "Bearer"
    scope: str | None = None

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.value)


class TokenSource:
    """One OAuth 2.0 client's token: cached, shared, refreshed ahead of expiry.

    ``fetch`` runs one token request (fires with an :class:`AccessToken`, fails with a
    :class:`TokenError`). ``name`` and ``token_url`` only label log events.
    """

    log = Logger()

    def __init__(
        self,
        fetch: Callable[[], Deferred[AccessToken]],
        clock: IReactorTime,
        skew: float = DEFAULT_SKEW,
        name: str = "",
        token_url: str = "",
        grant_type: str = "",
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._skew = skew
        self.name, self.token_url, self.grant_type = name, token_url, grant_type
        self._token: AccessToken | None = None
        self._expiry: float | None = None  # clock time the token expires; None = unknown
        self._refresh_at: float | None = None
        self._waiting: list[Deferred[AccessToken]] | None = None  # a fetch is in flight
        self._refused = False
        #: Token requests made (successful or not), for tests and the closing report.
        self.requests = 0

    # -- google-auth's credential properties ----------------------------------------

    @property
    def expired(self) -> bool:
        """True when the token's lifetime is over (or there is no token)."""
        if self._token is None:
            return True
        return self._expiry is not None and self._clock.seconds() >= self._expiry

    @property
    def valid(self) -> bool:
        """True when the cached token may be handed out (not within ``skew`` of expiry)."""
        if self._token is None:
            return False
        return self._refresh_at is None or self._clock.seconds() < self._refresh_at

    # -- use --------------------------------------------------------------------------

    def token(self) -> Deferred[AccessToken]:
        """The cached token while valid, else a fresh one (one request for all callers)."""
        if self.valid and self._token is not None:
            d: Deferred[AccessToken] = Deferred()
            d.callback(self._token)
            return d
        reason = "expiring" if self._token else "refused" if self._refused else "first"
        return self._join(reason)

    def invalidate(self, value: str) -> None:
        """A resource server refused ``value``: forget it (unless a newer token replaced it)."""
        if self._token is not None and self._token.value == value:
            self.log.info(
                "Token {fingerprint} of client {client} was refused; fetching a new one",
                event="auth.token.invalidated",
                client=self.name,
                token_url=self.token_url,
                fingerprint=self._token.fingerprint,
            )
            self._token = self._expiry = self._refresh_at = None
            self._refused = True

    def _join(self, reason: str) -> Deferred[AccessToken]:
        d: Deferred[AccessToken] = Deferred()
        if self._waiting is not None:
            self._waiting.append(d)
            return d
        self._waiting = [d]
        self.requests += 1
        started = self._clock.seconds()
        try:
            request = self._fetch()
        except Exception:
            request = Deferred()
            request.errback(Failure())
        request.addCallbacks(
            self._fetched, self._failed, callbackArgs=(started, reason), errbackArgs=(started,)
        )
        return d

    def _fetched(self, token: AccessToken, started: float, reason: str) -> None:
        now = self._clock.seconds()
        self._token, self._refused = token, False
        if token.expires_in is None:
            # No lifetime given (RFC 6749 §5.1 makes it optional): kept until refused.
            self._expiry = self._refresh_at = None
        else:
            skew = min(self._skew, token.expires_in * MAX_SKEW_SHARE)
            self._expiry = now + token.expires_in
            self._refresh_at = self._expiry - skew
        self.log.info(
            "Token {fingerprint} for client {client} from {token_url}"
            " ({reason}): expires in {expires_in}s",
            event="auth.token.fetched",
            client=self.name,
            token_url=self.token_url,
            grant_type=self.grant_type,
            expires_in=token.expires_in,
            fingerprint=token.fingerprint,
            elapsed=now - started,
            reason=reason,
        )
        waiting, self._waiting = self._waiting or [], None
        for d in waiting:
            d.callback(token)

    def _failed(self, failure: Failure, started: float) -> None:
        error = failure.value
        if not isinstance(error, TokenError):
            error = TokenError(f"token request to {self.token_url} failed: {error}", "internal")
        self.log.warn(
            "{error}",
            event="auth.token.failed",
            client=self.name,
            token_url=self.token_url,
            grant_type=self.grant_type,
            error=str(error),
            elapsed=self._clock.seconds() - started,
        )
        waiting, self._waiting = self._waiting or [], None
        for d in waiting:
            d.errback(Failure(error))
