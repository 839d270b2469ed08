"""Versioned PostgreSQL schema migrations: one SQL file per schema version.

``migrations/NNNN_name.sql`` brings the schema from version NNNN-1 to NNNN. At start every
node runs :func:`migrate`: under a transaction-scoped advisory lock (so two nodes starting
together do not both migrate), it applies the files newer than the version recorded in
``stowpair_schema``, in order, in the same transaction. A database whose version is newer
than the newest file is refused: an older stowpair must not write to a schema it does not
know (upgrade that node first).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from stowpair.db.errors import SchemaError

#: pg_advisory_xact_lock key of the migration (any fixed number; "stowpair" in ASCII).
LOCK_KEY = 0x73746F7770616972
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def bundled() -> list[Migration]:
    """The migration files shipped in ``stowpair/db/migrations``, by version."""
    folder = resources.files("stowpair.db").joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text("utf-8")))
    return checked(found)


def checked(migrations: Sequence[Migration]) -> list[Migration]:
    """Migrations in order; versions must run 1, 2, 3 ... without a gap."""
    ordered = sorted(migrations, key=lambda m: m.version)
    for expected, m in enumerate(ordered, start=1):
        if m.version != expected:
            raise SchemaError(f"migration {m.name}: expected version {expected:04d}")
    return ordered


def migrate(db: Any, migrations: Sequence[Migration] | None = None) -> int:
    """Bring the schema up to date inside the caller's transaction; returns its version."""
    steps = checked(bundled() if migrations is None else migrations)
    db.execute("SELECT pg_advisory_xact_lock(?)", [LOCK_KEY])
    db.execute(
        "CREATE TABLE IF NOT EXISTS stowpair_schema (version INTEGER PRIMARY KEY,"
        " name TEXT NOT NULL, applied TIMESTAMPTZ NOT NULL DEFAULT now())"
    )
    current = int(db.execute("SELECT COALESCE(MAX(version), 0) FROM stowpair_schema").fetchone()[0])
    newest = steps[-1].version if steps else 0
    if current > newest:
        raise SchemaError(
            f"the database has schema version {current}, newer than this stowpair knows"
            f" ({newest}): a newer stowpair migrated it; upgrade this node too"
        )
    for m in steps:
        if m.version > current:
            db.conn.execute(m.sql)  # the whole file: several statements, no parameters
            db.execute(
                "INSERT INTO stowpair_schema (version, name) VALUES (?, ?)", [m.version, m.name]
            )
    return max(current, newest)
