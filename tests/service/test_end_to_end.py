"""The whole stowpair service on real loopback sockets: ingest → rule → export → stowrsd."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest_twisted
import treq
from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.task import Cooperator, deferLater

from stowpair.archive.demo import generate_demo_study
from stowpair.config.loader import load_config
from stowpair.exporter.body import BodyPart, MultipartRelatedProducer
from stowpair.receiver.service import ReceiverService
from stowpair.receiver.settings import ReceiverSettings
from stowpair.service import StowpairService

CONFIG = """
base_dir = "."
demo_on_empty = false
[device]
name = "e2e"
ae_titles = ["E2E"]
task_polling_interval = "PT1S"
[rest]
port = 0
[emulator]
enabled = false
[logging]
json_file = "-"
[webapps.dest]
url = "{url}"
[webapps.native]
url = "{url}"
[webapps.native.properties]
transfer-syntax = "ExplicitVRLittleEndian"
[exporters.ToDest]
uri = "stow:dest"
queue = "Export1"
ae_title = "E2E"
[queues.Export1]
retry_delay = "PT1S"
[[rules]]
name = "all"
entity = "Study"
exporters = ["ToDest"]
delay = "PT1S"
"""


async def until(condition: Callable[[], bool], seconds: float = 30.0) -> None:
    for _ in range(int(seconds * 20)):
        if condition():
            return
        await deferLater(reactor, 0.05, lambda: None)
    raise AssertionError(f"condition not met within {seconds}s")


async def start_receiver(directory: Path) -> tuple[ReceiverService, int]:
    endpoint = TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1")
    receiver = ReceiverService(reactor, endpoint, ReceiverSettings(path="/stowrs"), directory)
    receiver.startService()
    port = await receiver.listening
    return receiver, port.getHost().port


async def start_stowpair(tmp: Path, dest_port: int) -> StowpairService:
    conf = tmp / "stowpair.toml"
    conf.write_text(CONFIG.format(url=f"http://127.0.0.1:{dest_port}/stowrs"))
    service = StowpairService(load_config(conf), reactor)
    service.startService()
    await service.ready
    return service


async def post_study(service: StowpairService, files: list[Path]) -> Any:
    assert service.rest_port is not None
    port = service.rest_port.getHost().port
    parts = [BodyPart(p, "1.2.840.10008.1.2.1", p.stat().st_size) for p in files]
    producer = MultipartRelatedProducer(parts, Cooperator())
    response = await treq.post(
        f"http://127.0.0.1:{port}/dcm4chee-arc/aets/E2E/rs/studies",
        data=producer,
        headers={"Content-Type": producer.content_type},
        reactor=reactor,
    )
    assert response.code == 200, await response.text()
    return await response.json()


async def tasks(service: StowpairService) -> list[dict[str, Any]]:
    assert service.rest_port is not None
    port = service.rest_port.getHost().port
    response = await treq.get(
        f"http://127.0.0.1:{port}/dcm4chee-arc/monitor/export", reactor=reactor
    )
    return json.loads(await response.content())


@pytest_twisted.ensureDeferred
async def test_ingested_study_arrives_at_destination(tmp_path: Path) -> None:
    """When a study is ingested over STOW-RS, the rule exports it and stowrsd holds it
    byte for byte, with one COMPLETED task."""
    received = tmp_path / "received"
    receiver, dest_port = await start_receiver(received)
    service = await start_stowpair(tmp_path, dest_port)
    try:
        files = generate_demo_study(tmp_path / "src", 6, size_kb=16, seed=5)
        answer = await post_study(service, files)
        assert len(answer["00081199"]["Value"]) == 6
        await until(lambda: len(list(received.rglob("*.dcm"))) == 6)
        sent = {p.name: p.read_bytes() for p in files}
        got = {p.name: p.read_bytes() for p in received.rglob("*.dcm")}
        assert got == sent
        listing: list[dict[str, Any]] = []

        async def completed() -> bool:
            listing[:] = await tasks(service)
            return bool(listing) and all(t["status"] == "COMPLETED" for t in listing)

        for _ in range(100):
            if await completed():
                break
            await deferLater(reactor, 0.1, lambda: None)
        assert [t["status"] for t in listing] == ["COMPLETED"]
        assert listing[0]["outcomeMessage"].endswith("- completed:6")
    finally:
        await service.stopService()
        await receiver.stopService()


@pytest_twisted.ensureDeferred
async def test_sync_export_decompresses_for_native_only_destination(tmp_path: Path) -> None:
    """When a web app accepts only Explicit VR LE, an RLE study is sent decompressed with
    identical pixels, through the synchronous REST export."""
    from pydicom import dcmread
    from pydicom.uid import ExplicitVRLittleEndian, RLELossless

    received = tmp_path / "received"
    receiver, dest_port = await start_receiver(received)
    service = await start_stowpair(tmp_path, dest_port)
    try:
        files = generate_demo_study(
            tmp_path / "src", 3, size_kb=16, seed=7, syntaxes=(RLELossless,)
        )
        await post_study(service, files)
        study = dcmread(files[0], stop_before_pixels=True).StudyInstanceUID
        assert service.rest_port is not None
        port = service.rest_port.getHost().port
        response = await treq.post(
            f"http://127.0.0.1:{port}/dcm4chee-arc/aets/E2E/rs/studies/{study}"
            "/export/stowrs:native",
            reactor=reactor,
        )
        assert (response.code, await response.json()) == (200, {"completed": 3})
        for src in files:
            original = dcmread(src)
            sent = next(received.rglob(src.name))
            copy = dcmread(sent)
            assert copy.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
            assert copy.SOPInstanceUID == original.SOPInstanceUID
            assert (copy.pixel_array == original.pixel_array).all()
    finally:
        await service.stopService()
        await receiver.stopService()
