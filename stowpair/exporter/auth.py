"""The Authorization header of STOW-RS requests (dcm4chee ``StowTaskImpl.authorization``).

Precedence as in dcm4chee (reference §1.3): ``bearer-token`` wins over ``basic-auth``;
neither gives no header. (dcm4chee's Keycloak client comes first there; we have none.)
The Secret is revealed only here, to build the header value; the value never reaches a
log event, an exception message or REST output.
"""

from __future__ import annotations

import base64

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
