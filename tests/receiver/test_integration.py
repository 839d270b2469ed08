"""stowrsd on real loopback sockets (port 0) with curl, dicomweb-client and TLS."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.threads import deferToThread
from twisted.internet.utils import getProcessOutputAndValue

from stowpair.dicom.response import parse_json
from stowpair.receiver.endpoints import listen_endpoint
from stowpair.receiver.service import ReceiverService
from stowpair.receiver.settings import ReceiverSettings
from tests.support.receiver import content_type, encode, make_dataset, multipart

CURL = shutil.which("curl")
needs_curl = pytest.mark.skipif(CURL is None, reason="curl is not installed (apt-get install curl)")


class Server:
    def __init__(self, tmp: Path, endpoint: Any = None, **settings: Any) -> None:
        self.directory = tmp / "store"
        self.endpoint = endpoint or TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1")
        self.service = ReceiverService(
            reactor, self.endpoint, ReceiverSettings(**settings), self.directory, fsync=False
        )

    async def __aenter__(self) -> Server:
        self.service.startService()
        port = await self.service.listening
        self.port = port.getHost().port
        return self

    async def __aexit__(self, *exc: object) -> None:
        await Deferred.fromCoroutine(_stop(self.service))

    def files(self) -> list[Path]:
        return sorted(self.directory.rglob("*.dcm"))


async def _stop(service: ReceiverService) -> None:
    d = service.stopService()
    if d is not None:
        await d


async def curl(*args: str) -> tuple[int, str, bytes]:
    """Run curl; return (exit status, response head, body)."""
    assert CURL is not None
    out, _err, code = await getProcessOutputAndValue(
        CURL, ("-sS", "-D", "-", *args), env={"PATH": "/usr/bin:/bin"}
    )
    head, _, body = out.partition(b"\r\n\r\n")
    while head.startswith(b"HTTP/1.1 100"):
        head, _, body = body.partition(b"\r\n\r\n")
    return code, head.decode("latin-1"), body


@needs_curl
@pytest_twisted.ensureDeferred
async def test_curl_chunked_quoted_boundary(tmp_path: Path) -> None:
    """When curl sends a chunked body with a quoted boundary and Expect, all are stored."""
    body = tmp_path / "body.bin"
    body.write_bytes(multipart([encode(make_dataset()) for _ in range(3)], boundary="b 1"))
    async with Server(tmp_path) as s:
        code, head, out = await curl(
            "-X",
            "POST",
            f"http://127.0.0.1:{s.port}/stowrs/studies",
            "-H",
            'Content-Type: multipart/related; type="application/dicom"; boundary="b 1"',
            "-H",
            "Transfer-Encoding: chunked",
            "-H",
            "Expect: 100-continue",
            "--data-binary",
            f"@{body}",
        )
        assert code == 0 and head.startswith("HTTP/1.1 200"), head
        assert len(parse_json(out).referenced) == 3 and len(s.files()) == 3


@needs_curl
@pytest_twisted.ensureDeferred
async def test_declared_too_large_refused_before_body(tmp_path: Path) -> None:
    """When Content-Length passes the limit, 413 comes before the body (no 100 Continue)."""
    body = tmp_path / "body.bin"
    body.write_bytes(multipart([encode(make_dataset())]))
    async with Server(tmp_path, max_request_size=1000) as s:
        _code, head, out = await curl(
            "-X",
            "POST",
            f"http://127.0.0.1:{s.port}/stowrs/studies",
            "-H",
            f"Content-Type: {content_type()}",
            "-H",
            "Expect: 100-continue",
            "--data-binary",
            f"@{body}",
        )
        assert head.startswith("HTTP/1.1 413"), head
        assert b"max-request-size" in out and s.files() == []


@needs_curl
@pytest_twisted.ensureDeferred
async def test_chunked_too_large_aborted(tmp_path: Path) -> None:
    """When an undeclared (chunked) body passes the limit, 413 is answered mid-body."""
    body = tmp_path / "body.bin"
    body.write_bytes(multipart([encode(make_dataset()) for _ in range(20)]))
    async with Server(tmp_path, max_request_size=100_000) as s:
        _code, head, _ = await curl(
            "-X",
            "POST",
            f"http://127.0.0.1:{s.port}/stowrs/studies",
            "-H",
            f"Content-Type: {content_type()}",
            "-H",
            "Transfer-Encoding: chunked",
            "--data-binary",
            f"@{body}",
        )
        assert head.startswith("HTTP/1.1 413"), head
        assert len(s.files()) < 20


@pytest_twisted.ensureDeferred
async def test_dicomweb_client_store_instances(tmp_path: Path) -> None:
    """When dicomweb-client's store_instances posts a study, it gets every instance back."""
    from dicomweb_client.api import DICOMwebClient

    study = make_dataset().StudyInstanceUID
    datasets = [make_dataset(study=study) for _ in range(3)]
    async with Server(tmp_path) as s:
        client = DICOMwebClient(url=f"http://127.0.0.1:{s.port}/stowrs")
        result = await deferToThread(client.store_instances, datasets, study)
        assert len(result.ReferencedSOPSequence) == 3
        assert "FailedSOPSequence" not in result
        assert len(s.files()) == 3


@needs_curl
@pytest.mark.parametrize(
    ("client_cert", "ok"), [(True, True), (False, False)], ids=["client-cert", "no-client-cert"]
)
@pytest_twisted.ensureDeferred
async def test_tls_with_client_certificates(tmp_path: Path, client_cert: bool, ok: bool) -> None:
    """When --tls-ca is given, only clients with a certificate from that CA get in."""
    import trustme

    ca = trustme.CA()
    server_cert = ca.issue_cert("127.0.0.1")
    server_cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    client = ca.issue_cert("client@example")
    client.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "client.pem"))
    endpoint = listen_endpoint(
        reactor,
        "127.0.0.1",
        0,
        {"tls-cert": str(tmp_path / "server.pem"), "tls-ca": str(tmp_path / "ca.pem")},
    )
    body = tmp_path / "body.bin"
    body.write_bytes(multipart([encode(make_dataset())]))
    async with Server(tmp_path, endpoint=endpoint) as s:
        extra = ["--cert", str(tmp_path / "client.pem")] if client_cert else []
        code, head, out = await curl(
            "--cacert",
            str(tmp_path / "ca.pem"),
            *extra,
            "-X",
            "POST",
            f"https://127.0.0.1:{s.port}/stowrs/studies",
            "-H",
            f"Content-Type: {content_type()}",
            "--data-binary",
            f"@{body}",
        )
        if ok:
            assert head.startswith("HTTP/1.1 200"), head
            assert parse_json(out).referenced[0].retrieve_url.startswith("https://")
        else:
            assert code != 0 and s.files() == []
