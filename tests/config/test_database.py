"""``[database]``: SQLite by default, a shared PostgreSQL URL with lease settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from stowpair.config.commands import summary_lines
from stowpair.config.errors import ConfigError
from stowpair.config.loader import load_config


def test_no_section_means_sqlite(tmp_path: Path) -> None:
    """When there is no [database], the stores are SQLite files (no URL)."""
    path = tmp_path / "stowpair.toml"
    path.write_text("")
    config = load_config(path)
    assert config.database.url is None
    assert (config.database.lease, config.database.heartbeat_interval) == (60.0, 10.0)


def test_postgresql_url_and_leases(tmp_path: Path) -> None:
    """When a PostgreSQL URL and lease settings are given, they are read, and the summary
    shows the URL with its password masked."""
    path = tmp_path / "stowpair.toml"
    path.write_text(
        '[database]\nurl = "postgresql://stowpair:s3cret@db:5433/archive"\n'
        'lease = "PT30S"\nheartbeat_interval = "PT5S"\npool_size = 8\npassword = "env:PW"\n'
    )
    config = load_config(path)
    db = config.database
    assert (db.url, db.lease, db.heartbeat_interval, db.pool_size) == (
        "postgresql://stowpair:s3cret@db:5433/archive", 30.0, 5.0, 8,
    )  # fmt: skip
    assert db.password is not None and db.password.reference == "env:PW"
    text = "\n".join(summary_lines(config))
    assert "postgresql://stowpair:********@db:5433/archive" in text and "s3cret" not in text


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('url = "mysql://db/x"', 'url "mysql://db/x" must be postgresql://'),
        ('url = "postgresql://db"', "names no database"),
        ('url = "postgresql://db:99999/x"', "is not a valid URL"),
        ('lease = "PT20S"', "lease (20s) must be at least 3 x heartbeat_interval (10s)"),
        ("pool_size = 1", "pool_size must be a whole number 2-100"),
        ('colour = "red"', 'unknown key "colour"'),
    ],
    ids=["scheme", "no-database", "bad-port", "short-lease", "pool", "unknown-key"],
)
def test_bad_database_settings(tmp_path: Path, body: str, message: str) -> None:
    """When [database] is wrong, the error names the key and what is allowed."""
    path = tmp_path / "stowpair.toml"
    path.write_text(f"[database]\n{body}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert any(message in line and "database" in line for line in caught.value.errors), (
        caught.value.errors
    )


def test_password_in_the_url_never_in_errors(tmp_path: Path) -> None:
    """When a URL with a password is refused, the message masks the password."""
    path = tmp_path / "stowpair.toml"
    path.write_text('[database]\nurl = "postgres-xl://u:hunter2@db/x"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "hunter2" not in "\n".join(caught.value.errors)
