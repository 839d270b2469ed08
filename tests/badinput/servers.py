"""In-process servers on loopback port 0 for the bad-input suite, and their checks.

Each test module starts its server once (``stowrsd`` or the whole stowpair service for
the archive's ingest endpoint), with a short idle timeout so slow bodies that go idle
are dropped within a second or two instead of twisted.web's default 60 s.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest_twisted
from hypothesis import HealthCheck, settings
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.task import deferLater

from stowpair.config.loader import load_config
from stowpair.config.model import ClientTimeouts
from stowpair.metrics.registry import Metrics
from stowpair.receiver.service import ReceiverService
from stowpair.receiver.settings import ReceiverSettings
from stowpair.service import StowpairService
from tests.badinput.conftest import LogWatcher
from tests.badinput.dicomparts import CT_IMAGE, MARKER, Uids, instance
from tests.badinput.rawhttp import RawResponse, send_raw

#: Seconds of silence after which a fuzz target drops a connection (Site.timeOut): short
#: enough that a request the server wrongly waits on fails fast, long enough for a
#: loaded machine. The slow-body tests use SHORT_IDLE_TIMEOUT.
IDLE_TIMEOUT = 3.0
SHORT_IDLE_TIMEOUT = 0.5
AET = "BADIN"
STUDY = "1.2.826.0.1.3680043.8.498.1"

SERVICE_CONFIG = """
base_dir = "."
demo_on_empty = false
[device]
name = "badinput"
ae_titles = ["{aet}"]
[rest]
port = 0
{rest}
[emulator]
enabled = false
[archive]
storage = "{storage}"
database = "db/archive.sqlite"
[logging]
json_file = "-"
"""


@dataclass
class Target:
    """A running server: where to send, what path prefix it serves, where it stores."""

    name: str
    port: int
    prefix: str  # e.g. "/stowrs" or "/dcm4chee-arc/aets/BADIN/rs"
    storage: Path
    root: Path  # the test folder holding storage and everything else of the server
    service: Any

    async def send(
        self, pieces: Any, timeout: float = 20.0, half_close: bool = False
    ) -> RawResponse:
        return await send_raw(reactor, self.port, pieces, self.name, timeout, half_close)

    async def settle(self, seconds: float = 0.05) -> None:
        """Let the reactor finish in-flight stores (thread pool) before looking at disk."""
        await deferLater(reactor, seconds, lambda: None)


def start_stowrsd(
    root: Path,
    idle: float = IDLE_TIMEOUT,
    timeouts: ClientTimeouts | None = None,
    header_workers: int = 0,
    **settings: Any,
) -> Iterator[Target]:
    """stowrsd (uid layout, no fsync, ``/metrics`` as the tap has it) under
    ``root/store``, with ``header_workers`` processes reading headers; yields, then stops
    it."""
    storage = root / "store"
    endpoint = TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1")
    service = ReceiverService(
        reactor,
        endpoint,
        ReceiverSettings(**settings),
        storage,
        fsync=False,
        timeouts=timeouts,
        metrics=Metrics(receiver_only=True),
        header_workers=header_workers,
    )
    service.site.timeOut = idle
    service.startService()
    port = pytest_twisted.blockon(service.listening)
    try:
        yield Target("stowrsd", port.getHost().port, "/stowrs", storage, root, service)
    finally:
        d = service.stopService()
        if d is not None:
            pytest_twisted.blockon(d)


def start_stowpair(
    root: Path, extra_config: str = "", idle: float = IDLE_TIMEOUT, rest: str = ""
) -> Iterator[Target]:
    """The whole stowpair service (archive ingest, REST) with its files under ``root``;
    ``rest``: more keys of its ``[rest]`` table."""
    storage = root / "archive"
    conf = root / "stowpair.toml"
    conf.write_text(SERVICE_CONFIG.format(aet=AET, storage=storage, rest=rest) + extra_config)
    service = StowpairService(load_config(conf), reactor)
    service.startService()
    pytest_twisted.blockon(service.ready)
    assert service.rest_port is not None
    service.rest_port.factory.timeOut = idle  # type: ignore[attr-defined]
    port = service.rest_port.getHost().port
    try:
        yield Target("ingest", port, f"/dcm4chee-arc/aets/{AET}/rs", storage, root, service)
    finally:
        pytest_twisted.blockon(service.stopService())


# -- checks ------------------------------------------------------------------------------

#: Statuses a STOW-RS endpoint may answer bad input with (docs/conformance.md).
STOW_STATUSES = {200, 202, 204, 400, 401, 403, 404, 405, 406, 408, 409, 413, 415, 431}
#: A Store Instances Response (also for a 400 after the body was read), as asked.
DICOM_TYPES = ("application/dicom+json", "application/dicom+xml")
_SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def check_answer(r: RawResponse, what: str, incomplete: bool = False) -> None:
    """A documented status, never 5xx, with a body people (or DICOM clients) can read.

    ``incomplete``: the client hung up before its request was complete; the server may
    then close without answering (there is nobody left to answer).
    """
    assert not r.timed_out, f"{what}: no answer within the client timeout"
    if incomplete and r.status == 0:
        return
    assert r.status != 0, f"{what}: connection closed without an answer"
    assert r.status < 500, f"{what}: {r.status} {r.body[:300]!r}"
    assert r.status in STOW_STATUSES, f"{what}: undocumented status {r.status} {r.body[:200]!r}"
    assert b"Traceback" not in r.body, f"{what}: traceback in the body"
    if r.head:
        return  # headers only
    if r.status in (200, 202, 409) or r.content_type in DICOM_TYPES:
        assert r.content_type in DICOM_TYPES, what
        if r.content_type == "application/dicom+json":
            # a Store Instances Response (PS3.18 Annex I); bad input is never a
            # processing failure (0x0110): that reason is for the server's own faults
            reasons = failure_reasons(json.loads(r.body))
            assert 0x0110 not in reasons, f"{what}: 0x0110 in {r.body[:300]!r}"
        return
    if r.status == 204:
        return
    if r.content_type == "application/json":
        assert "errorMessage" in json.loads(r.body), what
    elif r.content_type == "text/plain":
        text = r.body.decode("utf-8")
        assert text.strip() and "<html" not in text.lower(), what
    else:
        # twisted.web's own answer to unparseable HTTP framing: a bare 400, no body
        assert r.status == 400 and r.body == b"", f"{what}: {r.status} {r.headers} {r.body!r}"


def failure_reasons(node: Any) -> list[int]:
    """Every Failure Reason (0008,1197) in a DICOM JSON Store Instances Response."""
    if isinstance(node, list):
        return [code for item in node for code in failure_reasons(item)]
    if not isinstance(node, dict):
        return []
    found = [int(v) for v in node.get("00081197", {}).get("Value", [])]
    return found + [c for k, v in node.items() if k != "00081197" for c in failure_reasons(v)]


def outside_snapshot(target: Target) -> dict[str, int]:
    """Every file and folder under the server's test folder but outside its storage,
    with sizes (SQLite side files excluded: they come and go by design)."""
    out: dict[str, int] = {}
    for dirpath, dirnames, filenames in os.walk(target.root):
        here = Path(dirpath)
        if here == target.storage:
            dirnames[:] = []
            continue
        for name in dirnames:
            out[str(here / name)] = -1
        for name in filenames:
            if not name.endswith(_SQLITE_SIDE_FILES) and not name.endswith(".sqlite"):
                out[str(here / name)] = (here / name).stat().st_size
    return out


def check_storage(target: Target) -> None:
    """No partial file in the final layout; temp files only while requests run."""
    for path in target.storage.rglob("*"):
        rel = path.relative_to(target.storage)
        if rel.parts[0] in (".incoming", ".export") or path.is_dir():
            continue
        assert path.suffix == ".dcm", f"unexpected file in the final layout: {rel}"
        assert path.resolve().is_relative_to(target.storage.resolve()), rel
    # The backends keep a few empty temp files ready (receiver.storage.TempFiles).
    leftovers = [p for p in (target.storage / ".incoming").glob("*.part") if p.stat().st_size]
    assert not leftovers, f"temp files left after the requests ended: {leftovers[:3]}"


def fuzz(examples: int) -> settings:
    """Seeded (derandomized), no example database, no deadline: repeatable runs."""
    return settings(
        derandomize=True,
        database=None,
        deadline=None,
        max_examples=examples,
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )


def valid_request(target: Target, sop: str = "1.2.826.0.1.3680043.8.498.5.1") -> bytes:
    """A well-formed one-instance STOW-RS request to ``target``."""
    uids = Uids(CT_IMAGE, sop, "1.2.826.0.1.3680043.8.498.5", "1.2.826.0.1.3680043.8.498.5.0")
    body = b"--OK\r\nContent-Type: application/dicom\r\n\r\n" + instance(uids) + b"\r\n--OK--\r\n"
    return (
        f"POST {target.prefix}/studies HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        'Content-Type: multipart/related; type="application/dicom"; boundary=OK\r\n'
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def still_serving(target: Target, before: dict[str, int]) -> None:
    """After a batch: a valid request is stored (200), nothing appeared outside the
    storage folder, no partial or temp file is left."""
    r = await target.send(valid_request(target))
    assert r.status == 200, (r.status, r.body[:300])
    await target.settle()
    check_storage(target)
    assert outside_snapshot(target) == before
    assert not traversal_marks(target)


def traversal_marks(target: Target) -> list[Path]:
    """Files or folders named after the path-traversal payloads' marker, wherever the
    payloads (``../``, ``../../../../tmp/``, ``/tmp/``, ``/``) would have put them."""
    places = [target.root.parent, Path("/tmp"), Path("/")]
    found = [p for place in places for p in place.glob(f"*{MARKER}*")]
    return found + list(target.root.rglob(f"*{MARKER}*"))


def batch_guard(target: Target, watcher: LogWatcher) -> Iterator[None]:
    """Wrap one fuzz test (a batch): no logged traceback, and :func:`still_serving`."""
    before = outside_snapshot(target)
    watcher.take()
    yield
    pytest_twisted.blockon(Deferred.fromCoroutine(still_serving(target, before)))
    failures = watcher.take()
    assert not failures, failures
