"""The machine's PostgreSQL for tests: a scratch database per test, dropped afterwards.

``STOWPAIR_TEST_POSTGRES_URL`` names a database to connect to for creating the scratch
ones (default ``postgresql://root@127.0.0.1:5432/test``: the machine's PostgreSQL 15, trust
authentication). When it cannot be reached the test is skipped with the reason, or
fails under ``STOWPAIR_REQUIRE_PEERS=1`` (CI, where .ci/run starts PostgreSQL).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest

URL_VARIABLE = "STOWPAIR_TEST_POSTGRES_URL"
DEFAULT_URL = "postgresql://root@127.0.0.1:5432/test"
#: Scratch databases are named cluster_<hex>: easy to find and drop by hand.
PREFIX = "cluster_"


def admin_url() -> str:
    return os.environ.get(URL_VARIABLE, DEFAULT_URL)


def unavailable(message: str) -> None:
    """Skip, or fail under STOWPAIR_REQUIRE_PEERS=1."""
    if os.environ.get("STOWPAIR_REQUIRE_PEERS") == "1":
        pytest.fail(f"{message}, and STOWPAIR_REQUIRE_PEERS=1")
    pytest.skip(f"{message} (set {URL_VARIABLE}; STOWPAIR_REQUIRE_PEERS=1 makes this fail)")


def connect_admin() -> psycopg.Connection[tuple[object, ...]]:
    url = admin_url()
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as e:
        unavailable(f"PostgreSQL at {url} is not reachable: {str(e).strip().splitlines()[0]}")
        raise  # not reached


def with_database(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` instead."""
    base, _, _ = url.rpartition("/")
    query = url.partition("?")[2]
    return f"{base}/{name}" + (f"?{query}" if query else "")


@contextmanager
def scratch_database() -> Iterator[str]:
    """A new empty database; yields its URL; dropped afterwards (even if still in use)."""
    name = f"{PREFIX}{uuid.uuid4().hex[:12]}"
    with connect_admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(admin_url(), name)
    finally:
        with connect_admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
