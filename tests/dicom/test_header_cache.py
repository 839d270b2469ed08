"""The cache of element values that decoded without error (stowpair.dicom.header).

It must never change a verdict: a part is refused or read the same whether the cache is
empty or warm, and a value that failed is never remembered.
"""

from __future__ import annotations

import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stowpair.dicom import header
from stowpair.receiver.instance import InstanceError, read_part_header
from tests.badinput.dicomparts import CT_IMAGE, Uids, element, instance

_ROOT = "1.2.826.0.1.3680043.8.498.56"


def _part(n: int, extra: bytes = b"") -> bytes:
    uids = Uids(CT_IMAGE, f"{_ROOT}.1.{n}", f"{_ROOT}.1", f"{_ROOT}.1.2")
    return instance(uids, extra=extra)


def _verdict(data: bytes) -> tuple[str, object]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "part"
        path.write_bytes(data)
        try:
            h = read_part_header(data, path, len(data), 1, None)
        except InstanceError as e:
            return "refused", (e.failure_reason, e.message)
        return "read", h.sop_instance_uid


@pytest.fixture(autouse=True)
def _empty_cache() -> Iterator[None]:
    header._DECODED.clear()
    yield
    header._DECODED.clear()


def test_repeated_values_are_found_in_the_cache() -> None:
    """The second instance of a series decodes only what differs from the first."""
    assert _verdict(_part(1))[0] == "read"
    first = len(header._DECODED)
    assert first > 0
    assert _verdict(_part(2))[0] == "read"
    # only the new SOP Instance UID (and the File Meta's copy of it) were added
    assert len(header._DECODED) - first <= 2


# (0028,0010) Rows is US: two bytes. (0018,9087) Diffusion b-value is FD: eight bytes,
# so two bytes cannot be converted.
_ROWS_OK = element(0x0028, 0x0010, "US", struct.pack("<H", 512))
_B_VALUE_OK = element(0x0018, 0x9087, "FD", struct.pack("<d", 1000.0))
_B_VALUE_BAD = element(0x0018, 0x9087, "FD", b"\x00\x02")


def test_a_failed_value_is_refused_every_time_and_never_cached() -> None:
    good = _part(1, _B_VALUE_OK)
    bad = _part(2, _B_VALUE_BAD)
    assert _verdict(good)[0] == "read"
    for _ in range(2):
        kind, detail = _verdict(bad)
        assert kind == "refused"
        assert detail[0] == 0xC000  # type: ignore[index]
        assert "(0018,9087)" in str(detail)
    assert not any(key[3] == b"\x00\x02" for key in header._DECODED)


def test_the_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(header, "_DECODED_MAX", 5)
    for n in range(1, 20):
        assert _verdict(_part(n))[0] == "read"
        assert len(header._DECODED) <= 5


def test_long_values_are_not_cached() -> None:
    comments = element(0x0020, 0x4000, "LT", b"x" * (header._DECODED_VALUE_MAX + 2))
    assert _verdict(_part(1, comments))[0] == "read"
    assert all(len(key[3]) <= header._DECODED_VALUE_MAX for key in header._DECODED)


_VALID = _part(7, _B_VALUE_OK + _ROWS_OK)


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    data = bytearray(_VALID)
    at = draw(st.integers(132, len(data) - 2))
    data[at : at + 2] = draw(st.binary(min_size=2, max_size=2))
    return bytes(data)


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(damaged())
def test_a_warm_cache_gives_the_verdict_of_a_cold_one(data: bytes) -> None:
    """Any damaged part: the same verdict (and message) with the cache empty and after
    the undamaged instances of its series were read."""
    header._DECODED.clear()
    cold = _verdict(data)
    for n in range(1, 4):
        _verdict(_part(n, _ROWS_OK))
    _verdict(_VALID)
    assert _verdict(data) == cold
