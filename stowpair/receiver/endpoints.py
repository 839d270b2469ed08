"""From stowrsd's command-line options to settings and a listening endpoint."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from twisted.internet import ssl
from twisted.internet.endpoints import SSL4ServerEndpoint, TCP4ServerEndpoint, TCP6ServerEndpoint
from twisted.internet.interfaces import IStreamServerEndpoint

from stowpair.config.secret import Secret
from stowpair.receiver.settings import (
    FaultSettings,
    ReceiverSettings,
    parse_code,
    parse_size,
    resolve_transfer_syntaxes,
)


def _probability(options: Mapping[str, Any], name: str) -> float:
    value = float(options[name])
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"--{name} {options[name]!r}: expected a probability from 0 to 1")
    return value


def stowrsd_settings(options: Mapping[str, Any]) -> ReceiverSettings:
    """Build ReceiverSettings from StowrsdOptions; ValueError names the bad option."""
    try:
        status = int(options["status"]) if options["status"] else None
        faults = FaultSettings(
            fail_rate=_probability(options, "fail-rate"),
            fail_reason=parse_code(options["fail-reason"]),
            status=status,
            status_rate=_probability(options, "status-rate"),
            retry_after=int(options["retry-after"]),
            delay=float(options["delay"]),
            seed=int(options["seed"]) if options["seed"] is not None else None,
        )
    except ValueError as e:
        raise ValueError(f"fault injection option: {e}") from None
    if status is not None and not 100 <= status <= 599:
        raise ValueError(f"--status {status}: expected an HTTP status from 100 to 599")
    size = options["max-request-size"]
    part = options["max-part-size"]
    return ReceiverSettings(
        path="/" + options["path"].strip("/"),
        max_request_size=parse_size(size) if size else None,
        max_part_size=parse_size(part) if part else None,
        accept_transfer_syntaxes=resolve_transfer_syntaxes(options["accept-transfer-syntax"]),
        bearer_token=Secret(options["bearer-token"]) if options["bearer-token"] else None,
        basic_auth=Secret(options["basic-auth"]) if options["basic-auth"] else None,
        faults=faults,
    )


def _tls_options(cert: str, key: str | None, ca: str | None) -> ssl.CertificateOptions:
    cert_pem = Path(cert).read_bytes()
    key_pem = Path(key).read_bytes() if key else cert_pem
    blocks = [
        b"-----BEGIN CERTIFICATE-----" + b
        for b in cert_pem.split(b"-----BEGIN CERTIFICATE-----")[1:]
    ]
    if not blocks:
        raise ValueError(f"--tls-cert {cert}: no PEM certificate found")
    leaf = ssl.PrivateCertificate.loadPEM(key_pem + b"\n" + blocks[0])
    extra = [ssl.Certificate.loadPEM(b).original for b in blocks[1:]]
    kwargs: dict[str, Any] = {}
    if ca:
        # PS3.18 does not mandate mutual TLS; with a trust root twisted verifies the peer
        # and requires its certificate (requireCertificate defaults to True).
        kwargs["trustRoot"] = ssl.trustRootFromCertificates(
            [
                ssl.Certificate.loadPEM(b"-----BEGIN CERTIFICATE-----" + b)
                for b in Path(ca).read_bytes().split(b"-----BEGIN CERTIFICATE-----")[1:]
            ]
        )
    return ssl.CertificateOptions(
        privateKey=leaf.privateKey.original,
        certificate=leaf.original,
        extraCertChain=extra or None,
        **kwargs,
    )


def listen_endpoint(
    reactor: Any, host: str, port: int, options: Mapping[str, Any]
) -> IStreamServerEndpoint:
    """TCP (IPv4 or IPv6 by ``host``) or, with ``tls-cert``, TLS on ``host:port``."""
    if options.get("tls-cert"):
        context = _tls_options(options["tls-cert"], options.get("tls-key"), options.get("tls-ca"))
        return SSL4ServerEndpoint(reactor, port, context, interface=host)
    if ":" in host:
        return TCP6ServerEndpoint(reactor, port, interface=host)
    return TCP4ServerEndpoint(reactor, port, interface=host)
