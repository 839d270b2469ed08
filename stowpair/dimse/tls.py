"""DICOM TLS (PS3.15 Annex B.1, the TLS Secure Transport Connection Profile) contexts.

pynetdicom wraps its sockets with the standard library's :class:`ssl.SSLContext`; these
build them from the configuration, with TLS 1.2 as the floor (PS3.15 B.9 BCP 195).
"""

from __future__ import annotations

import ssl
from pathlib import Path

from stowpair.config.model import DimseConfig, RemoteAE


class DimseTLSError(ValueError):
    """A certificate, key or CA file that cannot be used; the message names it."""


def _load_chain(ctx: ssl.SSLContext, cert: Path, key: Path | None, what: str) -> None:
    try:
        ctx.load_cert_chain(str(cert), str(key) if key else None)
    except (OSError, ssl.SSLError) as e:
        raise DimseTLSError(
            f"{what}: cannot load certificate {cert}"
            + (f" with key {key}" if key else "")
            + f": {e}"
        ) from None


def _load_ca(ctx: ssl.SSLContext, ca: Path, what: str) -> None:
    try:
        ctx.load_verify_locations(cafile=str(ca))
    except (OSError, ssl.SSLError) as e:
        raise DimseTLSError(f"{what}: cannot load CA file {ca}: {e}") from None


def server_context(cfg: DimseConfig) -> ssl.SSLContext | None:
    """The SCP's context: None without ``tls_cert``; client certificates required when
    ``tls_ca`` is set."""
    if cfg.tls_cert is None:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_chain(ctx, cfg.tls_cert, cfg.tls_key, "[dimse] tls_cert")
    if cfg.tls_ca is not None:
        _load_ca(ctx, cfg.tls_ca, "[dimse] tls_ca")
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def client_context(ae: RemoteAE) -> ssl.SSLContext | None:
    """The exporter's context for ``ae``: None without ``tls``; the server certificate is
    verified against ``ca_file`` (else the system store) and the configured host name."""
    if not ae.tls:
        return None
    what = f"remote AE {ae.ae_title}"
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if ae.ca_file is not None:
        _load_ca(ctx, ae.ca_file, what)
    else:
        ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
    if ae.tls_cert is not None:
        _load_chain(ctx, ae.tls_cert, ae.tls_key, what)
    return ctx
