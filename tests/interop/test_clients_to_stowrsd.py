"""Interop matrix, cell groups 2-4: other STOW-RS clients → ``twistd -n stowrsd``.

Orthanc's DICOMweb client (chunked and ``"ChunkedTransfers": false``), the
``dicomweb-client`` Python package, and a request written the way dcm4che's ``stowrs``
writes it. Each cell reads the files stowrsd stored (UID layout) and compares them with
what was sent: byte for byte, or pixel for pixel where the client re-encodes.
"""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import pytest
from dicomweb_client.api import DICOMwebClient
from pydicom import dcmread

from stowpair.dicom.response import parse_xml
from tests.interop.verify import assert_same_bytes, assert_same_pixels, stored_files
from tests.support import peers
from tests.support.peers import Peer

pytestmark = pytest.mark.interop


@pytest.fixture
def store(stowrsd: Peer) -> Path:
    """stowrsd's storage folder, emptied of earlier cells' studies."""
    folder = stowrsd.workdir / "store"
    for child in folder.iterdir():
        if child.is_dir() and child.name != ".incoming":
            shutil.rmtree(child)
    return folder


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
def test_orthanc_client(
    fresh_orthanc: Peer, stowrsd: Peer, store: Path, mixed_study: dict[str, Path], chunked: bool
) -> None:
    """When Orthanc's DICOMweb client stows a study to stowrsd, Orthanc reports success
    and stowrsd holds every file byte for byte."""
    server: dict[str, object] = {"Url": f"http://127.0.0.1:{stowrsd.port}/dicom-web/"}
    if not chunked:
        server["ChunkedTransfers"] = False
    peers.orthanc_add_server(fresh_orthanc, "stowrsd", server)
    for path in mixed_study.values():
        peers.orthanc_call(
            fresh_orthanc, "POST", "/instances", path.read_bytes(), "application/dicom"
        )
    (study,) = peers.orthanc_call(fresh_orthanc, "GET", "/studies")
    job = {"Resources": [study], "Synchronous": True}
    try:
        answer = peers.orthanc_call(
            fresh_orthanc, "POST", "/dicom-web/servers/stowrsd/stow", json.dumps(job).encode()
        )
    except OSError as e:
        raise AssertionError(f"{e}\n{fresh_orthanc.log_tail()}\n{stowrsd.log_tail()}") from None
    assert int(answer["InstancesCount"]) == len(mixed_study)
    assert_same_bytes(mixed_study, stored_files(store))


def test_dicomweb_client(stowrsd: Peer, store: Path, mixed_study: dict[str, Path]) -> None:
    """When dicomweb-client stores the study's data sets, stowrsd acknowledges each one and
    stores it with the same UIDs and pixels (the client re-encodes the data sets)."""
    client = DICOMwebClient(url=f"http://127.0.0.1:{stowrsd.port}/dicom-web")
    answer = client.store_instances([dcmread(p) for p in mixed_study.values()])
    acknowledged = {item.ReferencedSOPInstanceUID for item in answer.ReferencedSOPSequence}
    assert acknowledged == set(mixed_study)
    assert "FailedSOPSequence" not in answer or not answer.FailedSOPSequence
    assert_same_pixels(mixed_study, stored_files(store), ts=None)


BOUNDARY = b"myboundary"


def dcm4che_request(port: int, files: list[Path]) -> bytes:
    """A request as dcm4che ``stowrs`` writes it for DICOM files (fixed boundary, CRLF
    before each delimiter, whole Part 10 files, Content-Length, keep-alive, XML wanted)."""
    body = b"".join(
        b"\r\n--" + BOUNDARY + b"\r\nContent-Type: application/dicom\r\n\r\n" + p.read_bytes()
        for p in files
    )
    body += b"\r\n--" + BOUNDARY + b"--\r\n"
    head = (
        f"POST /dicom-web/studies HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\n"
        f'Content-Type: multipart/related;type="application/dicom";boundary=myboundary\r\n'
        f"Accept: application/dicom+xml\r\n"
        f"Connection: keep-alive\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


def read_response(sock: socket.socket, buffered: bytes = b"") -> tuple[bytes, bytes, bytes]:
    """(status line + headers, body, what follows) of one HTTP/1.1 response."""
    data = buffered
    while b"\r\n\r\n" not in data:
        data += recv(sock)
    head, _, data = data.partition(b"\r\n\r\n")
    fields = dict(line.split(b":", 1) for line in head.split(b"\r\n")[1:])  # header names as sent
    lowered = {k.strip().lower(): v.strip() for k, v in fields.items()}
    if lowered.get(b"transfer-encoding") == b"chunked":
        body = b""
        while True:
            while b"\r\n" not in data:
                data += recv(sock)
            size_line, _, data = data.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            while len(data) < size + 2:
                data += recv(sock)
            body, data = body + data[:size], data[size + 2 :]
            if size == 0:
                return head, body, data
    length = int(lowered[b"content-length"])
    while len(data) < length:
        data += recv(sock)
    return head, data[:length], data[length:]


def recv(sock: socket.socket) -> bytes:
    chunk = sock.recv(65536)
    if not chunk:
        raise AssertionError("stowrsd closed the connection in the middle of a response")
    return chunk


def test_dcm4che_style_request(stowrsd: Peer, store: Path, mixed_study: dict[str, Path]) -> None:
    """When two dcm4che-style requests come on one keep-alive connection, stowrsd answers
    each in XML listing its instances and stores every file byte for byte."""
    files = list(mixed_study.values())
    halves = [files[: len(files) // 2], files[len(files) // 2 :]]
    with socket.create_connection(("127.0.0.1", stowrsd.port), timeout=30) as sock:
        left = b""
        for half in halves:
            sock.sendall(dcm4che_request(stowrsd.port, half))
            head, body, left = read_response(sock, left)
            assert head.startswith(b"HTTP/1.1 200 "), head
            assert b"application/dicom+xml" in head.lower()
            answer = parse_xml(body)
            assert [r.sop_instance_uid for r in answer.referenced] == [
                uid for uid, p in mixed_study.items() if p in half
            ]
            assert not answer.failed
    assert_same_bytes(mixed_study, stored_files(store))
