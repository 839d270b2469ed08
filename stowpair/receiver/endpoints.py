"""From stowrsd's command-line options to settings and a listening endpoint."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from twisted.internet import ssl
from twisted.internet.endpoints import SSL4ServerEndpoint, TCP4ServerEndpoint, TCP6ServerEndpoint
from twisted.internet.interfaces import IStreamServerEndpoint

from stowpair.auth.jwks import JWKSError, is_url, make_key_set
from stowpair.auth.jwt_validator import TokenValidator
from stowpair.config.model import ClientTimeouts
from stowpair.config.secret import Secret, SecretError
from stowpair.receiver.settings import (
    FaultSettings,
    ReceiverSettings,
    parse_code,
    parse_size,
    resolve_transfer_syntaxes,
)


def _probability(options: Mapping[str, Any], name: str) -> float:
    value = _number(options, name, float)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"--{name} {options[name]!r}: expected a probability from 0 to 1")
    return value


def _number(options: Mapping[str, Any], name: str, kind: type[Any], low: float = 0) -> Any:
    """``options[name]`` as ``kind`` (int or float), at least ``low``; the error names it."""
    text = options[name]
    try:
        value = kind(text)
    except (TypeError, ValueError):
        noun = "a whole number" if kind is int else "a number"
        raise ValueError(f"--{name} {text!r}: expected {noun}") from None
    if not value >= low:  # also refuses NaN
        raise ValueError(f"--{name} {text!r}: expected at least {low}")
    return value


def stowrsd_settings(options: Mapping[str, Any]) -> ReceiverSettings:
    """Build ReceiverSettings from StowrsdOptions; ValueError names the bad option."""
    status = _number(options, "status", int, 100) if options["status"] else None
    if status is not None and status > 599:
        raise ValueError(f"--status {status}: expected an HTTP status from 100 to 599")
    try:
        reason = parse_code(options["fail-reason"])
    except ValueError as e:
        raise ValueError(f"--fail-reason: {e}") from None
    faults = FaultSettings(
        fail_rate=_probability(options, "fail-rate"),
        fail_reason=reason,
        status=status,
        status_rate=_probability(options, "status-rate"),
        retry_after=_number(options, "retry-after", int),
        delay=_number(options, "delay", float),
        seed=_number(options, "seed", int, -(2**63)) if options["seed"] is not None else None,
    )
    size = options["max-request-size"]
    part = options["max-part-size"]
    return ReceiverSettings(
        path="/" + options["path"].strip("/"),
        max_request_size=parse_size(size) if size else None,
        max_part_size=parse_size(part) if part else None,
        accept_transfer_syntaxes=resolve_transfer_syntaxes(options["accept-transfer-syntax"]),
        bearer_token=_secret(options, "bearer-token"),
        basic_auth=_secret(options, "basic-auth"),
        faults=faults,
    )


def client_timeouts(options: Mapping[str, Any]) -> ClientTimeouts:
    """``--header-timeout``, ``--body-timeout``, ``--body-min-rate``, ``--idle-timeout``."""

    def seconds(name: str) -> float:
        value: float = _number(options, name, float)
        if value <= 0:
            raise ValueError(f"--{name} {options[name]!r}: expected more than 0 seconds")
        return value

    return ClientTimeouts(
        header=seconds("header-timeout"),
        body=seconds("body-timeout"),
        body_min_rate=_number(options, "body-min-rate", float),
        idle=seconds("idle-timeout"),
    )


def _secret(options: Mapping[str, Any], name: str) -> Secret | None:
    """A credential option, resolved once now so an unset ``env:`` or a missing
    ``file:`` is an error at start rather than a refused request later."""
    if not options[name]:
        return None
    secret = Secret(options[name])
    try:
        secret.reveal()
    except SecretError as e:
        raise ValueError(f"--{name} {secret}: {e}") from None
    return secret


def _scopes(options: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple((options.get("required-scope") or "").replace(",", " ").split())


def jwks_problem(jwks: str | None) -> str | None:
    """None when ``jwks`` is None, a URL, or a readable JWK Set file."""
    if jwks is None or is_url(jwks):
        return None
    try:
        make_key_set(None, jwks, None)
    except JWKSError as e:
        return str(e)
    return None


def bearer_problem(options: Mapping[str, Any]) -> str | None:
    """None when the JWT options (--oauth-issuer, --jwks, --audience, --required-scope,
    --leeway) fit together, else one sentence."""
    issuer, jwks = options.get("oauth-issuer"), options.get("jwks")
    if not issuer and not jwks:
        for name in ("audience", "required-scope"):
            if options.get(name):
                return f"--{name} needs --jwks FILE|URL or --oauth-issuer URL"
        return None
    if options.get("bearer-token"):
        return (
            "--bearer-token and --jwks/--oauth-issuer exclude each other: "
            "a Bearer token is either one fixed value or a validated JWT"
        )
    if issuer and not is_url(issuer):
        return f"--oauth-issuer {issuer!r}: expected an http:// or https:// URL"
    try:
        _number(options, "leeway", float)
    except ValueError as e:
        return str(e)
    problem = jwks_problem(jwks)
    return f"--jwks: {problem}" if problem else None


def bearer_validator(options: Mapping[str, Any], reactor: Any) -> TokenValidator | None:
    """The JWT validator the options ask for (checked by bearer_problem), or None."""
    issuer, jwks = options.get("oauth-issuer"), options.get("jwks")
    if not issuer and not jwks:
        return None
    return TokenValidator(
        make_key_set(reactor, jwks, issuer),
        reactor,
        issuer=issuer,
        audience=options.get("audience"),
        required_scopes=_scopes(options),
        leeway=_number(options, "leeway", float),
        realm="stowrsd",
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


def tls_problem(options: Mapping[str, Any]) -> str | None:
    """None when ``--tls-cert``/``--tls-key``/``--tls-ca`` load, else one sentence."""
    cert = options.get("tls-cert")
    if not cert:
        return None
    try:
        _tls_options(cert, options.get("tls-key"), options.get("tls-ca"))
    except OSError as e:
        return f"--tls-cert/--tls-key/--tls-ca: cannot read {e.filename}: {e.strerror}"
    except Exception as e:  # pyOpenSSL raises its own error types for bad PEM data
        return f"--tls-cert {cert}: cannot load the certificate, key or CA: {e}"
    return None


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
