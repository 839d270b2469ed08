"""Start-up order of the stowpair service and the receiver: folders are created when they
are constructed (before the reactor runs under twistd), temp files a crash left are
removed in a thread once the listeners are open, and a process whose port is busy
never touches the files of the one that holds it."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ServerEndpoint

from stowpair.config.loader import load_config
from stowpair.process import StartupError
from stowpair.receiver.service import ReceiverService
from stowpair.receiver.settings import ReceiverSettings
from stowpair.service import StowpairService
from stowpair.web.listen import ListenError

CONFIG = """
demo_on_empty = false
[rest]
port = {port}
[emulator]
enabled = false
[archive]
storage = "archive"
database = "index.sqlite"
[logging]
json_file = "-"
"""


def leftovers(tmp_path: Path) -> dict[str, Path]:
    """Files a crashed process left, and one of this process's DICOM parts."""
    incoming, export = tmp_path / "archive" / ".incoming", tmp_path / "archive" / ".export"
    incoming.mkdir(parents=True)
    export.mkdir(parents=True)
    files = {
        "part": incoming / "999999-7.part",
        "export": export / "stowpair-x1y2.dcm",
        "own": incoming / f"{os.getpid()}-dimse-1.part",
    }
    for path in files.values():
        path.write_bytes(b"left")
    return files


def service(tmp_path: Path, port: int = 0) -> StowpairService:
    conf = tmp_path / "stowpair.toml"
    conf.write_text(CONFIG.format(port=port))
    return StowpairService(load_config(conf), reactor)


@pytest_twisted.ensureDeferred
async def test_stale_files_removed_once_listening(tmp_path: Path) -> None:
    """When the service starts, the parts and export copies a crash left are gone by the
    time it is ready; this process's own parts stay."""
    files = leftovers(tmp_path)
    running = service(tmp_path)
    assert all(p.exists() for p in files.values())  # constructing deletes nothing
    running.startService()
    try:
        await running.ready
        assert [name for name, p in files.items() if p.exists()] == ["own"]
    finally:
        await running.stopService()


def test_busy_port_leaves_the_files_alone(tmp_path: Path) -> None:
    """When the REST port is held by another process (the same configuration started
    twice), the second one stops without deleting that process's temp files."""
    files = leftovers(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        second = service(tmp_path, busy.getsockname()[1])
        with pytest.raises(ListenError):
            second.startService()
    assert all(p.exists() for p in files.values())


def test_folder_that_cannot_be_created(tmp_path: Path) -> None:
    """When the export folder's place holds a file, construction fails with one sentence
    naming the folder."""
    (tmp_path / "archive").mkdir()
    (tmp_path / "archive" / ".export").write_text("a file\n")
    with pytest.raises(StartupError) as raised:
        service(tmp_path)
    assert str(raised.value).startswith(
        f"cannot create the archive folder {tmp_path / 'archive' / '.export'}: File exists"
    )


@pytest_twisted.ensureDeferred
async def test_receiver_removes_stale_parts_before_reading(tmp_path: Path) -> None:
    """When a receiver starts, its folder exists from construction on and the parts a
    crash left are removed before its port reads a request."""
    incoming = tmp_path / "store" / ".incoming"
    endpoint = TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1")
    receiver = ReceiverService(reactor, endpoint, ReceiverSettings(), tmp_path / "store")
    assert incoming.is_dir()
    stale = incoming / "999999-3.part"
    stale.write_bytes(b"left")
    receiver.startService()
    try:
        await receiver.listening
        await receiver._ready
        assert not stale.exists()
    finally:
        await receiver.stopService()


def test_receiver_on_a_busy_port_leaves_the_files_alone(tmp_path: Path) -> None:
    """When stowrsd's port is held by another stowrsd on the same directory, the second
    one stops without deleting the first one's parts."""
    incoming = tmp_path / "store" / ".incoming"
    incoming.mkdir(parents=True)
    part = incoming / "999999-3.part"
    part.write_bytes(b"being received")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        endpoint = TCP4ServerEndpoint(reactor, busy.getsockname()[1], interface="127.0.0.1")
        second = ReceiverService(reactor, endpoint, ReceiverSettings(), tmp_path / "store")
        with pytest.raises(ListenError):
            second.startService()
    assert part.exists()
