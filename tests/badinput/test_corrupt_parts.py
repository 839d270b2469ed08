"""Corrupt part headers and control characters in UIDs, over real sockets, against
stowrsd and the archive's ingest endpoint.

Every request holds one valid part and one bad part: the valid one is stored (202),
the bad one fails with 0xC000 when its header cannot be parsed and 0xA900 when a UID
breaks PS3.5 §9.1, with a one-line reason. 0x0110 (processing failure) never appears
and nothing is logged with a traceback: those are for the server's own faults.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import pytest_twisted

from stowpair.dicom.response import StoreResponse, parse_json
from tests.badinput.conftest import LogWatcher
from tests.badinput.dicomparts import CT_IMAGE, Uids, data_set, element, file_meta, instance
from tests.badinput.servers import Target, start_stowpair, start_stowrsd

_ids = itertools.count(1)
ROOT = "1.2.826.0.1.3680043.8.498.77"


def fresh_uids() -> Uids:
    """UIDs not used before in this session (the archive keeps the first it stores)."""
    n = next(_ids)
    return Uids(CT_IMAGE, f"{ROOT}.{n}.3", f"{ROOT}.{n}", f"{ROOT}.{n}.2")


def _tag(group: int, elem: int) -> bytes:
    return struct.pack("<HH", group, elem)


def with_vr(tag: tuple[int, int], vr: bytes) -> Callable[[Uids], bytes]:
    """The instance with the VR bytes of element ``tag`` replaced."""

    def make(u: Uids) -> bytes:
        data = instance(u)
        at = data.index(_tag(*tag), 132 if tag[0] != 2 else 0) + 4
        return data[:at] + vr + data[at + 2 :]

    return make


def cut_after(tag: tuple[int, int], extra: int) -> Callable[[Uids], bytes]:
    """The instance cut ``extra`` bytes into the element ``tag``."""

    def make(u: Uids) -> bytes:
        data = instance(u)
        return data[: data.index(_tag(*tag), 132) + extra]

    return make


def with_extra(extra: bytes) -> Callable[[Uids], bytes]:
    return lambda u: file_meta(u) + data_set(u, extra)


def with_uid(field: str, value: str) -> Callable[[Uids], bytes]:
    return lambda u: instance(Uids(**{**u.__dict__, field: value}))


_ITEM = struct.pack("<HHI", 0xFFFE, 0xE000, 12)


@dataclass(frozen=True)
class Case:
    make: Callable[[Uids], bytes]
    reason: int
    #: The UIDs can be read, so the failure is listed in the FailedSOPSequence.
    listed: bool
    words: str


CASES = {
    "vr-sop-instance-U4": Case(with_vr((0x0008, 0x0018), b"U4"), 0xC000, True, "unknown VR"),
    "vr-study-nul": Case(with_vr((0x0020, 0x000D), b"\0\0"), 0xC000, True, "(0020,000D)"),
    "vr-sop-class-nul": Case(with_vr((0x0008, 0x0016), b"\x01\x02"), 0xC000, False, "(0008,0016)"),
    "vr-patient-name-ZZ": Case(with_vr((0x0010, 0x0010), b"ZZ"), 0xC000, True, "unknown VR"),
    "vr-modality-FD": Case(with_vr((0x0008, 0x0060), b"FD"), 0xC000, True, "cannot be decoded"),
    "vr-meta-ts-U4": Case(with_vr((0x0002, 0x0010), b"U4"), 0xC000, False, "Value Representation"),
    "vr-meta-media-U4": Case(with_vr((0x0002, 0x0003), b"U4"), 0xC000, True, "unknown VR"),
    "vr-in-sequence-item": Case(
        with_extra(element(0x0040, 0x0275, "SQ", _ITEM + element(0x0008, 0x1150, "U4", b"1.2"))),
        0xC000,
        True,
        "cut",
    ),
    "cut-in-tag": Case(cut_after((0x0020, 0x000D), 2), 0xC000, True, "element header"),
    "cut-in-vr": Case(cut_after((0x0020, 0x000D), 5), 0xC000, True, "element header"),
    "cut-in-length": Case(cut_after((0x0020, 0x000D), 7), 0xC000, True, "element header"),
    "cut-in-value": Case(cut_after((0x0020, 0x000E), 12), 0xC000, True, "is cut"),
    "length-lie": Case(
        with_extra(element(0x0018, 0x0015, "UT", b"HEAD", length=2**31)), 0xC000, True, "is cut"
    ),
    "uid-newline": Case(with_uid("sop_instance", "1.2.3\n"), 0xA900, False, "SOP Instance UID"),
    "uid-space": Case(with_uid("sop_instance", "1.2.34 "), 0xA900, False, "contains ' '"),
    "uid-two-nuls": Case(with_uid("sop_instance", "1.2.34\0\0"), 0xA900, False, "SOP Instance UID"),
    "uid-carriage-return": Case(with_uid("study", "1.2.3\r"), 0xA900, True, "Study Instance UID"),
    "uid-tab-series": Case(with_uid("series", "1.2\t3"), 0xA900, True, "Series Instance UID"),
    "uid-escape-class": Case(with_uid("sop_class", "1.2.3\x1b"), 0xA900, False, "SOP Class UID"),
    "uid-leading-zero": Case(with_uid("sop_instance", "1.2.03"), 0xA900, False, "leading zero"),
}


@pytest.fixture(scope="module", params=["stowrsd", "stowrsd-header-workers", "ingest"])
def target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    root = tmp_path_factory.mktemp(request.param)
    if request.param == "ingest":
        yield from start_stowpair(root)
    else:
        yield from start_stowrsd(root, header_workers=2 if "workers" in request.param else 0)


def stow(target: Target, *parts: bytes) -> bytes:
    body = b"".join(b"--B\r\nContent-Type: application/dicom\r\n\r\n" + p + b"\r\n" for p in parts)
    body += b"--B--\r\n"
    return (
        f"POST {target.prefix}/studies HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        'Content-Type: multipart/related; type="application/dicom"; boundary=B\r\n'
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def reasons(response: StoreResponse) -> list[int]:
    return [f.failure_reason for f in response.failed] + list(response.other_failures)


@pytest.mark.parametrize("name", list(CASES))
@pytest_twisted.ensureDeferred
async def test_bad_part_fails_alone_with_its_reason(
    target: Target, log_watcher: LogWatcher, name: str
) -> None:
    """When a part's header is corrupt or a UID holds a control character, that part
    fails with 0xC000 or 0xA900 and a one-line reason, the valid part is stored, and
    nothing is logged with a traceback."""
    case = CASES[name]
    good, bad = fresh_uids(), fresh_uids()
    log_watcher.take()
    workers = getattr(target.service, "header_workers", None)
    offloaded = workers.offloaded if workers is not None else 0
    r = await target.send(stow(target, instance(good), case.make(bad)))
    assert r.status == 202, (r.status, r.body[:300])
    response = parse_json(r.body)
    assert [i.sop_instance_uid for i in response.referenced] == [good.sop_instance]
    assert reasons(response) == [case.reason]
    assert [f.sop_instance_uid for f in response.failed] == (
        [bad.sop_instance] if case.listed else []
    )
    warnings = [v.decode() for v in r.header(b"warning")]
    assert len(warnings) == 1 and case.words in warnings[0], warnings
    assert log_watcher.take() == []
    if workers is not None:  # the valid part was in flight: a worker read the bad one
        assert workers.offloaded == offloaded + 1
    await target.settle()
    stored = {p.name for p in target.storage.glob("*/*/*.dcm")}
    assert f"{good.sop_instance}.dcm" in stored
    assert not any(n.startswith(("1.2.3.", "1.2.34.", "1.2.03.")) for n in stored)
