"""``[database]``: SQLite files (no url, the default) or a shared PostgreSQL database."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from stowpair.config.checks import Checker, show
from stowpair.config.keycloak import read_secret
from stowpair.config.model import DatabaseConfig, mask_url_password

KEYS = ("url", "password", "pool_size", "lease", "heartbeat_interval")


def read_database(checker: Checker, doc: dict[str, Any]) -> DatabaseConfig:
    section = checker.section(doc.get("database", {}), ("database",), "database")
    section.allow(KEYS)
    default = DatabaseConfig()
    url = section.string("url", "") or None
    if url is not None:
        problem = url_problem(url)
        if problem:
            section.error("url", f"url {show(mask_url_password(url))} {problem}")
            url = None
    lease = section.duration("lease", default.lease) or default.lease
    interval = section.duration("heartbeat_interval", default.heartbeat_interval)
    interval = interval or default.heartbeat_interval
    if lease < 3 * interval:
        section.error(
            "lease",
            f"lease ({lease:g}s) must be at least 3 x heartbeat_interval ({interval:g}s),"
            " so that one late heartbeat does not lose a node its tasks",
        )
    return DatabaseConfig(
        url=url,
        password=read_secret(section, "password"),
        pool_size=section.integer("pool_size", default.pool_size, 2, 100),
        lease=lease,
        heartbeat_interval=interval,
    )


def url_problem(url: str) -> str | None:
    """None for a usable ``postgresql://`` URL, else what is wrong with it."""
    if not url.startswith(("postgresql://", "postgres://")):
        return "must be postgresql://USER@HOST[:PORT]/DATABASE (SQLite needs no url)"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError as e:
        return f"is not a valid URL ({e})"
    if not parts.path.strip("/"):
        return "names no database: add /DATABASE after the host"
    return None
