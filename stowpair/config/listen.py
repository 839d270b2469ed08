"""Listener descriptions in Twisted's endpoint syntax, as twistd users know them.

::

    tcp:8080:interface=127.0.0.1
    tcp6:8080:interface=\\:\\:1
    ssl:8443:privateKey=key.pem:certKey=cert.pem:interface=127.0.0.1

The text is handed to :func:`twisted.internet.endpoints.serverFromString` as it is; this
module checks it first and reads the address it names, so that a mistake is one line
(what, where, what to do) and the REST API's refusal to serve beyond loopback without
authentication sees the interface. Only ``tcp``, ``tcp6`` and ``ssl`` are accepted, with
the port first and every other argument as ``name=value``: the address of every
listener must be known (logs, the console, that refusal). ``tcp:8080`` without an
interface listens on every interface. See docs/configuration.md#listeners.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IStreamServerEndpoint

from stowpair.config.errors import ConfigError
from stowpair.config.model import Config
from stowpair.config.rest_auth import exposure_problem

KINDS = ("tcp", "tcp6", "ssl")
#: Arguments naming files; a configuration file's are relative to its folder.
FILE_KEYS = ("privateKey", "certKey", "extraCertChain", "dhParameters")
EXAMPLE = "e.g. tcp:8080:interface=127.0.0.1 or ssl:8443:privateKey=key.pem:certKey=cert.pem"
#: The ``name=value`` arguments of each kind (twisted.internet.endpoints).
KEYS = {
    "tcp": ("port", "interface", "backlog"),
    "tcp6": ("port", "interface", "backlog"),
    "ssl": (
        "port",
        "interface",
        "backlog",
        "privateKey",
        "certKey",
        "sslmethod",
        "extraCertChain",
        "dhParameters",
    ),
}


@dataclass(frozen=True)
class ListenAddress:
    """What a checked description names. ``host`` is the interface; ``0.0.0.0`` (``::``
    for tcp6) when the description names none, i.e. every interface."""

    description: str
    kind: str
    host: str
    port: int

    @property
    def scheme(self) -> str:
        return "https" if self.kind == "ssl" else "http"


def parse_listen(text: str) -> ListenAddress:
    """Check ``text`` and read its address; ValueError saying what is wrong and how to
    write it (without naming the option or key: the caller does)."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"an endpoint description is needed, {EXAMPLE}")
    tokens = _split(text.strip())
    kind = tokens[0][0].lower() if tokens[0][1] is None else ""
    if kind not in KINDS:
        raise ValueError(_kind_problem(text, kind))
    positional = [value for value, key in tokens[1:] if key is None]
    named = {key: value for value, key in tokens[1:] if key is not None}
    keys = [key for _, key in tokens]
    if "interface" in keys and None in keys[keys.index("interface") + 1 :]:
        raise ValueError("write the colons of an IPv6 interface as \\:, e.g. interface=\\:\\:1")
    if len(positional) > 1:
        raise ValueError(f"write every argument after the port as name=value; {EXAMPLE}")
    unknown = sorted(set(named) - set(KEYS[kind]))
    if unknown:
        allowed = ", ".join(KEYS[kind][1:])
        raise ValueError(f"{unknown[0]!r} is not an argument of {kind}: (known: {allowed})")
    if positional and "port" in named:
        raise ValueError("the port is given twice (first and as port=)")
    port_text = positional[0] if positional else named.get("port", "")
    if not port_text:
        raise ValueError(f"the port is missing; {EXAMPLE}")
    if not (port_text.isascii() and port_text.isdigit()) or int(port_text) > 65535:
        raise ValueError(f"port {port_text!r} is not a number from 0 to 65535 (0: any free port)")
    host = _interface(kind, named.get("interface"))
    if "backlog" in named and not (named["backlog"].isascii() and named["backlog"].isdigit()):
        raise ValueError(f"backlog {named['backlog']!r} is not a whole number")
    return ListenAddress(text.strip(), kind, host, int(port_text))


def _kind_problem(text: str, kind: str) -> str:
    head = text.strip().split(":", 1)[0].strip("[]")
    if head.isdigit() or _is_ip(head) or text.strip().startswith("["):
        return (
            "this is host:port, not an endpoint description; write"
            f" tcp:PORT:interface=IP, {EXAMPLE}"
        )
    if kind in ("unix", "systemd", "tls"):
        why = "the listener's IP address must be known"
        return f"{kind}: endpoints are not supported here ({why}); use tcp:, tcp6: or ssl:"
    return (
        f"{kind!r} is not an endpoint type stowpair listens on; use tcp:, tcp6: or ssl:, {EXAMPLE}"
    )


def _interface(kind: str, value: str | None) -> str:
    if value is None or value == "":
        return "::" if kind == "tcp6" else "0.0.0.0"
    try:
        address = ipaddress.ip_address(value.strip("[]"))
    except ValueError:
        raise ValueError(
            f"interface {value!r} is not an IP address (write IPv6 colons as \\:, e.g."
            " interface=\\:\\:1)"
        ) from None
    if kind == "tcp6" and address.version != 6:
        raise ValueError(f"interface {value!r} is not an IPv6 address (tcp6:); use tcp: for IPv4")
    return str(address)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _split(text: str) -> list[tuple[str, str | None]]:
    """``a:b\\:c:k=v`` → [("a", None), ("b:c", None), ("v", "k")]: Twisted's syntax, where
    a backslash escapes the next character and the first bare ``=`` names an argument."""
    tokens: list[tuple[str, str | None]] = []
    current: list[str] = []
    key: str | None = None
    chars = iter(text)
    for c in chars:
        if c == "\\":
            current.append(next(chars, ""))
        elif c == ":":
            tokens.append(("".join(current), key))
            current, key = [], None
        elif c == "=" and key is None:
            key, current = "".join(current), []
        else:
            current.append(c)
    tokens.append(("".join(current), key))
    return tokens


def _escape(text: str) -> str:
    return "".join("\\" + c if c in ":=\\" else c for c in text)


def resolve_files(address: ListenAddress, base: Path) -> ListenAddress:
    """``address`` with its relative file arguments (TLS key, certificate) made absolute
    against ``base``: a configuration file's paths are relative to its folder."""
    parts = []
    for value, key in _split(address.description):
        if key in FILE_KEYS and value and not Path(value).is_absolute():
            value = str(base / value)
        parts.append(_escape(value) if key is None else f"{_escape(key)}={_escape(value)}")
    return replace(address, description=":".join(parts))


def server_endpoint(reactor: Any, description: str) -> IStreamServerEndpoint:
    """The endpoint; ValueError (one line) when Twisted refuses it, e.g. a TLS key or
    certificate file that is missing or not PEM."""
    try:
        return serverFromString(reactor, description)
    except OSError as e:
        raise ValueError(f"cannot read {e.filename}: {e.strerror}") from None
    except Exception as e:  # pyOpenSSL and Twisted raise their own types for bad input
        what = "the TLS key or certificate" if description.startswith("ssl:") else "it"
        raise ValueError(f"cannot load {what}: {_reason(e)}") from None


def endpoint_problem(address: ListenAddress) -> str | None:
    """None when Twisted builds the endpoint (TLS files load), else one sentence. The
    endpoint is built with no reactor: building one only keeps the reactor given."""
    try:
        server_endpoint(None, address.description)
    except ValueError as e:
        return str(e)
    return None


def listen_option(option: str, text: str) -> ListenAddress:
    """The description given to command-line option ``--{option}``, parsed and built
    once (the TLS files of ``ssl:`` load); ValueError naming the option and the problem."""
    try:
        address = parse_listen(text)
        problem = endpoint_problem(address)
    except ValueError as e:
        problem = str(e)
    if problem:
        raise ValueError(f"--{option} {text!r}: {problem}")
    return address


def _reason(error: Exception) -> str:
    text = str(error).strip() or type(error).__name__
    return " ".join(text.split())[:300]


@dataclass(frozen=True)
class ListenOverrides:
    """``--listen`` and ``--emulator-listen`` of ``twistd stowpair``: they replace the
    addresses of ``[rest]`` and ``[emulator]``, at start and on every reload."""

    rest: ListenAddress | None = None
    emulator: ListenAddress | None = None

    @classmethod
    def from_options(cls, rest: str | None, emulator: str | None) -> ListenOverrides:
        """Both options checked; ValueError naming the option, what is wrong, an example."""
        parsed: dict[str, ListenAddress | None] = {}
        for option, text in (("listen", rest), ("emulator-listen", emulator)):
            parsed[option] = None if text is None else listen_option(option, text)
        return cls(parsed["listen"], parsed["emulator-listen"])

    def apply(self, config: Config) -> Config:
        """``config`` with these addresses; ConfigError (one line) when the REST API
        would then listen beyond loopback without authentication, or the emulator is
        disabled."""
        if self.rest is None and self.emulator is None:
            return config
        rest, emulator = config.rest, config.emulator
        if self.rest is not None:
            rest = _moved(rest, self.rest)
        if self.emulator is not None:
            if not emulator.enabled:
                raise ConfigError(
                    ["--emulator-listen: the emulator is disabled ([emulator] enabled = false)"]
                )
            emulator = replace(emulator, listener=_moved(emulator.listener, self.emulator))
        moved = replace(config, rest=rest, emulator=emulator)
        problem = exposure_problem(moved, "--listen")
        if problem:
            raise ConfigError([problem])
        return moved


def _moved(listener: Any, address: ListenAddress) -> Any:
    return replace(listener, host=address.host, port=address.port, endpoint=address.description)
