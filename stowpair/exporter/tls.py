"""TLS policy for STOW-RS destinations: dcm4chee's `allow-any-hostname` and
`disable-trust-manager` Web Application properties, plus `ca-file`, `tls-cert`, `tls-key`.

Modes (docs/dcm4chee.md, "Web Application properties"; tests/exporter/test_tls_auth.py):

* default: the certificate chain is verified against the platform trust store, or the
  `ca-file` when given, and the certificate must name the host (service_identity);
* `allow-any-hostname=true`: the chain is verified, the name is not (SNI is still sent);
* `disable-trust-manager=true`: nothing is verified; a warning is logged once per web app.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from pathlib import Path

from OpenSSL import SSL
from OpenSSL.crypto import X509
from service_identity import CertificateError, VerificationError
from service_identity.cryptography import (
    verify_certificate_hostname,
    verify_certificate_ip_address,
)
from twisted.internet import ssl
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator
from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOProtocol
from twisted.python.failure import Failure
from twisted.web.iweb import IPolicyForHTTPS
from zope.interface import implementer

from stowpair.compat.twisted_private import IOpenSSLTrustRoot
from stowpair.config.model import WebApplication
from stowpair.logs import register_events

register_events({"exporter.tls.unverified": ("webapp", "url")})


class TLSConfigError(ValueError):
    """A TLS file named by a web app property cannot be used."""


#: Words for the X.509 verification errors a server certificate most often meets
#: (OpenSSL's X509_V_ERR_* codes); any other is shown by its number.
_X509_ERRORS = {
    2: "unable to get issuer certificate",
    9: "certificate is not yet valid",
    10: "certificate has expired",
    18: "self-signed certificate",
    19: "self-signed certificate in certificate chain",
    20: "unable to get local issuer certificate",
    21: "unable to verify the first certificate",
}


class UntrustedMisnamedCertificate(Exception):
    """The server certificate is not issued by a trusted CA *and* does not name the host:
    both problems are reported at once, so that fixing one does not reveal the other."""

    def __init__(self, trust: str, name: Exception) -> None:
        self.trust = trust
        self.name = mismatch_text(name)
        super().__init__(f"{self.trust}; {self.name}")


def mismatch_text(error: Exception) -> str:
    """service_identity's reasons for a name mismatch, in one line."""
    return "; ".join(str(e) for e in getattr(error, "errors", [])) or str(error)


def _name_problem(certificate: X509, host: str) -> Exception | None:
    """Why ``certificate`` does not name ``host`` (service_identity), or None."""
    cert = certificate.to_cryptography()
    try:
        ipaddress.ip_address(host)
        is_ip = True
    except ValueError:
        is_ip = False
    try:
        if is_ip:
            verify_certificate_ip_address(cert, host)
        else:
            verify_certificate_hostname(cert, host.encode("idna").decode("ascii"))
    except (VerificationError, CertificateError) as e:
        return e
    return None


@implementer(IOpenSSLClientConnectionCreator)
class _ClientTLS:
    """One TLS client connection for ``hostname``: SNI (not for IP literals) and, with
    ``check_name``, the service_identity name check on top of the context's chain check.

    Twisted's ``optionsForClientTLS`` reports only the name when the chain is untrusted
    too; here a certificate with both problems fails with
    :class:`UntrustedMisnamedCertificate`, one with a wrong name only with
    service_identity's ``VerificationError``, one that is untrusted only with OpenSSL's
    "certificate verify failed".
    """

    def __init__(self, hostname: str, context: SSL.Context, check_name: bool) -> None:
        try:
            ipaddress.ip_address(hostname)
            self._sni: bytes | None = None  # RFC 6066 §3: no SNI for IP literals
        except ValueError:
            self._sni = hostname.encode("idna")
        self._hostname = hostname
        self._context = context
        self._check_name = check_name

    def clientConnectionForTLS(self, tlsProtocol: TLSMemoryBIOProtocol) -> SSL.Connection:
        connection = SSL.Connection(self._context, None)
        connection.set_app_data(tlsProtocol)
        if self._sni is not None:
            connection.set_tlsext_host_name(self._sni)
        if self._check_name:
            connection.set_verify(
                SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, self._verifier(tlsProtocol)
            )
        return connection

    def _verifier(self, protocol: TLSMemoryBIOProtocol) -> Callable[..., bool]:
        host = self._hostname

        def verify(connection: SSL.Connection, cert: X509, error: int, depth: int, ok: int) -> bool:
            if ok and depth != 0:
                return True
            leaf = cert if depth == 0 else _first(connection.get_peer_cert_chain())
            named = None if leaf is None else _name_problem(leaf, host)
            if ok and named is None:
                return True
            if named is not None:
                trust = None if ok else _X509_ERRORS.get(error, f"X.509 verify error {error}")
                problem = named if trust is None else UntrustedMisnamedCertificate(trust, named)
                protocol.failVerification(Failure(problem))
            return False  # untrusted only: OpenSSL's "certificate verify failed"

        return verify


def _first(chain: list[X509] | None) -> X509 | None:
    return chain[0] if chain else None


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
        if self.mode != "disable-trust-manager":
            context = self._options(verify=True).getContext()
            return _ClientTLS(host, context, check_name=self.mode == "default")
        if not self._warned:
            self._warned = True
            self.log.warn(
                "TLS certificate verification is disabled for webapp {webapp} ({url}) "
                "by disable-trust-manager=true: any server can impersonate it",
                event="exporter.tls.unverified",
                webapp=self.webapp,
                url=self.url,
            )
        return _ClientTLS(host, self._options(verify=False).getContext(), check_name=False)


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
