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


def _make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and missing parents; return the folders whose entries changed."""
    missing = []
    probe = folder
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    if missing:  # the usual case, a folder that exists, costs one stat
        folder.mkdir(parents=True, exist_ok=True)
    return [m.parent for m in reversed(missing)]


def place_atomically(temp: Path, dest: Path, fsync: bool = True) -> None:
    """Move a fully written ``temp`` file to ``dest`` so readers see all or nothing.

    ``temp`` must be on the same file system as ``dest`` (write it next to it). With
    ``fsync`` the data is on disk before the rename, and the rename (and any folder
    created for it, e.g. a new study's) before return.
    """
    created_in = _make_parents(dest.parent)
    if fsync:
        fd = os.open(temp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    os.replace(temp, dest)
    if fsync:
        for parent in created_in:
            fsync_dir(parent)
        fsync_dir(dest.parent)


def place_new(temp: Path, dest: Path, fsync: bool = True) -> bool:
    """Like :func:`place_atomically`, but never replaces an existing ``dest``: False (and
    ``temp`` left alone) when one is there already.

    ``link(2)`` creates the name only if it does not exist, in one step, on a local and
    on a network file system alike; so when two writers (two nodes of a cluster sharing
    the storage folder) place the same name at once, exactly one wins and the other sees
    the winner's complete file.
    """
    created_in = _make_parents(dest.parent)
    if fsync:
        fd = os.open(temp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    try:
        os.link(temp, dest)
    except FileExistsError:
        return False
    temp.unlink()
    if fsync:
        for parent in created_in:
            fsync_dir(parent)
        fsync_dir(dest.parent)
    return True


def folder_problem(folder: Path, what: str) -> str | None:
    """Create ``folder`` if needed; None when it is a writable folder, else one sentence
    saying what is wrong (for start-up checks, before any service runs)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        return f"{what} {folder} cannot be created: {e.strerror}"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"{what} {folder} is not writable"
    return None


def log_file_problem(path: Path, what: str) -> str | None:
    """None when the log file ``path`` can be opened for appending, else one sentence."""
    problem = folder_problem(path.parent, f"the folder of {what}")
    if problem is not None:
        return problem
    try:
        with path.open("a", encoding="utf-8"):
            pass
    except OSError as e:
        return f"{what} {path} cannot be opened: {e.strerror}"
    return None
