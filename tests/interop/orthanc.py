"""An Orthanc 1.10 + DICOMweb peer (Debian packages) for exporter interop tests.

Orthanc cannot bind to port 0 nor to loopback only: we pick a free port from 127.0.0.1
and set RemoteAccessAllowed=false (environment-notes §5b). Its own HTTPS server crashes
(§5e), so TLS goes through a socat front bound to 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

ORTHANC = "/usr/sbin/Orthanc"
PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"


def peers_missing(*tools: str) -> str | None:
    """Why the peers cannot run, or None."""
    for path in (ORTHANC, PLUGIN):
        if not os.path.exists(path):
            return f"{path} not found: apt-get install -y orthanc orthanc-dicomweb"
    for tool in tools:
        if shutil.which(tool) is None:
            return f"{tool} not found: apt-get install -y {tool}"
    return None


def skip_unless_peers(*tools: str) -> None:
    reason = peers_missing(*tools)
    if reason is None:
        return
    if os.environ.get("STOWPAIR_REQUIRE_PEERS") == "1":
        pytest.fail(f"STOWPAIR_REQUIRE_PEERS=1 but {reason}")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(url: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


class Orthanc:
    """A running Orthanc; ``stow_url`` is its DICOMweb root for a WebApplication URL."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.stow_url = self.base + "/dicom-web"
        config = {
            "Name": "stowpair-interop",
            "StorageDirectory": str(folder / "db"),
            "IndexDirectory": str(folder / "db"),
            "HttpPort": self.port,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "DicomServerEnabled": False,
            "Plugins": [PLUGIN],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
        }
        cfg = folder / "orthanc.json"
        cfg.write_text(json.dumps(config))
        self.log = (folder / "orthanc.log").open("wb")
        self.process = subprocess.Popen([ORTHANC, str(cfg)], stdout=self.log, stderr=self.log)
        wait_for(self.base + "/system")

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.base + path, timeout=10) as r:
            body = r.read()
        return json.loads(body) if path != "" and not path.endswith("/file") else body

    def instances(self) -> dict[str, bytes]:
        """SOP Instance UID → stored file bytes."""
        out = {}
        for oid in self.get("/instances"):
            tags = self.get(f"/instances/{oid}/simplified-tags")
            out[tags["SOPInstanceUID"]] = self.get(f"/instances/{oid}/file")
        return out

    def clear(self) -> None:
        for oid in self.get("/instances"):
            req = urllib.request.Request(self.base + f"/instances/{oid}", method="DELETE")
            urllib.request.urlopen(req, timeout=10).read()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        self.log.close()


class SocatTLSFront:
    """``socat OPENSSL-LISTEN`` on 127.0.0.1 forwarding to a plain HTTP port."""

    def __init__(self, pem: Path, target_port: int) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [
                "socat",
                f"OPENSSL-LISTEN:{self.port},bind=127.0.0.1,reuseaddr,fork,cert={pem},verify=0",
                f"TCP:127.0.0.1:{target_port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Generator[Orthanc, None, None]:
    skip_unless_peers()
    peer = Orthanc(tmp_path_factory.mktemp("orthanc"))
    yield peer
    peer.stop()
