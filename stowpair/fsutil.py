"""Durable file placement shared by stowrsd, the archive and the importer.

Blocking calls: run them in a thread pool, never on the reactor thread.
"""

from __future__ import annotations

import os
from pathlib import Path


def fsync_dir(directory: Path) -> None:
    """Make a rename or a new entry in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def place_atomically(temp: Path, dest: Path, fsync: bool = True) -> None:
    """Move a fully written ``temp`` file to ``dest`` so readers see all or nothing.

    ``temp`` must be on the same file system as ``dest`` (write it next to it). With
    ``fsync`` the data is on disk before the rename, and the rename before return.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    if fsync:
        fd = os.open(temp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    os.replace(temp, dest)
    if fsync:
        fsync_dir(dest.parent)
