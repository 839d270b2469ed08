"""Durable placement: new folders are made durable with the file."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from stowpair import fsutil
from stowpair.fsutil import place_atomically, place_new


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


def test_place_new_never_replaces(tmp_path: Path) -> None:
    """When the destination exists, place_new leaves it and the temp file alone and says
    so; otherwise it places the file and the temp name is gone."""
    first, second = tmp_path / "a.part", tmp_path / "b.part"
    first.write_bytes(b"first")
    second.write_bytes(b"second")
    dest = tmp_path / "study" / "sop.dcm"
    assert place_new(first, dest) is True and not first.exists()
    assert place_new(second, dest) is False
    assert dest.read_bytes() == b"first" and second.read_bytes() == b"second"


def test_place_new_one_winner_among_concurrent_writers(tmp_path: Path) -> None:
    """When many writers (nodes sharing the storage folder) place one name at once, exactly
    one wins and the file is the winner's, whole."""
    temps = []
    for n in range(16):
        temp = tmp_path / f"{n}.part"
        temp.write_bytes(str(n).encode() * 10000)
        temps.append(temp)
    dest = tmp_path / "s" / "sop.dcm"
    with ThreadPoolExecutor(8) as pool:
        won = list(pool.map(lambda t: place_new(t, dest, fsync=False), temps))
    assert won.count(True) == 1
    winner = temps[won.index(True)]
    assert dest.read_bytes() == winner.name.removesuffix(".part").encode() * 10000
