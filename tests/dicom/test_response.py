"""The Store Instances Response Module: build, parse, round trip."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stowpair.dicom.response import (
    FailedInstance,
    ReferencedInstance,
    ResponseParseError,
    StoreResponse,
    parse_json,
    parse_xml,
)

uids = st.lists(st.integers(min_value=0, max_value=10**6), min_size=2, max_size=6).map(
    lambda parts: ".".join(map(str, parts))
)
urls = st.none() | st.lists(st.text("abcXYZ019._~&%<>-", min_size=1, max_size=8), max_size=4).map(
    lambda segments: "http://h:8080/" + "/".join(segments)
)
codes = st.integers(min_value=0, max_value=0xFFFF)
responses = st.builds(
    StoreResponse,
    retrieve_url=urls,
    referenced=st.lists(st.builds(ReferencedInstance, uids, uids, urls, st.none() | codes)).map(
        tuple
    ),
    failed=st.lists(st.builds(FailedInstance, uids, uids, codes)).map(tuple),
    other_failures=st.lists(codes).map(tuple),
)


@given(responses)
def test_json_round_trip(response: StoreResponse) -> None:
    """When a response is written as DICOM JSON and parsed back, it is unchanged."""
    assert parse_json(response.to_json()) == response


@given(responses)
def test_xml_round_trip(response: StoreResponse) -> None:
    """When a response is written as Native DICOM Model XML and parsed back, it is unchanged."""
    assert parse_xml(response.to_xml()) == response


def test_json_shape() -> None:
    """When all instances are stored, FailedSOPSequence is absent and tags are DICOM JSON."""
    r = StoreResponse("http://h/s", (ReferencedInstance("1.2", "1.3", "http://h/i"),))
    data = json.loads(r.to_json())
    assert set(data) == {"00081190", "00081199"}
    assert data["00081199"]["Value"][0]["00081155"] == {"vr": "UI", "Value": ["1.3"]}


def test_orthanc_empty_sequence_without_value() -> None:
    """When an SQ comes without "Value" (Orthanc), it reads as empty."""
    body = (
        b'{"00080005":{"vr":"CS","Value":["ISO_IR 100"]},"00081198":{"vr":"SQ"},'
        b'"00081199":{"vr":"SQ","Value":[{"00081150":{"vr":"UI","Value":["1.2"]},'
        b'"00081155":{"vr":"UI","Value":["1.3"]}}]}}'
    )
    r = parse_json(body)
    assert r.failed == () and r.referenced == (ReferencedInstance("1.2", "1.3"),)


def test_xml_without_namespace_and_lowercase_tag() -> None:
    """When XML has no namespace and lowercase tags, it still parses."""
    body = (
        b'<NativeDicomModel><DicomAttribute tag="00081198" vr="SQ"><Item number="1">'
        b'<DicomAttribute tag="00081155" vr="UI"><Value number="1">1.3</Value></DicomAttribute>'
        b'<DicomAttribute tag="00081197" vr="US"><Value number="1">49442</Value></DicomAttribute>'
        b"</Item></DicomAttribute></NativeDicomModel>"
    )
    assert parse_xml(body).failed == (FailedInstance("", "1.3", 0xC122),)


BAD_JSON = [
    pytest.param(b"<html>oops</html>", "not DICOM JSON", id="html"),
    pytest.param(b"", "not DICOM JSON", id="empty"),
    pytest.param(b"[1, 2]", "must be an object", id="array"),
    pytest.param(b'{"00081199": "x"}', "not an object", id="element-not-object"),
    pytest.param(b'{"00081199": {"vr": "SQ", "Value": [1]}}', "item 1 is not an object", id="item"),
    pytest.param(
        b'{"00081199": {"vr": "SQ", "Value": [{}]}}', "ReferencedSOPInstanceUID", id="no-uid"
    ),
    pytest.param(
        b'{"00081198": {"vr": "SQ", "Value": [{"00081155": {"vr": "UI", "Value": ["1"]}}]}}',
        "FailureReason",
        id="no-reason",
    ),
    pytest.param(
        b'{"00081198": {"vr": "SQ", "Value": [{"00081155": {"vr": "UI", "Value": ["1"]},'
        b'"00081197": {"vr": "US", "Value": ["x"]}}]}}',
        "not a number",
        id="bad-reason",
    ),
]


@pytest.mark.parametrize(("body", "message"), BAD_JSON)
def test_bad_json(body: bytes, message: str) -> None:
    """When a JSON body is not a readable module, ResponseParseError says why."""
    with pytest.raises(ResponseParseError, match=message):
        parse_json(body)


@pytest.mark.parametrize(
    "body",
    [b"<html><body>Bad Gateway</body></html>", b"not xml", b""],
    ids=["html", "text", "empty"],
)
def test_bad_xml(body: bytes) -> None:
    """When an XML body is not a NativeDicomModel, ResponseParseError is raised."""
    with pytest.raises(ResponseParseError):
        parse_xml(body)


@given(st.binary(max_size=200))
def test_random_bytes_raise_only_parse_error(body: bytes) -> None:
    """When random bytes are parsed, the only exception is ResponseParseError."""
    for parser in (parse_json, parse_xml):
        try:
            parser(body)
        except ResponseParseError:
            pass
