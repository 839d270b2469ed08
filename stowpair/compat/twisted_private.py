"""Every private Twisted name stowpair relies on, in one place.

Twisted has no public API for these; a Twisted upgrade may rename or drop them without
a deprecation period. ``tests/compat/test_twisted_private.py`` checks each one against
the installed Twisted and fails with a message naming the one that changed, and
``tests/compat/test_no_private_twisted.py`` fails when code outside this module reaches
for a private Twisted name. When a check fails: find what Twisted does now, adapt the
function here, and keep its contract.

* :data:`IOpenSSLTrustRoot` — the interface of ``twisted.internet.ssl.platformTrust()``
  and ``trustRootFromCertificates()``; only ``twisted.internet._sslverify`` defines it.
  It is used for type annotations only.
* :func:`pending_request_line` — the method and URI that ``HTTPChannel`` parsed from the
  request line (``_command``, ``_path``); the request itself learns them only in
  ``requestReceived``, after the whole body. The receiver routes an upload as soon as the
  headers are in, to stream the body instead of buffering it.
* :func:`keep_timeout_for_next_request` — ``HTTPChannel`` saves its idle timeout while a
  request is handled (``_handlingRequest``, ``_savedTimeOut``) and restores it when the
  response is done; a timeout suspended by the receiver's backpressure goes there.
"""

from __future__ import annotations

from typing import Any

from twisted.internet._sslverify import IOpenSSLTrustRoot

__all__ = ["IOpenSSLTrustRoot", "keep_timeout_for_next_request", "pending_request_line"]


def pending_request_line(channel: Any) -> tuple[bytes, bytes] | None:
    """``(method, uri)`` of the request whose headers ``channel`` (an ``HTTPChannel``)
    has just read, or None when it does not know them (then route as twisted.web does,
    after the body)."""
    command = getattr(channel, "_command", None)
    path = getattr(channel, "_path", None)
    if isinstance(command, bytes) and isinstance(path, bytes):
        return command, path
    return None


def keep_timeout_for_next_request(channel: Any, timeout: float) -> bool:
    """When ``channel`` is handling a request (its body ended), make ``timeout`` the idle
    timeout it restores once the response is done, and return True; return False when it
    is not (the caller then sets the timeout itself with ``setTimeout``)."""
    if not getattr(channel, "_handlingRequest", False):
        return False
    channel._savedTimeOut = timeout
    return True
