"""Credentials of the REST commands (``stowpair export``, ``tasks``, ``cancel`` ...) for a
service with ``[rest.auth]`` (docs/rest-api.md#authentication).

``--user USER[:PASSWORD]`` or ``STOWPAIR_USER`` send HTTP Basic credentials; without a
password it comes from ``STOWPAIR_PASSWORD`` or is asked on the terminal. ``--token`` or
``STOWPAIR_TOKEN`` send a Bearer token. Prefer the variables or the prompt: a password on
the command line is visible to other users of the machine.
"""

from __future__ import annotations

import argparse
import base64
import getpass
import sys
from collections.abc import Callable, Mapping
from typing import IO


class CredentialsError(ValueError):
    """The credentials options cannot be used; the message says why."""


def add_auth_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("authentication (a service with [rest.auth])")
    group.add_argument(
        "--user",
        metavar="USER[:PASSWORD]",
        help="HTTP Basic credentials (or STOWPAIR_USER); the password from STOWPAIR_PASSWORD"
        " or the terminal when not given",
    )
    group.add_argument("--token", help="Bearer access token (or STOWPAIR_TOKEN)")


def authorization(
    args: argparse.Namespace,
    env: Mapping[str, str],
    stdin: IO[str] | None = None,
    prompt: Callable[[str], str] = getpass.getpass,
) -> str | None:
    """The ``Authorization`` header value the options and variables ask for, or None."""
    user = getattr(args, "user", None) or env.get("STOWPAIR_USER") or None
    token = getattr(args, "token", None) or env.get("STOWPAIR_TOKEN") or None
    if user and token:
        raise CredentialsError(
            "give a user (--user, STOWPAIR_USER) or a token (--token, STOWPAIR_TOKEN), not both"
        )
    if token:
        return f"Bearer {token}"
    if not user:
        return None
    name, colon, password = user.partition(":")
    if not colon:
        password = env.get("STOWPAIR_PASSWORD", "")
        if not password:
            stdin = stdin or sys.stdin
            if not stdin.isatty():
                raise CredentialsError(
                    f"no password for user {name}: use --user {name}:PASSWORD, set"
                    " STOWPAIR_PASSWORD, or run on a terminal to be asked"
                )
            password = prompt(f"Password for {name}: ")
    if not name:
        raise CredentialsError("--user needs a user name: USER[:PASSWORD]")
    pair = f"{name}:{password}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


#: Added to the error of a 401, so the user knows what to pass.
UNAUTHORIZED_HINT = (
    "the service requires authentication: pass --user USER[:PASSWORD] (or set STOWPAIR_USER)"
    " or --token TOKEN (or STOWPAIR_TOKEN)"
)
