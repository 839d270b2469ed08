"""The STOW-RS resource, driven in memory through treq's RequestTraversalAgent."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from stowpair.config.secret import Secret
from stowpair.dicom.response import parse_json, parse_xml
from stowpair.receiver.settings import FaultSettings
from tests.receiver.conftest import Answer, Stub, answer, leftover_parts
from tests.support.receiver import content_type, encode, make_dataset, multipart

CT = content_type()


def post(stub: Stub, parts: list[bytes], path: str = "/stowrs/studies", **headers: str) -> Answer:
    return answer(stub, stub.post(multipart(parts), CT, path, **headers))


def files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*.dcm"))


def test_all_stored(make_stub: Callable[..., Stub]) -> None:
    """When every instance is valid, 200 lists each one and files land by UID."""
    stub = make_stub()
    a, b = make_dataset(), make_dataset(source="MR_small.dcm")
    r = post(stub, [encode(a), encode(b)])
    assert r.code == 200
    resp = parse_json(r.body)
    assert [i.sop_instance_uid for i in resp.referenced] == [a.SOPInstanceUID, b.SOPInstanceUID]
    assert resp.referenced[0].retrieve_url.endswith(
        f"/stowrs/studies/{a.StudyInstanceUID}/series/{a.SeriesInstanceUID}"
        f"/instances/{a.SOPInstanceUID}"
    )
    dest = stub.directory / a.StudyInstanceUID / a.SeriesInstanceUID / f"{a.SOPInstanceUID}.dcm"
    assert dest.read_bytes() == encode(a)
    assert len(files(stub.directory)) == 2
    assert leftover_parts(stub.directory) == []  # spare temp files stay empty


def test_study_mismatch_is_409(make_stub: Callable[..., Stub]) -> None:
    """When the URL names another study, nothing is stored and 409 lists A900."""
    stub = make_stub()
    ds = make_dataset()
    r = post(stub, [encode(ds)], path="/stowrs/studies/1.2.3")
    assert r.code == 409
    failed = parse_json(r.body).failed
    assert [(f.sop_instance_uid, f.failure_reason) for f in failed] == [(ds.SOPInstanceUID, 0xA900)]
    assert files(stub.directory) == []
    assert "does not match" in r.header("Warning")[0]


def test_some_stored_is_202(make_stub: Callable[..., Stub]) -> None:
    """When one instance matches the URL's study and one does not, 202 reports both."""
    stub = make_stub()
    good, bad = make_dataset(study="1.2.3"), make_dataset()
    r = post(stub, [encode(good), encode(bad)], path="/stowrs/studies/1.2.3")
    assert r.code == 202
    resp = parse_json(r.body)
    assert [i.sop_instance_uid for i in resp.referenced] == [good.SOPInstanceUID]
    assert [f.sop_instance_uid for f in resp.failed] == [bad.SOPInstanceUID]
    assert resp.retrieve_url and resp.retrieve_url.endswith("/stowrs/studies/1.2.3")


def test_garbage_part_is_other_failure(make_stub: Callable[..., Stub]) -> None:
    """When a part is not DICOM, it is an Other Failure C000 and the good one is stored."""
    stub = make_stub()
    r = post(stub, [encode(make_dataset()), b"hello, not dicom"])
    assert r.code == 202
    resp = parse_json(r.body)
    assert resp.other_failures == (0xC000,) and len(resp.referenced) == 1
    assert "part 2" in r.header("Warning")[0]


def test_truncated_body_keeps_complete_instances(make_stub: Callable[..., Stub]) -> None:
    """When the body is cut in part 2, 400 lists part 1 as stored and says where it broke."""
    stub = make_stub()
    first = make_dataset()
    body = multipart([encode(first), encode(make_dataset())])[:-500]
    r = answer(stub, stub.post(body, CT))
    assert r.code == 400
    resp = parse_json(r.body)
    assert [i.sop_instance_uid for i in resp.referenced] == [first.SOPInstanceUID]
    assert resp.other_failures == (0xC000,)
    assert "part 2" in r.header("Warning")[0] and "truncated" in r.header("Warning")[0]
    assert len(files(stub.directory)) == 1
    assert leftover_parts(stub.directory) == []  # spare temp files stay empty


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")
def test_path_traversal_uid_refused(make_stub: Callable[..., Stub], tmp_path: Path) -> None:
    """When a UID holds '../', the instance is refused with A900 and nothing is written."""
    stub = make_stub()
    ds = make_dataset(study="1.2.3")
    ds.SeriesInstanceUID = "../../../escaped"
    r = post(stub, [encode(ds)])
    assert r.code == 409
    assert parse_json(r.body).failed[0].failure_reason == 0xA900
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.stat().st_size > 0]
    assert written == []  # only the backend's empty spare temp files exist


REJECTED = [
    pytest.param("application/dicom", 415, "multipart/related", id="not-multipart"),
    pytest.param(
        'multipart/related; type="application/dicom+json"; boundary=X',
        415,
        "not supported",
        id="json-type",
    ),
    pytest.param('multipart/related; type="application/dicom"', 400, "boundary", id="no-boundary"),
]


@pytest.mark.parametrize(("ctype", "code", "message"), REJECTED)
def test_media_type_rejected(
    make_stub: Callable[..., Stub], ctype: str, code: int, message: str
) -> None:
    """When the Content-Type is unsupported or lacks a boundary, 415/400 name what is supported."""
    stub = make_stub()
    r = answer(stub, stub.post(multipart([b"x"]), ctype))
    assert r.code == code and message in r.body.decode()


@pytest.mark.parametrize(
    ("accept", "code", "media"),
    [
        pytest.param(None, 200, "application/dicom+json", id="none"),
        pytest.param("*/*", 200, "application/dicom+json", id="any"),
        pytest.param("application/dicom+xml", 200, "application/dicom+xml", id="xml"),
        pytest.param("text/html", 406, None, id="html"),
    ],
)
def test_accept(
    make_stub: Callable[..., Stub], accept: str | None, code: int, media: str | None
) -> None:
    """When Accept asks for JSON, XML or something else, the answer is JSON, XML or 406."""
    stub = make_stub()
    headers = {"Accept": accept} if accept else {}
    r = post(stub, [encode(make_dataset())], **headers)
    assert r.code == code
    if media:
        assert r.header("Content-Type") == [media]
        parser = parse_xml if media.endswith("xml") else parse_json
        assert len(parser(r.body).referenced) == 1


def test_options_cors(make_stub: Callable[..., Stub]) -> None:
    """When a CORS preflight arrives, 204 echoes origin, method and headers."""
    stub = make_stub()
    d = stub.treq.request(
        "OPTIONS",
        "http://stow.test/stowrs/studies",
        headers={"Origin": "http://viewer", "Access-Control-Request-Method": "POST"},
    )
    r = answer(stub, d)
    assert r.code == 204
    assert r.header("Access-Control-Allow-Origin") == ["http://viewer"]
    assert "POST" in r.header("Access-Control-Allow-Methods")[0]


@pytest.mark.parametrize(
    ("method", "path", "code"),
    [
        ("GET", "/stowrs/studies", 405),
        ("PUT", "/stowrs/studies", 405),
        ("GET", "/elsewhere", 404),
        ("POST", "/stowrs/studies/1.2/series", 404),
    ],
    ids=["get", "put", "other-path-get", "series-post"],
)
def test_other_methods_and_paths(
    make_stub: Callable[..., Stub], method: str, path: str, code: int
) -> None:
    """When another method or path is used, 405 with Allow or 404 comes back."""
    stub = make_stub()
    data = multipart([b"x"]) if method != "GET" else None
    r = answer(
        stub,
        stub.treq.request(
            method, f"http://stow.test{path}", data=data, headers={"Content-Type": CT}
        ),
    )
    assert r.code == code
    if code == 405:
        assert r.header("Allow") == ["POST, OPTIONS"]


def _basic(user_pass: str) -> str:
    return "Basic " + base64.b64encode(user_pass.encode()).decode()


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        pytest.param(None, 401, id="missing"),
        pytest.param("Bearer wrong", 401, id="wrong-token"),
        pytest.param("Bearer t0ken", 200, id="token"),
        pytest.param(_basic("alice:s3cret"), 200, id="basic"),
        pytest.param(_basic("alice:nope"), 401, id="wrong-basic"),
    ],
)
def test_auth(make_stub: Callable[..., Stub], authorization: str | None, code: int) -> None:
    """When credentials are required, only the right token or user:pass is accepted."""
    stub = make_stub(bearer_token=Secret("t0ken"), basic_auth=Secret("alice:s3cret"))
    headers = {"Authorization": authorization} if authorization else {}
    r = post(stub, [encode(make_dataset())], **headers)
    assert r.code == code
    if code == 401:
        assert any(v.startswith("Bearer") for v in r.header("WWW-Authenticate"))
        assert "t0ken" not in r.body.decode() and "s3cret" not in r.body.decode()


def test_transfer_syntax_not_accepted(make_stub: Callable[..., Stub]) -> None:
    """When the instance's transfer syntax is not accepted, it fails with C122."""
    stub = make_stub(accept_transfer_syntaxes=frozenset({"1.2.840.10008.1.2.4.70"}))
    r = post(stub, [encode(make_dataset())])
    assert r.code == 409 and parse_json(r.body).failed[0].failure_reason == 0xC122


def test_part_too_large(make_stub: Callable[..., Stub]) -> None:
    """When a part passes --max-part-size, it fails with A700 and is not stored."""
    stub = make_stub(max_part_size=4000)
    r = post(stub, [encode(make_dataset())])
    assert r.code == 409 and parse_json(r.body).failed[0].failure_reason == 0xA700
    assert files(stub.directory) == []


def test_buffered_body_over_limit_lists_stored_parts(make_stub: Callable[..., Stub]) -> None:
    """When a body read in full (plain twisted.web request) passes --max-request-size
    after its first part, the 413 lists that part as stored and the rest as 0xA700."""
    datasets = [make_dataset() for _ in range(3)]
    encoded = [encode(ds) for ds in datasets]
    limit = len(encoded[0]) + len(encoded[1]) // 2
    stub = make_stub(streaming=False, max_request_size=limit)
    r = post(stub, encoded)
    assert r.code == 413
    response = parse_json(r.body)
    assert [i.sop_instance_uid for i in response.referenced] == [datasets[0].SOPInstanceUID]
    assert response.other_failures == (0xA700,)
    assert len(files(stub.directory)) == 1


def test_declared_size_over_limit(make_stub: Callable[..., Stub]) -> None:
    """When Content-Length passes --max-request-size, 413 comes back and nothing is stored."""
    stub = make_stub(max_request_size=1000)
    r = post(stub, [encode(make_dataset())])
    assert r.code == 413 and files(stub.directory) == []


def test_injected_instance_failure(make_stub: Callable[..., Stub]) -> None:
    """When --fail-rate is 1, every instance fails with --fail-reason."""
    stub = make_stub(faults=FaultSettings(fail_rate=1.0, fail_reason=0xA700))
    r = post(stub, [encode(make_dataset())])
    assert r.code == 409 and parse_json(r.body).failed[0].failure_reason == 0xA700


def test_injected_503(make_stub: Callable[..., Stub]) -> None:
    """When --status 503 is injected, the answer is 503 with Retry-After and nothing stored."""
    stub = make_stub(faults=FaultSettings(status=503, retry_after=7))
    r = post(stub, [encode(make_dataset())])
    assert (r.code, r.header("Retry-After")) == (503, ["7"])
    assert files(stub.directory) == []


def test_delay(make_stub: Callable[..., Stub]) -> None:
    """When --delay is set, the answer waits for the clock."""
    stub = make_stub(faults=FaultSettings(delay=3.0))
    d = stub.post(multipart([encode(make_dataset())]), CT)
    got: list[Any] = []
    d.addBoth(got.append)
    stub.agent.flush()
    assert got == []
    stub.clock.advance(3.0)
    stub.agent.flush()
    assert got and got[0].code == 200


@pytest.mark.parametrize("layout", ["unpack", "discard"])
def test_other_layouts(make_stub: Callable[..., Stub], layout: str) -> None:
    """When --unpack or --ignore is used, files go to <DT>/001.dcm or nowhere."""
    stub = make_stub(layout=layout)
    ds = make_dataset()
    r = post(stub, [encode(ds), encode(make_dataset())])
    assert r.code == 200
    found = files(stub.directory)
    if layout == "discard":
        assert found == []
    else:
        assert [p.name for p in found] == ["001.dcm", "002.dcm"]
        assert found[0].read_bytes() == encode(ds)
        assert len(found[0].parent.name) == len("20260101120000.000")


def test_resend_replaces(make_stub: Callable[..., Stub]) -> None:
    """When the same instance is sent twice, the stored file is replaced, still one file."""
    stub = make_stub()
    ds = make_dataset()
    assert post(stub, [encode(ds)]).code == 200
    ds.PatientName = "Changed^Name"
    assert post(stub, [encode(ds)]).code == 200
    (only,) = files(stub.directory)
    assert only.read_bytes() == encode(ds)


def test_json_body_shape(make_stub: Callable[..., Stub]) -> None:
    """When all are stored, the JSON has no FailedSOPSequence (Orthanc-strict clients)."""
    stub = make_stub()
    r = post(stub, [encode(make_dataset())])
    assert set(json.loads(r.body)) == {"00081190", "00081199"}


def test_storage_folder_removed_while_running(make_stub: Callable[..., Stub]) -> None:
    """When the storage folder is deleted while serving, the next request recreates it."""
    import shutil

    stub = make_stub()
    shutil.rmtree(stub.directory)
    a = make_dataset()
    r = post(stub, [encode(a)])
    assert r.code == 200
    assert len(files(stub.directory)) == 1


def test_fault_while_answering_is_500_logged_once(
    make_stub: Callable[..., Stub], monkeypatch: pytest.MonkeyPatch
) -> None:
    """When answering a stored request raises (a bug), the client gets a plain-text 500,
    not a hang, and the traceback is logged once."""
    from twisted.logger import globalLogPublisher

    from stowpair.receiver.resource import StowResource

    def boom(*args: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(StowResource, "respond", boom)
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    try:
        r = post(make_stub(), [encode(make_dataset())])
    finally:
        globalLogPublisher.removeObserver(events.append)
    assert r.code == 500 and r.header("Content-Type")[0].startswith("text/plain")
    assert b"a bug" not in r.body
    assert [e["event"] for e in events if "log_failure" in e] == ["receiver.error"]
