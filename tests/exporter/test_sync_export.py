"""Synchronous export over REST: dcm4chee's 200 / 206 / 502 / 404 answers (§5.1)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import pytest_twisted

from stowpair.api.sync_export import sync_export
from stowpair.config.model import WebApplication
from stowpair.exporter.stow import StowExporter
from tests.exporter.conftest import Sink, reactor
from tests.exporter.support import FakeIndex, make_study, webapp


async def call(
    tmp_path: Path,
    sink: Sink,
    wa: WebApplication,
    fail: int = 0,
    webapp_name: str = "stowrs:sink",
) -> tuple[int, dict[str, Any]]:
    records = make_study(tmp_path / "s", 3)
    sink.behave(fail={r.sop_instance_uid: 0xA900 for r in records[:fail]})
    exporter = StowExporter(reactor, FakeIndex(records), {wa.name: wa})
    try:
        return await sync_export(
            exporter, "STOWPAIR", records[0].study_uid, None, None, webapp_name
        )
    finally:
        await exporter.close()


@pytest.mark.parametrize(
    ("fail", "status", "body"),
    [
        (0, 200, {"completed": 3}),
        (1, 206, {"completed": 2, "failed": 1}),
        (3, 502, {"completed": 0, "failed": 3}),
    ],
    ids=["all-stored", "some-failed", "all-failed"],
)
@pytest_twisted.ensureDeferred
async def test_sync_export_status(
    tmp_path: Path, sink: Sink, fail: int, status: int, body: dict[str, Any]
) -> None:
    """When some or all instances fail, the answer is 206 or 502 with counts and an error."""
    got_status, got = await call(tmp_path, sink, webapp(sink.url), fail)
    assert got_status == status
    assert {k: v for k, v in got.items() if k != "error"} == body
    assert ("error" in got) == (fail > 0)


@pytest_twisted.ensureDeferred
async def test_sync_export_unknown_webapp(tmp_path: Path, sink: Sink) -> None:
    """When the web app is unknown, the answer is 404 with errorMessage."""
    status, body = await call(tmp_path, sink, webapp(sink.url), webapp_name="stowrs:nope")
    assert (status, body) == (404, {"errorMessage": "Unknown WebApplication: nope"})


@pytest_twisted.ensureDeferred
async def test_sync_export_skips_service_class_check(tmp_path: Path, sink: Sink) -> None:
    """When the web app lacks STOW_RS, the synchronous export still runs (as dcm4chee)."""
    wa = WebApplication(name="sink", url=sink.url, service_classes=())
    status, body = await call(tmp_path, sink, wa)
    assert (status, body) == (200, {"completed": 3})
