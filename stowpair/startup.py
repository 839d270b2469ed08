"""What would stop ``twistd -n stowpair`` from starting, found while its options are
parsed (one line each, no traceback), before anything is built."""

from __future__ import annotations

from pathlib import Path

from stowpair.config.model import Config
from stowpair.config.secret import SecretError
from stowpair.fsutil import folder_problem, log_file_problem
from stowpair.receiver.endpoints import jwks_problem


def startup_problems(config: Config, json_log: Path | None) -> list[str]:
    """What would stop the service from starting, one line each, found before it starts:
    folders and files it writes, the database password, the ingest JWKS file."""
    checks = [
        folder_problem(config.archive.storage, "archive.storage"),
        folder_problem(config.archive.database.parent, "the folder of archive.database"),
    ]
    if config.emulator.enabled:
        checks.append(folder_problem(config.emulator.directory, "emulator.directory"))
    if json_log is not None:
        checks.append(log_file_problem(json_log, "the JSON log"))
    checks.append(_database_problem(config))
    ingest = config.ingest_auth
    checks.append(jwks_problem(ingest.jwks if ingest else None))
    return [p for p in checks if p is not None]


def _database_problem(config: Config) -> str | None:
    password = config.database.password
    if password is None:
        return None
    try:
        password.reveal()
    except SecretError as e:
        return f"[database] password: {e}"
    return None
