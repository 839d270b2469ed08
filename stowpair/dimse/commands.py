"""``stowpair echo``: C-ECHO (Verification, PS3.4 Annex A) to check a DICOM destination.

``stowpair echo AE@host:port`` associates as ``--calling-aet`` and sends one C-ECHO;
``stowpair echo AE -c conf/stowpair.toml`` takes host, port and TLS from the
configuration's ``[remote_aes.AE]``. Exit 0 on success, 1 with one sentence otherwise.
Blocking pynetdicom calls: a command line, no reactor.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from stowpair.config.model import RemoteAE

DEFAULT_CALLING_AET = "STOWPAIR"


class EchoError(Exception):
    """A message for the user; the command exits 1."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    echo = sub.add_parser(
        "echo",
        help="C-ECHO a DICOM destination (AE@host:port, or a [remote_aes] AE title)",
        description=(
            "Send a DICOM C-ECHO to check that a destination accepts associations from us."
            " Give AE@host:port, or only the AE title to use [remote_aes.AE] of the"
            " configuration."
        ),
    )
    echo.add_argument("destination", metavar="AE@HOST:PORT")
    echo.add_argument(
        "--calling-aet", default=None, help=f"our AE title (default {DEFAULT_CALLING_AET})"
    )
    echo.add_argument(
        "-c", "--config", type=Path, default=None, help="configuration with [remote_aes]"
    )
    echo.add_argument("--tls", action="store_true", help="DICOM TLS (AE@host:port form)")
    echo.add_argument("--ca-file", type=Path, help="trust these CA certificates (PEM) for TLS")
    echo.add_argument("--timeout", type=float, default=10.0, help="seconds (default 10)")
    echo.set_defaults(handler=_echo)


def parse_destination(text: str) -> tuple[str, str, int]:
    """``AE@host:port`` (host may be ``[v6]``) → (AE title, host, port); ValueError."""
    title, at, address = text.rpartition("@")
    host, colon, port = address.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    example = "expected AE@HOST:PORT, e.g. STORESCP@127.0.0.1:11112"
    if not at or not title.strip() or not colon or not host:
        raise ValueError(f"{text!r}: {example}")
    if not (port.isascii() and port.isdigit()) or not 0 < int(port) <= 65535:
        raise ValueError(f"{text!r}: port {port!r} is not 1-65535; {example}")
    if len(title.strip()) > 16:
        raise ValueError(f"{text!r}: AE title {title!r} is longer than 16 characters")
    return title.strip(), host, int(port)


def _remote(args: argparse.Namespace) -> RemoteAE:
    text = args.destination
    if "@" in text:
        title, host, port = parse_destination(text)
        return RemoteAE(
            title, host, port, tls=args.tls or args.ca_file is not None, ca_file=args.ca_file,
            connect_timeout=args.timeout, response_timeout=args.timeout,
        )  # fmt: skip
    from stowpair.config.errors import ConfigError
    from stowpair.config.loader import load_config

    path = args.config or Path("conf/stowpair.toml")
    try:
        config = load_config(path)
    except ConfigError as e:
        raise EchoError("\n".join(e.errors)) from None
    remote = config.remote_aes.get(text)
    if remote is None:
        known = ", ".join(sorted(config.remote_aes)) or "none"
        raise EchoError(
            f"{text!r} is not AE@HOST:PORT and not a remote AE of {path} (defined: {known})"
        )
    if args.calling_aet is None:
        args.calling_aet = config.device.ae_titles[0]
    return remote


def echo(remote: RemoteAE, calling_aet: str) -> tuple[int, float]:
    """One C-ECHO; (status, seconds). EchoError says why there was none."""
    from stowpair.dimse.ae import new_ae
    from stowpair.dimse.scu import describe_failure
    from stowpair.dimse.tls import DimseTLSError, client_context

    ae = new_ae(
        calling_aet,
        max_pdu_length=remote.max_pdu_length,
        acse_timeout=remote.response_timeout,
        dimse_timeout=remote.response_timeout,
        network_timeout=remote.response_timeout,
        connection_timeout=remote.connect_timeout,
    )
    ae.add_requested_context("1.2.840.10008.1.1")
    try:
        ssl_context = client_context(remote)
    except DimseTLSError as e:
        raise EchoError(str(e)) from None
    tls = (ssl_context, remote.host) if ssl_context is not None else None
    started = time.monotonic()
    assoc = ae.associate(remote.host, remote.port, ae_title=remote.ae_title, tls_args=tls)
    if not assoc.is_established:
        raise EchoError(describe_failure(assoc, remote)[0])
    try:
        answer = assoc.send_c_echo()
    finally:
        if assoc.is_established:
            assoc.release()
    status = answer.get("Status") if answer is not None else None
    if status is None:
        raise EchoError(f"no C-ECHO response from {remote.ae_title} (timeout or abort)")
    return int(status), time.monotonic() - started


def _echo(args: argparse.Namespace) -> int:
    try:
        remote = _remote(args)
        calling = args.calling_aet or DEFAULT_CALLING_AET
        status, elapsed = echo(remote, calling)
    except (EchoError, ValueError) as e:
        print(f"stowpair echo: {e}", file=sys.stderr)
        return 1
    where = f"{remote.ae_title}@{remote.host}:{remote.port}"
    if status != 0:
        print(f"C-ECHO {calling} -> {where}: status 0x{status:04X}", file=sys.stderr)
        return 1
    print(f"C-ECHO {calling} -> {where}: success (0x0000) in {elapsed:.3f}s")
    return 0
