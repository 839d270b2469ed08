"""Transport failures (connect, TLS, timeouts, dropped connections) in plain words.

Twisted wraps the real cause in ``ResponseNeverReceived`` / ``RequestTransmissionFailed``
/ ``ResponseFailed`` (each holding a list of Failures); we dig the root cause out so that
the instance reason says "hostname mismatch" or "unknown CA", not "ResponseNeverReceived".
"""

from __future__ import annotations

from OpenSSL import SSL
from service_identity import CertificateError, VerificationError
from twisted.internet import error as ierror
from twisted.internet.defer import CancelledError
from twisted.python.failure import Failure
from twisted.web.client import (
    RequestGenerationFailed,
    RequestTransmissionFailed,
    ResponseFailed,
    ResponseNeverReceived,
)

from stowpair.exporter.client import IdleTimeout
from stowpair.exporter.tls import UntrustedMisnamedCertificate, mismatch_text

_WRAPPERS = (ResponseNeverReceived, RequestTransmissionFailed, ResponseFailed,
             RequestGenerationFailed)  # fmt: skip


def root_causes(exc: BaseException) -> list[BaseException]:
    """The innermost exceptions inside Twisted's wrapper exceptions."""
    if isinstance(exc, _WRAPPERS):
        found: list[BaseException] = []
        for reason in exc.reasons:
            inner = reason.value if isinstance(reason, Failure) else reason
            if isinstance(inner, BaseException):
                found.extend(root_causes(inner))
        return found or [exc]
    return [exc]


def _pick(causes: list[BaseException]) -> BaseException:
    """The most telling cause: TLS errors first, then anything but a plain close."""
    for kind in (
        UntrustedMisnamedCertificate,
        VerificationError,
        CertificateError,
        SSL.Error,
        OSError,
        ierror.ConnectError,
    ):
        for cause in causes:
            if isinstance(cause, kind) and not isinstance(cause, ierror.ConnectionDone):
                return cause
    return causes[0]


def _ssl_text(exc: SSL.Error) -> str:
    parts = []
    for item in exc.args[0] if exc.args and isinstance(exc.args[0], list) else []:
        if isinstance(item, tuple) and item:
            parts.append(str(item[-1]))
    detail = "; ".join(p for p in parts if p) or str(exc)
    hint = ""
    if "certificate verify failed" in detail:
        hint = (
            " (server certificate not issued by a trusted CA: set ca-file to the server's "
            "CA, or disable-trust-manager=true only for testing)"
        )
    return f"TLS handshake failed: {detail}{hint}"


def describe(exc: BaseException, url: str) -> tuple[str, bool]:
    """A one-sentence reason for a failed request, and whether a retry may help."""
    if isinstance(exc, IdleTimeout):
        return f"{exc} while talking to {url}", True
    cause = _pick(root_causes(exc))
    if isinstance(cause, UntrustedMisnamedCertificate):
        return (
            f"TLS certificate of {url} refused for two reasons: it is not issued by a "
            f"trusted CA ({cause.trust}) and it does not name this host ({cause.name}); "
            "fix the URL or set allow-any-hostname=true for the name, and set ca-file to "
            "the server's CA or disable-trust-manager=true (testing only: it turns off "
            "both checks) for the trust",
            False,
        )
    if isinstance(cause, VerificationError | CertificateError):
        names = mismatch_text(cause)
        return (
            f"TLS hostname mismatch: the certificate of {url} does not name this host "
            f"({names}); fix the URL or set allow-any-hostname=true",
            False,
        )
    if isinstance(cause, SSL.Error):
        return f"{_ssl_text(cause)} connecting to {url}", False
    if isinstance(cause, ierror.ConnectionRefusedError):
        return f"connection refused by {url}", True
    if isinstance(cause, ierror.DNSLookupError):
        return f"cannot resolve the host of {url}", True
    if isinstance(cause, ierror.NoRouteError):
        return f"the host of {url} is unreachable (no route)", True
    if isinstance(cause, ierror.TimeoutError | CancelledError):
        return f"connect to {url} timed out (connect-timeout)", True
    if isinstance(cause, ierror.ConnectionLost | ierror.ConnectionDone):
        return f"connection to {url} closed before the answer was complete", True
    if isinstance(cause, OSError) and not isinstance(cause, ierror.ConnectError):
        return f"cannot send: {cause}", True
    return f"request to {url} failed: {type(cause).__name__}: {cause}", True


#: Causes that say the destination cannot be reached at all right now: nothing sent in
#: the same attempt can get through, so the rest fails at once (see ``Attempt``).
_UNREACHABLE = (
    ierror.ConnectionRefusedError,
    ierror.NoRouteError,
    ierror.DNSLookupError,
    ierror.TCPTimedOutError,
    ierror.TimeoutError,
)


def unreachable(exc: BaseException) -> bool:
    """True when the request failed before a connection existed: refused, no route to
    the host, unknown host, or the connect timed out."""
    if isinstance(exc, IdleTimeout):
        return False
    return isinstance(_pick(root_causes(exc)), _UNREACHABLE)
