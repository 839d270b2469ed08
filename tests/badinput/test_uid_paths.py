"""UIDs in URLs follow PS3.5 §9.1 exactly, over real sockets: the REST export triggers,
the task filter and the STOW-RS study path refuse a UID with a control character,
whitespace or a leading zero (400 with a clear reason) and queue or store nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import pytest_twisted

from tests.badinput.servers import AET, Target, start_stowpair

GOOD = "1.2.826.0.1.3680043.8.498.9"
BAD = [
    pytest.param("1.2.3%0A", id="newline"),
    pytest.param("1.2.3%0D%0A", id="crlf"),
    pytest.param("1.2.3%20", id="space"),
    pytest.param("%201.2.3", id="leading-space"),
    pytest.param("1.2.3%09", id="tab"),
    pytest.param("1.2.3%00", id="nul"),
    pytest.param("1.2.3%1B", id="escape"),
    pytest.param("1.02.3", id="leading-zero"),
    pytest.param("1..3", id="empty-component"),
    pytest.param("1.2.%D9%A3", id="arabic-digit"),
    pytest.param("1." + "2" * 63, id="65-characters"),
]
ENTITIES = [
    pytest.param("studies/{uid}", id="study"),
    pytest.param(f"studies/{GOOD}/series/{{uid}}", id="series"),
    pytest.param(f"studies/{GOOD}/series/{GOOD}.1/instances/{{uid}}", id="instance"),
]


@pytest.fixture(scope="module")
def stowpair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    extra = f"""
[webapps.dest]
url = "http://127.0.0.1:9/stowrs"
[exporters.ToDest]
uri = "stow:dest"
queue = "Export1"
ae_title = "{AET}"
[queues.Export1]
"""
    yield from start_stowpair(tmp_path_factory.mktemp("uidpaths"), extra)


def request(method: str, path: str) -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n".encode()


async def task_count(target: Target) -> int:
    r = await target.send(request("GET", "/dcm4chee-arc/monitor/export/count"))
    return int(json.loads(r.body)["count"])


@pytest.mark.parametrize("entity", ENTITIES)
@pytest.mark.parametrize("uid", BAD)
@pytest.mark.parametrize("exporter", ["ToDest", "stowrs:dest"], ids=["queued", "sync"])
@pytest_twisted.ensureDeferred
async def test_export_trigger_refuses_bad_uid(
    stowpair: Target, entity: str, uid: str, exporter: str
) -> None:
    """When an export trigger's path holds an invalid UID, the answer is 400 with a JSON
    reason naming the UID, and no task is created."""
    before = await task_count(stowpair)
    path = f"/dcm4chee-arc/aets/{AET}/rs/{entity.format(uid=uid)}/export/{exporter}"
    r = await stowpair.send(request("POST", path))
    assert r.status == 400, (r.status, r.body)
    assert "is not a valid UID" in json.loads(r.body)["errorMessage"]
    assert await task_count(stowpair) == before


@pytest_twisted.ensureDeferred
async def test_export_trigger_accepts_valid_uid(stowpair: Target) -> None:
    """When the path's UIDs are valid, the export is queued (202)."""
    path = f"/dcm4chee-arc/aets/{AET}/rs/studies/{GOOD}/series/{GOOD}.1/export/ToDest"
    r = await stowpair.send(request("POST", path + "?scheduledTime=20991231000000"))
    assert r.status == 202, r.body


@pytest.mark.parametrize("uid", BAD)
@pytest_twisted.ensureDeferred
async def test_task_filter_refuses_bad_uid(stowpair: Target, uid: str) -> None:
    """When the task list is filtered by an invalid StudyInstanceUID, the answer is 400
    naming the parameter."""
    r = await stowpair.send(request("GET", f"/dcm4chee-arc/monitor/export?StudyInstanceUID={uid}"))
    assert r.status == 400, (r.status, r.body)
    assert "StudyInstanceUID" in json.loads(r.body)["errorMessage"]


@pytest.mark.parametrize("uid", BAD)
@pytest_twisted.ensureDeferred
async def test_stow_study_path_refuses_bad_uid(stowpair: Target, uid: str) -> None:
    """When the STOW-RS path names an invalid study UID, the answer is 400 before the body."""
    head = (
        f"POST {stowpair.prefix}/studies/{uid} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        'Content-Type: multipart/related; type="application/dicom"; boundary=B\r\n'
        "Content-Length: 8\r\n\r\n--B--\r\n\r\n"
    )
    r = await stowpair.send(head.encode())
    assert r.status == 400, (r.status, r.body)
    assert b"is not a valid UID" in r.body
