"""``stowpair hash-password``: a password hash for ``[rest.auth.users]``."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import IO, Any

from stowpair.auth.passwords import DEFAULT_LN, MAX_LN, hash_password


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "hash-password",
        help="hash a password for the REST API's [rest.auth.users]",
        description="Read a password (asked twice on a terminal, else one line from standard"
        " input) and print its scrypt hash, for [rest.auth.users] in the configuration. The"
        " password is never taken from the command line, where other users could see it.",
    )
    parser.add_argument(
        "user", nargs="?", help="print a TOML line 'USER = \"...\"' instead of the hash alone"
    )
    parser.add_argument(
        "--cost",
        type=int,
        default=DEFAULT_LN,
        metavar="LN",
        help=f"scrypt cost: N = 2^LN (default {DEFAULT_LN}, 32 MiB)",
    )
    parser.set_defaults(handler=run_hash_password)


def read_password(stdin: IO[str], prompt: Any = getpass.getpass) -> str:
    """From the terminal (twice, must match) or the first line of standard input."""
    if stdin.isatty():
        first = prompt("Password: ")
        if first != prompt("Again: "):
            raise ValueError("the two passwords differ")
    else:
        first = stdin.readline().rstrip("\r\n")
    if not first:
        raise ValueError("empty password")
    return str(first)


def run_hash_password(
    args: argparse.Namespace, stdin: IO[str] | None = None, out: IO[str] | None = None
) -> int:
    stdin = stdin or sys.stdin
    out = out or sys.stdout
    if not 1 <= args.cost <= MAX_LN:
        print(f"stowpair hash-password: --cost must be 1..{MAX_LN}", file=sys.stderr)
        return 2
    try:
        password = read_password(stdin)
        encoded = hash_password(password, ln=args.cost)
    except ValueError as e:
        print(f"stowpair hash-password: {e}", file=sys.stderr)
        return 1
    if args.user:
        user = args.user.replace("\\", "\\\\").replace('"', '\\"')
        out.write(f'"{user}" = "{encoded}"\n')
    else:
        out.write(encoded + "\n")
    return 0
