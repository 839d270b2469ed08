"""stowpair exporter → Orthanc (Debian orthanc + orthanc-dicomweb), verified at the peer."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
import trustme
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid
from twisted.internet import reactor as _reactor

from stowpair.archive.model import InstanceRecord
from stowpair.dicom.transcode import Transcoder
from stowpair.exporter.outcome import Cancellation, ExportRequest, Outcome, TaskStatus
from stowpair.exporter.stow import StowExporter
from tests.exporter.support import FakeIndex, exporter_for, webapp
from tests.interop.orthanc import Orthanc, SocatTLSFront, orthanc, skip_unless_peers

__all__ = ["orthanc"]
pytestmark = pytest.mark.interop
reactor: Any = _reactor
EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"
SAMPLES = {
    "CT_small.dcm": False,  # Explicit VR Little Endian
    "MR_small_RLE.dcm": True,
    "JPEG2000.dcm": True,
    "SC_rgb_jpeg_dcmtk.dcm": True,
}


def study(folder: Path, compressed: bool | None = None) -> list[InstanceRecord]:
    """pydicom's sample files rewritten into one fresh study, transfer syntaxes kept."""
    uid, series = generate_uid(), generate_uid()
    folder.mkdir(parents=True, exist_ok=True)
    records = []
    for name, is_compressed in SAMPLES.items():
        if compressed is not None and is_compressed != compressed:
            continue
        ds = dcmread(get_testdata_file(name))
        ds.StudyInstanceUID, ds.SeriesInstanceUID = uid, series
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        path = folder / name
        ds.save_as(path)
        records.append(
            InstanceRecord(
                uid, series, ds.SOPInstanceUID, ds.SOPClassUID,
                str(ds.file_meta.TransferSyntaxUID), path, path.stat().st_size,
            )
        )  # fmt: skip
    return records


async def export(records: list[InstanceRecord], url: str, tmp: Path, **props: Any) -> Outcome:
    wa = webapp(url, **props)
    transcoder = Transcoder(reactor, 2, use_processes=False)
    transcoder.start()
    exp = StowExporter(reactor, FakeIndex(records), {wa.name: wa}, transcoder, tmp)
    try:
        request = ExportRequest(exporter_for(), records[0].study_uid)
        return await exp.export(request, Cancellation())
    finally:
        await exp.close()
        await transcoder.stop()


@pytest.fixture
def peer(orthanc: Orthanc) -> Generator[Orthanc, None, None]:
    orthanc.clear()
    yield orthanc


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest_twisted.ensureDeferred
async def test_as_stored(tmp_path: Path, peer: Orthanc, chunked: bool) -> None:
    """When exported as stored, Orthanc holds every instance byte for byte."""
    records = study(tmp_path / "s")
    outcome = await export(records, peer.stow_url, tmp_path, chunked=chunked, concurrency=2)
    assert outcome.status is TaskStatus.COMPLETED, [(i.status, i.reason) for i in outcome.instances]
    stored = peer.instances()
    assert {r.sop_instance_uid: r.path.read_bytes() for r in records} == stored


@pytest_twisted.ensureDeferred
async def test_batched(tmp_path: Path, peer: Orthanc) -> None:
    """When instances are batched 4 per request, Orthanc acknowledges each of them."""
    records = study(tmp_path / "s")
    outcome = await export(records, peer.stow_url, tmp_path, max_instances_per_request=4)
    assert outcome.completed == len(records)
    assert set(peer.instances()) == {r.sop_instance_uid for r in records}


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest_twisted.ensureDeferred
async def test_explicit_vr_le(tmp_path: Path, peer: Orthanc, chunked: bool) -> None:
    """When transfer-syntax=ExplicitVRLittleEndian, Orthanc receives only Explicit VR LE."""
    records = study(tmp_path / "s")
    outcome = await export(
        records, peer.stow_url, tmp_path, chunked=chunked, transfer_syntax=(EXPLICIT_VR_LE,)
    )
    assert outcome.status is TaskStatus.COMPLETED, [(i.status, i.reason) for i in outcome.instances]
    for oid in peer.get("/instances"):
        meta = peer.get(f"/instances/{oid}/metadata?expand")
        assert meta["TransferSyntax"] == EXPLICIT_VR_LE
    assert not list(tmp_path.glob("stowpair-*.dcm")), "temp files left behind"


@pytest.mark.parametrize(
    ("mode", "ok"),
    [("default", False), ("allow-any-hostname", True), ("disable-trust-manager", True)],
)
@pytest_twisted.ensureDeferred
async def test_tls_through_socat(tmp_path: Path, peer: Orthanc, mode: str, ok: bool) -> None:
    """When Orthanc sits behind TLS for other.example, each TLS property behaves as in §3b."""
    skip_unless_peers("socat")
    ca = trustme.CA()
    pem = tmp_path / "server.pem"
    ca.issue_cert("other.example").private_key_and_cert_chain_pem.write_to_path(str(pem))
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    front = SocatTLSFront(pem, peer.port)
    try:
        props: dict[str, Any] = {"ca_file": ca_file}
        if mode != "default":
            props[mode.replace("-", "_")] = True
        url = f"https://127.0.0.1:{front.port}/dicom-web"
        outcome = await export(study(tmp_path / "s", compressed=False), url, tmp_path, **props)
    finally:
        front.stop()
    assert (outcome.completed == 1) is ok, outcome.instances[0].reason
    if not ok:
        assert "hostname mismatch" in outcome.instances[0].reason
