"""Test fakes for the exporter: DICOM files, an in-memory index, a STOW-RS sink."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from twisted.internet.defer import Deferred, succeed
from twisted.web import server
from twisted.web.resource import Resource

from stowpair.archive.model import InstanceRecord, QueryResult
from stowpair.config.model import Exporter, WebApplication, WebAppProperties

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"


def write_instance(
    path: Path, study: str, series: str, padding: int = 0, ts: str = ExplicitVRLittleEndian
) -> InstanceRecord:
    """A small valid PS3.10 file; ``padding`` bytes of OB make it bigger."""
    ds = Dataset()
    ds.SOPClassUID = CT_IMAGE
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = series
    ds.PatientID = "EXP1"
    ds.Modality = "CT"
    if padding:
        ds.add_new(0x00091010, "OB", b"\0" * padding)
        ds.add_new(0x00090010, "LO", "STOWPAIR TEST")
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = CT_IMAGE
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(path, enforce_file_format=True)
    return InstanceRecord(
        study_uid=study,
        series_uid=series,
        sop_instance_uid=ds.SOPInstanceUID,
        sop_class_uid=CT_IMAGE,
        transfer_syntax_uid=ts,
        path=path,
        size=path.stat().st_size,
    )


def make_study(folder: Path, count: int, padding: int = 0) -> list[InstanceRecord]:
    study, series = generate_uid(), generate_uid()
    folder.mkdir(parents=True, exist_ok=True)
    return [write_instance(folder / f"{i}.dcm", study, series, padding) for i in range(count)]


class FakeIndex:
    """``InstanceIndex`` over a list; records whose file is gone are reported missing."""

    def __init__(self, records: Iterable[InstanceRecord]) -> None:
        self.records = list(records)

    def add(self, records: list[InstanceRecord]) -> Deferred[int]:
        self.records.extend(records)
        return succeed(len(records))

    def query(
        self, study_uid: str, series_uid: str = "*", sop_uid: str = "*"
    ) -> Deferred[QueryResult]:
        found = [
            r
            for r in self.records
            if r.study_uid == study_uid
            and series_uid in ("*", r.series_uid)
            and sop_uid in ("*", r.sop_instance_uid)
        ]
        present = tuple(r for r in found if r.path.exists())
        missing = tuple(r for r in found if not r.path.exists())
        return succeed(QueryResult(present, missing))

    def close(self) -> Deferred[None]:
        return succeed(None)


def webapp(url: str, name: str = "sink", **props: Any) -> WebApplication:
    return WebApplication(name=name, url=url, properties=replace(WebAppProperties(), **props))


def exporter_for(name: str = "sink", scheme: str = "stow") -> Exporter:
    return Exporter(exporter_id="E1", uri=f"{scheme}:{name}", queue_name="Export1")


def split_parts(content_type: str, body: bytes) -> list[tuple[bytes, bytes]]:
    """(headers, content) of each part; good enough for bodies our producer writes."""
    boundary = content_type.split("boundary=")[1].split(";")[0].strip('"').encode()
    chunks = body.split(b"--" + boundary)
    assert chunks[-1].startswith(b"--"), "close delimiter missing"
    parts = []
    for chunk in chunks[1:-1]:
        head, _, content = chunk[2:].partition(b"\r\n\r\n")
        parts.append((head, content[:-2]))
    return parts


def referenced(ds: Dataset, warning: int | None = None) -> dict[str, Any]:
    item = {
        "00081150": {"vr": "UI", "Value": [ds.SOPClassUID]},
        "00081155": {"vr": "UI", "Value": [ds.SOPInstanceUID]},
    }
    if warning is not None:
        item["00081196"] = {"vr": "US", "Value": [warning]}
    return item


def failed(ds: Dataset, reason: int) -> dict[str, Any]:
    return {
        "00081150": {"vr": "UI", "Value": [ds.SOPClassUID]},
        "00081155": {"vr": "UI", "Value": [ds.SOPInstanceUID]},
        "00081197": {"vr": "US", "Value": [reason]},
    }


@dataclass
class SinkLog:
    """What the sink saw, per request."""

    headers: list[dict[str, list[str]]] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    parts: list[int] = field(default_factory=list)
    part_headers: list[bytes] = field(default_factory=list)
    stored: dict[str, bytes] = field(default_factory=dict)
    in_flight: int = 0
    max_in_flight: int = 0


class StowSink(Resource):
    """A tiny STOW-RS server (twisted.web buffers the body; fine for tests)."""

    isLeaf = True

    def __init__(self, clock: Any, **behaviour: Any) -> None:
        super().__init__()
        self.clock = clock
        self.log = SinkLog()
        self.behaviour = behaviour

    def render_POST(self, request: server.Request) -> Any:
        b = self.behaviour
        headers = {
            k.decode().lower(): [v.decode() for v in vs]
            for k, vs in request.requestHeaders.getAllRawHeaders()
        }
        body = request.content.read()
        self.log.headers.append(headers)
        self.log.sizes.append(len(body))
        expected = b.get("auth")
        if callable(expected):  # e.g. the token endpoint's latest token
            expected = expected()
        if expected is not None and headers.get("authorization", [""])[0] != expected:
            request.setResponseCode(401)
            request.setHeader("WWW-Authenticate", 'Basic realm="sink"')
            return b"unauthorized"
        parts = split_parts(headers["content-type"][0], body)
        self.log.parts.append(len(parts))
        limit = b.get("max_parts")
        if limit is not None and len(parts) > limit:
            request.setResponseCode(413)
            return b"too large"
        if "status" in b:
            request.setResponseCode(b["status"])
            for k, v in b.get("headers", {}).items():
                request.setHeader(k, v)
            return b.get("body", b"")
        answer = self._answer(parts)
        self.log.in_flight += 1
        self.log.max_in_flight = max(self.log.max_in_flight, self.log.in_flight)
        self.clock.callLater(b.get("delay", 0), self._finish, request, answer)
        return server.NOT_DONE_YET

    def _finish(self, request: server.Request, answer: tuple[int, bytes]) -> None:
        self.log.in_flight -= 1
        if request.finished or request.channel is None:  # answered, or the client left
            return
        request.setResponseCode(answer[0])
        request.setHeader("Content-Type", "application/dicom+json")
        request.write(answer[1])
        request.finish()

    def _answer(self, parts: list[tuple[bytes, bytes]]) -> tuple[int, bytes]:
        fail = self.behaviour.get("fail", {})
        refs, fails = [], []
        for head, content in parts:
            self.log.part_headers.append(head)
            if self.behaviour.get("ignore_ts_param") and b"transfer-syntax" in head:
                continue  # as Orthanc DICOMweb 1.7 does
            ds = dcmread(io.BytesIO(content))
            if ds.SOPInstanceUID in fail:
                fails.append(failed(ds, fail[ds.SOPInstanceUID]))
            elif ds.SOPInstanceUID not in self.behaviour.get("forget", ()):
                self.log.stored[ds.SOPInstanceUID] = content
                refs.append(referenced(ds, self.behaviour.get("warning")))
        doc: dict[str, Any] = {}
        if refs:
            doc["00081199"] = {"vr": "SQ", "Value": refs}
        if fails:
            doc["00081198"] = {"vr": "SQ", "Value": fails}
        status = 200 if not fails else 202 if refs else 409
        return status, json.dumps(doc).encode()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
