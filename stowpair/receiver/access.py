"""Who may POST: static credentials (``--bearer-token``, ``--basic-auth``) or OAuth 2.0
JWT access tokens (``--oauth-issuer``/``--jwks``), decided from the Authorization header.

A refusal is an HTTP status, a one-line reason and the ``WWW-Authenticate`` challenges:
401 for missing or wrong credentials (RFC 9110 §11.6.1), and with JWT validation the
RFC 6750 §3 answers: 401 ``error="invalid_token"``, 403 ``error="insufficient_scope"``.
The reason names what was wrong with the token, never the token itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from stowpair.auth.jwt_validator import KeysUnavailable, MissingToken, TokenRefused
from stowpair.receiver.http_util import authorized, challenges
from stowpair.receiver.settings import ReceiverSettings

#: Retry-After sent with a 503 while the signing keys cannot be loaded.
KEYS_RETRY_AFTER = "5"


@dataclass(frozen=True)
class Refusal:
    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]


def refusal(header: str | None, settings: ReceiverSettings) -> Refusal | None:
    """None when the request may go on, else how to refuse it."""
    validator = settings.bearer_validator
    if validator is None:
        if authorized(header, settings.bearer_token, settings.basic_auth):
            return None
        www = challenges(settings.bearer_token, settings.basic_auth, settings.server_name)
        return Refusal(
            401, "credentials missing or not accepted", tuple(("WWW-Authenticate", c) for c in www)
        )
    scheme, _, credentials = (header or "").strip().partition(" ")
    basic = settings.basic_auth
    if basic is not None and scheme.lower() == "basic" and authorized(header, None, basic):
        return None
    refused: TokenRefused
    if scheme.lower() == "bearer" and credentials.strip():
        try:
            validator.validate(credentials.strip())
            return None
        except TokenRefused as e:
            refused = e
    elif scheme.lower() == "basic" and basic is not None:
        refused = MissingToken("credentials not accepted")
    else:
        refused = MissingToken("a Bearer access token is required")
    headers = [("WWW-Authenticate", validator.challenge(refused))]
    headers += [("WWW-Authenticate", c) for c in challenges(None, basic, settings.server_name)]
    if isinstance(refused, KeysUnavailable):
        headers = [("Retry-After", KEYS_RETRY_AFTER)]
    return Refusal(refused.status, refused.description, tuple(headers))
