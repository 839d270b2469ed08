"""``[rest.auth]`` and ``[rest] insecure``: authentication of the REST listener, and the
refusal to serve it unauthenticated beyond loopback (docs/rest-api.md#authentication).

::

    [rest]
    host = "0.0.0.0"
    [rest.auth]
    type = "basic"                  # or "bearer"
    metrics = "open"                # /metrics without credentials (default protected)
    [rest.auth.users]
    alice = "$scrypt$ln=15,r=8,p=1$..."   # stowpair hash-password alice
"""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from typing import Any, Literal, cast

from stowpair.auth.passwords import PasswordHashError, parse_hash
from stowpair.config.checks import Checker, Section, known, show
from stowpair.config.keycloak import INGEST_KEYS, read_bearer
from stowpair.config.model import Config, RestAuth

AUTH_TYPES = ("basic", "bearer")
ACCESS = ("open", "protected")
AUTH_KEYS = ("type", "realm", "health", "metrics", "console", "users", *INGEST_KEYS)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an IP address, or ``localhost``) only accepts local clients."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def read_rest_auth(rest: Section) -> RestAuth | None:
    """``[rest.auth]`` inside the ``[rest]`` section; None when absent."""
    section = rest.table("auth")
    if section is None:
        return None
    section.entry = "rest.auth"
    section.allow(AUTH_KEYS)
    kind = section.string("type", "basic", required="(basic or bearer)")
    if kind not in AUTH_TYPES:
        section.error("type", f"type {show(kind)} is not one of {known(AUTH_TYPES)}")
        return None
    realm = section.string("realm", "stowpair")
    if '"' in realm or "\\" in realm:
        section.error("realm", 'realm must not hold " or \\')
        realm = "stowpair"
    auth = RestAuth(
        kind=cast(Literal["basic", "bearer"], kind),
        realm=realm,
        health=_access(section, "health", "open"),
        metrics=_access(section, "metrics", "protected"),
        console=_access(section, "console", "protected"),
    )
    if kind == "basic":
        for key in INGEST_KEYS:
            if section.has(key):
                section.error(key, f"{key} is for type bearer; type basic checks [rest.auth.users]")
        return replace(auth, users=_users(section))
    if section.has("users"):
        section.error("users", "users are for type basic; type bearer validates JWT tokens")
    return replace(auth, bearer=read_bearer(section))


def _access(section: Section, key: str, default: str) -> Literal["open", "protected"]:
    value = section.string(key, default)
    if value not in ACCESS:
        section.error(key, f"{key} must be open or protected, not {show(value)}")
        value = default
    return cast(Literal["open", "protected"], value)


def _users(section: Section) -> dict[str, str]:
    table = section.table("users")
    if table is None or not table.data:
        section.error(None, "type basic needs [rest.auth.users] with at least one user")
        return {}
    table.entry = "rest.auth.users"
    users: dict[str, str] = {}
    for name, value in table.data.items():
        if not name or ":" in name:
            table.error(name, f"user name {show(name)} must be non-empty without ':'")
            continue
        if not isinstance(value, str):
            table.error(name, f'user "{name}": the value must be a password hash string')
            continue
        try:
            parse_hash(value.strip())
        except PasswordHashError as e:
            table.error(name, f'user "{name}": {e}')  # the value is never echoed
            continue
        users[name] = value.strip()
    return users


def check_exposure(checker: Checker, config: Config, doc: dict[str, Any]) -> None:
    """Refuse a REST listener beyond loopback without authentication, unless
    ``[rest] insecure = true`` says that is meant."""
    problem = exposure_problem(config)
    if problem is None:
        return
    rest = doc.get("rest", {})
    key = next((k for k in ("listen", "host") if k in rest), None)
    checker.error("rest", problem, ("rest",), key)


def exposure_problem(config: Config, name: str = "listen") -> str | None:
    """Why the REST listener of ``config`` may not start (beyond loopback without
    authentication and without ``insecure = true``), or None."""
    rest = config.rest
    if not rest.enabled or is_loopback(rest.host) or config.rest_auth or config.rest_insecure:
        return None
    if rest.endpoint is not None:
        where = f'{name} "{rest.endpoint}" ({_interfaces(rest.host)})'
    else:
        where = f'host "{rest.host}"'
    return (
        f"{where} is not a loopback address and [rest.auth] is not configured:"
        " anyone who can reach it could trigger, cancel and delete exports; configure"
        " [rest.auth] (docs/rest-api.md#authentication) or set insecure = true"
    )


def _interfaces(host: str) -> str:
    return "every interface" if host in ("0.0.0.0", "::") else f"interface {host}"
