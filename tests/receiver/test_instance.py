"""Reading a part's header from the bytes kept in memory, or from its file."""

from __future__ import annotations

from pathlib import Path

from stowpair.receiver.instance import read_part_header
from stowpair.testing_receiver import encode, make_dataset


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
