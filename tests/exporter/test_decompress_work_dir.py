"""Decompressing exports when the work folder does not exist yet (a fresh archive)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest_twisted
from pydicom import dcmread
from pydicom.uid import ExplicitVRLittleEndian, RLELossless
from twisted.internet import reactor as _reactor

from stowpair.archive.demo import generate_demo_study
from stowpair.archive.store import read_header
from stowpair.dicom.transcode import Transcoder
from stowpair.exporter.outcome import Cancellation, ExportRequest, TaskStatus
from stowpair.exporter.stow import StowExporter
from tests.exporter.conftest import Sink
from tests.exporter.support import FakeIndex, exporter_for, webapp

reactor: Any = _reactor


@pytest_twisted.ensureDeferred
async def test_missing_work_dir_is_created(tmp_path: Path, sink: Sink) -> None:
    """When the work folder is missing, a decompressing export creates it and completes."""
    files = generate_demo_study(tmp_path / "src", 2, 8, seed=3, syntaxes=(RLELossless,))
    records = [read_header(p).record(p, p.stat().st_size) for p in files]
    work_dir = tmp_path / "archive" / ".export"
    wa = webapp(sink.url, transfer_syntax=(ExplicitVRLittleEndian,))
    transcoder = Transcoder(reactor, 1, use_processes=False)
    transcoder.start()
    exporter = StowExporter(reactor, FakeIndex(records), {wa.name: wa}, transcoder, work_dir)
    try:
        request = ExportRequest(exporter_for(), records[0].study_uid)
        outcome = await exporter.export(request, Cancellation())
    finally:
        await exporter.close()
        await transcoder.stop()
    assert outcome.status is TaskStatus.COMPLETED, [i.reason for i in outcome.instances]
    stored = sink.resource.log.stored.values()
    syntaxes = [dcmread(io.BytesIO(content)).file_meta.TransferSyntaxUID for content in stored]
    assert syntaxes == [ExplicitVRLittleEndian] * 2
    assert work_dir.is_dir() and not list(work_dir.iterdir())
