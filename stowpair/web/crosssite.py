"""Cross-site request refusal for state-changing routes.

A page from any origin, opened in a browser on the same machine, can make that browser
send a form POST or a ``no-cors`` ``fetch`` to a loopback service: the browser does not
let the page read the answer, but the request is made. Browsers mark such requests: they
send ``Origin`` on every POST/DELETE (and ``Sec-Fetch-Site``), and without a CORS
preflight a page can only send ``application/x-www-form-urlencoded``,
``multipart/form-data`` or ``text/plain`` bodies. So a state-changing request is refused
when its ``Origin`` is not this server's own origin or ``Sec-Fetch-Site`` says
``cross-site``, and those three body types are never accepted there. Clients that send
no ``Origin`` (curl, the stowpair CLI, STOW-RS peers) are not affected.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

#: Methods that change nothing (RFC 9110 §9.2.1): never refused for their origin.
SAFE_METHODS = frozenset({b"GET", b"HEAD", b"OPTIONS"})
#: Body types a page may send to any origin without a CORS preflight (Fetch standard,
#: "CORS-safelisted request-header" Content-Type values).
PREFLIGHT_FREE_TYPES = (
    "application/x-www-form-urlencoded",
    "multipart/form-data",
    "text/plain",
)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _header(request: Any, name: bytes) -> list[str]:
    return [v.decode("latin-1") for v in request.requestHeaders.getRawHeaders(name, [])]


def _origin_tuple(scheme: str, netloc: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) with the scheme's default port filled in; None if unreadable."""
    try:
        parts = urlsplit(f"{scheme}://{netloc}")
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname or scheme not in _DEFAULT_PORTS:
        return None
    return scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme]


def own_origin(request: Any) -> str | None:
    """This server's origin as the client addressed it (scheme + ``Host`` header)."""
    hosts = _header(request, b"host")
    if len(hosts) != 1 or not hosts[0].strip():
        return None
    scheme = "https" if request.isSecure() else "http"
    return f"{scheme}://{hosts[0].strip()}"


def cross_site_problem(request: Any) -> str | None:
    """Why this state-changing request looks sent by another site's page, or None."""
    fetch_site = [v.strip().lower() for v in _header(request, b"sec-fetch-site")]
    if "cross-site" in fetch_site:
        return (
            "Cross-site request refused (Sec-Fetch-Site: cross-site): pages of other sites"
            " may not change state here; use curl, the stowpair CLI or a page of this server"
        )
    origins = _header(request, b"origin")
    if not origins:
        return None  # not sent by a browser page: curl, the CLI, peers
    own = own_origin(request)
    mine = _origin_tuple(*own.split("://", 1)) if own else None
    theirs = None
    if len(origins) == 1 and "://" in origins[0]:
        scheme, _, rest = origins[0].strip().partition("://")
        theirs = _origin_tuple(scheme.lower(), rest) if "/" not in rest else None
    if theirs is not None and theirs == mine:
        return None
    shown_origin = origins[0][:100].encode("ascii", "backslashreplace").decode()
    return (
        f"Cross-site request refused: Origin '{shown_origin}' is not this server's origin"
        f" ({own or 'unknown: no single Host header'}); send it without an Origin header"
        " (curl, the stowpair CLI) or from a page of this server"
    )


def simple_body_problem(request: Any) -> str | None:
    """Why this request's body type is refused on a state-changing route, or None."""
    for value in _header(request, b"content-type"):
        media = value.split(";", 1)[0].strip().lower()
        if media in PREFLIGHT_FREE_TYPES:
            return (
                f"Content-Type {media} is not accepted here (a browser page of any site may"
                " send it); send no body, or the media type this route documents"
            )
    return None
