"""TLS policy for STOW-RS destinations: dcm4chee's `allow-any-hostname` and
`disable-trust-manager` Web Application properties, plus `ca-file`, `tls-cert`, `tls-key`.

Modes (reference dcm4chee-stow-exporter.md §1.3, environment-notes.md §3b):

* default: the certificate chain is verified against the platform trust store, or the
  `ca-file` when given, and the certificate must name the host (service_identity);
* `allow-any-hostname=true`: the chain is verified, the name is not (SNI is still sent);
* `disable-trust-manager=true`: nothing is verified; a warning is logged once per web app.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

from OpenSSL import SSL
from twisted.internet import ssl
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator
from twisted.logger import Logger
from twisted.web.iweb import IPolicyForHTTPS
from zope.interface import implementer

from stowpair.compat.twisted_private import IOpenSSLTrustRoot
from stowpair.config.model import WebApplication
from stowpair.logs import register_events

register_events({"exporter.tls.unverified": ("webapp", "url")})


class TLSConfigError(ValueError):
    """A TLS file named by a web app property cannot be used."""


@implementer(IOpenSSLClientConnectionCreator)
class _NoHostnameCheck:
    """Like ``ClientTLSOptions`` without the service_identity name check; keeps SNI."""

    def __init__(self, hostname: str, context: SSL.Context) -> None:
        try:
            ipaddress.ip_address(hostname)
            self._sni: bytes | None = None  # RFC 6066 §3: no SNI for IP literals
        except ValueError:
            self._sni = hostname.encode("idna")
        self._context = context

    def clientConnectionForTLS(self, tlsProtocol: object) -> SSL.Connection:
        connection = SSL.Connection(self._context, None)
        connection.set_app_data(tlsProtocol)
        if self._sni is not None:
            connection.set_tlsext_host_name(self._sni)
        return connection


def _read(path: Path, what: str, webapp: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise TLSConfigError(
            f"webapp {webapp!r}: cannot read {what} {path}: {e.strerror}; fix the property"
        ) from None


@implementer(IPolicyForHTTPS)
class StowTLSPolicy:
    """The ``IPolicyForHTTPS`` for one Web Application (built once per client)."""

    log = Logger()

    def __init__(self, webapp: WebApplication) -> None:
        props = webapp.properties
        self.webapp = webapp.name
        self.url = webapp.url
        self.mode = (
            "disable-trust-manager"
            if props.disable_trust_manager
            else "allow-any-hostname"
            if props.allow_any_hostname
            else "default"
        )
        self._trust: IOpenSSLTrustRoot | None = None
        if props.ca_file is not None:
            self._trust = _trust_root_from_file(webapp.name, props.ca_file)
        self._client: ssl.PrivateCertificate | None = None
        if props.tls_cert is not None:
            self._client = _client_certificate(webapp.name, props.tls_cert, props.tls_key)
        self._warned = False

    def _trust_root(self) -> IOpenSSLTrustRoot:
        return self._trust if self._trust is not None else ssl.platformTrust()

    def _options(self, verify: bool) -> ssl.CertificateOptions:
        kwargs: dict[str, object] = {}
        if self._client is not None:
            kwargs["privateKey"] = self._client.privateKey.original
            kwargs["certificate"] = self._client.original
        if verify:
            kwargs["trustRoot"] = self._trust_root()
        else:
            kwargs["verify"] = False
        return ssl.CertificateOptions(**kwargs)  # type: ignore[arg-type]

    def creatorForNetloc(self, hostname: bytes, port: int) -> IOpenSSLClientConnectionCreator:
        host = hostname.decode("ascii")
        if self.mode == "default":
            return ssl.optionsForClientTLS(
                host, trustRoot=self._trust_root(), clientCertificate=self._client
            )
        if self.mode == "allow-any-hostname":
            return _NoHostnameCheck(host, self._options(verify=True).getContext())
        if not self._warned:
            self._warned = True
            self.log.warn(
                "TLS certificate verification is disabled for webapp {webapp} ({url}) "
                "by disable-trust-manager=true: any server can impersonate it",
                event="exporter.tls.unverified",
                webapp=self.webapp,
                url=self.url,
            )
        return _NoHostnameCheck(host, self._options(verify=False).getContext())


_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)


def _trust_root_from_file(webapp: str, path: Path) -> IOpenSSLTrustRoot:
    """Every certificate of a PEM bundle becomes a trust anchor (not only the first)."""
    pems = _PEM_CERT.findall(_read(path, "ca-file", webapp))
    try:
        certificates = [ssl.Certificate.loadPEM(pem) for pem in pems]
    except Exception:
        certificates = []
    if not certificates:
        raise TLSConfigError(f"webapp {webapp!r}: ca-file {path} holds no readable PEM certificate")
    return ssl.trustRootFromCertificates(certificates)


def _client_certificate(
    webapp: str, cert_path: Path, key_path: Path | None
) -> ssl.PrivateCertificate:
    cert_pem = _read(cert_path, "tls-cert", webapp)
    key_pem = _read(key_path, "tls-key", webapp) if key_path is not None else cert_pem
    try:
        return ssl.PrivateCertificate.loadPEM(cert_pem + b"\n" + key_pem)
    except Exception:
        raise TLSConfigError(
            f"webapp {webapp!r}: tls-cert {cert_path} / tls-key {key_path or cert_path} "
            "do not hold a PEM certificate and its private key"
        ) from None
