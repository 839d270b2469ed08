"""Hypothesis strategies for hostile STOW-RS requests, as raw bytes.

Every strategy yields a :class:`RawRequest`: the exact bytes to write (possibly split
into several writes), whether to shut the write side afterwards (a body shorter than
its declared length then ends instead of idling), and a short label for messages.
Sizes are drawn as counts and expanded with cheap repetition, so "huge" stays cheap to
generate.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import Any
from urllib.parse import quote

from hypothesis import strategies as st

from tests.badinput.dicomparts import (
    CT_IMAGE,
    EXPLICIT_LE,
    MARKER,
    STUDY_IN_URL,
    Uids,
    data_set,
    element,
    file_meta,
    hostile_uids,
    instance,
    valid_uids,
)

CRLF = b"\r\n"
#: Tags (little endian) of the elements whose VR a "corrupt-vr" payload replaces.
_VR_TAGS = [
    bytes.fromhex(h)
    for h in ("02000300", "02001000", "08001600", "08001800", "08006000", "10001000", "20000d00")
]


@dataclass
class RawRequest:
    pieces: list[bytes | float]
    half_close: bool
    label: str

    def __repr__(self) -> str:  # hypothesis prints failing examples: keep it readable
        data = self.data
        return f"RawRequest({self.label}, {len(data)} bytes, head={data[:300]!r})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))

    @property
    def data(self) -> bytes:
        return b"".join(p for p in self.pieces if isinstance(p, bytes))


# -- DICOM payloads ------------------------------------------------------------------------


@st.composite
def good_uids(draw: st.DrawFn, study: str | None = None) -> Uids:
    return Uids(CT_IMAGE, draw(valid_uids), study or draw(valid_uids), draw(valid_uids))


@st.composite
def payloads(draw: st.DrawFn) -> tuple[str, bytes]:
    """(label, part bytes): valid, hostile-UID, truncated and garbage DICOM."""
    uids = draw(good_uids(draw(st.sampled_from([None, STUDY_IN_URL]))))
    kind = draw(
        st.sampled_from(
            [
                "valid",
                "hostile-uid",
                "truncated",
                "group-length",
                "length-lie",
                "after-dicm",
                "garbage",
                "empty",
                "bare",
                "bad-ts",
                "media-mismatch",
                "zeros",
                "corrupt-vr",
            ]
        )
    )
    if kind == "valid":
        return kind, instance(uids)
    if kind == "hostile-uid":
        field = draw(
            st.sampled_from(["sop_instance", "study", "series", "sop_class", "media_instance"])
        )
        bad = Uids(**{**uids.__dict__, field: draw(hostile_uids)})
        return f"{kind}:{field}", instance(bad)
    if kind == "truncated":
        full = instance(uids)
        return kind, full[: draw(st.integers(0, len(full) - 1))]
    if kind == "group-length":
        return kind, instance(uids, group_length=draw(st.integers(0, 2**32 - 1)))
    if kind == "length-lie":
        lie = element(0x0010, 0x1010, "AS", b"042Y", length=draw(st.integers(0, 0xFFFF)))
        long_lie = element(0x0018, 0x0015, "UT", b"HEAD", length=draw(st.integers(0, 2**32 - 1)))
        return kind, file_meta(uids) + data_set(uids, draw(st.sampled_from([lie, long_lie])))
    if kind == "after-dicm":
        return kind, b"\0" * 128 + b"DICM" + draw(st.binary(max_size=400))
    if kind == "garbage":
        return kind, draw(st.binary(max_size=600))
    if kind == "empty":
        return kind, b""
    if kind == "bare":
        return kind, data_set(uids)  # the part's transfer-syntax parameter may name one
    if kind == "bad-ts":
        ts = draw(
            st.sampled_from(
                [
                    "1.2.3",
                    "1.2.840.10008.1.2.1.99",
                    "",
                    "abc",
                    "1.2.840.10008.1.2.4.50",
                    hostile_uids,
                ]
            )
        )
        ts = ts if isinstance(ts, str) else draw(ts)
        return kind, instance(Uids(**{**uids.__dict__, "transfer_syntax": ts}))
    if kind == "corrupt-vr":  # one element's VR bytes replaced (0xC000, never 0x0110)
        data = instance(uids)
        tag = draw(st.sampled_from(_VR_TAGS))
        at = data.index(tag, 132 if tag[:2] != b"\x02\x00" else 0) + 4
        named = st.sampled_from([b"U4", b"ZZ", b"FD", b"US", b"SQ", b"OB", b"UN", b"AT"])
        letters = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=2, max_size=2)
        vr = draw(st.one_of(named, letters.map(str.encode), st.binary(min_size=2, max_size=2)))
        return f"{kind}:{tag.hex()}:{vr.hex()}", data[:at] + vr + data[at + 2 :]
    if kind == "media-mismatch":
        return kind, instance(Uids(**{**uids.__dict__, "media_instance": draw(valid_uids)}))
    return kind, b"\0" * draw(st.integers(1, 20_000))


# -- multipart bodies ----------------------------------------------------------------------

_PART_TYPES = [
    "application/dicom",
    "application/dicom",
    "application/dicom",
    f"application/dicom; transfer-syntax={EXPLICIT_LE}",
    "application/dicom; transfer-syntax=1.2.840.10008.1.2",
    "application/dicom; transfer-syntax=garbage",
    "application/dicom; transfer-syntax=1.2.840.10008.1.2.1.99",
    'application/dicom; transfer-syntax="unterminated',
    "application/dicom+json",
    "image/jpeg",
    "text/plain",
    "",
    ";;;",
    "application/dicom; =; ==",
]


@st.composite
def part_headers(draw: st.DrawFn) -> bytes:
    kind = draw(
        st.sampled_from(
            [
                "normal",
                "normal",
                "normal",
                "none",
                "dup",
                "huge",
                "many",
                "nocolon",
                "binary",
                "folded",
            ]
        )
    )
    ctype = draw(st.sampled_from(_PART_TYPES)).encode()
    line = b"Content-Type: " + ctype + CRLF
    if kind == "normal":
        return line
    if kind == "none":
        return b""
    if kind == "dup":
        return line + b"Content-Type: text/html" + CRLF
    if kind == "huge":
        return b"X-Junk: " + b"h" * draw(st.integers(8000, 20_000)) + CRLF + line
    if kind == "many":
        n = draw(st.integers(60, 300))
        return b"".join(b"X-H%d: v" % i + CRLF for i in range(n)) + line
    if kind == "nocolon":
        return b"this is not a header" + CRLF + line
    if kind == "binary":
        return b"X-\xff\x00: \xfe\x01" + CRLF + line
    return (
        b"Content-Type: application/dicom;"
        + CRLF
        + b"  transfer-syntax="
        + EXPLICIT_LE.encode()
        + CRLF
    )


@st.composite
def multipart_bodies(draw: st.DrawFn, boundary: bytes) -> tuple[str, bytes]:
    """(label, body) for ``boundary``: well-formed or broken in one or more ways."""
    shape = draw(st.sampled_from(["normal", "normal", "tiny-parts", "broken"]))
    out = b""
    labels = []
    if draw(st.booleans()):
        out += draw(st.binary(max_size=100)).replace(b"--" + boundary, b"") + CRLF  # preamble
    if shape == "tiny-parts":
        n = draw(st.integers(20, 300))
        empty = draw(st.booleans())
        piece = (
            b"--"
            + boundary
            + CRLF
            + (b"" if empty else b"Content-Type: application/dicom" + CRLF)
            + CRLF
            + b"x"
            + CRLF
        )
        out += piece * n
        labels.append(f"tiny-parts:{n}")
    else:
        for _ in range(draw(st.integers(0 if shape == "broken" else 1, 4))):
            label, payload = draw(payloads())
            labels.append(label)
            out += b"--" + boundary + draw(st.sampled_from([b"", b"", b"  ", b"\t"])) + CRLF
            out += draw(part_headers()) + CRLF + payload + CRLF
    close = draw(
        st.sampled_from(
            [
                b"--%s--\r\n",
                b"--%s--\r\n",
                b"--%s--",
                b"--%s--\r\nepilogue junk",
                b"",
                b"--%s-",
                b"--%s\r\n",
                b"%s--",
            ]
        )
    )
    out += close.replace(b"%s", boundary) if b"%s" in close else close
    if shape == "broken":
        damage = draw(
            st.sampled_from(["lf-only", "garbage-between", "cut", "insert-boundary", "none"])
        )
        labels.append(damage)
        if damage == "lf-only":
            out = out.replace(CRLF, b"\n")
        elif damage == "garbage-between" and out:
            at = out.find(b"--" + boundary, 1)
            junk = draw(st.binary(min_size=1, max_size=200))
            out = out[:at] + junk + out[at:] if at > 0 else junk + out
        elif damage == "cut" and out:
            out = out[: draw(st.integers(0, len(out) - 1))]
        elif damage == "insert-boundary":
            out = b"--" + boundary + CRLF + CRLF + b"--" + boundary + b"--" + out
    return "+".join(labels) or "no-parts", out


# -- headers and framing ------------------------------------------------------------------

_BOUNDARIES = st.one_of(
    st.sampled_from(
        [
            "XBOUNDARYX",
            "myboundary",
            "b 1",
            "a" * 70,
            "a" * 73,
            "a" * 200,
            "a" * 201,
            "=_?",
            "--",
            "-",
            "x--y",
            "'()+_,-./:=?",
        ]
    ),
    st.text(alphabet="abcXYZ0123456789'()+_,-./:=? ", min_size=1, max_size=80),
)


@st.composite
def content_types(draw: st.DrawFn, boundary: str) -> tuple[str, bytes | None]:
    """(label, Content-Type value or None for no header)."""
    b = boundary
    q = f'"{b}"' if draw(st.booleans()) or " " in b else b
    choices = [
        ("good", f'multipart/related; type="application/dicom"; boundary={q}'),
        ("good-untyped", f"multipart/related; boundary={q}"),
        ("good-case", f"Multipart/Related; TYPE=application/dicom; Boundary={q}"),
        ("missing", None),
        ("form-data", f"multipart/form-data; boundary={q}"),
        ("single", "application/dicom"),
        ("json-type", f'multipart/related; type="application/dicom+json"; boundary={q}'),
        ("no-boundary", 'multipart/related; type="application/dicom"'),
        ("empty-boundary", 'multipart/related; type="application/dicom"; boundary='),
        ("empty-quoted", 'multipart/related; type="application/dicom"; boundary=""'),
        ("unterminated", f'multipart/related; type="application/dicom"; boundary="{b}'),
        ("dup-boundary", f"multipart/related; boundary={q}; boundary=other"),
        ("semicolons", f"multipart/related;;; ;boundary={q};;"),
        ("no-equals", f"multipart/related; type; boundary={q}; junk"),
        (
            "many-params",
            "multipart/related; " + "; ".join(f"p{i}=v" for i in range(300)) + f"; boundary={q}",
        ),
        ("charset", f"multipart/related; charset=\u00ff; boundary={q}"),
        ("garbage", "\x00\x01 garbage"),
        ("empty", ""),
    ]
    label, value = draw(st.sampled_from(choices))
    return label, None if value is None else value.encode("utf-8")


_ACCEPTS = [
    None, None, None,
    b"application/dicom+json",
    b"application/dicom+xml",
    b"*/*",
    b"image/jpeg",
    b"application/dicom+json;q=0",
    b"application/dicom+json;q=abc, */*;q=0.1",
    b"text/html, application/xhtml+xml",
    b",,,;;;",
]  # fmt: skip

_EXTRA_HEADERS = [
    [],
    [],
    [(b"Expect", b"100-continue")],
    [(b"Expect", b"100-Continue"), (b"Expect", b"100-continue")],
    [(b"Expect", b"200-ok")],
    [(b"Expect", b"")],
    [(b"Authorization", b"Bearer \xff\x00garbage")],
    [(b"Authorization", b"Basic !!!not-base64")],
    [(b"Origin", b"http://evil.example")],
    [(b"Host", b"a"), (b"Host", b"b")],
    [(b"X-Nul", b"a\x00b")],
    [(b"Content-Encoding", b"gzip")],
    [(b"Connection", b"close")],
    [(b"Connection", b"keep-alive, Upgrade"), (b"Upgrade", b"h2c")],
]


@st.composite
def header_noise(draw: st.DrawFn) -> bytes:
    """Extra request header lines, hostile or not."""
    kind = draw(
        st.sampled_from(
            ["none", "none", "huge", "many", "nocolon", "folded", "space-colon", "binary"]
        )
    )
    if kind == "none":
        return b""
    if kind == "huge":
        return b"X-Huge: " + b"h" * draw(st.sampled_from([8000, 16000, 16400, 70000])) + CRLF
    if kind == "many":
        n = draw(st.sampled_from([64, 200, 499, 501, 1000]))
        return b"".join(b"X-M%d: %d" % (i, i) + CRLF for i in range(n))
    if kind == "nocolon":
        return b"NoColonHere" + CRLF
    if kind == "folded":
        return b"X-Folded: a" + CRLF + b" b" + CRLF
    if kind == "space-colon":
        return b"Content-Type : text/plain" + CRLF
    return b"X-\x80\xff: \x00\x7f" + CRLF


@st.composite
def framed(draw: st.DrawFn, head: bytes, body: bytes) -> tuple[str, bytes, bool]:
    """(label, bytes, half_close): ``head`` (request line + headers, no blank line)
    with ``body`` framed by Content-Length or chunked encoding, right or wrong."""
    kind = draw(
        st.sampled_from(
            ["length", "length", "length", "chunked", "chunked", "short", "long", "bad-length",
             "dup-length", "bad-chunk", "unterminated-chunks", "both", "none", "te-unknown"]
        )
    )  # fmt: skip
    n = len(body)
    if kind == "length":
        return kind, head + b"Content-Length: %d\r\n\r\n" % n + body, False
    if kind == "short":
        return (
            kind,
            head + b"Content-Length: %d\r\n\r\n" % max(n - draw(st.integers(1, 50)), 0) + body,
            False,
        )
    if kind == "long":
        return (
            kind,
            head + b"Content-Length: %d\r\n\r\n" % (n + draw(st.integers(1, 10**6))) + body,
            True,
        )
    if kind == "bad-length":
        value = draw(
            st.sampled_from(
                [
                    b"-1",
                    b"abc",
                    b"1e3",
                    b" 12",
                    b"99999999999999999999999",
                    b"0x10",
                    b"",
                    b"+5",
                    b"1,1",
                    b"-0",
                ]
            )
        )
        return kind, head + b"Content-Length: " + value + b"\r\n\r\n" + body, True
    if kind == "dup-length":
        other = n + draw(st.integers(-5, 5))
        return (
            kind,
            head + b"Content-Length: %d\r\nContent-Length: %d\r\n\r\n" % (n, other) + body,
            True,
        )
    if kind in ("chunked", "both", "te-unknown"):
        chunks = _chunk(body, draw(st.integers(1, 9000)))
        te = b"gzip, chunked" if kind == "te-unknown" else b"chunked"
        cl = b"Content-Length: 5\r\n" if kind == "both" else b""
        ext = draw(st.sampled_from([b"", b";name=value", b";" + b"e" * 5000]))
        encoded = b"".join(b"%x" % len(c) + ext + CRLF + c + CRLF for c in chunks)
        return (
            kind,
            head + cl + b"Transfer-Encoding: " + te + b"\r\n\r\n" + encoded + b"0\r\n\r\n",
            False,
        )
    if kind == "bad-chunk":
        size = draw(st.sampled_from([b"zz", b"-1", b"ffffffffffffffffff", b"", b"1 1", b"0x10"]))
        return (
            kind,
            head + b"Transfer-Encoding: chunked\r\n\r\n" + size + CRLF + body + CRLF + b"0\r\n\r\n",
            True,
        )
    if kind == "unterminated-chunks":
        return (
            kind,
            head + b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n" % n + body + CRLF,
            True,
        )
    return kind, head + CRLF + body, True  # no length at all: the body is not a body


def _chunk(body: bytes, size: int) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)] or [b""]


@st.composite
def splits(draw: st.DrawFn, data: bytes) -> list[bytes | float]:
    """``data`` in up to 4 writes, so parsers see arbitrary packet boundaries."""
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=3)))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in pairwise(bounds) if b > a] or [data]


# -- whole requests -----------------------------------------------------------------------

_METHODS = [b"POST"] * 8 + [
    b"GET",
    b"HEAD",
    b"PUT",
    b"DELETE",
    b"PATCH",
    b"OPTIONS",
    b"TRACE",
    b"FOO",
    b"post",
    b"P\x00ST",
    b"CONNECT",
    b"G\xffT",
    b"M-SEARCH",
]
_VERSIONS = [b"HTTP/1.1"] * 10 + [
    b"HTTP/1.0",
    b"HTTP/2.0",
    b"HTTP/9.9",
    b"FOO/1.1",
    b"HTTP/1.1 extra",
    b"",
]


#: Paths that are not ``{prefix}/studies[/{uid}]`` (latin-1: ``\xff`` is one raw byte).
_OTHER_PATHS = [
    "/",
    "*",
    "//",
    "/health",
    "/health/x",
    "{prefix}",
    "{prefix}/studies/1.2/series",
    "{prefix}/studies/1.2/x/y",
    "{prefix}/studies?x=%ff&y",
    "{prefix}/studies/%ff%fe",
    "{prefix}/studies/\xff\xfe",
    "{prefix}/STUDIES",
    "{prefix}/studies/" + MARKER,
    "http://evil.example{prefix}/studies",
    "/../../etc/passwd",
    "/%2e%2e/%2e%2e/etc/passwd",
    "/" + "a" * 10_000,
    "/dcm4chee-arc/aets/NOPE/rs/studies",
    "/dcm4chee-arc/aets//rs/studies",
    "/dcm4chee-arc/aets/%00/rs/studies",
    "/dcm4chee-arc/aets/" + "A" * 300 + "/rs/studies",
    "/dcm4chee-arc/aets/..%2f..%2f/rs/studies",
    "/dcm4chee-arc/aets/\xff/rs/studies",
    "/dcm4chee-arc/monitor/export/%ff/x",
    "/dcm4chee-arc/monitor/export/\xff/x/y",
    "/dcm4chee-arc/\xff",
    "/stowrs/\xff\xfe",
]


@st.composite
def study_paths(draw: st.DrawFn, prefix: str) -> tuple[str, bytes]:
    """(label, path) under the service prefix: good, hostile UIDs, unknown paths."""
    kind = draw(
        st.sampled_from(["studies", "studies", "study", "study", "hostile", "hostile-raw", "other"])
    )
    if kind == "studies":
        return kind, (prefix + draw(st.sampled_from(["/studies", "/studies/"]))).encode()
    if kind == "study":
        return kind, f"{prefix}/studies/{STUDY_IN_URL}".encode()
    if kind == "hostile":
        return kind, f"{prefix}/studies/{quote(draw(hostile_uids), safe='')}".encode()
    if kind == "hostile-raw":
        raw = draw(hostile_uids).encode("utf-8").replace(b" ", b"%20").replace(b"\n", b"%0A")
        return kind, prefix.encode() + b"/studies/" + raw
    other = draw(st.sampled_from(_OTHER_PATHS)).replace("{prefix}", prefix)
    return "path", other.encode("latin-1")


@st.composite
def stow_requests(draw: st.DrawFn, prefix: str, focus: str = "any") -> RawRequest:
    """A hostile (sometimes valid) STOW-RS request for the service at ``prefix``.

    ``focus`` narrows the draw: "multipart", "headers", "dicom", "paths" or "any".
    """
    boundary = draw(_BOUNDARIES)
    body_boundary = boundary if draw(st.integers(0, 9)) else draw(_BOUNDARIES)
    method = b"POST" if focus in ("multipart", "dicom") else draw(st.sampled_from(_METHODS))
    if focus == "paths" or (focus in ("headers", "any") and draw(st.booleans())):
        path_label, path = draw(study_paths(prefix))
    else:
        path_label, path = "studies", f"{prefix}/studies".encode()
    del path_label  # the path itself is in the label
    version = b"HTTP/1.1" if focus in ("multipart", "dicom") else draw(st.sampled_from(_VERSIONS))
    ct_label, ctype = (
        draw(content_types(boundary))
        if focus != "dicom"
        else (
            "good",
            f'multipart/related; type="application/dicom"; boundary="{boundary}"'.encode(),
        )
    )
    body_label, body = draw(multipart_bodies(body_boundary.encode("utf-8")))
    head = method + b" " + path + b" " + version + CRLF + b"Host: 127.0.0.1" + CRLF
    if ctype is not None:
        head += b"Content-Type: " + ctype + CRLF
    accept = draw(st.sampled_from(_ACCEPTS)) if focus in ("headers", "any") else None
    if accept is not None:
        head += b"Accept: " + accept + CRLF
    if focus in ("headers", "any"):
        for name, value in draw(st.sampled_from(_EXTRA_HEADERS)):
            head += name + b": " + value + CRLF
        head += draw(header_noise())
    if focus in ("multipart", "dicom"):
        frame_label, data, half = (
            "length",
            head + b"Content-Length: %d\r\n\r\n" % len(body) + body,
            False,
        )
    else:
        frame_label, data, half = draw(framed(head, body))
    label = (
        f"{method!r} {path[:80]!r} {version!r} ct={ct_label} body={body_label} frame={frame_label}"
    )
    return RawRequest(draw(splits(data)), half, label)
