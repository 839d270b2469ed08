"""Fixtures shared by every test folder."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.postgres import scratch_database


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A scratch PostgreSQL database for one test (tests/postgres.py)."""
    with scratch_database() as url:
        yield url
