"""Listener descriptions (Twisted's endpoint syntax) in ``listen`` keys and ``--listen``:
what is accepted, the address read from it, and one clear line for each mistake."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trustme

from stowpair.config.errors import ConfigError
from stowpair.config.listen import ListenOverrides, endpoint_problem, parse_listen
from stowpair.config.loader import load_config
from stowpair.config.model import Listener
from stowpair.config.rest_auth import is_loopback

EXAMPLE = "e.g. tcp:8080:interface=127.0.0.1 or ssl:8443:privateKey=key.pem:certKey=cert.pem"

GOOD = [
    ("tcp:8080:interface=127.0.0.1", "tcp", "127.0.0.1", 8080),
    ("tcp:0:interface=127.0.0.1", "tcp", "127.0.0.1", 0),
    ("tcp:8080", "tcp", "0.0.0.0", 8080),
    ("tcp:port=8080:interface=127.0.0.1", "tcp", "127.0.0.1", 8080),
    ("tcp:8080:interface=\\:\\:1", "tcp", "::1", 8080),
    ("tcp6:8080:interface=\\:\\:1:backlog=10", "tcp6", "::1", 8080),
    ("tcp6:8080", "tcp6", "::", 8080),
    ("TCP:8080:interface=192.0.2.7", "tcp", "192.0.2.7", 8080),
    ("ssl:8443:privateKey=k.pem:certKey=c.pem", "ssl", "0.0.0.0", 8443),
    ("ssl:8443:privateKey=k.pem:interface=127.0.0.1", "ssl", "127.0.0.1", 8443),
]


@pytest.mark.parametrize(("text", "kind", "host", "port"), GOOD, ids=[g[0] for g in GOOD])
def test_good_descriptions(text: str, kind: str, host: str, port: int) -> None:
    """When a description is well formed, its kind, interface and port are read; no
    interface means every interface (never loopback)."""
    address = parse_listen(text)
    assert (address.kind, address.host, address.port) == (kind, host, port)
    assert is_loopback(address.host) is (host in ("127.0.0.1", "::1"))
    assert address.scheme == ("https" if kind == "ssl" else "http")


BAD = [
    ("", f"an endpoint description is needed, {EXAMPLE}"),
    ("127.0.0.1:8080", "this is host:port, not an endpoint description; write tcp:PORT:"),
    ("[::1]:8080", "this is host:port, not an endpoint description"),
    ("8080", "this is host:port, not an endpoint description"),
    ("unix:/run/stowpair.sock", "unix: endpoints are not supported here"),
    ("systemd:domain=INET:index=0", "systemd: endpoints are not supported here"),
    ("http:8080", "'http' is not an endpoint type stowpair listens on; use tcp:, tcp6: or ssl:"),
    ("tcp", f"the port is missing; {EXAMPLE}"),
    ("tcp:", f"the port is missing; {EXAMPLE}"),
    ("tcp:http", "port 'http' is not a number from 0 to 65535 (0: any free port)"),
    ("tcp:65536", "port '65536' is not a number from 0 to 65535"),
    ("tcp:-1", "port '-1' is not a number"),
    ("tcp:8080:127.0.0.1", "write every argument after the port as name=value"),
    ("tcp:8080:port=9090", "the port is given twice"),
    ("tcp:8080:interface=localhost", "interface 'localhost' is not an IP address"),
    ("tcp:8080:interface=::1", "write the colons of an IPv6 interface as \\:, e.g. interface="),
    ("tcp6:8080:interface=127.0.0.1", "interface '127.0.0.1' is not an IPv6 address (tcp6:)"),
    ("tcp:8080:inteface=127.0.0.1", "'inteface' is not an argument of tcp: (known: interface,"),
    ("tcp:8080:privateKey=k.pem", "'privateKey' is not an argument of tcp:"),
    ("tcp:8080:backlog=many", "backlog 'many' is not a whole number"),
]


@pytest.mark.parametrize(("text", "message"), BAD, ids=[b[0] or "empty" for b in BAD])
def test_bad_descriptions(text: str, message: str) -> None:
    """When a description is wrong, one line says what and how to write it."""
    with pytest.raises(ValueError) as raised:
        parse_listen(text)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_tls_files_are_loaded_when_checked(tmp_path: Path) -> None:
    """When an ssl: description names a missing or non-PEM file, the check says which."""
    missing = parse_listen(f"ssl:0:privateKey={tmp_path}/none.pem")
    assert (
        endpoint_problem(missing) == f"cannot read {tmp_path}/none.pem: No such file or directory"
    )
    (tmp_path / "junk.pem").write_text("not PEM\n")
    junk = endpoint_problem(parse_listen(f"ssl:0:privateKey={tmp_path}/junk.pem"))
    assert junk is not None and junk.startswith("cannot load the TLS key or certificate: ")
    pem = _certificate(tmp_path)
    assert endpoint_problem(parse_listen(f"ssl:0:privateKey={pem}")) is None


def _certificate(folder: Path) -> Path:
    leaf = trustme.CA().issue_cert("127.0.0.1")
    path = folder / "server.pem"
    leaf.private_key_and_cert_chain_pem.write_to_path(str(path))
    return path


def test_listener_description_from_host_and_port() -> None:
    """When only host and port are configured, the listener is TCP there (IPv6 escaped)."""
    assert Listener("127.0.0.1", 8080).description == "tcp:8080:interface=127.0.0.1"
    assert Listener("::1", 80).description == "tcp:80:interface=\\:\\:1"
    assert Listener(endpoint="ssl:1:privateKey=k").scheme == "https"


# -- the configuration file -----------------------------------------------------------


def load(tmp_path: Path, text: str) -> Any:
    path = tmp_path / "stowpair.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def errors(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load(tmp_path, text)
    return [line.replace(str(tmp_path / "stowpair.toml"), "F") for line in raised.value.errors]


def test_listen_keys_set_the_listeners(tmp_path: Path) -> None:
    """When [rest] and [emulator] have listen, host and port are the ones it names."""
    config = load(
        tmp_path,
        '[rest]\nlisten = "tcp:9090:interface=127.0.0.1"\n'
        '[emulator]\nlisten = "tcp6:9091:interface=\\\\:\\\\:1"\n',
    )
    assert (config.rest.host, config.rest.port) == ("127.0.0.1", 9090)
    assert config.rest.description == "tcp:9090:interface=127.0.0.1"
    emulator = config.emulator.listener
    assert (emulator.host, emulator.port, emulator.endpoint) == (
        "::1",
        9091,
        "tcp6:9091:interface=\\:\\:1",
    )


def test_tls_files_are_relative_to_the_configuration(tmp_path: Path) -> None:
    """When an ssl: description names relative files, they are found beside the
    configuration file, as every other path of it."""
    pem = _certificate(tmp_path)
    config = load(tmp_path, '[rest]\nlisten = "ssl:0:privateKey=server.pem:interface=127.0.0.1"\n')
    assert config.rest.endpoint == f"ssl:0:privateKey={pem}:interface=127.0.0.1"
    assert config.rest.scheme == "https"


CONFIG_ERRORS = [
    (
        '[rest]\nlisten = "127.0.0.1:8080"\n',
        'F:2: rest: listen "127.0.0.1:8080": this is host:port, not an endpoint description;'
        f" write tcp:PORT:interface=IP, {EXAMPLE}",
    ),
    (
        '[rest]\nhost = "127.0.0.1"\nlisten = "tcp:8080:interface=127.0.0.1"\n',
        "F:3: rest: listen and host are both set; keep one: listen names the interface and"
        ' port itself (e.g. listen = "tcp:8080:interface=127.0.0.1")',
    ),
    (
        '[emulator]\nlisten = "ssl:0:privateKey=none.pem"\n',
        'F:2: emulator: listen "ssl:0:privateKey=none.pem": cannot read {tmp}/none.pem:'
        " No such file or directory",
    ),
    (
        '[rest]\nlisten = "tcp:8080"\n',
        'F:2: rest: listen "tcp:8080" (every interface) is not a loopback address and'
        " [rest.auth] is not configured: anyone who can reach it could trigger, cancel and"
        " delete exports; configure [rest.auth] (docs/rest-api.md#authentication) or set"
        " insecure = true",
    ),
    (
        '[rest]\nlisten = "tcp:8080:interface=192.0.2.7"\n',
        'F:2: rest: listen "tcp:8080:interface=192.0.2.7" (interface 192.0.2.7) is not a'
        " loopback address",
    ),
    ("[rest]\nlisten = 8080\n", "F:2: rest: listen must be a non-empty string"),
]


@pytest.mark.parametrize(("text", "expected"), CONFIG_ERRORS)
def test_listen_errors(tmp_path: Path, text: str, expected: str) -> None:
    """When a listen key is wrong, or exposes the REST API without authentication, the
    configuration is refused with one line naming file, line, section and key."""
    found = errors(tmp_path, text)
    assert len(found) == 1, found
    assert found[0].startswith(expected.format(tmp=tmp_path)), found


@pytest.mark.parametrize(
    "extra",
    ["insecure = true\n", '[rest.auth]\ntype = "bearer"\njwks = "https://idp.example/jwks"\n'],
    ids=["insecure", "auth"],
)
def test_every_interface_with_auth_or_insecure(tmp_path: Path, extra: str) -> None:
    """When the REST API listens on every interface with authentication, or insecure =
    true says it is meant, the configuration loads."""
    config = load(tmp_path, f'[rest]\nlisten = "tcp:8080"\n{extra}')
    assert config.rest.host == "0.0.0.0"


# -- --listen and --emulator-listen of twistd stowpair --------------------------------


def test_overrides_replace_the_listeners(tmp_path: Path) -> None:
    """When --listen and --emulator-listen are given, they replace [rest] and [emulator]
    addresses, keeping the other listener settings."""
    config = load(tmp_path, '[rest]\nport = 1\nidle_timeout = "PT5S"\n')
    overrides = ListenOverrides.from_options("tcp:0:interface=127.0.0.1", "tcp:0:interface=\\:\\:1")
    moved = overrides.apply(config)
    assert (moved.rest.host, moved.rest.port, moved.rest.timeouts.idle) == ("127.0.0.1", 0, 5.0)
    assert moved.emulator.listener.host == "::1"
    assert ListenOverrides().apply(config) is config


OVERRIDE_ERRORS = [
    (("nope", None), "--listen 'nope': 'nope' is not an endpoint type stowpair listens on"),
    ((None, "tcp:x"), "--emulator-listen 'tcp:x': port 'x' is not a number"),
    (("ssl:0:privateKey=/none.pem", None), "--listen 'ssl:0:privateKey=/none.pem': cannot read"),
]


@pytest.mark.parametrize(("options", "message"), OVERRIDE_ERRORS)
def test_override_errors(options: tuple[str | None, str | None], message: str) -> None:
    """When --listen or --emulator-listen is wrong, one line names the option."""
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        ListenOverrides.from_options(*options)


def test_override_beyond_loopback_needs_auth(tmp_path: Path) -> None:
    """When --listen would expose the REST API without authentication, it is refused;
    with the emulator disabled, --emulator-listen is refused."""
    config = load(tmp_path, "[emulator]\nenabled = false\n")
    with pytest.raises(ConfigError) as raised:
        ListenOverrides.from_options("tcp:8080", None).apply(config)
    assert raised.value.errors[0].startswith(
        '--listen "tcp:8080" (every interface) is not a loopback address'
    )
    with pytest.raises(ConfigError) as raised:
        ListenOverrides.from_options(None, "tcp:0:interface=127.0.0.1").apply(config)
    assert raised.value.errors == [
        "--emulator-listen: the emulator is disabled ([emulator] enabled = false)"
    ]
