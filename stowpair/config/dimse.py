"""``[dimse]`` (the archive's C-STORE SCP) and ``[remote_aes.AET]`` (``dicom:`` destinations).

See docs/dimse.md. AE titles follow PS3.5's AE value representation: 1-16 characters of the
default character repertoire, no backslash, no control characters.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

from stowpair.config.checks import Checker, Section, known, show
from stowpair.config.model import DimseConfig, Listener, RemoteAE

DIMSE_KEYS = (
    "enabled",
    "listen",
    "ae_title",
    "accepted_calling_aets",
    "max_associations",
    "max_pdu_length",
    "acse_timeout",
    "dimse_timeout",
    "network_timeout",
    "tls_cert",
    "tls_key",
    "tls_ca",
)
REMOTE_AE_KEYS = (
    "host",
    "port",
    "tls",
    "ca_file",
    "tls_cert",
    "tls_key",
    "max_pdu_length",
    "connect_timeout",
    "response_timeout",
    "description",
    "installed",
)
LISTEN_EXAMPLE = 'expected "ip:port", e.g. "127.0.0.1:11112" or "[::1]:11112"'


def ae_title_problem(title: str) -> str | None:
    """Why ``title`` is not a usable AE title (PS3.5 Table 6.2-1, AE), or None."""
    text = title.strip()
    if not text:
        return "an AE title must not be empty"
    if len(text) > 16:
        return f'AE title "{text}" has {len(text)} characters (at most 16)'
    if "\\" in text or any(ord(c) < 0x20 or ord(c) > 0x7E for c in text):
        return f'AE title "{text}" may hold only printable ASCII characters, no "\\"'
    return None


def parse_listen(text: str) -> tuple[str, int]:
    """``ip:port`` or ``[ipv6]:port`` → (ip, port); ValueError saying what is wrong."""
    host, sep, port = text.strip().rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not (port.isascii() and port.isdigit()) or int(port) > 65535:
        raise ValueError(f"listen {show(text)}: {LISTEN_EXAMPLE} (port 0-65535)")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(
            f"listen {show(text)}: {show(host)} is not an IP address; {LISTEN_EXAMPLE}"
        ) from None
    return host, int(port)


def _timeout(section: Section, key: str, default: float | None) -> float | None:
    value = section.duration(key, default, none_ok=True)
    return None if value is not None and value <= 0 else value


def _file(section: Section, key: str) -> Path | None:
    if not section.has(key):
        return None
    path = section.path_value(key, Path("."))
    if not path.is_file():
        section.error(key, f"{key}: {path} is not a readable file")
    return path


def _title(section: Section, key: str, default: str) -> str:
    if not section.has(key):
        return default  # the device's first AE title, checked there
    title = section.string(key, default)
    problem = ae_title_problem(title)
    if problem:
        section.error(key, problem)
        return default
    return title


def read_dimse(checker: Checker, doc: dict[str, Any], default_ae: str) -> DimseConfig:
    """The ``[dimse]`` table; present means enabled unless ``enabled = false``."""
    present = "dimse" in doc
    section = checker.section(doc.get("dimse", {}), ("dimse",), "dimse")
    section.allow(DIMSE_KEYS)
    default = DimseConfig(ae_title=default_ae)
    listener = default.listener
    if section.has("listen"):
        text = section.string("listen", "")
        try:
            host, port = parse_listen(text)
            listener = Listener(host=host, port=port)
        except ValueError as e:
            section.error("listen", str(e))
    callers = section.strings("accepted_calling_aets")
    for title in callers:
        problem = ae_title_problem(title)
        if problem:
            section.error("accepted_calling_aets", problem)
    pdu = section.integer("max_pdu_length", default.max_pdu_length, 0)
    if 0 < pdu < 4096:
        section.error("max_pdu_length", "max_pdu_length must be 0 (no limit) or at least 4096")
        pdu = default.max_pdu_length
    tls_cert, tls_key, tls_ca = (_file(section, k) for k in ("tls_cert", "tls_key", "tls_ca"))
    if (tls_key or tls_ca) and tls_cert is None:
        section.error("tls_cert", "tls_key and tls_ca need tls_cert (the server certificate)")
    return DimseConfig(
        enabled=section.boolean("enabled", present),
        listener=listener,
        ae_title=_title(section, "ae_title", default.ae_title),
        accepted_calling_aets=tuple(c.strip() for c in callers if c.strip() != "*"),
        max_associations=section.integer("max_associations", default.max_associations, 1, 1000),
        max_pdu_length=pdu,
        acse_timeout=_timeout(section, "acse_timeout", default.acse_timeout),
        dimse_timeout=_timeout(section, "dimse_timeout", default.dimse_timeout),
        network_timeout=_timeout(section, "network_timeout", default.network_timeout),
        tls_cert=tls_cert,
        tls_key=tls_key,
        tls_ca=tls_ca,
    )


def read_remote_ae(checker: Checker, title: str, data: Any) -> RemoteAE:
    """One ``[remote_aes.AET]`` table; the table name is the remote AE title."""
    section = checker.section(data, ("remote_aes", title), f'remote AE "{title}"')
    section.allow(REMOTE_AE_KEYS)
    problem = ae_title_problem(title)
    if problem:
        section.error(None, problem)
    default = RemoteAE(title, "", 0)
    host = section.string("host", "", required='(e.g. "127.0.0.1" or "pacs.example.org")')
    tls = section.boolean("tls", False)
    files = {k: _file(section, k) for k in ("ca_file", "tls_cert", "tls_key")}
    if not tls and any(files.values()):
        used = known(k for k, v in files.items() if v)
        section.error("tls", f"{used} set but tls is false; set tls = true to use them")
    pdu = section.integer("max_pdu_length", default.max_pdu_length, 0)
    if 0 < pdu < 4096:
        section.error("max_pdu_length", "max_pdu_length must be 0 (no limit) or at least 4096")
        pdu = default.max_pdu_length
    return RemoteAE(
        ae_title=title.strip(),
        host=host,
        port=section.integer("port", 0, 1, 65535) if section.has("port") else _port(section),
        tls=tls,
        ca_file=files["ca_file"],
        tls_cert=files["tls_cert"],
        tls_key=files["tls_key"],
        max_pdu_length=pdu,
        connect_timeout=_timeout(section, "connect_timeout", default.connect_timeout),
        response_timeout=_timeout(section, "response_timeout", default.response_timeout),
        description=section.string("description", ""),
        installed=section.boolean("installed", True),
    )


def _port(section: Section) -> int:
    section.error(None, "port is required (the remote AE's DICOM port, e.g. 104 or 11112)")
    return 0
