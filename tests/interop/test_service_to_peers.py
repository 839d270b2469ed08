"""Interop matrix through the whole service, as users drive it: a study is ingested over
STOW-RS into a running ``StowpairService``, ``POST .../export/{ExporterID}`` queues a
task, the test waits for the task over REST, then reads the destination.

Destinations: Orthanc (as stored chunked with concurrency 4; Explicit VR LE in batches
of 10; HTTP Basic right and wrong) and the ingest endpoint of a second stowpair archive.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
import treq
from twisted.internet import reactor as _reactor
from twisted.internet.task import Cooperator, deferLater

from stowpair.archive.store import read_header
from stowpair.config.loader import load_config
from stowpair.exporter.body import BodyPart, MultipartRelatedProducer
from stowpair.service import StowpairService
from tests.interop.conftest import ORTHANC_PASSWORD, ORTHANC_USER
from tests.interop.verify import assert_same_bytes, assert_same_pixels, stored_files
from tests.support import peers
from tests.support.peers import Peer

pytestmark = pytest.mark.interop
reactor: Any = _reactor
FINAL = {"COMPLETED", "WARNING", "FAILED", "CANCELED"}

COMMON = """
base_dir = "."
demo_on_empty = false
[device]
name = "{aet}"
ae_titles = ["{aet}"]
task_polling_interval = "PT1S"
[rest]
port = 0
[emulator]
enabled = false
[logging]
json_file = "-"
[queues.Export1]
max_retries = 0
"""

WEBAPPS = """
[webapps.orthanc]
url = "http://127.0.0.1:{orthanc}/dicom-web"
properties = {{ chunked = true, concurrency = 4 }}
[webapps.orthanc-le]
url = "http://127.0.0.1:{orthanc}/dicom-web"
properties = {{ transfer-syntax = "ExplicitVRLittleEndian", max-instances-per-request = 10 }}
[webapps.orthanc-auth]
url = "http://127.0.0.1:{auth}/dicom-web"
properties = {{ basic-auth = "file:orthanc-credentials" }}
[webapps.orthanc-wrong-auth]
url = "http://127.0.0.1:{auth}/dicom-web"
properties = {{ basic-auth = "{user}:not-the-password" }}
[webapps.archive-b]
url = "http://127.0.0.1:{archive}/dcm4chee-arc/aets/B/rs"
"""

EXPORTERS = ("orthanc", "orthanc-le", "orthanc-auth", "orthanc-wrong-auth", "archive-b")


async def start(folder: Path, text: str) -> StowpairService:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "stowpair.toml").write_text(text)
    service = StowpairService(load_config(folder / "stowpair.toml"), reactor)
    service.startService()
    await service.ready
    return service


def base(service: StowpairService) -> str:
    assert service.rest_port is not None
    return f"http://127.0.0.1:{service.rest_port.getHost().port}/dcm4chee-arc"


@dataclass
class Archives:
    """Archive A (holding the mixed study, exporting) and archive B (a destination)."""

    a: StowpairService
    b: StowpairService
    study_uid: str


@pytest_twisted.async_yield_fixture(scope="module")
async def archives(
    tmp_path_factory: pytest.TempPathFactory,
    orthanc: Peer,
    orthanc_auth: Peer,
    mixed_study: dict[str, Path],
) -> AsyncIterator[Archives]:
    folder = tmp_path_factory.mktemp("services")
    b = await start(folder / "b", COMMON.format(aet="B"))
    try:
        (folder / "a").mkdir()
        (folder / "a" / "orthanc-credentials").write_text(f"{ORTHANC_USER}:{ORTHANC_PASSWORD}\n")
        ports = {"orthanc": orthanc.port, "auth": orthanc_auth.port, "user": ORTHANC_USER}
        ports["archive"] = b.rest_port.getHost().port  # type: ignore[union-attr]
        text = COMMON.format(aet="A") + WEBAPPS.format(**ports)
        for name in EXPORTERS:
            text += f'[exporters.{name}]\nuri = "stow:{name}"\nqueue = "Export1"\n'
        a = await start(folder / "a", text)
        try:
            await ingest(a, list(mixed_study.values()))
            yield Archives(a, b, read_header(next(iter(mixed_study.values()))).study_uid)
        finally:
            await a.stopService()
    finally:
        await b.stopService()


async def ingest(service: StowpairService, files: list[Path]) -> None:
    """STOW-RS the files into the service's archive, as a modality or router would."""
    parts = [BodyPart(p, read_header(p).transfer_syntax_uid, p.stat().st_size) for p in files]
    producer = MultipartRelatedProducer(parts, Cooperator())
    response = await treq.post(
        f"{base(service)}/aets/A/rs/studies",
        data=producer,
        headers={"Content-Type": producer.content_type, "Accept": "application/dicom+json"},
        reactor=reactor,
    )
    answer = await response.json()
    assert response.code == 200, answer
    assert len(answer["00081199"]["Value"]) == len(files)


async def export(archives: Archives, exporter: str) -> dict[str, Any]:
    """``POST .../export/{exporter}``, then the task as ``GET /monitor/export`` shows it
    once it is final."""
    url = f"{base(archives.a)}/aets/A/rs/studies/{archives.study_uid}/export/{exporter}"
    response = await treq.post(url, reactor=reactor)
    queued = json.loads(await response.content())
    assert response.code == 202, queued
    monitor = f"{base(archives.a)}/monitor/export?taskID={queued['taskID']}"
    for _ in range(600):
        response = await treq.get(monitor, reactor=reactor)
        (task,) = json.loads(await response.content())
        if task["status"] in FINAL:
            return dict(task)
        await deferLater(reactor, 0.05, lambda: None)
    raise AssertionError(f"task still {task['status']} after 30 s: {task}")


@pytest_twisted.ensureDeferred
async def test_as_stored_chunked(
    archives: Archives, fresh_orthanc: Peer, mixed_study: dict[str, Path]
) -> None:
    """When the service exports the mixed study chunked with concurrency 4, the task
    completes and Orthanc holds every instance byte for byte."""
    task = await export(archives, "orthanc")
    assert task["status"] == "COMPLETED", task
    assert task["outcomeMessage"].endswith(f"completed:{len(mixed_study)}")
    assert_same_bytes(mixed_study, peers.orthanc_files(fresh_orthanc))


@pytest_twisted.ensureDeferred
async def test_explicit_le_batched(
    archives: Archives, fresh_orthanc: Peer, mixed_study: dict[str, Path]
) -> None:
    """When the service exports with transfer-syntax=ExplicitVRLittleEndian in batches of
    10, Orthanc holds every instance in Explicit VR LE with the original pixels."""
    task = await export(archives, "orthanc-le")
    assert task["status"] == "COMPLETED", task
    assert_same_pixels(mixed_study, peers.orthanc_files(fresh_orthanc))


@pytest_twisted.ensureDeferred
async def test_basic_auth_accepted(
    archives: Archives, orthanc_auth: Peer, mixed_study: dict[str, Path]
) -> None:
    """When basic-auth (read from a file:) holds the right credentials, the Orthanc that
    requires them stores every instance byte for byte."""
    peers.orthanc_clear(orthanc_auth)
    task = await export(archives, "orthanc-auth")
    assert task["status"] == "COMPLETED", task
    assert_same_bytes(mixed_study, peers.orthanc_files(orthanc_auth))


@pytest_twisted.ensureDeferred
async def test_basic_auth_rejected(archives: Archives, orthanc_auth: Peer) -> None:
    """When basic-auth holds a wrong password, the task fails with "authentication
    rejected", the password appears nowhere in the task, and Orthanc stores nothing."""
    peers.orthanc_clear(orthanc_auth)
    task = await export(archives, "orthanc-wrong-auth")
    assert task["status"] == "WARNING", task  # dcm4chee: failed instances → WARNING
    assert "authentication rejected (HTTP 401)" in task["errorMessage"], task
    assert "not-the-password" not in json.dumps(task)
    assert peers.orthanc_files(orthanc_auth) == {}


@pytest_twisted.ensureDeferred
async def test_archive_to_archive(archives: Archives, mixed_study: dict[str, Path]) -> None:
    """When archive A exports to archive B's ingest endpoint, B stores every instance
    byte for byte."""
    task = await export(archives, "archive-b")
    assert task["status"] == "COMPLETED", task
    assert_same_bytes(mixed_study, stored_files(archives.b.config.archive.storage))
