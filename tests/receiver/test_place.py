"""Placing a stored part: never outside the storage folder (defence in depth; the UIDs
that name the destination are validated before)."""

from __future__ import annotations

from pathlib import Path

import pytest
from twisted.internet.defer import succeed

from stowpair.receiver.instance import InstanceHeader
from stowpair.receiver.storage import StoreError, UidLayoutStorage
from tests.support.receiver import make_dataset

_UID = "1.2.826.0.1.3680043.8.498.57"


def _header() -> InstanceHeader:
    ds = make_dataset()
    return InstanceHeader(
        "1.2.840.10008.5.1.4.1.1.2",
        _UID + ".3",
        _UID,
        _UID + ".2",
        "1.2.840.10008.1.2.1",
        1,
        10,
        ds,
    )


@pytest.mark.parametrize(
    "relative",
    ["../outside.dcm", "a/../../outside.dcm", ".", "a/../.."],
)
def test_a_destination_outside_the_folder_is_refused(tmp_path: Path, relative: str) -> None:
    store = UidLayoutStorage(tmp_path / "store", lambda f: succeed(f()))
    store.create_folders()
    temp = tmp_path / "store" / ".incoming" / "t.part"
    temp.write_bytes(b"x")
    with pytest.raises(StoreError, match="refusing to write outside"):
        store._place(temp, tmp_path / "store" / relative, _header())
    assert temp.exists() and not (tmp_path / "outside.dcm").exists()


def test_a_destination_inside_the_folder_is_placed(tmp_path: Path) -> None:
    store = UidLayoutStorage(tmp_path / "store", lambda f: succeed(f()))
    store.create_folders()
    temp = tmp_path / "store" / ".incoming" / "t.part"
    temp.write_bytes(b"x")
    dest = tmp_path / "store" / _UID / "a" / ".." / "b.dcm"
    result = store._place(temp, dest, _header())
    assert result.path == dest and (tmp_path / "store" / _UID / "b.dcm").read_bytes() == b"x"
