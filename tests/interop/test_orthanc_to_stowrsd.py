"""Orthanc's DICOMweb client pushes a study to our stowrsd (chunked and Content-Length)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
import treq
from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.logger import globalLogPublisher

from stowpair.receiver.service import ReceiverService
from stowpair.receiver.settings import ReceiverSettings
from stowpair.testing_receiver import encode, make_dataset

pytestmark = pytest.mark.interop


async def _post_json(url: str, payload: Any) -> tuple[int, Any]:
    response = await treq.post(url, data=json.dumps(payload).encode(), reactor=reactor)
    body = await response.content()
    return response.code, json.loads(body) if body.strip() else None


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
@pytest_twisted.ensureDeferred
async def test_orthanc_pushes_study(tmp_path: Path, orthanc_factory: Any, chunked: bool) -> None:
    """When Orthanc stows a study to stowrsd, it reports success and the files arrive intact."""
    service = ReceiverService(
        reactor,
        TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1"),
        ReceiverSettings(path="/dicom-web"),
        tmp_path / "store",
        fsync=False,
    )
    events: list[Any] = []
    globalLogPublisher.addObserver(events.append)
    service.startService()
    try:
        port = (await service.listening).getHost().port
        server: dict[str, Any] = {"Url": f"http://127.0.0.1:{port}/dicom-web/"}
        if not chunked:
            server["ChunkedTransfers"] = False
        orthanc = orthanc_factory({"stowrsd": server})
        study = make_dataset().StudyInstanceUID
        sent = {}
        for source in ("CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm"):
            ds = make_dataset(study=study, source=source)
            ds.PatientID = "STOWPAIR-1"  # Orthanc keys studies by patient + study UID
            data = encode(ds)
            sent[ds.SOPInstanceUID] = data
            r = await treq.post(f"{orthanc.url}/instances", data=data, reactor=reactor)
            assert r.code == 200, await r.text()
            study_id = (await r.json())["ParentStudy"]
        code, answer = await _post_json(
            f"{orthanc.url}/dicom-web/servers/stowrsd/stow",
            {"Resources": [study_id], "Synchronous": True},
        )
        ours = [e.get("error") for e in events if e.get("event") == "receiver.request"]
        assert code == 200, (answer, ours)
        received = {p.stem: p.read_bytes() for p in (tmp_path / "store").rglob("*.dcm")}
        assert received == sent
    finally:
        globalLogPublisher.removeObserver(events.append)
        d = service.stopService()
        if d is not None:
            await d
