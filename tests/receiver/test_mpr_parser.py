"""The incremental multipart/related parser and Content-Type parsing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stowpair.receiver.mpr_parser import (
    ContentTypeError,
    Limits,
    MultipartError,
    MultipartParser,
    PartData,
    PartEnded,
    PartStarted,
    parse_content_type,
)

B = b"XBOUNDARYX"


def body(
    parts: list[bytes],
    boundary: bytes = B,
    preamble: bytes = b"",
    epilogue: bytes = b"",
    headers: bytes = b"Content-Type: application/dicom\r\n",
) -> bytes:
    out = preamble
    for p in parts:
        out += b"--" + boundary + b"\r\n" + headers + b"\r\n" + p + b"\r\n"
    return out + b"--" + boundary + b"--" + epilogue


def parse(
    data: bytes, chunks: list[int] | None = None, boundary: bytes = B, limits: Limits | None = None
) -> list[tuple[dict[str, str], bytes]]:
    """Feed ``data`` (optionally split at ``chunks`` sizes) and collect the parts."""
    parser = MultipartParser(boundary, limits)
    events = []
    pos = 0
    for size in chunks or []:
        events += parser.feed(data[pos : pos + size])
        pos += size
    events += parser.feed(data[pos:])
    events += parser.close()
    parts: list[tuple[dict[str, str], bytes]] = []
    for e in events:
        if isinstance(e, PartStarted):
            parts.append(({k.lower(): v for k, v in e.headers}, b""))
        elif isinstance(e, PartData):
            parts[-1] = (parts[-1][0], parts[-1][1] + e.data)
        else:
            assert isinstance(e, PartEnded)
            assert e.size == len(parts[-1][1])
    return parts


CT = {"content-type": "application/dicom"}

GOOD = [
    pytest.param(body([b"abc"]), [(CT, b"abc")], id="one-part"),
    pytest.param(
        body([b"a", b"b", b""]), [(CT, b"a"), (CT, b"b"), (CT, b"")], id="three-parts-one-empty"
    ),
    pytest.param(body([b"x"], preamble=b"This is a preamble\r\n"), [(CT, b"x")], id="preamble"),
    pytest.param(
        body([b"x"], epilogue=b"\r\nepilogue --XBOUNDARYX\r\n"), [(CT, b"x")], id="epilogue"
    ),
    pytest.param(
        b"--XBOUNDARYX  \t\r\n\r\nx\r\n--XBOUNDARYX \r\n\r\ny\r\n--XBOUNDARYX--",
        [({}, b"x"), ({}, b"y")],
        id="transport-padding",
    ),
    pytest.param(
        body([b"a\r\n--XBOUNDARYXY\r\nb"]),
        [(CT, b"a\r\n--XBOUNDARYXY\r\nb")],
        id="boundary-prefix-in-data",
    ),
    pytest.param(body([b"\r\n\r\n--"]), [(CT, b"\r\n\r\n--")], id="crlf-and-dashes-in-data"),
    pytest.param(
        body([b"x"], headers=b"CONTENT-TYPE: application/dicom\r\nX-A:  1 \r\n"),
        [({"content-type": "application/dicom", "x-a": "1"}, b"x")],
        id="header-case-and-space",
    ),
    pytest.param(
        body([b"x"], headers=b"X-Long: a\r\n  b\r\n"),
        [({"x-long": "a b"}, b"x")],
        id="folded-header",
    ),
    pytest.param(b"--XBOUNDARYX--", [], id="no-parts"),
]


@pytest.mark.parametrize(("data", "expected"), GOOD)
def test_well_formed_bodies(data: bytes, expected: list[tuple[dict[str, str], bytes]]) -> None:
    """When a well-formed body is parsed, its parts come out with headers and data."""
    assert parse(data) == expected


BAD = [
    pytest.param(b"", "before the first boundary", id="empty"),
    pytest.param(b"garbage without boundary", "before the first boundary", id="no-boundary"),
    pytest.param(body([b"abc"])[:-2], "truncated", id="missing-close"),
    pytest.param(b"--XBOUNDARYX\r\nContent-Type: a", "truncated", id="ends-in-headers"),
    pytest.param(b"--XBOUNDARYX\r\n\r\nabc", "truncated", id="ends-in-data"),
    pytest.param(b"--XBOUNDARYXjunk\r\n", "before the first boundary", id="prefix-only"),
    pytest.param(
        b"--XBOUNDARYX\r\nno colon here\r\n\r\n", "malformed part header", id="bad-header"
    ),
    pytest.param(
        b"--XBOUNDARYX\r\n\r\nx\r\n--XBOUNDARYX  x\r\n", "truncated", id="bad-after-delim"
    ),
]


@pytest.mark.parametrize(("data", "message"), BAD)
def test_malformed_bodies(data: bytes, message: str) -> None:
    """When a body is malformed or truncated, MultipartError says so and where."""
    with pytest.raises(MultipartError, match=message) as info:
        parse(data)
    assert "at byte" in str(info.value)


def test_error_names_part_number() -> None:
    """When the body breaks in the second part, the error names part 2 and the offset."""
    data = body([b"one"])[: -len(b"--XBOUNDARYX--")] + b"--XBOUNDARYX\r\n\r\ntwo"
    with pytest.raises(MultipartError) as info:
        parse(data)
    assert info.value.part == 2
    assert info.value.offset == len(data)


LIMITS = [
    pytest.param(
        b"--XBOUNDARYX\r\nX: " + b"a" * 100 + b"\r\n\r\n--XBOUNDARYX--",
        Limits(max_header_line=50),
        "longer than 50",
        id="header-line",
    ),
    pytest.param(
        b"--XBOUNDARYX\r\nX: " + b"a" * 100,
        Limits(max_header_line=50),
        "longer than 50",
        id="header-line-unterminated",
    ),
    pytest.param(
        b"--XBOUNDARYX\r\n" + b"X: 1\r\n" * 5 + b"\r\n\r\n--XBOUNDARYX--",
        Limits(max_headers=4),
        "more than 4 headers",
        id="header-count",
    ),
    pytest.param(
        body([b"1", b"2", b"3"]), Limits(max_parts=2), "more than 2 parts", id="part-count"
    ),
]


@pytest.mark.parametrize(("data", "limits", "message"), LIMITS)
def test_limits(data: bytes, limits: Limits, message: str) -> None:
    """When a body exceeds a limit, MultipartError names the limit."""
    with pytest.raises(MultipartError, match=message):
        parse(data, limits=limits)


def test_feed_after_error_refused() -> None:
    """When the parser failed, further input raises MultipartError too."""
    parser = MultipartParser(B)
    with pytest.raises(MultipartError):
        parser.feed(b"--XBOUNDARYX\r\nbad\r\n")
    with pytest.raises(MultipartError, match="already stopped"):
        parser.feed(b"more")


def test_boundary_length_checked() -> None:
    """When the boundary is longer than 200 characters, it is refused (RFC 2046 says 70)."""
    with pytest.raises(MultipartError, match="1 to 200"):
        MultipartParser(b"x" * 201)


part_data = st.binary(max_size=200) | st.sampled_from(
    [b"\r\n--XBOUNDARYX", b"--XBOUNDARYX--", b"\r\n", b"\r\n--XBOUNDARYXY", b"\r"]
).flatmap(
    lambda s: st.tuples(st.binary(max_size=20), st.binary(max_size=20)).map(
        lambda t: t[0] + s + b"Z" + t[1]
    )
)


def outcome(raw: bytes, chunks: list[int] | None = None) -> object:
    try:
        return parse(raw, chunks=chunks)
    except MultipartError as e:
        return ("error", e.reason, e.part)


@settings(max_examples=300)
@given(st.lists(part_data, max_size=5), st.data())
def test_any_split_gives_same_parts(parts: list[bytes], data: st.DataObject) -> None:
    """When a body is fed in arbitrary chunks, the outcome is the same as in one feed."""
    raw = body(parts)
    sizes = data.draw(st.lists(st.integers(min_value=0, max_value=len(raw)), max_size=10))
    assert outcome(raw, chunks=sizes) == outcome(raw)


@given(st.lists(st.binary(max_size=300).filter(lambda p: b"XBOUNDARYX" not in p), max_size=4))
def test_parts_without_boundary_round_trip(parts: list[bytes]) -> None:
    """When part data never contains the boundary, every part comes back byte for byte."""
    assert [data for _, data in parse(body(parts))] == parts


@settings(max_examples=300)
@given(
    st.lists(
        st.binary(max_size=50)
        | st.sampled_from([b"--XBOUNDARYX", b"\r\n", b"--", b"\r\n\r\n", b":", b" "]),
        max_size=30,
    ),
    st.lists(st.integers(min_value=0, max_value=40), max_size=8),
)
def test_random_bytes_raise_only_multipart_error(pieces: list[bytes], sizes: list[int]) -> None:
    """When random bytes are fed, the only exception is MultipartError."""
    raw = b"".join(pieces)
    try:
        parse(raw, chunks=sizes, limits=Limits(max_header_line=64, max_headers=4, max_parts=5))
    except MultipartError:
        pass


CONTENT_TYPES = [
    pytest.param(
        'multipart/related; type="application/dicom"; boundary=abc',
        ("multipart/related", {"type": "application/dicom", "boundary": "abc"}),
        id="quoted-type",
    ),
    pytest.param(
        'multipart/related; type=application/dicom; boundary="a b:c"',
        ("multipart/related", {"type": "application/dicom", "boundary": "a b:c"}),
        id="unquoted-type",
    ),
    pytest.param(
        'multipart/related;type="application/dicom";start="<x>"; boundary=uuid',
        ("multipart/related", {"type": "application/dicom", "start": "<x>", "boundary": "uuid"}),
        id="resteasy",
    ),
    pytest.param(
        "Multipart/Related ; TYPE = application/dicom ;",
        ("multipart/related", {"type": "application/dicom"}),
        id="case-and-spaces",
    ),
    pytest.param(
        "application/dicom; transfer-syntax=1.2.840.10008.1.2.1",
        ("application/dicom", {"transfer-syntax": "1.2.840.10008.1.2.1"}),
        id="part-ts",
    ),
    pytest.param('a/b; x="q\\"uote"', ("a/b", {"x": 'q"uote'}), id="escaped-quote"),
]


@pytest.mark.parametrize(("value", "expected"), CONTENT_TYPES)
def test_parse_content_type(value: str, expected: tuple[str, dict[str, str]]) -> None:
    """When a Content-Type is parsed, media type and unquoted params come out."""
    assert parse_content_type(value) == expected


@pytest.mark.parametrize(
    "value",
    ["", "multipart", "a/b; =x", 'a/b; x="open', "a/b; x=1 y"],
    ids=["empty", "no-subtype", "no-name", "unterminated", "junk-after"],
)
def test_parse_content_type_errors(value: str) -> None:
    """When a Content-Type is malformed, ContentTypeError is raised."""
    with pytest.raises(ContentTypeError):
        parse_content_type(value)
