"""DICOM interop: dcmtk and Orthanc storing into the archive's C-STORE SCP, and the
``dicom:`` exporter sending to dcmtk ``storescp`` and to Orthanc's DICOM port.

The archive runs in-process (``StowpairService``) with its SCP on a free loopback port;
blocking peers (storescu) run in threads so the reactor keeps serving the SCP.
"""

from __future__ import annotations

import json
import subprocess
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
import pytest_twisted
import treq
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
)
from twisted.internet import reactor as _reactor
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread

from stowpair.queue.model import TaskFilter
from stowpair.service import StowpairService
from tests.dimse.helpers import dataset_bytes, start_service, until
from tests.interop.conftest import peers_installed
from tests.interop.verify import assert_same_pixels, stored_files
from tests.support import peers
from tests.support.peers import OrthancServer, Peer

pytestmark = pytest.mark.interop
reactor: Any = _reactor
FINAL = {"COMPLETED", "WARNING", "FAILED", "CANCELED"}

#: storescu's option proposing each syntax (dcmtk 3.6.7); uncompressed ones need none
#: except Implicit (-xi: else dcmtk converts to Explicit) and Deflated.
STORESCU_OPTION = {
    ImplicitVRLittleEndian: ["-xi"],
    ExplicitVRBigEndian: ["-xb"],
    DeflatedExplicitVRLittleEndian: ["-xd"],
    RLELossless: ["-xr"],
    JPEG2000Lossless: ["-xv"],
    JPEGLosslessSV1: ["-xs"],
    JPEGLSLossless: ["-xt"],
}

SETUP = """
[webapps.stowrsd]
url = "http://127.0.0.1:{stowrsd}/dicom-web"
[exporters.FromModality]
uri = "stow:stowrsd"
queue = "Export1"
[queues.Export1]
max_retries = 0
[[rules]]
name = "forward what the modality sends"
entity = "Study"
exporters = ["FromModality"]
conditions = ["SendingApplicationEntityTitle=STORESCU|ORTHANC"]
delay = "PT1S"
[remote_aes.STORESCP]
host = "127.0.0.1"
port = {storescp}
[remote_aes.IMPLICIT]
host = "127.0.0.1"
port = {implicit}
[remote_aes.ORTHANC]
host = "127.0.0.1"
port = {orthanc_dicom}
[exporters.ToStorescp]
uri = "dicom:STORESCP"
queue = "Export1"
[exporters.ToImplicit]
uri = "dicom:IMPLICIT"
queue = "Export1"
[exporters.ToOrthanc]
uri = "dicom:ORTHANC"
queue = "Export1"
"""


def by_syntax(files: dict[str, Path]) -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = defaultdict(list)
    for path in files.values():
        out[str(pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID)].append(
            path
        )
    return out


def storescp(folder: Path, port: int, *options: str) -> Peer:
    with peers_installed():
        binary = peers.require("storescp", "dcmtk")
    folder.mkdir(parents=True, exist_ok=True)
    log = (folder / "storescp.log").open("wb")
    process = subprocess.Popen(
        [binary, "-aet", folder.name.upper(), "-od", str(folder), *options, str(port)],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    log.close()
    peers.wait_port(port)
    return Peer("storescp", process, port, folder, folder / "storescp.log")


@pytest.fixture(scope="module")
def orthanc_dicom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peer]:
    """Orthanc with its DICOM server on (AE ORTHANC, ``dicom_port``); the ``archive``
    fixture declares stowpair as its modality ``stowpair``."""
    dicom_port = peers.free_port()
    settings = OrthancServer(
        extra={"DicomServerEnabled": True, "DicomPort": dicom_port, "DicomAet": "ORTHANC"}
    )
    with peers_installed():
        peer = peers.start_orthanc(tmp_path_factory.mktemp("orthanc-dicom"), settings)
    peer.dicom_port = dicom_port  # type: ignore[attr-defined]
    yield peer
    peer.stop()


@pytest.fixture(scope="module")
def scps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Peer]]:
    """dcmtk storescp accepting every syntax it knows (bit-preserving), and one accepting
    only Implicit VR Little Endian."""
    root = tmp_path_factory.mktemp("scps")
    started = {
        "storescp": storescp(root / "storescp", peers.free_port(), "+xa", "+B"),
        "implicit": storescp(root / "implicit", peers.free_port(), "+xi"),
    }
    yield started
    for peer in started.values():
        peer.stop()


@pytest_twisted.async_yield_fixture(scope="module")
async def archive(
    tmp_path_factory: pytest.TempPathFactory,
    stowrsd: Peer,
    scps: dict[str, Peer],
    orthanc_dicom: Peer,
) -> AsyncIterator[StowpairService]:
    extra = SETUP.format(
        stowrsd=stowrsd.port,
        storescp=scps["storescp"].port,
        implicit=scps["implicit"].port,
        orthanc_dicom=orthanc_dicom.dicom_port,  # type: ignore[attr-defined]
    )
    service = await start_service(tmp_path_factory.mktemp("archive"), "", extra)
    assert service.dimse is not None and service.dimse.port is not None
    body = json.dumps({"AET": "STOWPAIR", "Host": "127.0.0.1", "Port": service.dimse.port})
    peers.orthanc_call(orthanc_dicom, "PUT", "/modalities/stowpair", body.encode())
    yield service
    await service.stopService()


def archived(service: StowpairService) -> dict[str, Path]:
    storage = service.config.archive.storage
    return {p.stem: p for p in storage.rglob("*.dcm") if ".incoming" not in p.parts}


async def storescu(service: StowpairService, files: list[Path], *options: str) -> str:
    assert service.dimse is not None
    with peers_installed():
        binary = peers.require("storescu", "dcmtk")
    argv = [binary, "-aet", "STORESCU", "-aec", "STOWPAIR", *options, "127.0.0.1",
            str(service.dimse.port), *map(str, files)]  # fmt: skip
    done = await deferToThread(subprocess.run, argv, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return str(done.stdout + done.stderr)


async def wait_task(service: StowpairService, exporter: str, study: str) -> Any:
    found: list[Any] = []

    def finished() -> bool:
        d = service.tasks.find(TaskFilter(exporter_ids=(exporter,), study_uid=study))
        d.addCallback(lambda tasks: found.__setitem__(slice(None), tasks))
        return bool(found) and all(str(t.status) in FINAL for t in found)

    await until(finished, 120)
    return found[0]


@pytest_twisted.ensureDeferred
async def test_storescu_folder_in_several_syntaxes(
    archive: StowpairService, mixed_study: dict[str, Path], stowrsd: Peer
) -> None:
    """When dcmtk storescu sends a study in several transfer syntaxes, every instance is
    acknowledged and stored with its data set byte for byte, the export rule matching the
    sending AE fires, and the study reaches stowrsd by STOW-RS."""
    for syntax, files in by_syntax(mixed_study).items():
        await storescu(archive, files, *STORESCU_OPTION.get(syntax, []))
    stored = archived(archive)
    assert set(mixed_study) <= set(stored)
    for sop, path in mixed_study.items():
        assert dataset_bytes(stored[sop]) == dataset_bytes(path), path
    study = str(pydicom.dcmread(next(iter(mixed_study.values()))).StudyInstanceUID)
    task = await wait_task(archive, "FromModality", study)
    assert str(task.status) == "COMPLETED", task
    received = stored_files(stowrsd.workdir / "store")
    assert all(received[sop] == stored[sop].read_bytes() for sop in mixed_study)


@pytest_twisted.ensureDeferred
async def test_orthanc_as_store_scu(
    archive: StowpairService, orthanc_dicom: Peer, tmp_path: Path
) -> None:
    """When Orthanc sends a study to the archive (POST /modalities/{id}/store), every
    instance is stored with its data set unchanged and the calling AE ORTHANC recorded."""
    from stowpair.archive.demo import generate_demo_study

    files = generate_demo_study(tmp_path / "src", 5, 16, 31, (RLELossless, ImplicitVRLittleEndian))
    ids = []
    for path in files:
        answer = peers.orthanc_call(
            orthanc_dicom, "POST", "/instances", path.read_bytes(), "application/dicom"
        )
        ids.append(answer["ID"])
    result = await deferToThread(
        peers.orthanc_call, orthanc_dicom, "POST", "/modalities/stowpair/store",
        json.dumps({"Resources": ids, "Synchronous": True}).encode(),
    )  # fmt: skip
    assert int(result["InstancesCount"]) == len(files), result
    stored = archived(archive)
    for path in files:
        sop = str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)
        assert dataset_bytes(stored[sop]) == dataset_bytes(path)
    study = str(pydicom.dcmread(files[0]).StudyInstanceUID)
    query = await archive.index.query(study)
    assert {r.source for r in query.instances} == {"ORTHANC"}


async def export(service: StowpairService, exporter: str, study: str) -> dict[str, Any]:
    """Queue an export over REST, as users do; the task as /monitor/export shows it once
    final."""
    assert service.rest_port is not None
    base = f"http://127.0.0.1:{service.rest_port.getHost().port}/dcm4chee-arc"
    response = await treq.post(
        f"{base}/aets/STOWPAIR/rs/studies/{study}/export/{exporter}", reactor=reactor
    )
    queued = json.loads(await response.content())
    assert response.code == 202, queued
    for _ in range(2400):
        response = await treq.get(
            f"{base}/monitor/export?taskID={queued['taskID']}", reactor=reactor
        )
        (task,) = json.loads(await response.content())
        if task["status"] in FINAL:
            return dict(task)
        await deferLater(reactor, 0.05, lambda: None)
    raise AssertionError(f"task still {task['status']} after 120 s: {task}")


async def stored_study(archive: StowpairService, files: list[Path]) -> str:
    """Store ``files`` into the archive with storescu (as stored); their Study UID."""
    for syntax, group in by_syntax({str(i): f for i, f in enumerate(files)}).items():
        await storescu(archive, group, *STORESCU_OPTION.get(syntax, []))
    return str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)


def received(folder: Path) -> dict[str, bytes]:
    """What a storescp wrote: SOP Instance UID → file bytes."""
    out = {}
    for path in folder.iterdir():
        if path.suffix != ".log" and path.is_file():
            out[str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)] = (
                path.read_bytes()
            )
    return out


@pytest_twisted.ensureDeferred
async def test_dicom_exporter_to_storescp(
    archive: StowpairService, scps: dict[str, Peer], tmp_path: Path
) -> None:
    """When a study in several syntaxes is exported with dicom: to dcmtk storescp (all
    syntaxes accepted, bit-preserving), the task completes with the STOW exporter's message
    and every instance arrives as stored: same data set bytes."""
    from stowpair.archive.demo import generate_demo_study, mix_syntaxes

    files = generate_demo_study(tmp_path / "src", 12, 16, 41, mix_syntaxes())
    study = await stored_study(archive, files)
    task = await export(archive, "ToStorescp", study)
    assert task["status"] == "COMPLETED", task
    assert task["outcomeMessage"] == f"Export Study[uid={study}] to STORESCP - completed:12"
    got = received(scps["storescp"].workdir)
    for path in files:
        sop = str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)
        assert dataset_bytes(got[sop]) == dataset_bytes(path), path


@pytest_twisted.ensureDeferred
async def test_dicom_exporter_to_implicit_only_storescp(
    archive: StowpairService, scps: dict[str, Peer], tmp_path: Path
) -> None:
    """When the destination accepts only Implicit VR Little Endian, every instance
    (compressed ones decompressed) arrives in Implicit VR LE with the original pixels."""
    from stowpair.archive.demo import generate_demo_study, mix_syntaxes

    files = generate_demo_study(tmp_path / "src", 12, 16, 42, mix_syntaxes())
    study = await stored_study(archive, files)
    task = await export(archive, "ToImplicit", study)
    assert task["status"] == "COMPLETED", task
    sent = {str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID): p for p in files}
    assert_same_pixels(sent, received(scps["implicit"].workdir), ImplicitVRLittleEndian)


@pytest_twisted.ensureDeferred
async def test_dicom_exporter_to_orthanc(
    archive: StowpairService, orthanc_dicom: Peer, mixed_study: dict[str, Path]
) -> None:
    """When the mixed study (dcmtk-made JPEG syntaxes included) is exported with dicom: to
    Orthanc's DICOM port, Orthanc holds every instance with the original pixels."""
    peers.orthanc_clear(orthanc_dicom)
    study = str(pydicom.dcmread(next(iter(mixed_study.values()))).StudyInstanceUID)
    if not (await archive.index.query(study)).instances:
        await stored_study(archive, list(mixed_study.values()))
    task = await export(archive, "ToOrthanc", study)
    assert task["status"] == "COMPLETED", task
    assert_same_pixels(mixed_study, peers.orthanc_files(orthanc_dicom), ts=None)
