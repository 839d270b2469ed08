"""Whatever happens in a test, the processes it started are stopped."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.reliability import harness


@pytest.fixture(autouse=True)
def stop_processes() -> Iterator[None]:
    yield
    while harness.CREATED:
        harness.CREATED.pop().stop()
