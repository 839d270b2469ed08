"""Listeners given as Twisted endpoint descriptions answer on real loopback sockets:
the REST API and the emulator of ``twistd stowpair`` (``listen`` keys), and ``twistd
stowrsd --listen``, over TCP and over TLS (``ssl:`` with a test certificate)."""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
import trustme
from twisted.internet import reactor
from twisted.internet.threads import deferToThread

from stowpair import tap
from stowpair.config.loader import load_config
from stowpair.receiver.service import ReceiverService
from stowpair.service import StowpairService

CONFIG = """
demo_on_empty = false
[rest]
listen = "{rest}"
[emulator]
listen = "{emulator}"
directory = "emulator"
[archive]
storage = "archive"
database = "index.sqlite"
[logging]
json_file = "-"
"""


@pytest.fixture
def pki(tmp_path: Path) -> tuple[Path, Path]:
    """(server key and certificate for 127.0.0.1, the CA that issued it)."""
    ca = trustme.CA()
    server = tmp_path / "server.pem"
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(server))
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return server, ca_file


def fetch(url: str, ca_file: Path | None = None) -> Any:
    """GET ``url`` in a thread (status, body); the TLS client trusts only ``ca_file``."""

    def get() -> tuple[int, bytes]:
        context = ssl.create_default_context(cafile=str(ca_file)) if ca_file else None
        with urllib.request.urlopen(url, timeout=10, context=context) as response:
            return response.status, response.read()

    return deferToThread(get)


async def start(tmp_path: Path, rest: str, emulator: str) -> StowpairService:
    conf = tmp_path / "stowpair.toml"
    conf.write_text(CONFIG.format(rest=rest, emulator=emulator))
    service = StowpairService(load_config(conf), reactor)
    service.startService()
    await service.ready
    return service


@pytest_twisted.ensureDeferred
async def test_tcp_descriptions(tmp_path: Path) -> None:
    """When [rest] and [emulator] listen on tcp: descriptions with port 0, both answer
    on the loopback interface they name."""
    service = await start(tmp_path, "tcp:0:interface=127.0.0.1", "tcp:0:interface=127.0.0.1")
    try:
        assert service.rest_port is not None and service._emulator is not None
        rest, emulator = service.rest_port.getHost(), service._emulator.port.getHost()  # type: ignore[union-attr]
        assert (rest.host, emulator.host) == ("127.0.0.1", "127.0.0.1")
        assert (await fetch(f"http://127.0.0.1:{rest.port}/health"))[0] == 200
        assert (await fetch(f"http://127.0.0.1:{emulator.port}/health"))[0] == 200
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_ssl_description_serves_tls(tmp_path: Path, pki: tuple[Path, Path]) -> None:
    """When [rest] listens on an ssl: description with a test certificate, the REST API
    answers over TLS to a client trusting its CA, and not over plain HTTP."""
    _server, ca_file = pki  # server.pem, beside the configuration file
    rest = "ssl:0:privateKey=server.pem:interface=127.0.0.1"
    service = await start(tmp_path, rest, "tcp:0:interface=127.0.0.1")
    try:
        assert service.rest_port is not None
        port = service.rest_port.getHost().port
        status, body = await fetch(f"https://127.0.0.1:{port}/health", ca_file)
        assert status == 200 and body
        with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
            await fetch(f"http://127.0.0.1:{port}/health")
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_stowrsd_listen_option_serves_tls(tmp_path: Path, pki: tuple[Path, Path]) -> None:
    """When twistd stowrsd is given --listen ssl:..., its service tree listens there
    and answers over TLS."""
    server, ca_file = pki
    options = tap.StowrsdOptions()
    options.parseOptions(
        ["--listen", f"ssl:0:privateKey={server}:interface=127.0.0.1", "-d", str(tmp_path),
         "--json-log", "-"]
    )  # fmt: skip
    top = tap.make_stowrsd_service(options)
    [receiver] = [s for s in top if isinstance(s, ReceiverService)]
    top.startService()
    try:
        port = (await receiver.listening).getHost().port
        status, _ = await fetch(f"https://127.0.0.1:{port}/health", ca_file)
        assert status == 200
    finally:
        await top.stopService()


LISTEN_OPTION_ERRORS = [
    (["--listen", "tcp:0:interface=127.0.0.1", "-b", "0"], "--listen and --bind exclude each"),
    (["--listen", "tcp:0", "--tls-cert", "c.pem"], "--listen and --tls-cert exclude each other"),
    (["--listen", "127.0.0.1:80"], "--listen '127.0.0.1:80': this is host:port, not an"),
    (["--listen", "ssl:0:privateKey=/none.pem"], "--listen 'ssl:0:privateKey=/none.pem': cannot"),
]


@pytest.mark.parametrize(("args", "message"), LISTEN_OPTION_ERRORS)
def test_stowrsd_listen_errors(args: list[str], message: str) -> None:
    """When --listen is wrong or given with -b or the TLS flags, one line says why."""
    from twisted.python import usage

    with pytest.raises(usage.UsageError) as raised:
        tap.StowrsdOptions().parseOptions(args)
    assert str(raised.value).startswith(message)


def test_stowrsd_listen_sets_the_address() -> None:
    """When --listen names an interface and port, those are stowrsd's host and port."""
    options = tap.StowrsdOptions()
    options.parseOptions(["--listen", "tcp6:18081:interface=\\:\\:1", "--json-log", "-"])
    assert (options["host"], options["port"]) == ("::1", 18081)
