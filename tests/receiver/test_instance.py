"""Reading a part's header from the bytes kept in memory, or from its file."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stowpair.receiver.instance import InstanceError, read_part_header
from tests.badinput.dicomparts import CT_IMAGE, Uids, instance
from tests.support.receiver import encode, make_dataset


def test_header_read_from_memory_when_it_fits(tmp_path: Path) -> None:
    """When the first bytes hold the whole header, the file is not opened at all."""
    ds = make_dataset()
    data = encode(ds)
    head = data[: len(data) - 100]  # pixel data cut: the header is complete
    header = read_part_header(head, tmp_path / "never-created", len(data), 1, None)
    assert header.sop_instance_uid == ds.SOPInstanceUID


def test_header_longer_than_memory_read_from_file(tmp_path: Path) -> None:
    """When the header goes on past the bytes in memory, it is read from the file, with
    every attribute (a cut at an element boundary is not taken for the end)."""
    ds = make_dataset()
    ds.ImageComments = "x" * 4000  # pushes later attributes past the cut below
    ds.RequestedProcedureDescription = "last attribute"  # (0032,1060): after the cut
    data = encode(ds)
    path = tmp_path / "part"
    path.write_bytes(data)
    cut = data.index(b"x" * 4000) - 8  # at the start of ImageComments' element
    header = read_part_header(data[:cut], path, len(data), 1, None)
    assert header.dataset.RequestedProcedureDescription == "last attribute"
    assert header.sop_instance_uid == ds.SOPInstanceUID


# -- hostile headers: any damage is 0xC000 or 0xA900, never an exception of another kind

_ROOT = "1.2.826.0.1.3680043.8.498.55"
_VALID = instance(Uids(CT_IMAGE, f"{_ROOT}.1.1", f"{_ROOT}.1", f"{_ROOT}.1.2"))


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    """A valid instance with bytes overwritten, cut, or an element length changed."""
    data = bytearray(_VALID)
    how = draw(st.sampled_from(["overwrite", "cut", "length"]))
    if how == "cut":
        return bytes(data[: draw(st.integers(132, len(data) - 1))])
    at = draw(st.integers(132, len(data) - 2))
    if how == "length":  # the 2-byte length field of an explicit VR element, say
        data[at : at + 2] = draw(st.integers(0, 0xFFFF)).to_bytes(2, "little")
    else:
        data[at : at + 2] = draw(st.binary(min_size=2, max_size=2))
    return bytes(data)


@settings(max_examples=400, derandomize=True, database=None, deadline=None)
@given(damaged())
def test_damaged_header_is_refused_with_a_reason_or_read(data: bytes) -> None:
    """When any bytes of a header are overwritten or cut, reading it either succeeds or
    refuses the part with 0xC000 or 0xA900 and a one-line message (never 0x0110, never
    another exception), from memory and from the file alike."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "part"
        path.write_bytes(data)
        for head in (data, data[:200]):
            try:
                header = read_part_header(head, path, len(data), 1, None)
            except InstanceError as e:
                assert e.failure_reason in (0xC000, 0xA900), e.message
                assert "\n" not in e.message and e.message.startswith("part 1")
            else:
                assert header.sop_instance_uid.startswith("1.")


def test_header_ending_where_memory_ends_is_read_from_file(tmp_path: Path) -> None:
    """The bytes in memory end exactly before Pixel Data's element header, or inside it:
    reading got to their end, so the header is read from the file (never refused, never
    taken as complete from memory alone)."""
    ds = make_dataset()
    data = encode(ds)
    path = tmp_path / "part"
    path.write_bytes(data)
    pixels = data.rindex(b"\xe0\x7f\x10\x00")  # (7FE0,0010), little endian
    opened: list[str] = []
    real_open = Path.open

    def spy_open(self: Path, *args: object, **kwargs: object) -> object:
        opened.append(self.name)
        return real_open(self, *args, **kwargs)  # type: ignore[call-overload]

    for cut in (pixels, pixels + 4):
        opened.clear()
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(Path, "open", spy_open)
            header = read_part_header(data[:cut], path, len(data), 1, None)
        assert header.sop_instance_uid == ds.SOPInstanceUID
        assert opened == ["part", "part"]  # the preamble, then the header
