"""Real peers for interop tests: an Orthanc fixture (Debian ``orthanc orthanc-dicomweb``).

The fixture skips with a reason when the ``Orthanc`` binary is missing, unless
``STOWPAIR_REQUIRE_PEERS=1`` (CI), where a missing peer fails the test instead.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")


def require_peer(what: str, available: bool) -> None:
    """Skip (or fail under STOWPAIR_REQUIRE_PEERS=1) when a peer is missing."""
    if available:
        return
    message = f"{what} is not installed (apt-get install -y orthanc orthanc-dicomweb)"
    if os.environ.get("STOWPAIR_REQUIRE_PEERS") == "1":
        pytest.fail(message + " and STOWPAIR_REQUIRE_PEERS=1")
    pytest.skip(message)


def free_port() -> int:
    """A currently free loopback port (Orthanc cannot listen on port 0)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Orthanc:
    """A running Orthanc; ``url`` is its REST root, ``log`` its log file."""

    directory: Path
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    servers: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _wait_for_system(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    import time
    import urllib.request

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Orthanc exited ({process.returncode}); see {log}")
        try:
            with urllib.request.urlopen(f"{url}/system", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)  # start-up poll of an external process, not a test sleep
    raise RuntimeError(f"Orthanc did not answer /system within 20 s; see {log}")


@pytest.fixture
def orthanc_factory(tmp_path: Path) -> Iterator[Any]:
    """Start Orthanc with ``DicomWeb.Servers`` given by the test; killed at the end."""
    binary = shutil.which("Orthanc") or (
        "/usr/sbin/Orthanc" if Path("/usr/sbin/Orthanc").exists() else None
    )
    require_peer("Orthanc", binary is not None and DICOMWEB_PLUGIN.exists())
    started: list[Orthanc] = []

    def start(servers: dict[str, Any]) -> Orthanc:
        assert binary is not None
        directory = tmp_path / f"orthanc{len(started)}"
        directory.mkdir()
        port = free_port()
        config = {
            "Name": "stowpair-interop",
            "StorageDirectory": "db",
            "IndexDirectory": "db",
            "HttpPort": port,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "DicomServerEnabled": False,
            "Plugins": [str(DICOMWEB_PLUGIN)],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "Servers": servers},
        }
        (directory / "orthanc.json").write_text(json.dumps(config))
        log = directory / "orthanc.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [binary, str(directory / "orthanc.json")],
                cwd=directory,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        orthanc = Orthanc(directory, port, process, log, servers)
        started.append(orthanc)
        _wait_for_system(orthanc.url, process, log)
        return orthanc

    yield start
    for orthanc in started:
        orthanc.process.send_signal(signal.SIGTERM)
        try:
            orthanc.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            orthanc.process.kill()
            orthanc.process.wait()
