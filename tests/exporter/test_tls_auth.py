"""TLS policy matrix (good, wrong-hostname, untrusted) and Authorization, on loopback."""

from __future__ import annotations

import datetime
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.internet import ssl
from twisted.logger import globalLogPublisher
from twisted.web.server import Site

from stowpair.config.secret import Secret
from stowpair.exporter.outcome import TaskStatus
from tests.exporter.conftest import Run, Sink, reactor
from tests.exporter.support import StowSink, basic, make_study, webapp


class TLSServers:
    """good (CA, SAN 127.0.0.1), wrong-hostname (CA, SAN other.example), untrusted."""

    def __init__(self, folder: Path) -> None:
        ca, other_ca = trustme.CA(), trustme.CA()
        self.ca_file = folder / "ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_file))
        self.client_ca = ca
        leaves = {
            "good": ca.issue_cert("127.0.0.1"),
            "wrong-hostname": ca.issue_cert("other.example"),
            "untrusted": other_ca.issue_cert("127.0.0.1"),
        }
        self.ports: dict[str, Any] = {}
        self.urls: dict[str, str] = {}
        client = ca.issue_cert("exporter.example")
        self.client_cert = folder / "client.pem"
        self.client_key = folder / "client.key"
        client.cert_chain_pems[0].write_to_path(str(self.client_cert))
        client.private_key_pem.write_to_path(str(self.client_key))
        leaves["mtls"] = leaves["good"]
        for name, leaf in leaves.items():
            cert = ssl.PrivateCertificate.loadPEM(leaf.private_key_and_cert_chain_pem.bytes())
            if name == "mtls":  # requires a client certificate issued by the CA
                options = cert.options(ssl.Certificate.loadPEM(ca.cert_pem.bytes()))
            else:
                options = cert.options()
            port = reactor.listenSSL(0, Site(StowSink(reactor)), options, interface="127.0.0.1")
            self.ports[name] = port
            self.urls[name] = f"https://127.0.0.1:{port.getHost().port}/stowrs"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Generator[TLSServers, None, None]:
    servers = TLSServers(tmp_path_factory.mktemp("tls"))
    yield servers
    for port in servers.ports.values():
        pytest_twisted.blockon(port.stopListening())


MATRIX = [
    ("default", "good", True, ""),
    ("default", "wrong-hostname", False, "hostname mismatch"),
    ("default", "untrusted", False, "certificate verify failed"),
    ("allow-any-hostname", "good", True, ""),
    ("allow-any-hostname", "wrong-hostname", True, ""),
    ("allow-any-hostname", "untrusted", False, "certificate verify failed"),
    ("disable-trust-manager", "good", True, ""),
    ("disable-trust-manager", "wrong-hostname", True, ""),
    ("disable-trust-manager", "untrusted", True, ""),
]


@pytest.mark.parametrize(
    ("mode", "server", "ok", "reason"), MATRIX, ids=[f"{m}-{s}" for m, s, _, _ in MATRIX]
)
@pytest_twisted.ensureDeferred
async def test_tls_matrix(
    tmp_path: Path, tls: TLSServers, run_export: Run, mode: str, server: str, ok: bool, reason: str
) -> None:
    """When a policy meets a server certificate, the export passes or fails with the real cause."""
    records = make_study(tmp_path / "s", 1)
    props: dict[str, Any] = {"ca_file": tls.ca_file}
    if mode != "default":
        props[mode.replace("-", "_")] = True
    outcome = await run_export(records, [webapp(tls.urls[server], **props)])
    if ok:
        assert outcome.completed == 1, outcome.instances[0].reason
    else:
        assert outcome.failed == 1
        assert reason in outcome.instances[0].reason
    print(f"TLS {mode} x {server}: {outcome.instances[0].status} {outcome.instances[0].reason}")


@pytest.mark.parametrize("with_cert", [True, False], ids=["client-cert", "no-client-cert"])
@pytest_twisted.ensureDeferred
async def test_client_certificate(
    tmp_path: Path, tls: TLSServers, run_export: Run, with_cert: bool
) -> None:
    """When the server requires a client certificate, tls-cert/tls-key provide it."""
    records = make_study(tmp_path / "s", 1)
    props: dict[str, Any] = {"ca_file": tls.ca_file}
    if with_cert:
        props.update(tls_cert=tls.client_cert, tls_key=tls.client_key)
    outcome = await run_export(records, [webapp(tls.urls["mtls"], **props)])
    assert (outcome.completed == 1) is with_cert, outcome.instances[0].reason


@pytest_twisted.ensureDeferred
async def test_platform_trust_rejects_private_ca(
    tmp_path: Path, tls: TLSServers, run_export: Run
) -> None:
    """When no ca-file is set, a certificate from a private CA is refused."""
    records = make_study(tmp_path / "s", 1)
    outcome = await run_export(records, [webapp(tls.urls["good"])])
    assert "certificate verify failed" in outcome.instances[0].reason


@pytest_twisted.ensureDeferred
async def test_disable_trust_manager_warns_once(
    tmp_path: Path, tls: TLSServers, run_export: Run
) -> None:
    """When disable-trust-manager is set, one warning is logged per web app, not per request."""
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    try:
        records = make_study(tmp_path / "s", 3)
        await run_export(records, [webapp(tls.urls["good"], disable_trust_manager=True)])
    finally:
        globalLogPublisher.removeObserver(events.append)
    assert [e.get("event") for e in events].count("exporter.tls.unverified") == 1


AUTH = [
    ("bearer-ok", {"bearer_token": Secret("t0k")}, "Bearer t0k", TaskStatus.COMPLETED),
    ("basic-ok", {"basic_auth": Secret("alice:s3cret")}, basic("alice", "s3cret"),
     TaskStatus.COMPLETED),
    ("bearer-wins", {"bearer_token": Secret("t0k"), "basic_auth": Secret("alice:x")},
     "Bearer t0k", TaskStatus.COMPLETED),
    ("basic-wrong", {"basic_auth": Secret("alice:wrong")}, basic("alice", "s3cret"),
     TaskStatus.WARNING),
    ("none", {}, "Bearer t0k", TaskStatus.WARNING),
]  # fmt: skip


@pytest.mark.parametrize(
    ("props", "expected", "status"), [a[1:] for a in AUTH], ids=[a[0] for a in AUTH]
)
@pytest_twisted.ensureDeferred
async def test_auth(
    tmp_path: Path,
    sink: Sink,
    run_export: Run,
    props: dict[str, Any],
    expected: str,
    status: TaskStatus,
) -> None:
    """When credentials are configured, bearer wins over basic and wrong ones are rejected."""
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    try:
        sink.behave(auth=expected)
        outcome = await run_export(make_study(tmp_path / "s", 1), [webapp(sink.url, **props)])
    finally:
        globalLogPublisher.removeObserver(events.append)
    assert outcome.status is status
    if status is TaskStatus.WARNING:
        assert "authentication rejected (HTTP 401)" in outcome.instances[0].reason
    text = repr(events) + repr(outcome)
    assert "s3cret" not in text and "t0k" not in text and "wrong" not in text


@pytest_twisted.ensureDeferred
async def test_secret_from_env(
    tmp_path: Path, sink: Sink, run_export: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When bearer-token is env:NAME, the variable's value is sent."""
    monkeypatch.setenv("STOWPAIR_TEST_TOKEN", "from-env")
    sink.behave(auth="Bearer from-env")
    wa = webapp(sink.url, bearer_token=Secret("env:STOWPAIR_TEST_TOKEN"))
    outcome = await run_export(make_study(tmp_path / "s", 1), [wa])
    assert outcome.completed == 1


def _self_signed(name: str) -> bytes:
    """A self-signed certificate for ``name`` and its key, as PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM) + key_pem


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
@pytest_twisted.ensureDeferred
async def test_untrusted_certificate_for_another_host_names_both_problems(
    tmp_path: Path, tls: TLSServers, run_export: Run, host: str
) -> None:
    """When the server's certificate is self-signed and for another host name, the
    reason names both problems and both properties that turn the checks off, so that
    following it does not end in a second failure; no credential is in it."""
    cert = ssl.PrivateCertificate.loadPEM(_self_signed("other.example"))
    port = reactor.listenSSL(0, Site(StowSink(reactor)), cert.options(), interface="127.0.0.1")
    url = f"https://{host}:{port.getHost().port}/stowrs"
    try:
        wa = webapp(url, ca_file=tls.ca_file, basic_auth=Secret("alice:s3cret-pw"))
        outcome = await run_export(make_study(tmp_path / "s", 1), [wa])
    finally:
        await port.stopListening()
    assert outcome.failed == 1
    reason = outcome.instances[0].reason
    print(reason)
    assert "not issued by a trusted CA (self-signed certificate)" in reason
    assert "does not name this host" in reason and f"{host}')" in reason
    assert "allow-any-hostname=true" in reason and "disable-trust-manager=true" in reason
    assert "s3cret-pw" not in repr(outcome) and "alice" not in repr(outcome)
