"""Database errors the rest of stowpair may react to, without knowing the engine."""

from __future__ import annotations


class DatabaseUnavailable(Exception):
    """The database cannot be reached now (down, restarting, network cut): the operation
    did not happen and may be tried again later. The message says what failed and where,
    never a password."""


class SchemaError(Exception):
    """The database's schema cannot be used by this stowpair (newer than it knows, or a
    migration failed); one sentence saying what to do."""
