"""The archive's C-STORE SCP on a loopback port, driven by a pynetdicom SCU in a thread."""

from __future__ import annotations

import errno
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
import pytest_twisted
from pydicom.uid import ExplicitVRLittleEndian
from twisted.internet.defer import fail
from twisted.internet.threads import deferToThread

from stowpair.archive.backend import ArchiveStorage
from stowpair.archive.demo import generate_demo_study, mix_syntaxes
from stowpair.db.errors import DatabaseUnavailable
from stowpair.queue.model import TaskFilter
from stowpair.service import StowpairService
from tests.dimse.helpers import Sent, c_echo, c_store, dataset_bytes, start_service

RULE = """
[webapps.dest]
url = "http://127.0.0.1:9/stowrs"
[exporters.FromModality]
uri = "stow:dest"
queue = "Export1"
[queues.Export1]
[[rules]]
name = "from the modality"
entity = "Study"
exporters = ["FromModality"]
conditions = ["SendingApplicationEntityTitle=MODALITY"]
delay = "PT1H"
"""


@pytest_twisted.async_yield_fixture
async def service(tmp_path: Path) -> AsyncIterator[StowpairService]:
    svc = await start_service(
        tmp_path / "svc", 'accepted_calling_aets = ["MODALITY", "OTHER"]', RULE
    )
    yield svc
    await svc.stopService()


def port(service: StowpairService) -> int:
    assert service.dimse is not None and service.dimse.port is not None
    return service.dimse.port


async def send(service: StowpairService, files: list[Path], calling: str = "MODALITY") -> Sent:
    result: Sent = await deferToThread(c_store, port(service), files, calling)
    return result


def archived(service: StowpairService) -> dict[str, Path]:
    storage = service.config.archive.storage
    return {p.stem: p for p in storage.rglob("*.dcm") if ".incoming" not in p.parts}


def sop(path: Path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)


@pytest_twisted.ensureDeferred
async def test_echo(service: StowpairService) -> None:
    """When a peer sends C-ECHO, it gets Success."""
    assert await deferToThread(c_echo, port(service)) == 0x0000


@pytest_twisted.ensureDeferred
async def test_store_keeps_data_sets_byte_for_byte(
    service: StowpairService, tmp_path: Path
) -> None:
    """When instances in several transfer syntaxes are sent, each is acknowledged with
    0x0000 and stored with the data set exactly as sent."""
    files = generate_demo_study(tmp_path / "src", 12, 8, 1, mix_syntaxes())
    sent = await send(service, files)
    assert sent.statuses == [0x0000] * len(files)
    stored = archived(service)
    assert sorted(stored) == sorted(sop(f) for f in files)
    for f in files:
        assert dataset_bytes(stored[sop(f)]) == dataset_bytes(f)


@pytest_twisted.ensureDeferred
async def test_store_records_calling_ae_and_fires_rules(
    service: StowpairService, tmp_path: Path
) -> None:
    """When MODALITY stores a study, the index records MODALITY as its source and the rule
    conditioned on SendingApplicationEntityTitle=MODALITY creates a task; OTHER's does not."""
    mine = generate_demo_study(tmp_path / "a", 2, 4, 1, study_no=1)
    theirs = generate_demo_study(tmp_path / "b", 2, 4, 1, study_no=2)
    assert (await send(service, mine)).statuses == [0, 0]
    assert (await send(service, theirs, calling="OTHER")).statuses == [0, 0]
    study = pydicom.dcmread(mine[0]).StudyInstanceUID
    query = await service.index.query(study)
    assert {r.source for r in query.instances} == {"MODALITY"}
    tasks = await service.tasks.find(TaskFilter())
    assert [(t.exporter_id, t.study_uid) for t in tasks] == [("FromModality", study)]


@pytest_twisted.ensureDeferred
async def test_duplicates(service: StowpairService, tmp_path: Path) -> None:
    """When an identical instance comes again it is acknowledged again; when the same SOP
    Instance UID comes with other content it fails with 0x0111 and the first is kept."""
    first = generate_demo_study(tmp_path / "a", 1, 4, 1)[0]
    other = tmp_path / "other.dcm"
    ds = pydicom.dcmread(first)
    ds.PatientName = "Someone^Else"
    ds.save_as(other, enforce_file_format=True)
    sent = await send(service, [first, first, other])
    assert sent.statuses == [0x0000, 0x0000, 0x0111]
    assert dataset_bytes(archived(service)[sop(first)]) == dataset_bytes(first)


def _rewrite(src: Path, dest: Path, **changes: Any) -> Path:
    ds = pydicom.dcmread(src)
    for keyword, value in changes.items():
        setattr(ds, keyword, value)
    ds.save_as(dest, enforce_file_format=True)
    return dest


@pytest_twisted.ensureDeferred
async def test_data_set_not_of_the_context_sop_class(
    service: StowpairService, tmp_path: Path
) -> None:
    """When the data set's SOP Class differs from the presentation context's, the C-STORE
    fails with 0xA900 and nothing is stored."""
    src = generate_demo_study(tmp_path / "a", 1, 4, 1)[0]
    wrong = tmp_path / "mr.dcm"
    ds = pydicom.dcmread(src)
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.4"  # MR in the data set ...
    # ... while the File Meta (from which the SCU picks the context) still says CT
    ds.save_as(wrong, enforce_file_format=False)
    assert (
        pydicom.dcmread(wrong).file_meta.MediaStorageSOPClassUID
        == ds.file_meta["MediaStorageSOPClassUID"].value
        == "1.2.840.10008.5.1.4.1.1.2"
    )
    sent = await send(service, [wrong])
    assert sent.statuses == [0xA900]
    assert archived(service) == {}


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")
@pytest_twisted.ensureDeferred
async def test_invalid_uid(service: StowpairService, tmp_path: Path) -> None:
    """When the data set's Study Instance UID is not a valid UID, the C-STORE fails with
    0xA900 and nothing is stored."""
    src = generate_demo_study(tmp_path / "a", 1, 4, 1)[0]
    bad = _rewrite(src, tmp_path / "bad.dcm", StudyInstanceUID="1.2.03.4")
    assert (await send(service, [bad])).statuses == [0xA900]
    assert archived(service) == {}


@pytest_twisted.ensureDeferred
async def test_unreadable_data_set(service: StowpairService, tmp_path: Path) -> None:
    """When the data set is not readable DICOM, the C-STORE fails with 0xC000."""
    src = generate_demo_study(tmp_path / "a", 1, 4, 1)[0]
    raw = src.read_bytes()
    start = 144 + int.from_bytes(raw[140:144], "little")
    garbage = tmp_path / "garbage.dcm"
    garbage.write_bytes(raw[:start] + b"\xff\xff\x01\x00XXnot DICOM at all" * 10)
    assert (await send(service, [garbage])).statuses == [0xC000]
    assert archived(service) == {}


@pytest_twisted.ensureDeferred
async def test_out_of_space_answers_a700(
    service: StowpairService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the archive cannot place the file for lack of space, the C-STORE fails with
    0xA700 (Out of Resources) and the temp file is removed."""

    def full(*args: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ArchiveStorage, "_place", full)
    src = generate_demo_study(tmp_path / "a", 1, 4, 1)[0]
    assert (await send(service, [src])).statuses == [0xA700]
    assert list(service.archive.incoming.glob("*dimse*")) == []


@pytest_twisted.ensureDeferred
async def test_unreachable_index_answers_a700_then_the_resend_stores(
    service: StowpairService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the index's database cannot be reached, the C-STORE fails with 0xA700 (Out
    of Resources: send again later); sent again once it is back, it is stored, indexed
    and the export rules create the task."""
    real_add = service.index.add
    monkeypatch.setattr(
        service.index, "add", lambda records: fail(DatabaseUnavailable("connection refused"))
    )
    src = generate_demo_study(tmp_path / "a", 1, 4, 1)[0]
    assert (await send(service, [src])).statuses == [0xA700]
    monkeypatch.setattr(service.index, "add", real_add)
    assert (await send(service, [src])).statuses == [0x0000]
    assert await service.index.get(sop(src)) is not None
    assert len(await service.tasks.find(TaskFilter())) == 1


@pytest_twisted.ensureDeferred
async def test_calling_ae_not_accepted(service: StowpairService) -> None:
    """When the calling AE title is not in accepted_calling_aets, the association is
    rejected (calling AE title not recognised)."""
    sent = await deferToThread(c_store, port(service), [], "INTRUDER")
    assert not sent.established
    assert "Calling AE title not recognised" in sent.rejection


@pytest_twisted.ensureDeferred
async def test_called_ae_must_be_ours(service: StowpairService) -> None:
    """When the called AE title is not the SCP's, the association is rejected."""
    sent = await deferToThread(c_store, port(service), [], "MODALITY", "SOMEONE")
    assert not sent.established
    assert "Called AE title not recognised" in sent.rejection


def test_explicit_le_is_among_accepted_syntaxes() -> None:
    """The SCP accepts compressed syntaxes before native ones, Explicit VR LE included."""
    from stowpair.dimse.contexts import scp_transfer_syntaxes

    syntaxes = scp_transfer_syntaxes()
    assert ExplicitVRLittleEndian in syntaxes
    assert syntaxes.index("1.2.840.10008.1.2.4.70") < syntaxes.index(ExplicitVRLittleEndian)
