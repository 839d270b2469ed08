"""A request that crosses the size limit never hides stored instances (real sockets,
stowrsd and the archive's ingest endpoint).

A declared Content-Length over the limit is answered 413 before the body is read, so
nothing is stored. A chunked body that passes the limit is answered 413 with the Store
Instances Response: the parts that ended within the limit are stored and listed in the
ReferencedSOPSequence, the rest is an Other Failure 0xA700 and nothing of it is stored.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor

from stowpair.config.loader import load_config
from stowpair.dicom.response import parse_json
from stowpair.service import StowpairService
from tests.badinput.dicomparts import CT_IMAGE, Uids, element, instance
from tests.badinput.servers import AET, SERVICE_CONFIG, Target, start_stowrsd

LIMIT = 20_000
PART = 4_000  # about; each part's instance carries ~3.5 kB of padding
_ids = itertools.count(1)


@pytest.fixture(scope="module", params=["stowrsd", "ingest"])
def target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    root = tmp_path_factory.mktemp(request.param)
    if request.param == "stowrsd":
        yield from start_stowrsd(root, max_request_size=LIMIT)
    else:
        yield from start_ingest(root)


def start_ingest(root: Path) -> Iterator[Target]:
    """The whole stowpair service with ``archive.max_request_bytes = LIMIT``."""
    storage = root / "archive"
    conf = root / "stowpair.toml"
    text = SERVICE_CONFIG.format(aet=AET, storage=storage, rest="").replace(
        "[logging]", f"max_request_bytes = {LIMIT}\n[logging]"
    )
    conf.write_text(text)
    service = StowpairService(load_config(conf), reactor)
    service.startService()
    pytest_twisted.blockon(service.ready)
    assert service.rest_port is not None
    port = service.rest_port.getHost().port
    try:
        yield Target("ingest", port, f"/dcm4chee-arc/aets/{AET}/rs", storage, root, service)
    finally:
        pytest_twisted.blockon(service.stopService())


def parts(count: int) -> list[tuple[str, bytes]]:
    """(SOP Instance UID, instance bytes) of fresh instances of about PART bytes."""
    out = []
    for _ in range(count):
        n = next(_ids)
        root = f"1.2.826.0.1.3680043.8.498.66.{n}"
        uids = Uids(CT_IMAGE, f"{root}.3", root, f"{root}.2")
        padding = element(0x0009, 0x1010, "OB", b"\0" * (PART - 500))
        out.append((uids.sop_instance, instance(uids, extra=padding)))
    return out


def body_crossing(where: str) -> tuple[bytes, list[str]]:
    """A multipart body of 8 parts whose byte LIMIT falls in part 3's content
    (``mid-part``) or in part 3's header lines (``between``); the SOP UIDs of the two
    parts that end within the limit."""
    instances = parts(8)
    encoded = [
        b"--B\r\nContent-Type: application/dicom\r\n\r\n" + data + b"\r\n" for _, data in instances
    ]
    head3 = len(b"--B\r\nContent-Type: application/dicom\r\n\r\n")
    before3 = len(encoded[0]) + len(encoded[1])
    # the preamble (ignored by RFC 2046 parsers) moves the limit to the wanted place
    target = before3 + (head3 // 2 if where == "between" else head3 + PART // 2)
    preamble = b"x" * (LIMIT - target)
    body = preamble + b"\r\n" + b"".join(encoded) + b"--B--\r\n"
    return body, [uid for uid, _ in instances[:2]]


def head(target: Target, framing: str, length: int) -> bytes:
    size = (
        f"Content-Length: {length}" if framing == "content-length" else "Transfer-Encoding: chunked"
    )
    return (
        f"POST {target.prefix}/studies HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        'Content-Type: multipart/related; type="application/dicom"; boundary=B\r\n'
        f"{size}\r\n\r\n"
    ).encode()


def chunked(body: bytes, size: int = 1500) -> list[bytes | float]:
    pieces: list[bytes | float] = []
    for i in range(0, len(body), size):
        chunk = body[i : i + size]
        pieces += [f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n", 0.002]
    return [*pieces, b"0\r\n\r\n"]


def stored_files(target: Target) -> set[str]:
    return {p.stem for p in target.storage.glob("*/*/*.dcm")}


@pytest.mark.parametrize("where", ["mid-part", "between"])
@pytest_twisted.ensureDeferred
async def test_chunked_body_over_limit_lists_what_was_stored(target: Target, where: str) -> None:
    """When a chunked body passes the limit after two parts ended, the 413 carries the
    Store Instances Response listing those two as stored and the rest as an Other
    Failure 0xA700; exactly those two are on disk."""
    body, stored_uids = body_crossing(where)
    before = stored_files(target)
    r = await target.send([head(target, "chunked", 0), *chunked(body)])
    assert r.status == 413, (r.status, r.body[:300])
    assert r.content_type == "application/dicom+json"
    response = parse_json(r.body)
    assert [i.sop_instance_uid for i in response.referenced] == stored_uids
    assert response.other_failures == (0xA700,) and response.failed == ()
    warnings = b" ".join(r.header(b"warning")).decode()
    expected = "in part 3" if where == "mid-part" else "between parts"
    assert f"passed {LIMIT} bytes" in warnings and expected in warnings, warnings
    await target.settle()
    assert stored_files(target) - before == set(stored_uids)


@pytest.mark.parametrize("where", ["mid-part", "between"])
@pytest_twisted.ensureDeferred
async def test_declared_length_over_limit_stores_nothing(target: Target, where: str) -> None:
    """When the declared Content-Length passes the limit, the 413 comes before the body
    and says nothing was stored; nothing is."""
    body, _ = body_crossing(where)
    before = stored_files(target)
    r = await target.send([head(target, "content-length", len(body)), body])
    assert r.status == 413, (r.status, r.body[:300])
    assert b"nothing was read or stored" in r.body
    await target.settle()
    assert stored_files(target) == before
