"""The Authorization header of STOW-RS requests (dcm4chee ``StowTaskImpl.authorization``).

Precedence as in dcm4chee: the web app's ``keycloak-client`` (an OAuth 2.0 access token
from that client's token endpoint) wins over ``bearer-token``, which wins over
``basic-auth``; none gives no header. Unlike dcm4chee, which fetches a token once per task
and keeps it, a token is asked for per request (a cached one is handed out until shortly
before it expires) and a 401 from the destination gets one fresh token and one retry.

Secrets are revealed only here, to build the header value; values never reach a log
event, an exception message or REST output.
"""

from __future__ import annotations

import base64
from typing import Protocol

from twisted.internet.defer import Deferred

from stowpair.auth.tokens import TokenSource
from stowpair.config.model import WebAppProperties
from stowpair.config.secret import SecretError


class AuthConfigError(ValueError):
    """A credential reference could not be resolved; the message names no secret value."""


def authorization_header(props: WebAppProperties, webapp: str) -> bytes | None:
    """``Bearer <token>`` or ``Basic <base64(user:password)>``, or None."""
    try:
        if props.bearer_token is not None:
            return b"Bearer " + props.bearer_token.reveal().encode("utf-8")
        if props.basic_auth is not None:
            return b"Basic " + base64.b64encode(props.basic_auth.reveal().encode("utf-8"))
    except SecretError as e:
        kind = "bearer-token" if props.bearer_token is not None else "basic-auth"
        raise AuthConfigError(f"webapp {webapp!r}: {kind}: {e}") from None
    return None


class RequestAuth(Protocol):
    """Where a request's Authorization header comes from."""

    def header(self) -> Deferred[bytes | None]:
        """The header value for the next request; fails with TokenError."""

    def refused(self, header: bytes | None) -> bool:
        """The destination answered 401 to ``header``: True when a new header may pass."""


class StaticAuth:
    """``bearer-token`` / ``basic-auth`` (or nothing): the same header every time."""

    def __init__(self, value: bytes | None) -> None:
        self._value = value

    def header(self) -> Deferred[bytes | None]:
        d: Deferred[bytes | None] = Deferred()
        d.callback(self._value)
        return d

    def refused(self, header: bytes | None) -> bool:
        return False


class TokenAuth:
    """``Bearer`` + the current access token of a keycloak client's :class:`TokenSource`."""

    def __init__(self, source: TokenSource) -> None:
        self.source = source

    def header(self) -> Deferred[bytes | None]:
        return self.source.token().addCallback(lambda t: b"Bearer " + t.value.encode("utf-8"))

    def refused(self, header: bytes | None) -> bool:
        if header is None:
            return False
        self.source.invalidate(header.decode("utf-8").removeprefix("Bearer "))
        return True
