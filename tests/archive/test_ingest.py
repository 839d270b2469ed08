"""STOW-RS ingest into the archive over a real loopback socket (stowpair.archive.ingest)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pydicom
import pytest
import pytest_twisted
import treq
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.interfaces import IListeningPort
from twisted.internet.threads import deferToThreadPool
from twisted.logger import LogEvent, globalLogPublisher
from twisted.web.resource import Resource
from twisted.web.server import Site

from stowpair.api.dcm4chee import Dcm4cheeApi, Dcm4cheeArcResource
from stowpair.archive.backend import ArchiveStorage
from stowpair.archive.demo import generate_demo_study
from stowpair.archive.index import SQLiteIndex
from stowpair.archive.ingest import make_ingest_resource
from stowpair.archive.model import InstanceRecord
from stowpair.archive.store import read_header
from stowpair.config.model import Config, Device
from stowpair.receiver.request import StreamingRequest

BOUNDARY = "stowpair-test-boundary"


@dataclass
class Archive:
    base: str
    index: SQLiteIndex
    storage: Path
    backend: ArchiveStorage
    heard: list[tuple[InstanceRecord, Mapping[str, str]]] = field(default_factory=list)


def body(parts: list[tuple[bytes, str | None]]) -> bytes:
    out = b""
    for data, ts in parts:
        ctype = "application/dicom" + (f"; transfer-syntax={ts}" if ts else "")
        out += f"--{BOUNDARY}\r\nContent-Type: {ctype}\r\n\r\n".encode() + data + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


async def post(url: str, data: bytes) -> tuple[int, Any]:
    response = await treq.post(
        url,
        data=data,
        headers={
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={BOUNDARY}',
            "Accept": "application/dicom+json",
        },
        reactor=reactor,
    )
    content = await response.content()
    try:
        return response.code, json.loads(content) if content else None
    except ValueError:
        return response.code, content


@pytest_twisted.async_yield_fixture
async def ingest(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Archive]:
    """The ingest endpoint on a loopback port; ``request.param`` True turns fsync (and so
    the direct writes of large parts) on."""
    fsync = getattr(request, "param", False)
    index = SQLiteIndex(tmp_path / "index.sqlite", reactor)
    await index.opened
    pool = reactor.getThreadPool()

    def run_blocking(f: Any) -> Any:
        return deferToThreadPool(reactor, pool, f)

    backend = ArchiveStorage(tmp_path / "archive", index, reactor, run_blocking, fsync=fsync)
    backend.prepare()
    heard: list[tuple[InstanceRecord, Mapping[str, str]]] = []
    backend.add_listener(lambda record, attrs: heard.append((record, attrs)))
    # The service's own /dcm4chee-arc router: it checks the AE title and hands STOW-RS
    # POSTs under {AET}/rs to the ingest resource (export routes are not used here).
    api = Dcm4cheeApi(
        Config(device=Device(ae_titles=("STOWPAIR",))),
        cast(Any, None),
        ingest_resource_for=lambda aet: make_ingest_resource(aet, backend, reactor, run_blocking),
    )
    root = Resource()
    root.putChild(b"dcm4chee-arc", Dcm4cheeArcResource(api))
    site = Site(root)
    site.requestFactory = StreamingRequest
    port: IListeningPort = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(site)
    base = f"http://127.0.0.1:{port.getHost().port}/dcm4chee-arc/aets"
    yield Archive(base, index, tmp_path / "archive", backend, heard)
    await port.stopListening()
    await index.close()


@pytest_twisted.ensureDeferred
async def test_study_ingested_then_found_by_query(ingest: Archive, tmp_path: Path) -> None:
    """When a study is POSTed to the ingest endpoint, every instance is acknowledged,
    stored byte for byte, found by the query and announced to listeners."""
    files = generate_demo_study(tmp_path / "src", 3, 8, seed=11)
    study = read_header(files[0]).study_uid
    code, answer = await post(
        f"{ingest.base}/STOWPAIR/rs/studies/{study}", body([(f.read_bytes(), None) for f in files])
    )
    assert code == 200, answer
    assert len(answer["00081199"]["Value"]) == 3
    result = await ingest.index.query(study)
    assert {r.sop_instance_uid for r in result.instances} == {f.stem for f in files}
    assert result.missing == ()
    for r in result.instances:
        assert (
            r.path.read_bytes()
            == (tmp_path / "src" / study / r.series_uid / r.path.name).read_bytes()
        )
        assert r.source == "STOWPAIR" and r.modality == "CT"
    attrs = [a for _, a in ingest.heard]
    assert len(attrs) == 3
    assert attrs[0]["Modality"] == "CT"
    assert attrs[0]["SendingApplicationEntityTitle"] == "STOWPAIR"
    assert attrs[0]["StudyInstanceUID"] == study
    assert attrs[0]["PatientID"].startswith("DEMO")


@pytest.mark.parametrize("ingest", [True], indirect=True, ids=["fsync"])
@pytest_twisted.ensureDeferred
async def test_a_large_instance_is_ingested_exactly(
    ingest: Archive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 9 MB instance (written direct past its first 4 MiB, fsync on) and a small one in
    one request: both acknowledged, stored byte for byte and indexed."""
    import random

    from stowpair.receiver.direct_io import DirectWriter
    from tests.support.receiver import encode, make_dataset

    finished: list[DirectWriter] = []
    real_finish = DirectWriter.finish

    def finish(self: DirectWriter) -> Deferred[None]:
        finished.append(self)
        return real_finish(self)

    monkeypatch.setattr(DirectWriter, "finish", finish)

    large, small = make_dataset(), make_dataset()
    small.StudyInstanceUID = large.StudyInstanceUID
    large.PixelData = random.Random(9).randbytes(9 * 1024 * 1024)
    sent = {ds.SOPInstanceUID: encode(ds) for ds in (large, small)}
    code, answer = await post(
        f"{ingest.base}/STOWPAIR/rs/studies", body([(data, None) for data in sent.values()])
    )
    assert code == 200, answer
    result = await ingest.index.query(large.StudyInstanceUID)
    assert {r.sop_instance_uid: r.path.read_bytes() for r in result.instances} == sent
    assert len(finished) == 1  # the large part went direct
    assert ingest.backend.incoming.is_dir()
    assert [p for p in ingest.backend.incoming.glob("*.part") if p.stat().st_size] == []


@pytest_twisted.ensureDeferred
async def test_resend_identical_is_acknowledged_quietly(ingest: Archive, tmp_path: Path) -> None:
    """When the same instance is sent twice, both are acknowledged, the file is unchanged
    and listeners hear it once."""
    [f] = generate_demo_study(tmp_path / "src", 1, 8, seed=12)
    for _ in range(2):
        code, _ = await post(f"{ingest.base}/STOWPAIR/rs/studies", body([(f.read_bytes(), None)]))
        assert code == 200
    assert len(ingest.heard) == 1
    assert await ingest.index.count() == 1


@pytest_twisted.ensureDeferred
async def test_same_uid_other_content_fails_0111(ingest: Archive, tmp_path: Path) -> None:
    """When a stored SOP Instance UID arrives with other content, it fails with 0x0111 and
    the stored file is kept."""
    [f] = generate_demo_study(tmp_path / "src", 1, 8, seed=13)
    await post(f"{ingest.base}/STOWPAIR/rs/studies", body([(f.read_bytes(), None)]))
    ds = pydicom.dcmread(f)
    ds.PatientName = "CHANGED^NAME"
    changed = tmp_path / "changed.dcm"
    ds.save_as(changed)
    code, answer = await post(
        f"{ingest.base}/STOWPAIR/rs/studies", body([(changed.read_bytes(), None)])
    )
    assert code == 409
    failed = answer["00081198"]["Value"][0]
    assert failed["00081197"]["Value"] == [0x0111]
    [r] = (await ingest.index.query(ds.StudyInstanceUID)).instances
    assert r.path.read_bytes() == f.read_bytes()


@pytest_twisted.ensureDeferred
async def test_bare_dataset_is_stored_as_part10(ingest: Archive, tmp_path: Path) -> None:
    """When a part is a bare data set with a transfer-syntax parameter, the archive stores
    a Part 10 file that `stowpair import` can read back."""
    [f] = generate_demo_study(tmp_path / "src", 1, 8, seed=14)
    ds = pydicom.dcmread(f)
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, False
    write_dataset(buffer, ds)
    code, answer = await post(
        f"{ingest.base}/STOWPAIR/rs/studies",
        body([(buffer.getvalue(), "1.2.840.10008.1.2.1")]),
    )
    assert code == 200, answer
    [r] = (await ingest.index.query(ds.StudyInstanceUID)).instances
    assert read_header(r.path).sop_instance_uid == ds.SOPInstanceUID
    assert pydicom.dcmread(r.path).PixelData == ds.PixelData


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("NOBODY/rs/studies", "No such Application Entity: NOBODY"),
        ("STOWPAIR/other", "No such resource"),
    ],
    ids=["unknown-ae", "not-rs"],
)
@pytest_twisted.ensureDeferred
async def test_unknown_paths_404_json(ingest: Archive, path: str, message: str) -> None:
    """When the AE title is unknown or the path is not an ingest path, the answer is 404
    with a JSON errorMessage, dcm4chee style."""
    code, answer = await post(f"{ingest.base}/{path}", body([]))
    assert code == 404
    assert message in answer["errorMessage"]


@pytest_twisted.ensureDeferred
async def test_ack_waits_for_listeners(ingest: Archive, tmp_path: Path) -> None:
    """When a listener returns a Deferred, the response waits for it; a failing listener
    is logged and the instance is still acknowledged."""
    gate: Deferred[None] = Deferred()
    called: Deferred[None] = Deferred()

    def slow(record: InstanceRecord, attrs: Mapping[str, str]) -> Deferred[None]:
        called.callback(None)
        return gate

    def broken(record: InstanceRecord, attrs: Mapping[str, str]) -> None:
        raise RuntimeError("rule engine bug")

    ingest.backend.add_listener(slow)
    ingest.backend.add_listener(broken)
    [f] = generate_demo_study(tmp_path / "src", 1, 8, seed=15)
    events: list[LogEvent] = []
    globalLogPublisher.addObserver(events.append)
    try:
        answer = Deferred.fromCoroutine(
            post(f"{ingest.base}/STOWPAIR/rs/studies", body([(f.read_bytes(), None)]))
        )
        await called
        assert not answer.called
        gate.callback(None)
        code, _ = await answer
    finally:
        globalLogPublisher.removeObserver(events.append)
    assert code == 200
    failed = [e for e in events if e.get("event") == "archive.listener.failed"]
    assert len(failed) == 1 and "rule engine bug" in str(failed[0]["log_failure"].value)
