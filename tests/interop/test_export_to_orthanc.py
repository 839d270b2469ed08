"""Interop matrix, cell group 1: the stowpair exporter (``StowExporter`` over a real
``SQLiteIndex``) → Orthanc 1.10 + DICOMweb 1.7, verified instance by instance at Orthanc.

Every transfer syntax the demo data can be written in, sent as stored (byte-for-byte at
Orthanc) or with ``transfer-syntax=ExplicitVRLittleEndian`` (pixel-for-pixel, same UIDs);
chunked and Content-Length; concurrency 1 and 4; batches of 10; and the TLS properties
through socat fronts (Orthanc 1.10's own HTTPS server crashes). Orthanc 1.10 ignores parts whose
Content-Type carries ``transfer-syntax``: each export must show the exporter's fallback.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor as _reactor
from twisted.logger import globalLogPublisher

from stowpair.archive.index import SQLiteIndex
from stowpair.archive.store import read_header
from stowpair.dicom.transcode import Transcoder
from stowpair.dicom.transfer_syntax import EXPLICIT_VR_LE
from stowpair.exporter.outcome import Cancellation, ExportRequest, Outcome, TaskStatus
from stowpair.exporter.stow import StowExporter
from tests.exporter.support import exporter_for, webapp
from tests.interop.conftest import TLSFronts
from tests.interop.verify import assert_same_bytes, assert_same_pixels
from tests.support import peers
from tests.support.peers import Peer

pytestmark = pytest.mark.interop
reactor: Any = _reactor
FALLBACK = "exporter.peer.transfer_syntax_ignored"


@pytest.fixture
def events() -> Iterator[list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(seen.append)
    yield seen
    globalLogPublisher.removeObserver(seen.append)


async def export(files: dict[str, Path], url: str, work: Path, **props: Any) -> Outcome:
    """Index ``files`` in a fresh SQLite archive index and export their study to ``url``."""
    index = SQLiteIndex(work / "index.sqlite", reactor)
    transcoder = Transcoder(reactor, 2, use_processes=False)
    transcoder.start()
    wa = webapp(url, **props)
    exporter = StowExporter(reactor, index, {wa.name: wa}, transcoder, work)
    try:
        await index.opened
        headers = [read_header(p) for p in files.values()]
        await index.add(
            [h.record(p, p.stat().st_size) for h, p in zip(headers, files.values(), strict=True)]
        )
        request = ExportRequest(exporter_for(), headers[0].study_uid)
        return await exporter.export(request, Cancellation())
    finally:
        await exporter.close()
        await transcoder.stop()
        await index.close()


def reasons(outcome: Outcome) -> list[str]:
    return sorted({i.reason for i in outcome.instances if i.reason})


MATRIX = [
    pytest.param(ts, chunked, concurrency, batch, id=f"{name}-{mode}-c{concurrency}-b{batch}")
    for ts, name in ((None, "as-stored"), (EXPLICIT_VR_LE, "explicit-le"))
    for chunked, mode in ((False, "content-length"), (True, "chunked"))
    for concurrency in (1, 4)
    for batch in (1, 10)
    if batch == 1 or concurrency == 4
]


@pytest.mark.parametrize(("ts", "chunked", "concurrency", "batch"), MATRIX)
@pytest_twisted.ensureDeferred
async def test_every_syntax(
    tmp_path: Path,
    fresh_orthanc: Peer,
    mixed_study: dict[str, Path],
    events: list[dict[str, Any]],
    ts: str | None,
    chunked: bool,
    concurrency: int,
    batch: int,
) -> None:
    """When a study in every demo transfer syntax is exported, Orthanc holds each instance
    byte for byte (as stored) or pixel for pixel in Explicit VR LE (transfer-syntax set)."""
    props: dict[str, Any] = {"chunked": chunked, "concurrency": concurrency}
    props["max_instances_per_request"] = batch
    if ts is not None:
        props["transfer_syntax"] = (ts,)
    url = f"http://127.0.0.1:{fresh_orthanc.port}/dicom-web"
    outcome = await export(mixed_study, url, tmp_path, **props)
    assert outcome.status is TaskStatus.COMPLETED, reasons(outcome)
    assert outcome.completed == len(mixed_study)
    received = peers.orthanc_files(fresh_orthanc)
    if ts is None:
        assert_same_bytes(mixed_study, received)
    else:
        assert_same_pixels(mixed_study, received)
    # Orthanc 1.10 skips parts with a transfer-syntax parameter: the fallback ran once.
    assert [e["event"] for e in events if e.get("event") == FALLBACK] == [FALLBACK]
    assert not list(tmp_path.glob("*.dcm")), "decompressed temp files left behind"


TLS_CELLS = [
    # property, front, passes
    ("default", "good", True),
    ("default", "wrong-hostname", False),
    ("default", "untrusted", False),
    ("allow-any-hostname", "good", True),
    ("allow-any-hostname", "wrong-hostname", True),
    ("allow-any-hostname", "untrusted", False),
    ("disable-trust-manager", "good", True),
    ("disable-trust-manager", "wrong-hostname", True),
    ("disable-trust-manager", "untrusted", True),
]
TLS_FAILURES = {"wrong-hostname": "TLS hostname mismatch", "untrusted": "certificate verify failed"}


@pytest.mark.parametrize(
    ("mode", "front", "passes"), TLS_CELLS, ids=[f"{m}-{f}" for m, f, _ in TLS_CELLS]
)
@pytest_twisted.ensureDeferred
async def test_tls_property(
    tmp_path: Path,
    fresh_orthanc: Peer,
    tls_fronts: TLSFronts,
    mixed_study: dict[str, Path],
    mode: str,
    front: str,
    passes: bool,
) -> None:
    """When Orthanc sits behind a socat TLS front, each TLS property accepts or refuses
    each certificate as the TLS policy says (stowpair/exporter/tls.py), and what passes
    arrives intact."""
    props: dict[str, Any] = {"ca_file": tls_fronts.ca_file}
    if mode != "default":
        props[mode.replace("-", "_")] = True
    files = dict(list(mixed_study.items())[:2])
    url = f"https://127.0.0.1:{tls_fronts.ports[front]}/dicom-web"
    outcome = await export(files, url, tmp_path, **props)
    received = peers.orthanc_files(fresh_orthanc)
    if passes:
        assert outcome.status is TaskStatus.COMPLETED, reasons(outcome)
        assert_same_bytes(files, received)
    else:
        assert outcome.completed == 0
        assert all(TLS_FAILURES[front] in r for r in reasons(outcome)), reasons(outcome)
        assert received == {}
