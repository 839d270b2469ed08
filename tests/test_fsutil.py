"""Durable placement: new folders are made durable with the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from stowpair import fsutil
from stowpair.fsutil import place_atomically


def test_new_folders_are_synced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When placing a file creates study and series folders, their parents are synced too
    (otherwise a crash could lose the new folder, and the acknowledged file with it)."""
    synced: list[Path] = []
    monkeypatch.setattr(fsutil, "fsync_dir", synced.append)
    temp = tmp_path / "t.part"
    temp.write_bytes(b"x")
    dest = tmp_path / "store" / "study" / "series" / "sop.dcm"
    place_atomically(temp, dest)
    assert dest.read_bytes() == b"x"
    assert synced == [tmp_path, tmp_path / "store", tmp_path / "store" / "study",
                      tmp_path / "store" / "study" / "series"]  # fmt: skip


def test_existing_folder_synced_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When the folder exists, only it is synced after the rename."""
    synced: list[Path] = []
    monkeypatch.setattr(fsutil, "fsync_dir", synced.append)
    temp = tmp_path / "t.part"
    temp.write_bytes(b"x")
    place_atomically(temp, tmp_path / "sop.dcm")
    assert synced == [tmp_path]
