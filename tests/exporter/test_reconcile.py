"""Reading STOW-RS answers: status and body, one verdict per instance."""

from __future__ import annotations

import json
from typing import Any

import pytest
from twisted.web.http_headers import Headers

from stowpair.exporter.client import HTTPAnswer
from stowpair.exporter.outcome import InstanceStatus as S
from stowpair.exporter.reconcile import reconcile, retry_after

A, B = "1.2.3.1", "1.2.3.2"
JSON = "application/dicom+json"


def ref(uid: str, warning: int | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"00081155": {"vr": "UI", "Value": [uid]}}
    if warning is not None:
        item["00081196"] = {"vr": "US", "Value": [warning]}
    return item


def fail(uid: str, code: int) -> dict[str, Any]:
    return {"00081155": {"vr": "UI", "Value": [uid]}, "00081197": {"vr": "US", "Value": [code]}}


def answer(
    status: int, body: bytes | dict[str, Any], ctype: str | None = JSON, **hdrs: str
) -> HTTPAnswer:
    headers = Headers()
    if ctype:
        headers.addRawHeader("Content-Type", ctype)
    for k, v in hdrs.items():
        headers.addRawHeader(k.replace("_", "-"), v)
    raw = json.dumps(body).encode() if isinstance(body, dict) else body
    return HTTPAnswer(status, headers, raw)


XML = b"""<?xml version="1.0"?><NativeDicomModel>
<DicomAttribute tag="00081199" vr="SQ"><Item number="1">
<DicomAttribute tag="00081155" vr="UI"><Value number="1">1.2.3.1</Value></DicomAttribute>
</Item></DicomAttribute>
<DicomAttribute tag="00081198" vr="SQ"><Item number="1">
<DicomAttribute tag="00081155" vr="UI"><Value number="1">1.2.3.2</Value></DicomAttribute>
<DicomAttribute tag="00081197" vr="US"><Value number="1">42752</Value></DicomAttribute>
</Item></DicomAttribute></NativeDicomModel>"""

CASES = [
    (
        "all-referenced",
        answer(200, {"00081199": {"vr": "SQ", "Value": [ref(A), ref(B)]}}),
        {A: (S.COMPLETED, None, False), B: (S.COMPLETED, None, False)},
        "",
    ),
    (
        "warning-b000",
        answer(200, {"00081199": {"vr": "SQ", "Value": [ref(A, 0xB000), ref(B)]}}),
        {A: (S.WARNING, 0xB000, False), B: (S.COMPLETED, None, False)},
        "coercion",
    ),
    (
        "partial-202-a700",
        answer(
            202,
            {
                "00081199": {"vr": "SQ", "Value": [ref(A)]},
                "00081198": {"vr": "SQ", "Value": [fail(B, 0xA700)]},
            },
        ),
        {A: (S.COMPLETED, None, False), B: (S.FAILED, 0xA700, True)},
        "out of resources",
    ),
    (
        "409-a900-permanent",
        answer(409, {"00081198": {"vr": "SQ", "Value": [fail(A, 0xA900), fail(B, 0x0110)]}}),
        {A: (S.FAILED, 0xA900, False), B: (S.FAILED, 0x0110, True)},
        "does not match",
    ),
    (
        "c122-hint",
        answer(409, {"00081198": {"vr": "SQ", "Value": [fail(A, 0xC122), fail(B, 0xC122)]}}),
        {A: (S.FAILED, 0xC122, False), B: (S.FAILED, 0xC122, False)},
        "transfer-syntax=ExplicitVRLittleEndian",
    ),
    (
        "partial-list-not-acknowledged",
        answer(200, {"00081199": {"vr": "SQ", "Value": [ref(A)]}}),
        {A: (S.COMPLETED, None, False), B: (S.FAILED, None, True)},
        "not acknowledged",
    ),
    (
        "empty-object",
        answer(200, {}),
        {A: (S.FAILED, None, True), B: (S.FAILED, None, True)},
        "HTTP 200",
    ),
    (
        "orthanc-empty-failed-seq",
        answer(200, {"00081198": {"vr": "SQ"}}),
        {A: (S.FAILED, None, True), B: (S.FAILED, None, True)},
        '\'{"00081198"',
    ),
    (
        "html-200",
        answer(200, b"<html><body>Welcome to nginx</body></html>", "text/html"),
        {A: (S.FAILED, None, True), B: (S.FAILED, None, True)},
        "Welcome to nginx",
    ),
    (
        "empty-200",
        answer(200, b"", None),
        {A: (S.FAILED, None, True), B: (S.FAILED, None, True)},
        "empty body",
    ),
    (
        "garbage-json",
        answer(200, b"{not json", JSON),
        {A: (S.FAILED, None, True), B: (S.FAILED, None, True)},
        "{not json",
    ),
    (
        "xml",
        answer(202, XML, "application/dicom+xml"),
        {A: (S.COMPLETED, None, False), B: (S.FAILED, 0xA700, True)},
        "out of resources",
    ),
    (
        "401",
        answer(401, b"nope", "text/plain"),
        {A: (S.FAILED, None, False), B: (S.FAILED, None, False)},
        "authentication rejected",
    ),
    (
        "403",
        answer(403, b"", None),
        {A: (S.FAILED, None, False), B: (S.FAILED, None, False)},
        "authentication rejected",
    ),
    (
        "503",
        answer(503, b"busy", "text/plain", Retry_After="7"),
        {A: (S.FAILED, None, True), B: (S.FAILED, None, True)},
        "HTTP 503",
    ),
    (
        "429",
        answer(429, b"", None),
        {A: (S.FAILED, None, True), B: (S.FAILED, None, True)},
        "HTTP 429",
    ),
    (
        "415-no-body",
        answer(415, b"unsupported", "text/plain"),
        {A: (S.FAILED, None, False), B: (S.FAILED, None, False)},
        "HTTP 415",
    ),
]


@pytest.mark.parametrize(
    ("ans", "expected", "text"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_reconcile(
    ans: HTTPAnswer, expected: dict[str, tuple[S, int | None, bool]], text: str
) -> None:
    """When an answer arrives, each instance gets the expected status, code, retry and reason."""
    verdicts = reconcile([A, B], ans)
    assert {uid: (v.status, v.reason_code, v.retryable) for uid, v in verdicts.items()} == expected
    assert any(text in v.reason for v in verdicts.values())


@pytest.mark.parametrize(
    ("value", "expected"),
    [("120", 120.0), ("Thu, 01 Jan 1970 00:01:40 GMT", 60.0), ("soon", None), (None, None)],
    ids=["seconds", "http-date", "garbage", "absent"],
)
def test_retry_after(value: str | None, expected: float | None) -> None:
    """When Retry-After is seconds or an HTTP-date, it becomes seconds from now."""
    hdrs = {"Retry_After": value} if value else {}
    assert retry_after(answer(503, b"", None, **hdrs), now=40.0) == expected
