"""Fixtures shared by every test folder."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import settings

from tests.postgres import scratch_database

# Property tests check behaviour, not speed (speed is measured by the benchmarks): no
# per-example deadline, which a loaded 2-core CI machine would miss now and then.
settings.register_profile("stowpair", deadline=None)
settings.load_profile("stowpair")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A scratch PostgreSQL database for one test (tests/postgres.py)."""
    with scratch_database() as url:
        yield url
