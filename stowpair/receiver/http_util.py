"""HTTP helpers for the STOW-RS resource: Accept negotiation, auth, CORS, status."""

from __future__ import annotations

import base64
import binascii
import hmac

from stowpair.config.secret import Secret, SecretError
from stowpair.dicom.response import JSON_MEDIA_TYPE, XML_MEDIA_TYPE
from stowpair.receiver.transaction import TransactionResult

#: Accept entries -> the response media type they select (PS3.18 Table 10.5.4-1;
#: JSON is the default, as for a missing Accept or */*).
_ACCEPTED = {
    "application/dicom+json": JSON_MEDIA_TYPE,
    "application/json": JSON_MEDIA_TYPE,
    "application/*": JSON_MEDIA_TYPE,
    "*/*": JSON_MEDIA_TYPE,
    "application/dicom+xml": XML_MEDIA_TYPE,
    "application/xml": XML_MEDIA_TYPE,
    "text/xml": XML_MEDIA_TYPE,
}
SUPPORTED_RESPONSE_TYPES = "application/dicom+json, application/dicom+xml"


def negotiate(accept_headers: list[str]) -> str | None:
    """The response media type for these Accept headers, or None (→ 406).

    Highest q wins; on a tie the first listed. No Accept header means JSON.
    """
    entries: list[tuple[float, int, str]] = []
    for header in accept_headers:
        for raw in header.split(","):
            media, *params = (p.strip() for p in raw.split(";"))
            q = 1.0
            for param in params:
                name, _, value = param.partition("=")
                if name.strip().lower() == "q":
                    try:
                        q = float(value)
                    except ValueError:
                        q = 0.0
            if media:
                entries.append((q, -len(entries), media.lower()))
    if not entries:
        return JSON_MEDIA_TYPE
    for q, _, media in sorted(entries, reverse=True):
        if q > 0 and media in _ACCEPTED:
            return _ACCEPTED[media]
    return None


def authorized(header: str | None, bearer: Secret | None, basic: Secret | None) -> bool:
    """True when no credentials are configured or ``header`` carries a right one.

    Compared in constant time; the values never leave this function.
    """
    if bearer is None and basic is None:
        return True
    scheme, _, credentials = (header or "").strip().partition(" ")
    credentials = credentials.strip()
    try:
        if bearer is not None and scheme.lower() == "bearer":
            return hmac.compare_digest(credentials.encode(), bearer.reveal().encode())
        if basic is not None and scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(credentials, validate=True)
            except (binascii.Error, ValueError):
                return False
            return hmac.compare_digest(decoded, basic.reveal().encode())
    except (SecretError, UnicodeEncodeError):
        return False  # an unreadable secret (checked at start) or a non-ASCII header value
    return False


def challenges(bearer: Secret | None, basic: Secret | None, realm: str) -> list[str]:
    """``WWW-Authenticate`` values for a 401 (RFC 9110 §11.6.1)."""
    out = []
    if bearer is not None:
        out.append(f'Bearer realm="{realm}"')
    if basic is not None:
        out.append(f'Basic realm="{realm}", charset="UTF-8"')
    return out


def cors_headers(
    origin: str | None, method: str | None, headers: str | None
) -> list[tuple[str, str]]:
    """CORS answer, echoing the preflight as dcm4che stowrsd does."""
    return [
        ("Access-Control-Allow-Origin", origin or "*"),
        ("Access-Control-Allow-Methods", "POST, OPTIONS" if not method else f"{method}, OPTIONS"),
        ("Access-Control-Allow-Headers", headers or "Content-Type, Accept, Authorization"),
        ("Access-Control-Max-Age", "600"),
    ]


def stow_status(result: TransactionResult) -> int:
    """PS3.18 Table 10.5.3-1: 200 all stored, 202 some, 409 none (well-formed), 400 syntax,
    413 when the body passed the size limit (the response still lists what was stored).

    Warnings alone keep 200 (dcm4chee's choice; stored instances carry WarningReason).
    """
    if result.limit_error is not None:
        return 413
    if result.syntax_error is not None:
        return 400
    if not result.failed:
        return 200
    return 202 if result.stored else 409
