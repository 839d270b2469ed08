"""The ``dicom:`` exporter (C-STORE SCU) against pynetdicom destinations on loopback."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pydicom
import pytest
import pytest_twisted
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, RLELossless
from twisted.internet.threads import deferToThread

from stowpair.archive.demo import generate_demo_study
from stowpair.config.model import Exporter
from stowpair.exporter.outcome import (
    Cancellation,
    ExportError,
    ExportRequest,
    InstanceStatus,
    Outcome,
    TaskStatus,
)
from stowpair.service import StowpairService
from tests.dimse.helpers import Destination, c_store, dataset_bytes, start_service

REMOTES = """
[remote_aes.DEST]
host = "127.0.0.1"
port = {port}
response_timeout = "PT20S"
[remote_aes.DOWN]
host = "127.0.0.1"
port = 1
connect_timeout = "PT5S"
[remote_aes.WRONGAE]
host = "127.0.0.1"
port = {port}
"""


@pytest_twisted.async_yield_fixture
async def destination() -> AsyncIterator[Destination]:
    dest = Destination()
    yield dest
    await deferToThread(dest.stop)


async def service_for(tmp_path: Path, port: int) -> StowpairService:
    return await start_service(tmp_path / "svc", extra=REMOTES.format(port=port))


async def ingest(service: StowpairService, files: list[Path]) -> str:
    assert service.dimse is not None and service.dimse.port is not None
    sent = await deferToThread(c_store, service.dimse.port, files)
    assert sent.statuses == [0] * len(files)
    return str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)


async def export(
    service: StowpairService,
    remote: str,
    study: str,
    done: frozenset[str] = frozenset(),
    refused: dict[str, tuple[str, int]] | None = None,
) -> Outcome:
    exporter = Exporter("ToDicom", f"dicom:{remote}", "Export1", "STOWPAIR")
    request = ExportRequest(exporter, study, already_done=done, refused=refused or {})
    outcome: Outcome = await service.dicom_exporter.export(request, Cancellation())
    return outcome


@pytest_twisted.ensureDeferred
async def test_sends_every_instance_as_stored(tmp_path: Path, destination: Destination) -> None:
    """When the destination accepts the stored syntaxes, every instance arrives with its
    data set unchanged, and the outcome reads like the STOW exporter's."""
    service = await service_for(tmp_path, destination.port)
    try:
        files = generate_demo_study(
            tmp_path / "src", 6, 8, 3, (ExplicitVRLittleEndian, RLELossless)
        )
        study = await ingest(service, files)
        outcome = await export(service, "DEST", study)
    finally:
        await service.stopService()
    assert outcome.status is TaskStatus.COMPLETED
    assert outcome.message == f"Export Study[uid={study}] to DEST - completed:6"
    for f in files:
        sop = str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID)
        got = pydicom.dcmread(io.BytesIO(destination.received[sop]))
        assert got.file_meta.TransferSyntaxUID == pydicom.dcmread(f).file_meta.TransferSyntaxUID
        assert dataset_bytes(destination.received[sop]) == dataset_bytes(f)


@pytest_twisted.ensureDeferred
async def test_implicit_only_destination_gets_decompressed_data(tmp_path: Path) -> None:
    """When the destination accepts only Implicit VR Little Endian, compressed instances
    are decompressed and arrive pixel-exact in Implicit VR Little Endian."""
    dest = Destination(syntaxes=[ImplicitVRLittleEndian])
    service = await service_for(tmp_path, dest.port)
    try:
        files = generate_demo_study(
            tmp_path / "src", 4, 8, 4, (RLELossless, ExplicitVRLittleEndian)
        )
        study = await ingest(service, files)
        outcome = await export(service, "DEST", study)
    finally:
        await service.stopService()
        await deferToThread(dest.stop)
    assert outcome.status is TaskStatus.COMPLETED, outcome.message
    for f in files:
        original = pydicom.dcmread(f)
        got = pydicom.dcmread(io.BytesIO(dest.received[str(original.SOPInstanceUID)]))
        assert got.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian
        assert np.array_equal(got.pixel_array, original.pixel_array)


@pytest_twisted.ensureDeferred
async def test_failed_instances_and_retry_of_only_those(tmp_path: Path) -> None:
    """When the destination refuses some instances (0xA700), the outcome counts them as
    failed (retryable, with the status in the reason); a retry that names the completed
    ones sends only the failed."""
    refuse: set[str] = set()
    dest = Destination(status_for=lambda sop: 0xA700 if sop in refuse else 0x0000)
    service = await service_for(tmp_path, dest.port)
    try:
        files = generate_demo_study(tmp_path / "src", 5, 8, 5)
        sops = [str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in files]
        refuse.update(sops[:2])
        study = await ingest(service, files)
        first = await export(service, "DEST", study)
        refuse.clear()
        dest.calls.clear()
        done = frozenset(
            i.sop_instance_uid for i in first.instances if i.status.value == "COMPLETED"
        )
        second = await export(service, "DEST", study, done)
    finally:
        await service.stopService()
        await deferToThread(dest.stop)
    assert first.message.endswith(" to DEST - completed:3, failed:2")
    failed = [i for i in first.instances if i.status is InstanceStatus.FAILED]
    assert all(i.retryable and i.reason_code == 0xA700 for i in failed)
    assert "out of resources" in failed[0].reason
    assert sorted(dest.calls) == sorted(sops[:2])
    assert second.status is TaskStatus.COMPLETED and second.completed == 5


@pytest_twisted.ensureDeferred
async def test_refused_for_good_is_not_sent_again(tmp_path: Path) -> None:
    """When a retry names an instance an earlier attempt saw refused for good (0xC000),
    it is not sent; it counts as failed with its status, the others are sent."""
    dest = Destination()
    service = await service_for(tmp_path, dest.port)
    try:
        files = generate_demo_study(tmp_path / "src", 3, 8, 6)
        sops = [str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in files]
        study = await ingest(service, files)
        refused = {sops[0]: ("cannot understand (0xC000)", 0xC000)}
        outcome = await export(service, "DEST", study, refused=refused)
    finally:
        await service.stopService()
        await deferToThread(dest.stop)
    assert sorted(dest.calls) == sorted(sops[1:])
    assert (outcome.status, outcome.completed, outcome.failed) == (TaskStatus.WARNING, 2, 1)
    [failed] = [i for i in outcome.instances if i.status is InstanceStatus.FAILED]
    assert failed.reason_code == 0xC000 and "not sent again" in failed.reason


@pytest_twisted.ensureDeferred
async def test_destination_down(tmp_path: Path) -> None:
    """When nothing listens at the remote AE's address, every instance fails, retryable,
    with a reason naming the destination."""
    service = await service_for(tmp_path, 1)
    try:
        study = await ingest(service, generate_demo_study(tmp_path / "src", 2, 4, 6))
        outcome = await export(service, "DOWN", study)
    finally:
        await service.stopService()
    assert outcome.failed == 2 and outcome.completed == 0
    assert all(i.retryable for i in outcome.instances)
    assert "no association with DOWN@127.0.0.1:1" in outcome.instances[0].reason


@pytest_twisted.ensureDeferred
async def test_association_rejected(tmp_path: Path, destination: Destination) -> None:
    """When the destination rejects the association (wrong called AE title), the reason
    says so and is not retryable."""
    service = await service_for(tmp_path, destination.port)
    try:
        study = await ingest(service, generate_demo_study(tmp_path / "src", 1, 4, 7))
        outcome = await export(service, "WRONGAE", study)
    finally:
        await service.stopService()
    reason = outcome.instances[0].reason
    assert "association rejected by WRONGAE" in reason and "Called AE title" in reason
    assert not outcome.instances[0].retryable


@pytest_twisted.ensureDeferred
async def test_unknown_remote_ae(tmp_path: Path) -> None:
    """When the exporter names a remote AE that is not configured, the export cannot start."""
    service = await service_for(tmp_path, 1)
    try:
        with pytest.raises(ExportError, match="Unknown AE: NOWHERE"):
            await export(service, "NOWHERE", "1.2.3")
    finally:
        await service.stopService()
