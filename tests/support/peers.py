"""Real peer processes for interop tests and benchmarks: Orthanc, socat, nginx, Prometheus,
oidc-provider, twistd. A test rig: it lives under tests/ and is not installed.

Each peer runs on 127.0.0.1 on a free port in its own temporary folder and is stopped
by :meth:`Peer.stop` (or the context manager). Blocking code: tests and benchmark
drivers only, never the service.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

ORTHANC_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"


class PeerUnavailable(RuntimeError):
    """A peer program is not installed or did not come up; the message says which."""


class PeerMissing(PeerUnavailable):
    """A peer program is not installed at all (tests may skip on this one only)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def require(program: str, package: str) -> str:
    """The program's path; also looks in /usr/sbin, which is not on every user's PATH."""
    path = shutil.which(program) or shutil.which(program, path="/usr/sbin:/usr/local/sbin")
    if path is None:
        raise PeerMissing(f"{program} is not installed (apt-get install -y {package})")
    return path


#: Seconds a peer gets to answer after it was started, unless a caller says otherwise
#: (the benchmark raises it: a loaded 2-core machine can take longer to start twistd).
START_TIMEOUT = 15.0


def wait_http(
    url: str, timeout: float | None = None, process: subprocess.Popen[bytes] | None = None
) -> None:
    timeout = START_TIMEOUT if timeout is None else timeout
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise PeerUnavailable(f"peer exited with {process.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError:
            return  # it answers, even if with an error status
        except OSError:
            time.sleep(0.05)
    raise PeerUnavailable(f"{url} did not answer within {timeout:.0f}s")


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise PeerUnavailable(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f}s")


@dataclass
class Peer:
    """A running peer process."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    workdir: Path
    log_path: Path
    #: HTTP Basic credentials for requests to this peer (Orthanc with authentication).
    auth: tuple[str, str] | None = None

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def wait_started(self, url: str, what: str, timeout: float | None = None) -> None:
        """Wait until ``url`` answers; else stop the process and raise PeerUnavailable
        naming ``what``, with the end of its log."""
        try:
            wait_http(url, timeout=timeout, process=self.process)
        except PeerUnavailable as e:
            self.stop()
            raise PeerUnavailable(f"{what} did not start: {e}\n{self.log_tail()}") from None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def __enter__(self) -> Peer:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _spawn(
    name: str, argv: Sequence[str], workdir: Path, env: Mapping[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], Path]:
    log_path = workdir / f"{name}.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        list(argv),
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )
    log.close()
    return process, log_path


@dataclass
class OrthancServer:
    """Settings for one Orthanc with the DICOMweb plugin."""

    servers: dict[str, dict[str, Any]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def start_orthanc(workdir: Path, settings: OrthancServer | None = None) -> Peer:
    """Orthanc on 127.0.0.1 (RemoteAccessAllowed false), DICOM port off, DICOMweb on."""
    binary = require("Orthanc", "orthanc")
    if not Path(ORTHANC_PLUGIN).exists():
        raise PeerMissing(f"{ORTHANC_PLUGIN} is missing (Debian package orthanc-dicomweb)")
    settings = settings or OrthancServer()
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = {
        "Name": f"peer{port}",
        "StorageDirectory": "db",
        "IndexDirectory": "db",
        "HttpPort": port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomServerEnabled": False,
        "HttpTimeout": 120,
        "Plugins": [ORTHANC_PLUGIN],
        "DicomWeb": {
            "Enable": True,
            "Root": "/dicom-web/",
            "EnableWado": True,
            "Servers": settings.servers,
        },
        **settings.extra,
    }
    (workdir / "orthanc.json").write_text(json.dumps(config, indent=1))
    process, log_path = _spawn("orthanc", [binary, "orthanc.json"], workdir)
    users = config.get("RegisteredUsers") or {}
    auth = next(iter(users.items())) if config.get("AuthenticationEnabled") and users else None
    peer = Peer("orthanc", process, port, workdir, log_path, auth)
    peer.wait_started(f"http://127.0.0.1:{port}/system", "Orthanc")
    return peer


def orthanc_request(
    peer: Peer,
    method: str,
    path: str,
    body: bytes | None = None,
    content_type: str = "application/json",
    timeout: float = 600,
) -> bytes:
    """One request to Orthanc's REST API (with the peer's credentials); the raw answer."""
    headers = {"Content-Type": content_type} if body is not None else {}
    if peer.auth is not None:
        token = base64.b64encode(":".join(peer.auth).encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    request = urllib.request.Request(
        f"http://127.0.0.1:{peer.port}{path}", data=body, method=method, headers=headers
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return bytes(response.read())


def orthanc_call(
    peer: Peer,
    method: str,
    path: str,
    body: bytes | None = None,
    content_type: str = "application/json",
    timeout: float = 600,
) -> Any:
    """:func:`orthanc_request` with the answer decoded as JSON (None when empty)."""
    raw = orthanc_request(peer, method, path, body, content_type, timeout)
    return json.loads(raw) if raw else None


def orthanc_files(peer: Peer) -> dict[str, bytes]:
    """Every instance Orthanc stores: SOP Instance UID → the file as Orthanc kept it."""
    files = {}
    for item in orthanc_call(peer, "GET", "/instances?expand"):
        sop = item["MainDicomTags"]["SOPInstanceUID"]
        files[sop] = orthanc_request(peer, "GET", f"/instances/{item['ID']}/file")
    return files


def orthanc_clear(peer: Peer) -> None:
    """Delete every study (and so every instance) Orthanc holds."""
    for study in orthanc_call(peer, "GET", "/studies"):
        orthanc_call(peer, "DELETE", f"/studies/{study}")


def orthanc_versions(peer: Peer) -> str:
    """``Orthanc <version>, DICOMweb plugin <version>`` as the running peer reports them."""
    system = orthanc_call(peer, "GET", "/system")
    plugin = orthanc_call(peer, "GET", "/plugins/dicom-web")
    return f"Orthanc {system['Version']}, DICOMweb plugin {plugin['Version']}"


def orthanc_add_server(peer: Peer, name: str, settings: Mapping[str, Any]) -> None:
    """Declare (or replace) a DICOMweb server at run time: ``PUT /dicom-web/servers/{name}``."""
    orthanc_call(peer, "PUT", f"/dicom-web/servers/{name}", json.dumps(dict(settings)).encode())


def start_socat_tls(workdir: Path, target_port: int, cert_pem: Path) -> Peer:
    """A TLS front: socat terminates TLS with ``cert_pem`` (key + chain) and forwards."""
    binary = require("socat", "socat")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    process, log_path = _spawn(
        "socat",
        [
            binary,
            f"OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,cert={cert_pem},verify=0",
            f"TCP:127.0.0.1:{target_port}",
        ],
        workdir,
    )
    wait_port(port)
    return Peer("socat", process, port, workdir, log_path)


def start_nginx_sink(workdir: Path) -> Peer:
    """nginx that reads and discards any POST body and answers 200: the physical limit."""
    binary = require("nginx", "nginx-light")
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "nginx.conf"
    conf.write_text(f"""
daemon off; master_process off; worker_processes 1; pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
events {{ worker_connections 64; }}
http {{
  access_log off; client_max_body_size 0; client_body_temp_path {workdir}/body;
  server {{ listen 127.0.0.1:{port};
    location / {{ return 200 "ok\\n"; }} }}
}}
""")
    process, log_path = _spawn("nginx", [binary, "-c", str(conf), "-p", str(workdir)], workdir)
    wait_port(port)
    return Peer("nginx", process, port, workdir, log_path)


OIDC_PEER = Path(__file__).resolve().parents[1] / "peers" / "oidc"


@dataclass
class OidcPeer(Peer):
    """oidc-provider (npm) as an authorization server; Keycloak-style paths under
    ``/realms/<realm>``."""

    realm: str = "stowpair"

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}/realms/{self.realm}"

    @property
    def token_url(self) -> str:
        return f"{self.issuer}/protocol/openid-connect/token"

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer}/protocol/openid-connect/certs"

    def events(self) -> list[dict[str, Any]]:
        """The JSON lines the server printed (``token.issued``, ``token.refused``)."""
        found = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                found.append(json.loads(line))
        return found


def start_oidc(
    workdir: Path,
    clients: Sequence[Mapping[str, Any]],
    audience: str,
    ttl: int = 5,
    scope: str = "stow",
    realm: str = "stowpair",
) -> OidcPeer:
    """The certified Node.js ``oidc-provider`` (tests/peers/oidc, installed by ``npm ci``)
    issuing JWT access tokens of ``ttl`` seconds for ``audience`` (client credentials)."""
    node = require("node", "nodejs")
    if not (OIDC_PEER / "node_modules" / "oidc-provider").is_dir():
        raise PeerMissing(f"oidc-provider is not installed (npm ci --prefix {OIDC_PEER})")
    workdir.mkdir(parents=True, exist_ok=True)
    # Node.js loading oidc-provider and making an RSA key took over 60 s once, while a
    # benchmark saturated the machine, and once a start never answered in 180 s on an
    # idle machine: three tries of 60 s, each a new process on a new port.
    last: PeerUnavailable | None = None
    for attempt in range(1, 4):
        port = free_port()
        config = {
            "port": port,
            "realm": realm,
            "ttl": ttl,
            "audience": audience,
            "scope": scope,
            "clients": list(map(dict, clients)),
        }
        (workdir / "oidc.json").write_text(json.dumps(config))
        process, log_path = _spawn(
            f"oidc-{attempt}",
            [node, str(OIDC_PEER / "server.js"), str(workdir / "oidc.json")],
            workdir,
        )
        peer = OidcPeer("oidc", process, port, workdir, log_path, realm=realm)
        try:
            peer.wait_started(
                f"{peer.issuer}/.well-known/openid-configuration", "oidc-provider", 60
            )
        except PeerUnavailable as e:
            last = e
            continue
        return peer
    assert last is not None
    raise last


def start_prometheus(
    workdir: Path,
    target: str,
    scrape_interval: str = "1s",
    rule_files: Sequence[Path] = (),
    basic_auth: tuple[str, str] | None = None,
) -> Peer:
    """A Prometheus server (Debian ``prometheus``) scraping ``target`` (``host:port``,
    path ``/metrics``) every ``scrape_interval``, its storage under ``workdir``."""
    binary = require("prometheus", "prometheus")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    job: dict[str, Any] = {
        "job_name": "stowpair",
        "scrape_interval": scrape_interval,
        "scrape_timeout": scrape_interval,
        "static_configs": [{"targets": [target]}],
    }
    if basic_auth is not None:
        (workdir / "password").write_text(basic_auth[1])
        job["basic_auth"] = {
            "username": basic_auth[0],
            "password_file": str(workdir / "password"),
        }
    config = {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
        "rule_files": [str(p) for p in rule_files],
        "scrape_configs": [job],
    }
    (workdir / "prometheus.yml").write_text(json.dumps(config, indent=1))  # JSON is YAML
    argv = [
        binary,
        f"--config.file={workdir / 'prometheus.yml'}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    process, log_path = _spawn("prometheus", argv, workdir)
    peer = Peer("prometheus", process, port, workdir, log_path)
    deadline = time.monotonic() + 60
    while True:  # /-/ready answers 503 until the storage is open
        try:
            wait_http(f"http://127.0.0.1:{port}/-/ready", timeout=30, process=process)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=5):
                return peer
        except urllib.error.HTTPError:
            if time.monotonic() > deadline:
                peer.stop()
                raise PeerUnavailable(f"Prometheus not ready in 60 s\n{peer.log_tail()}") from None
            time.sleep(0.1)
        except (PeerUnavailable, OSError) as e:
            peer.stop()
            raise PeerUnavailable(f"Prometheus did not start: {e}\n{peer.log_tail()}") from None


def prometheus_query(peer: Peer, query: str) -> list[dict[str, Any]]:
    """The result vector of an instant query (``GET /api/v1/query``)."""
    url = f"http://127.0.0.1:{peer.port}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(url, timeout=10) as response:
        answer = json.loads(response.read())
    if answer.get("status") != "success":
        raise PeerUnavailable(f"Prometheus query {query!r} failed: {answer}")
    return list(answer["data"]["result"])


def descendants(pid: int) -> list[int]:
    """Every process started by ``pid`` and by its children, from /proc. Each thread's
    children are listed: a process started from a thread (stowrsd's header workers, from
    a storage thread) appears under that thread only."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        children: list[int] = []
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
        found += children
        todo += children
    return found


def start_twistd(
    workdir: Path, tap: str, args: Sequence[str], port: int, health_path: str = "/health"
) -> Peer:
    """``twistd -n <tap> ...`` from this Python environment."""
    twistd = str(Path(sys.executable).with_name("twistd"))
    workdir.mkdir(parents=True, exist_ok=True)
    process, log_path = _spawn(tap, [twistd, "-n", "--pidfile=", tap, *args], workdir)
    peer = Peer(tap, process, port, workdir, log_path)
    peer.wait_started(f"http://127.0.0.1:{port}{health_path}", f"twistd {tap}")
    return peer
