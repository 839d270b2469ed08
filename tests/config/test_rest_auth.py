"""``[rest.auth]`` and ``[rest] insecure``: what loads, the exact error lines, and the
refusal to serve the REST API beyond loopback without authentication (before binding)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from stowpair.auth.passwords import hash_password
from stowpair.config.errors import ConfigError
from stowpair.config.loader import load_config
from stowpair.config.model import BearerAuth
from stowpair.config.rest_auth import is_loopback
from tests.support import peers

HASH = hash_password("pw", ln=2)
BASIC = f'[rest.auth]\ntype = "basic"\n[rest.auth.users]\nalice = "{HASH}"\n'
EXPOSED = (
    'F:{line}: rest: host "{host}" is not a loopback address and [rest.auth] is not'
    " configured: anyone who can reach it could trigger, cancel and delete exports;"
    " configure [rest.auth] (docs/rest-api.md#authentication) or set insecure = true"
)


def load(tmp_path: Path, text: str) -> Any:
    path = tmp_path / "stowpair.toml"
    path.write_text("[emulator]\nenabled = false\n" + text, encoding="utf-8")
    return load_config(path)


def errors(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load(tmp_path, text)
    return [line.replace(str(tmp_path / "stowpair.toml"), "F") for line in raised.value.errors]


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("[::1]", True),
     ("localhost", True), ("0.0.0.0", False), ("::", False), ("192.0.2.7", False),
     ("example.org", False)],
)  # fmt: skip
def test_is_loopback(host: str, loopback: bool) -> None:
    """When a listener host is judged, only loopback addresses (and localhost) are."""
    assert is_loopback(host) is loopback


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.7"])
def test_non_loopback_without_auth_is_refused(tmp_path: Path, host: str) -> None:
    """When [rest] listens beyond loopback with no [rest.auth] nor insecure = true, the
    configuration is refused with one line naming the host and both ways out."""
    text = f'[rest]\nhost = "{host}"\nport = 0\n'
    assert errors(tmp_path, text) == [EXPOSED.format(line=4, host=host)]


@pytest.mark.parametrize(
    "extra",
    ["insecure = true\n", "enabled = false\n", "\n" + BASIC],
    ids=["insecure", "disabled", "basic auth"],
)
def test_non_loopback_allowed(tmp_path: Path, extra: str) -> None:
    """When authentication is configured, the listener is off, or insecure = true says
    so, a non-loopback host loads."""
    config = load(tmp_path, '[rest]\nhost = "0.0.0.0"\nport = 0\n' + extra)
    assert config.rest.host == "0.0.0.0"


def test_basic_users(tmp_path: Path) -> None:
    """When [rest.auth] lists users with hashes, they load with the defaults for /health
    (open) and /metrics (protected)."""
    auth = load(tmp_path, "[rest]\n" + BASIC).rest_auth
    assert (auth.kind, auth.users, auth.health, auth.metrics) == (
        "basic", {"alice": HASH}, "open", "protected")  # fmt: skip


def test_bearer(tmp_path: Path) -> None:
    """When [rest.auth] is of type bearer, its keys read like [ingest]'s."""
    text = ('[rest.auth]\ntype = "bearer"\noauth-issuer = "https://idp.test/realms/r"\n'
            'audience = "stowpair"\nrequired-scope = "admin"\nmetrics = "open"\n')  # fmt: skip
    auth = load(tmp_path, text).rest_auth
    assert auth.bearer == BearerAuth(issuer="https://idp.test/realms/r", audience="stowpair",
                                     required_scopes=("admin",))  # fmt: skip
    assert auth.metrics == "open"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[rest.auth]\ntype = "digest"\n',
         ['F:5: rest.auth: type "digest" is not one of basic, bearer']),
        ('[rest.auth]\ntype = "basic"\n',
         ["F:4: rest.auth: type basic needs [rest.auth.users] with at least one user"]),
        ('[rest.auth]\ntype = "basic"\n[rest.auth.users]\nalice = "pw"\n',
         ['F:7: rest.auth.users: user "alice": not a password hash (passwords are never'
          " written here); generate one with `stowpair hash-password`"]),
        ('[rest.auth]\ntype = "bearer"\njwks = "/nonexistent.json"\n'
         f'[rest.auth.users]\na = "{HASH}"\n',
         ["F:4: rest.auth: users are for type basic; type bearer validates JWT tokens",
          'F:6: rest.auth: jwks file "/nonexistent.json" does not exist (or give a URL)']),
        ('[rest.auth]\ntype = "basic"\nhealth = "closed"\n' + BASIC.split("\n", 2)[2],
         ['F:6: rest.auth: health must be open or protected, not "closed"']),
    ],
    ids=["type", "no users", "plain password", "bearer with users", "health"],
)  # fmt: skip
def test_errors(tmp_path: Path, text: str, expected: list[str]) -> None:
    """When [rest.auth] is wrong, each problem is one line naming file, line and key."""
    assert sorted(errors(tmp_path, "[rest]\n" + text)) == sorted(expected)


def test_twistd_refuses_before_binding(tmp_path: Path) -> None:
    """When twistd -n stowpair is started with a non-loopback REST host and no
    authentication, it exits non-zero with the reason and never listens."""
    port = peers.free_port()
    conf = tmp_path / "stowpair.toml"
    conf.write_text(f'[rest]\nhost = "0.0.0.0"\nport = {port}\n[emulator]\nenabled = false\n'
                    '[logging]\njson_file = "-"\n')  # fmt: skip
    twistd = str(Path(sys.executable).with_name("twistd"))
    run = subprocess.run([twistd, "-n", "--pidfile=", "stowpair", "-c", str(conf)],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)  # fmt: skip
    output = run.stdout + run.stderr
    assert run.returncode != 0
    assert 'host "0.0.0.0" is not a loopback address and [rest.auth] is not configured' in output
    assert "listening" not in output


def test_insecure_start_is_logged(tmp_path: Path) -> None:
    """When insecure = true lets the REST API listen beyond loopback without
    authentication, the service says so (rest.insecure, warn) at start."""
    from twisted.logger import LogLevel, globalLogPublisher

    from stowpair.auth.rest import warn_if_insecure

    config = load(tmp_path, '[rest]\nhost = "0.0.0.0"\nport = 8080\ninsecure = true\n')
    seen: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(seen.append)
    try:
        warn_if_insecure(config)
    finally:
        globalLogPublisher.removeObserver(seen.append)
    [event] = [e for e in seen if e.get("event") == "rest.insecure"]
    assert event["log_level"] is LogLevel.warn and event["host"] == "0.0.0.0"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("[rest]\n" + BASIC,
         "REST http://127.0.0.1:8080, Basic auth, users alice (scrypt); open: /health"),
        ('[rest]\nhost = "0.0.0.0"\ninsecure = true\n',
         "REST http://0.0.0.0:8080, no authentication (insecure = true)"),
    ],
    ids=["basic", "insecure"],
)  # fmt: skip
def test_config_check_shows_authentication(tmp_path: Path, text: str, line: str) -> None:
    """When `stowpair config check` summarises, the REST line says how it is protected,
    naming users but never their hashes."""
    from stowpair.config.commands import summary_lines

    lines = summary_lines(load(tmp_path, text))
    assert line in lines
    assert HASH not in "\n".join(lines)


@pytest.mark.parametrize(("console", "warned"), [("protected", True), ("open", False)])
def test_bearer_console_warning(tmp_path: Path, console: str, warned: bool) -> None:
    """When [rest.auth] of type bearer protects the console's files, config check warns
    that browsers cannot load it; with console = "open" it does not."""
    from stowpair.config.commands import auth_warnings

    text = (f'[rest.auth]\ntype = "bearer"\noauth-issuer = "https://idp.test/r"\n'
            f'console = "{console}"\n')  # fmt: skip
    warnings = auth_warnings(load(tmp_path, text))
    assert bool(warnings) is warned
    assert all('set console = "open"' in w for w in warnings)
